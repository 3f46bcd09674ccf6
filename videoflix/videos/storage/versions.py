"""The files of one published version (hls/<id>/<version>/ in the media store), by name inside
it: what the subtitle tracks and the storyboard add to a version after its transcode.

The one place outside storage.keys that reads or writes a published version's files, through the
store's verbs (files below MEDIA_ROOT, or objects in the bucket with MEDIA_STORAGE=s3). ffmpeg
and PyAV get local files: the stored files themselves, or copies fetched into scratch space.
"""
import contextlib
import os
import posixpath
import tempfile
from pathlib import Path

from videoflix.videos.storage.keys import hls_key, media_store, scratch_root


class VersionFiles:
    def __init__(self, hls_dir, store=None):
        self.hls_dir = hls_dir
        self.store = store or media_store()

    def key(self, name):
        return hls_key(f"{self.hls_dir}/{name}")

    def read(self, name):
        """The text of `name`; stores.NotStored when it is not there."""
        return self.store.read(self.key(name)).decode("utf-8")

    def exists(self, name):
        return self.store.exists(self.key(name))

    def write(self, name, text):
        """Replace `name` whole (readers see the old or the new text, never a part): a rename on
        local disk, one PUT in a bucket."""
        with self.scratch() as folder:
            tmp = Path(folder) / posixpath.basename(name)
            tmp.write_text(text, encoding="utf-8")
            self.store.put_file(self.key(name), tmp, move=True)

    def put_folder(self, folder, source):
        """Store the local folder `source` as `folder`, replacing what was there (on local disk one
        rename; in a bucket the new objects first, then those it no longer has go)."""
        prefix = self.key(folder)
        if self.store.local:
            self.store.delete_prefix(prefix)
            self.store.put_dir(prefix, source)
            return
        old = set(self.store.list(prefix))
        self.store.put_dir(prefix, source)
        new = {f"{prefix}/{p.relative_to(source).as_posix()}" for p in Path(source).rglob("*") if p.is_file()}
        for key in sorted(old - new):
            self.store.delete(key)

    def names(self, folder):
        """The file names directly inside `folder` (a sub-folder of the version)."""
        prefix = self.key(folder) + "/"
        return sorted(k[len(prefix):] for k in self.store.list(self.key(folder)) if "/" not in k[len(prefix):])

    def delete(self, name):
        self.store.delete(self.key(name))

    @contextlib.contextmanager
    def scratch(self):
        """A local temporary folder, removed on leaving: inside the version folder on local disk
        (so what is made there is renamed into place), else in this process's scratch space
        (named after its pid: storage.keys.clean_scratch removes it should the process die)."""
        if self.store.local:
            parent = self.store.path(hls_key(self.hls_dir))
            parent.mkdir(parents=True, exist_ok=True)
            prefix = ".scratch-"
        else:
            parent, prefix = scratch_root(), f"{os.getpid()}-version-"
        with tempfile.TemporaryDirectory(dir=parent, prefix=prefix) as folder:
            yield folder

    @contextlib.contextmanager
    def local_files(self, names):
        """Local files ffmpeg or PyAV can read, one per name, in order: the stored files (local
        disk; no symlink is followed), else copies fetched into a scratch folder removed on
        leaving. stores.NotStored when one is missing."""
        if self.store.local:
            yield [self.store.stat(self.key(name)).path for name in names]
            return
        with self.scratch() as folder:
            paths = []
            for number, name in enumerate(names):
                paths.append(os.path.join(folder, f"{number:06d}-{posixpath.basename(name)}"))
                self.store.fetch(self.key(name), paths[-1])
            yield paths

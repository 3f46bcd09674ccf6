"""The files of one published version (hls/<id>/<version>/), by name inside it: what the subtitle
tracks and the storyboard add to a version after its transcode.

The one place outside storage.py that treats a version as a local folder below MEDIA_ROOT/hls:
with another media store, these verbs map onto its (read, write, names, delete, local_path).
"""
import os
import shutil

from videoflix.videos import storage


class VersionFiles:
    def __init__(self, hls_dir):
        self.hls_dir = hls_dir
        self.root = storage.hls_root() / hls_dir

    def local_path(self, name):
        """A local file ffmpeg or PyAV can read; ValueError when it is not a regular file there."""
        return storage.hls_file(f"{self.hls_dir}/{name}")[0]

    def read(self, name):
        return (self.root / name).read_text(encoding="utf-8")

    def write(self, name, text):
        """Replace `name` atomically (readers see the old or the new text, never a part)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    def put_folder(self, folder, source):
        """Move the local folder `source` in as `folder`, replacing what was there."""
        target = self.root / folder
        shutil.rmtree(target, ignore_errors=True)
        os.replace(source, target)

    def names(self, folder):
        path = self.root / folder
        return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []

    def delete(self, name):
        (self.root / name).unlink(missing_ok=True)

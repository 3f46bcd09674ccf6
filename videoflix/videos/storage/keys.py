"""Where media lives: the key layout, the app's store, and the worker's scratch space.

Keys (in the store MEDIA_STORAGE names: files below MEDIA_ROOT, or objects in a bucket)::

    uploads/<uuid>          originals, under a neutral name of ours (never the client's name or
                            extension: nothing may pick a demuxer from it; older rows may still
                            name uploads/<uuid><.ext>)
    hls/<id>/<version>/     a published transcode; Video.hls_dir = "<id>/<version>" (inside it,
                            the file names of videoflix.videos.media.layout); a chunked job
                            stores its parts' files here as they are done (nobody sees them
                            before the row names the version)
    jobs/<id>/<version>/    what a chunked job's parts share besides: the pieces of its one
                            continuous audio encode (audio/NNNNN.nut)
    tus/<id>/<offset>       the parts of an unfinished resumable upload (MEDIA_STORAGE=s3;
                            locally its bytes wait in MEDIA_ROOT/tus/<id>/data: uploads.chunks)

Local scratch (never shared, never served)::

    local: MEDIA_ROOT/uploads/.incoming-*   an upload being received and probed
           MEDIA_ROOT/work/<job>            a transcode in progress (same disk as hls/: publish is a rename)
    s3:    MEDIA_SCRATCH/<pid>-<job>/       the worker's copy of the source and its transcode output
           MEDIA_SCRATCH/incoming-<uuid>    an upload being received and probed

Everything that reads or writes media goes through `media_store()` (a store of
videoflix.videos.storage.backends) with keys made here: no other module writes a key out. No model,
no database: `models` imports this module, never the reverse.
"""
import contextlib
import functools
import logging
import os
import shutil
import stat
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from videoflix.videos.storage.backends import MediaStore, StorageUnavailable
from videoflix.videos.storage.local import LocalStore
from videoflix.videos.storage.ranges import RangeFile
from videoflix.videos.storage.s3 import S3Store

log = logging.getLogger(__name__)
STORE_KEY = "videoflix_media_store"


def make_store(config) -> MediaStore:
    """The store MEDIA_STORAGE names (ValueError for another name)."""
    kind = (config.get("MEDIA_STORAGE") or "local").lower()
    if kind == "local":
        return LocalStore(config["MEDIA_ROOT"])
    if kind == "s3":
        return S3Store.from_config(config)
    raise ValueError(f"MEDIA_STORAGE must be local or s3, not {kind!r}")


def media_store(app=None) -> MediaStore:
    """The app's store (built once per app from MEDIA_STORAGE and the S3_* settings)."""
    app = app or current_app
    store = app.extensions.get(STORE_KEY)
    if store is None:
        store = app.extensions[STORE_KEY] = make_store(app.config)
    return store


def is_local(app=None):
    return media_store(app).local


def media_root():
    return Path(current_app.config["MEDIA_ROOT"])


def scratch_root():
    """This process's scratch folder in s3 mode: MEDIA_SCRATCH, else one below the temp dir."""
    configured = current_app.config.get("MEDIA_SCRATCH")
    root = Path(configured) if configured else Path(tempfile.gettempdir()) / f"videoflix-scratch-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _below(base, relative):
    """base/relative, refusing anything that would leave base (ValueError)."""
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()) or path == base.resolve():
        raise ValueError(f"{relative!r} is not inside {base}")
    return path


def source_key(name):
    return f"uploads/{name}"


TUS_PREFIX = "tus"


def tus_key(upload_id, offset=None):
    """The prefix of an unfinished upload's parts (tus/<id>), or the key of its part that starts
    at `offset` (tus/<id>/<offset as 20 digits>, so the keys sort as the parts do)."""
    prefix = f"{TUS_PREFIX}/{upload_id}"
    return prefix if offset is None else f"{prefix}/{offset:020d}"


def hls_key(relative):
    """The key of a file below hls/ ("12/ab34cd/480p/seg000.ts")."""
    return f"hls/{relative}"


def job_key(video_id, job, name=None):
    """The prefix of a chunked job's shared files (jobs/<id>/<job>), or the key of one of them."""
    prefix = f"jobs/{int(video_id)}/{job}"
    return prefix if name is None else f"{prefix}/{name}"


def source_file(video):
    """What PyAV reads the video's original from: the stored file itself (local), else the object
    read by ranges (storage.ranges.RangeFile: only the bytes asked for are fetched)."""
    store = media_store()
    if store.local:
        return str(sources().path(video.source_file))
    key = source_key(video.source_file)
    return RangeFile(store, key, store.stat(key).size)


def job_file(video_id, job, name, dest):
    """A local path of a chunked job's shared file: the stored file (local), else a copy fetched to
    `dest`. stores.NotStored when it is not there (yet)."""
    store = media_store()
    if store.local:
        return str(store.stat(job_key(video_id, job, name)).path)
    store.fetch(job_key(video_id, job, name), dest)
    return str(dest)


def put_job_file(video_id, job, name, path):
    """Keep a chunked job's shared file (moved: a rename locally, an upload then unlink in a bucket)."""
    media_store().put_file(job_key(video_id, job, name), path, move=True)


def put_version_files(hls_dir, folder):
    """Store every file below the local `folder` at the same place in version hls_dir (each file
    moved; files already there are replaced): a part's segments and sprites, as it is done."""
    store = media_store()
    folder = Path(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        store.put_file(hls_key(f"{hls_dir}/{path.relative_to(folder).as_posix()}"), path, move=True)


def put_version_text(hls_dir, name, text, scratch):
    """Replace file `name` of version hls_dir with `text` whole (written in `scratch` first)."""
    tmp = Path(scratch) / f".{uuid.uuid4().hex}"
    tmp.write_text(text, encoding="utf-8")
    media_store().put_file(hls_key(f"{hls_dir}/{name}"), tmp, move=True)


def remove_job(video_id, job):
    """Delete a chunked job's shared files; missing is fine, errors are logged."""
    _quietly(media_store().delete_prefix, job_key(video_id, job))


class Sources:
    """Original uploads in the store, by stored name (received into a local file first)."""

    def __init__(self, store, incoming_dir):
        self.store, self.incoming_dir = store, Path(incoming_dir)

    @contextlib.contextmanager
    def incoming(self):
        """A fresh local path to receive an upload into; removed on leaving unless `put` took it."""
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        prefix = ".incoming-" if self.store.local else "incoming-"
        path = self.incoming_dir / f"{prefix}{uuid.uuid4().hex}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def check(self):
        """Raise StorageUnavailable when the store is away, within a request's bounded wait (one
        small read, S3_READ_TIMEOUT): before an upload is received and kept, whose whole-file
        transfer would wait longer (S3_TRANSFER_READ_TIMEOUT) to find out."""
        self.store.exists(source_key(".reachable"))

    def put(self, incoming, name=None):
        """Keep the received file `incoming` under `name` (default: a new neutral name), streamed
        into the bucket in parts, never whole in memory; that name. Nothing is stored when it raises."""
        return self._keep(self.store.put_file, incoming, name, move=True)

    def link(self, path, name=None):
        """Keep the finished local file `path` as put does, without a copy where the store can
        (stores: link_file): `path` itself stays where it is, for its owner to remove."""
        return self._keep(self.store.link_file, path, name)

    def _keep(self, put, local, name, **options):
        name = name or uuid.uuid4().hex
        try:
            put(source_key(name), local, **options)
        except StorageUnavailable:
            raise  # a delete now would meet the same outage (its circuit answers at once)
        except BaseException:
            self.delete(name)  # an interrupted multipart upload leaves nothing behind either
            raise
        return name

    def path(self, name):
        """The local file of `name` (local store only); ValueError for a name outside the store."""
        if not self.store.local:
            raise ValueError("the sources are not local files")
        return _below(self.store.root / "uploads", name)

    def open(self, name):
        return self.store.open(source_key(name))

    def exists(self, name):
        return self.store.exists(source_key(name))

    def delete(self, name):
        """Remove `name`; missing is fine, other errors are logged, never raised."""
        try:
            self.store.delete(source_key(name))
        except Exception as error:  # noqa: BLE001 - the store is away: logged, the row decides
            log.warning("Could not delete source %s: %s", name, error)


def sources():
    """The store of original uploads for the current app."""
    store = media_store()
    return Sources(store, uploads_dir() if store.local else scratch_root())


def uploads_dir():
    return media_root() / "uploads"


def hls_root():
    return media_root() / "hls"


def _scratch_job(job):
    return scratch_root() / f"{os.getpid()}-{job}"


def work_path(job):
    """Where a transcode job writes (not created: transcode() creates it)."""
    if is_local():
        (media_root() / "work").mkdir(parents=True, exist_ok=True)
        return _below(media_root() / "work", job)
    folder = _scratch_job(job)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "out"


def source_path(video, job=None):
    """A local file of the video's original for ffmpeg: the stored file itself (local), else a
    copy fetched into the job's scratch folder (removed with it by remove_work)."""
    store = media_store()
    if store.local:
        return sources().path(video.source_file)
    folder = _scratch_job(job or uuid.uuid4().hex)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / "source"
    store.fetch(source_key(video.source_file), dest)
    return dest


def remove_work(job):
    """Remove a job's work folder (and in s3 mode its scratch folder, whichever process ran it)."""
    if is_local():
        shutil.rmtree(_below(media_root() / "work", job), ignore_errors=True)
        return
    for folder in scratch_root().glob(f"*-{job}"):
        shutil.rmtree(folder, ignore_errors=True)


def clean_scratch(pid_alive):
    """In s3 mode, remove the scratch folders of processes that are gone (a worker killed with
    SIGKILL cleans nothing itself); called as each worker process starts. The names removed."""
    if is_local():
        return []
    removed = []
    for entry in scratch_root().iterdir():
        pid = entry.name.split("-", 1)[0]
        if entry.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    if removed:
        log.warning("Removed the scratch folders of dead workers: %s", removed)
    return removed


def new_version():
    """A fresh version folder name (also the `?v=` of the segment URLs in its playlists)."""
    return uuid.uuid4().hex[:12]


def publish(job_dir, video_id, version):
    """Store a finished transcode folder as hls/<id>/<version>: one rename on local disk; on S3 an
    upload of every file under the new, never used version prefix (removed again when the upload
    fails). Nobody sees it before the row names it. Returns hls_dir "<id>/<version>"."""
    hls_dir = f"{int(video_id)}/{version}"
    store = media_store()
    try:
        store.put_dir(hls_key(hls_dir), job_dir)
    except BaseException:
        if not store.local:
            _quietly(store.delete_prefix, hls_key(hls_dir))
        raise
    return hls_dir


@functools.lru_cache(maxsize=8)
def _real_hls_root(media_root_path):
    return os.path.realpath(os.path.join(media_root_path, "hls"))


def hls_file(relative, media_root=None):
    """(absolute path, stat) of a regular file at MEDIA_ROOT/hls/<relative>; ValueError otherwise.

    The one rule for serving local files below hls/ (the API, its segment fast path and the
    admin): no part of the way may be a symlink, "." or "..", so whatever lies on disk, nothing
    outside MEDIA_ROOT/hls is reached. Costs one lstat per path part: it runs on every segment
    request. `media_root` defaults to current_app's MEDIA_ROOT.
    """
    path = _real_hls_root(media_root or current_app.config["MEDIA_ROOT"])
    try:
        for part in relative.split("/"):
            if part in ("", ".", ".."):
                raise ValueError(f"{relative!r} is not a path below hls/")
            path = os.path.join(path, part)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                raise ValueError(f"{relative!r} leads through a symlink")
    except OSError:
        raise ValueError(f"no such file: {relative!r}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"not a regular file: {relative!r}")
    return path, st


def read_hls(relative):
    """The bytes of a file below hls/ (a playlist, a thumbnail); stores.NotStored when missing."""
    return media_store().read(hls_key(relative))


def remove_version(hls_dir):
    """Delete one published version (hls/<id>/<version>), and hls/<id>/ if that leaves it empty
    (the video may have been deleted meanwhile); missing is fine."""
    if hls_dir:
        media_store().delete_prefix(hls_key(hls_dir))


def remove_other_versions(hls_dir):
    """Delete every sibling of the published version hls_dir: old versions, and versions left by
    a worker that crashed between publishing and switching the row. Only the worker that has
    just switched the row to hls_dir may call this (its claim made it the only writer)."""
    video_dir, version = hls_dir.rsplit("/", 1)
    store = media_store()
    for sibling in store.children(hls_key(video_dir)):
        if sibling != version:
            _quietly(store.delete_prefix, hls_key(f"{video_dir}/{sibling}"))


def _quietly(action, *args):
    try:
        action(*args)
    except Exception as error:  # noqa: BLE001 - cleanup: the next publish or delete tries again
        log.warning("Storage cleanup %s%s failed: %s", action.__name__, args, error)


@dataclass(frozen=True)
class VideoFiles:
    sources: Sources
    source: str | None
    hls: str  # the key prefix of every version
    jobs: str  # the key prefix of its chunked jobs' shared files


def files_of(video):
    """Everything stored for the video (resolved now, deleted by delete_files)."""
    return VideoFiles(sources=sources(), source=video.source_file or None, hls=hls_key(str(int(video.id))),
                      jobs=f"jobs/{int(video.id)}")


def delete_files(files):
    """Remove a video's original, every published version and a running job's files; never raises."""
    if files.source is not None:
        files.sources.delete(files.source)
    _quietly(files.sources.store.delete_prefix, files.hls)
    _quietly(files.sources.store.delete_prefix, files.jobs)


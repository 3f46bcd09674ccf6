"""The disk layout under MEDIA_ROOT and the rule for serving files from it.

    uploads/<uuid>          originals, under a neutral name of ours (never the client's name or
                            extension: nothing may pick a demuxer from it; older rows may still
                            name uploads/<uuid><.ext>)
    uploads/.incoming-*     an upload being received and probed; gone when accepted or refused
    work/<job>              a transcode in progress (same filesystem as hls/, so publish is a rename)
    hls/<id>/<version>/     a complete, published transcode; Video.hls_dir = "<id>/<version>"

Originals go through `sources()`, a store with small verbs (incoming, put, open, path, exists,
delete), so another backend can replace this one; nothing else knows their layout.
No model, no database: `models` imports this module, never the reverse.
"""
import contextlib
import functools
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

log = logging.getLogger(__name__)


def media_root():
    return Path(current_app.config["MEDIA_ROOT"])


def _below(base, relative):
    """base/relative, refusing anything that would leave base (ValueError)."""
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()) or path == base.resolve():
        raise ValueError(f"{relative!r} is not inside {base}")
    return path


class LocalSources:
    """Original uploads as files below `root`, by stored name."""

    def __init__(self, root):
        self.root = Path(root)

    @contextlib.contextmanager
    def incoming(self):
        """A fresh path to receive an upload into; removed on leaving unless `put` took it."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".incoming-{uuid.uuid4().hex}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def put(self, incoming):
        """Keep the received file `incoming` under a new neutral name; that name."""
        name = uuid.uuid4().hex
        os.replace(incoming, self.root / name)
        return name

    def path(self, name):
        """The local file of `name` (ffmpeg reads it); ValueError for a name outside the store."""
        return _below(self.root, name)

    def open(self, name):
        return open(self.path(name), "rb")

    def exists(self, name):
        return self.path(name).is_file()

    def delete(self, name):
        """Remove `name`; missing is fine, other errors are logged, never raised."""
        try:
            self.path(name).unlink(missing_ok=True)
        except (OSError, ValueError) as error:
            log.warning("Could not delete source %s: %s", name, error)


def sources():
    """The store of original uploads for the current app."""
    return LocalSources(uploads_dir())


def uploads_dir():
    return media_root() / "uploads"


def hls_root():
    return media_root() / "hls"


def work_path(job):
    """Where a transcode job writes (not created: transcode() creates it)."""
    (media_root() / "work").mkdir(parents=True, exist_ok=True)
    return _below(media_root() / "work", job)


def source_path(video):
    return sources().path(video.source_file)


def new_version():
    """A fresh version folder name (also the `?v=` of the segment URLs in its playlists)."""
    return uuid.uuid4().hex[:12]


def publish(job_dir, video_id, version):
    """Move a finished transcode folder into hls/<id>/<version> (one rename: it appears complete
    or not at all); returns hls_dir "<id>/<version>"."""
    parent = hls_root() / str(int(video_id))
    parent.mkdir(parents=True, exist_ok=True)
    os.rename(job_dir, parent / version)
    return f"{int(video_id)}/{version}"


@functools.lru_cache(maxsize=8)
def _real_hls_root(media_root_path):
    return os.path.realpath(os.path.join(media_root_path, "hls"))


def hls_file(relative, media_root=None):
    """(absolute path, stat) of a regular file at MEDIA_ROOT/hls/<relative>; ValueError otherwise.

    The one rule for serving anything below hls/ (the API, its segment fast path and the admin):
    no part of the way may be a symlink, "." or "..", so whatever lies on disk, nothing outside
    MEDIA_ROOT/hls is reached. Costs one lstat per path part: it runs on every segment request.
    `media_root` defaults to current_app's MEDIA_ROOT.
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


def remove_version(hls_dir):
    """Delete one published version (hls/<id>/<version>), and hls/<id>/ if that leaves it empty
    (the video may have been deleted meanwhile); missing is fine."""
    if not hls_dir:
        return
    path = _below(hls_root(), hls_dir)
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()
    except OSError:  # not empty (the current version is there) or already gone
        pass


def remove_other_versions(hls_dir):
    """Delete every sibling of the published version hls_dir: old versions, and versions left by
    a worker that crashed between publishing and switching the row. Only the worker that has
    just switched the row to hls_dir may call this (its claim made it the only writer)."""
    keep = _below(hls_root(), hls_dir)
    for sibling in keep.parent.iterdir():
        if sibling == keep:
            continue
        if sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)


def remove_work(job):
    shutil.rmtree(_below(media_root() / "work", job), ignore_errors=True)


@dataclass(frozen=True)
class VideoFiles:
    sources: LocalSources
    source: str | None
    hls: Path


def files_of(video):
    """Everything on disk that belongs to the video (resolved now, deleted by delete_files)."""
    return VideoFiles(sources=sources(), source=video.source_file or None,
                      hls=_below(hls_root(), str(int(video.id))))


def delete_files(files):
    """Remove a video's original and every published version; never raises for missing files."""
    if files.source is not None:
        files.sources.delete(files.source)
    shutil.rmtree(files.hls, ignore_errors=True)

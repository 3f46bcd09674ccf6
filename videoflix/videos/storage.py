"""Files on disk under MEDIA_ROOT: accepting uploads, publishing transcodes, deleting a video's files.

    uploads/<uuid><.ext>    originals (stored names are ours, never the client's)
    uploads/.incoming-*     an upload being received and probed; gone when accepted or refused
    work/<job>              a transcode in progress (same filesystem as hls/, so publish is a rename)
    hls/<id>/<version>/     a complete, published transcode; Video.hls_dir = "<id>/<version>"

Uploads are copied in chunks, so memory stays flat for any size (Werkzeug itself spools form
files to a temporary file on disk past 500 KB).
"""
import functools
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from werkzeug.utils import secure_filename

from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.probe import InvalidMedia, probe

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
TITLE_MAX, CATEGORY_MAX, DESCRIPTION_MAX = 200, 80, 5000


class UploadRefused(Exception):
    """The upload is not accepted and nothing was stored; `errors` maps a field to sentences."""

    def __init__(self, errors):
        super().__init__("; ".join(m for msgs in errors.values() for m in msgs))
        self.errors = errors


class UploadTooLarge(UploadRefused):
    def __init__(self, limit_mb):
        super().__init__({"file": [f"The file is larger than the limit of {limit_mb} MB."]})


def media_root():
    return Path(current_app.config["MEDIA_ROOT"])


def _below(base, relative):
    """base/relative, refusing anything that would leave base (ValueError)."""
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()) or path == base.resolve():
        raise ValueError(f"{relative!r} is not inside {base}")
    return path


def uploads_dir():
    return media_root() / "uploads"


def hls_root():
    return media_root() / "hls"


def work_path(job):
    """Where a transcode job writes (not created: transcode() creates it)."""
    (media_root() / "work").mkdir(parents=True, exist_ok=True)
    return _below(media_root() / "work", job)


def source_path(video):
    return _below(uploads_dir(), video.source_file)


def max_upload_bytes():
    return current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024


def clean_fields(title, description, category):
    """Stripped title, description, category; UploadRefused (field-keyed) when one is unusable."""
    title, description, category = (title or "").strip(), (description or "").strip(), (category or "").strip()
    errors = {}
    if not title or len(title) > TITLE_MAX:
        errors["title"] = [f"A title of 1 to {TITLE_MAX} characters is required."]
    if not category or len(category) > CATEGORY_MAX:
        errors["category"] = [f"A category of 1 to {CATEGORY_MAX} characters is required (e.g. Drama)."]
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = [f"The description is longer than {DESCRIPTION_MAX} characters."]
    if errors:
        raise UploadRefused(errors)
    return title, description, category


def _receive(stream, dest, limit):
    """Copy `stream` to `dest` in chunks; the byte count. UploadTooLarge past `limit` bytes."""
    size = 0
    with open(dest, "xb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(current_app.config["MAX_UPLOAD_MB"])
            out.write(chunk)
    return size


def _extension(filename):
    ext = os.path.splitext(secure_filename(filename or ""))[1].lower()
    return ext if 1 < len(ext) <= 10 and ext[1:].isalnum() else ""


def accept_upload(stream, *, filename, title, description="", category, enqueue=True):
    """Store an uploaded video and create its row (then queue its transcode unless told not to).

    The file is received and probed BEFORE anything is kept: a field problem, a file over
    MAX_UPLOAD_MB (UploadTooLarge) or a file that is not a decodable video raises UploadRefused,
    and then no row and no file remain.
    """
    from videoflix.videos import state

    title, description, category = clean_fields(title, description, category)
    uploads_dir().mkdir(parents=True, exist_ok=True)
    incoming = uploads_dir() / f".incoming-{uuid.uuid4().hex}"
    try:
        size = _receive(stream, incoming, max_upload_bytes())
        try:
            info = probe(incoming)
        except InvalidMedia as error:
            raise UploadRefused({"file": [error.message]}) from None
        stored = uuid.uuid4().hex + _extension(filename)
        video = Video(
            title=title, description=description, category=category, source_file=stored, source_size=size,
            original_filename=(filename or "")[:255] or None, duration=info.duration,
            width=info.width, height=info.height,
        )
        os.replace(incoming, uploads_dir() / stored)
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    try:
        db.session.add(video)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        (uploads_dir() / stored).unlink(missing_ok=True)
        raise
    log.info("Video %s stored: %s (%d bytes, %.1fs)", video.id, stored, size, info.duration)
    if enqueue:
        state.queue(video)
    return video


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
    source: Path | None
    hls: Path


def files_of(video):
    """Everything on disk that belongs to the video (resolved now, deleted by delete_files)."""
    source = source_path(video) if video.source_file else None
    return VideoFiles(source=source, hls=_below(hls_root(), str(int(video.id))))


def delete_files(files):
    """Remove a video's original and every published version; never raises for missing files."""
    if files.source is not None:
        try:
            files.source.unlink(missing_ok=True)
        except OSError as error:
            log.warning("Could not delete %s: %s", files.source, error)
    shutil.rmtree(files.hls, ignore_errors=True)

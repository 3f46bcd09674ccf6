"""Resumable uploads, tus 1.0.0 (https://tus.io/protocols/resumable-upload): the protocol's rules,
apart from HTTP (the routes are videoflix.videos.api.uploads).

Extensions: creation, creation-with-upload, termination, expiration and checksum (sha1).

- The bytes of an upload wait where every web process sees them, so any of them continues any
  upload (videoflix.videos.uploads.chunks): locally its scratch file MEDIA_ROOT/tus/<id>/data on the
  shared media volume, whose size after flush and fsync is the offset; with MEDIA_STORAGE=s3 one
  object per PATCH below tus/<id>/ in the bucket, the offset where the last one ends. Either way
  there is no counter that a crash between the write and its bookkeeping could leave behind the
  bytes (or ahead of them).
- A request writing to an upload first claims the row's lock with one conditional UPDATE
  (`locked_by`), which works across processes and hosts on every database; a second writer gets
  UploadLocked (423). The holder refreshes `locked_at` while it writes; a lock not refreshed for
  TUS_LOCK_SECONDS belonged to a dead (or stalled) process and may be taken over. A request
  whose lock lapsed changes nothing more: it proves the lock still its own before every write and
  before it cuts off a refused body, and the request taking a lapsed lock over first gives the
  scratch file a new inode (chunks' `fence`), out of reach of the old holder's open file.
- The last byte hands the file to the upload service (accept: the same fields, probe,
  refusals and limits as every other way in); an accepted file becomes a pending video with its
  transcode queued. Locally the scratch file becomes the stored file without a second copy (a
  hard link, then the scratch name goes); from the bucket the parts are streamed into the store.
  The video's row and the upload's `done` commit together, and the file is stored under the
  upload's id: a crash leaves either the unfinished upload (whose retried last PATCH, or expiry,
  replaces or deletes what the crash stored) or the video, never both, never neither.
- Unfinished uploads expire TUS_EXPIRE_SECONDS after their last write; `sweep_expired` (run by the
  worker) deletes their rows and chunks (scratch files, or parts in the bucket), each under its
  lock, so never an upload a request is completing.
- A creation claims room (videoflix.videos.uploads.limits): at most TUS_MAX_UNFINISHED unfinished
  uploads per staff member (429), and bytes that fit the disk that will hold them (507).
"""
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from huey import crontab
from sqlalchemy import delete, select, update

from videoflix.extensions import db
from videoflix.models_base import utcnow
from videoflix.tasks import on_worker_start, periodic_task
from videoflix.videos.models.tus_upload import DONE, TusUpload
from videoflix.videos.storage.backends import StorageUnavailable
from videoflix.videos.storage.keys import media_store, sources
from videoflix.videos.tasks import transcode_new_video
from videoflix.videos.uploads import limits
from videoflix.videos.uploads.chunks import chunk_store
from videoflix.videos.uploads.headers import Gone, OffsetMismatch, TooLarge, TusError, UploadLocked
from videoflix.videos.uploads.service import UploadRefused, accept, load_fields, max_upload_bytes

log = logging.getLogger(__name__)

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
CHECKSUM_ALGORITHMS = "sha1"
LOCK_REFRESH_SECONDS = 5
COMPLETION_SECONDS = 3600
UPLOAD_ID = re.compile("[0-9a-f]{32}")  # secrets.token_hex(16): also keeps paths in the scratch root


@dataclass
class Written:
    """What a PATCH (or a POST with a body) did: the new offset and, when that completed the
    upload, the video it became."""

    offset: int
    video_id: int | None = None
    expires: datetime | None = None  # the new Upload-Expires of an unfinished upload


def max_size():
    """Tus-Max-Size: MAX_UPLOAD_MB in bytes, the limit of every upload path."""
    return max_upload_bytes()


def chunks():
    """Where the app keeps unfinished uploads' bytes (tus_chunks: scratch files or bucket parts)."""
    return chunk_store(current_app.config, media_store())


def current_offset(upload_id):
    """How many bytes of the upload are stored; 0 when none are."""
    return chunks().offset(upload_id)


def expires_from(now=None):
    return (now or utcnow()) + timedelta(seconds=current_app.config["TUS_EXPIRE_SECONDS"])


# ------------------------------------------------------------------------------------ rows

def create(owner_id, length, metadata):
    """A new upload of `length` bytes with its (validated) metadata and an empty scratch file.

    Raises TooLarge past Tus-Max-Size, UploadRefused for bad fields, limits.TooManyUnfinished past
    TUS_MAX_UNFINISHED unfinished uploads of the owner, limits.InsufficientStorage when the bytes
    would not fit the disk that will hold them.
    """
    if length > max_size():
        raise TooLarge(f"The file is larger than the limit of {current_app.config['MAX_UPLOAD_MB']} MB.")
    fields = load_fields({k: metadata.get(k) for k in ("title", "description", "category", "filename")})
    fields["filename"] = fields["filename"][:255]
    upload = TusUpload(id=secrets.token_hex(16), owner_id=owner_id, length=length, upload_metadata=fields,
                       expires_at=expires_from())
    store = chunks()
    try:
        limits.check(owner_id, length, store)
    except TusError:
        db.session.rollback()  # the owner's row lock goes with it
        raise
    store.create(upload.id)
    db.session.add(upload)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        store.delete(upload.id)
        raise
    return upload


def find(upload_id, owner_id):
    """The owner's upload; TusError 404 when there is none, Gone (410) once it has expired."""
    upload = db.session.get(TusUpload, upload_id) if UPLOAD_ID.fullmatch(upload_id) else None
    if upload is None or upload.owner_id != owner_id:
        raise TusError("Upload not found.", 404)
    if upload.status != DONE and upload.expires_at <= utcnow():
        raise Gone("The upload has expired.")
    return upload


def terminate(upload):
    """Delete the upload and its scratch files (its video, if it became one, stays)."""
    upload_id = upload.id
    with locked(upload_id) as lock:
        db.session.execute(delete(TusUpload).where(TusUpload.id == upload_id))
        db.session.commit()
    _discard(upload_id, done=lock.row.status == DONE)


def _discard(upload_id, done):
    """Delete the upload's chunks and, unless it became a video, what a completion that crashed
    before its commit may have stored under the upload's id."""
    chunks().delete(upload_id)
    if not done:
        sources().delete(upload_id)


# ------------------------------------------------------------------------------------ the lock

class locked:
    """`with locked(upload_id) as lock:` holds the upload's lock (UploadLocked when another live
    request holds it); `lock.row` is the upload's (status, video_id, length) as the claim found
    them, so the holder reads nothing again; `lock.taken_over` says whether the claim took a lapsed
    lock from another request (which may still be alive: see chunks' `fence`); `lock.refresh()`
    proves the holder alive (UploadLocked once it lost it); `lock.on_release` are column values
    written with the release. A request costs two commits: the claim, and the release with what
    the request changed. `conditions` narrow the claim (the sweep's: still expired, not done)."""

    def __init__(self, upload_id, *conditions, now=None):
        self.upload_id, self.token, self.conditions = upload_id, secrets.token_hex(16), conditions
        self.now = now  # when the claim happens, for the staleness of another's lock (tests pass time)
        self.refreshed = 0.0
        self.taken_over = False
        self.on_release = {}  # columns to write with the release (one commit fewer per request)

    def _claim(self, *conditions, ahead=0):
        """The row's (status, video_id, length) when this request now holds the lock; else None."""
        started = time.monotonic()  # the lock runs from before the statement, never from after it
        row = db.session.execute(
            update(TusUpload).where(TusUpload.id == self.upload_id, *conditions)
            .values(locked_by=self.token, locked_at=utcnow() + timedelta(seconds=ahead))
            .returning(TusUpload.status, TusUpload.video_id, TusUpload.length)
        ).first()
        db.session.commit()
        if row is not None:
            self.refreshed = started
        return row

    def __enter__(self):
        self.row = self._claim(TusUpload.locked_by.is_(None), *self.conditions)
        if self.row is None:
            stale = (self.now or utcnow()) - timedelta(seconds=current_app.config["TUS_LOCK_SECONDS"])
            self.row = self._claim(TusUpload.locked_at < stale, *self.conditions)
            self.taken_over = self.row is not None
        if self.row is None:
            raise UploadLocked("Another request is writing to this upload; try again shortly.")
        return self

    def refresh(self, force=False):
        """Prove the lock still ours before a change: asked of the database when `force`, or once a
        quarter of TUS_LOCK_SECONDS (at most LOCK_REFRESH_SECONDS) has passed since the last claim,
        so whatever follows happens while no other request can have taken the lock over."""
        interval = min(LOCK_REFRESH_SECONDS, current_app.config["TUS_LOCK_SECONDS"] / 4)
        if (force or time.monotonic() - self.refreshed >= interval) and not self._claim(
                TusUpload.locked_by == self.token):
            raise UploadLocked("The upload's lock was lost.")

    def hold(self, seconds):
        """Keep the lock for `seconds` more without refreshing it (the completion's probe)."""
        if not self._claim(TusUpload.locked_by == self.token, ahead=seconds):
            raise UploadLocked("The upload's lock was lost.")

    def __exit__(self, *exc):
        db.session.rollback()  # a failed statement must not keep the release from running
        db.session.execute(update(TusUpload).where(TusUpload.id == self.upload_id,
                                                   TusUpload.locked_by == self.token)
                           .values(locked_by=None, locked_at=None, **self.on_release))
        db.session.commit()


# ------------------------------------------------------------------------------------ writing

def write(upload, stream, offset, *, content_length=None, checksum=None):
    """Append the body `stream` at `offset` (which must be the bytes on disk: OffsetMismatch
    otherwise) under the upload's lock; when that was the last byte, complete the upload.

    TooLarge when the body goes past Upload-Length (nothing of it is kept); ChecksumMismatch when
    `checksum` (sha1 digest) does not match the body (nothing kept). A client that disconnects
    keeps what arrived (without a checksum), so it resumes from HEAD's offset.
    Raises UploadRefused when the completed file is refused (then it is deleted).
    """
    upload_id = upload.id
    with locked(upload_id) as lock:
        status, video_id, length = lock.row  # as it is now that this request holds the lock
        if status == DONE:  # a retried last PATCH whose answer was lost gets it again
            if offset != length:
                raise OffsetMismatch(f"Upload-Offset {offset} does not match the {length} bytes received.")
            return Written(length, video_id)
        store = chunks()
        if lock.taken_over:  # its last holder may be alive, with the file still open: cut it off
            store.fence(upload_id, lock)
        new_offset = store.append(upload_id, stream, offset, length - offset, content_length, checksum, lock)
        if new_offset < length:
            lock.on_release["expires_at"] = expires = expires_from()
            return Written(new_offset, expires=expires)
        # Probing the file (and, from the bucket, copying it into the store) can take minutes for a
        # long film: the lock must not lapse meanwhile, or a retried PATCH would find it unlocked.
        lock.hold(COMPLETION_SECONDS)
        return Written(new_offset, _complete(upload))


def _complete(upload):
    """Hand the finished file to the upload service; the new video's id, committed with the
    upload's `done`. The scratch files go either way; a refused file's row too
    (UploadRefused is raised on)."""
    fields = dict(upload.upload_metadata)
    store = chunks()

    def done(video):
        upload.status, upload.video_id = DONE, video.id

    options = {"filename": fields.pop("filename", None), "name": upload.id, "with_row": done, **fields}
    try:
        path = store.local_file(upload.id)
        if path is not None:
            video = accept(path=path, **options)
        else:
            with store.open(upload.id) as stream:
                video = accept(stream, **options)
    except UploadRefused:
        db.session.rollback()
        db.session.execute(delete(TusUpload).where(TusUpload.id == upload.id))
        db.session.commit()
        _discard(upload.id, done=False)
        raise
    video_id = video.id
    store.delete(upload.id)
    log.info("Upload %s complete: video %s", upload.id, video_id)
    transcode_new_video(video)  # a queue outage leaves it pending (logged), never lost
    return video_id


# ------------------------------------------------------------------------------------ expiry

def sweep_expired(now=None):
    """Delete expired uploads (rows and stored chunks) and chunks that have no row and are older
    than TUS_EXPIRE_SECONDS (a creation that crashed); the ids of the rows deleted.

    Each expired upload is deleted under its lock, as a request writing to it would hold it: an
    upload a request is writing to (a last PATCH completing it just as it expired) is left for the
    next sweep, so the sweep never deletes the bytes, the row or the stored original of a
    completion under way."""
    now = now or utcnow()
    candidates = db.session.execute(select(TusUpload.id).where(TusUpload.expires_at <= now)).scalars().all()
    expired = [upload_id for upload_id in candidates if _sweep_one(upload_id, now)]
    known = set(db.session.execute(select(TusUpload.id)).scalars())
    chunks().sweep(known, set(expired), now, current_app.config["TUS_EXPIRE_SECONDS"])
    if expired:
        log.info("Expired uploads deleted: %s", expired)
    return expired


def _sweep_one(upload_id, now):
    """Delete the upload if it is still expired and no request holds its lock; whether it did."""
    try:
        with locked(upload_id, TusUpload.expires_at <= now, now=now) as lock:
            db.session.execute(delete(TusUpload).where(TusUpload.id == upload_id))
            db.session.commit()
            _discard(upload_id, done=lock.row.status == DONE)
    except UploadLocked:  # being written to, completed, deleted or given more time meanwhile
        return False
    return True


@periodic_task(crontab(minute="*/15"))
def sweep_expired_uploads():
    """The worker's scheduler runs the sweep every 15 minutes (in a fresh app context)."""
    sweep_expired()


@on_worker_start
def sweep_on_worker_start(app):
    """A worker starts even while the media store is away: the sweep then waits for its next round."""
    with app.app_context():
        try:
            sweep_expired()
        except StorageUnavailable as error:
            log.warning("Expired uploads not swept now (the periodic sweep tries again): %s", error)

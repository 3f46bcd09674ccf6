"""Unfinished tus uploads across a change of media store (`flask storage migrate`).

Their bytes wait where the store keeps them (videoflix.videos.uploads.chunks: a scratch file
below MEDIA_ROOT/tus, or parts tus/<id>/... in the bucket), so switching MEDIA_STORAGE would
leave them behind: clients would start again from 0, and the old store's copies would stay
forever (nothing sweeps the store the app no longer uses). `carry_over` copies each one into the
new store under the upload's lock, verified by SHA-256, so a client resumes where it was; run
after the switch (the new store is the live one), it also deletes the old store's copies and
leftovers.

The bytes at an offset are the same in both stores (a client always sends the file's bytes from
the offset it was given), so the store holding more of an upload holds the better copy: a copy
is made only when the new store holds less than the old one.
"""
import hashlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from videoflix.extensions import db
from videoflix.models_base import utcnow
from videoflix.videos.models.tus_upload import DONE, TusUpload
from videoflix.videos.storage.backends import sha256_hex
from videoflix.videos.uploads.headers import UploadLocked
from videoflix.videos.uploads.tus import locked

log = logging.getLogger(__name__)


@dataclass
class CarriedOver:
    """What carry_over did, by upload id."""

    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)   # the new store held as much already
    busy: list[str] = field(default_factory=list)      # a request was writing to it: run again
    removed_old: bool = False


class CopyDiffers(Exception):
    """The copy of an upload does not have the bytes of the original."""


class _Hashing:
    """A read-only stream that hashes what is read through it."""

    def __init__(self, stream):
        self.stream, self.digest = stream, hashlib.sha256()

    def read(self, size=-1):
        data = self.stream.read(size)
        self.digest.update(data)
        return data


def _sha256(chunks, upload_id):
    with chunks.open(upload_id) as stream:
        return sha256_hex(stream)


def carry_over(source, target, *, remove_old):
    """Copy every unfinished, unexpired upload's bytes from chunk store `source` to `target`
    (each under the upload's lock; one being written is left for the next run). With
    `remove_old` (the target is the live store now), the source's copies and leftovers go.
    CopyDiffers when a copy does not match its original."""
    done = CarriedOver()
    uploads = db.session.execute(
        select(TusUpload.id).where(TusUpload.status != DONE, TusUpload.expires_at > utcnow()).order_by(TusUpload.id)
    ).scalars().all()
    for upload_id in uploads:
        try:
            with locked(upload_id) as lock:
                (done.copied if _copy(source, target, upload_id, lock) else done.present).append(upload_id)
        except UploadLocked:
            done.busy.append(upload_id)
    if remove_old and not done.busy:
        source.sweep(set(), set(), utcnow(), 0)  # nothing reads the old store any more
        done.removed_old = True
    return done


def _copy(source, target, upload_id, lock):
    """Copy one upload's bytes unless `target` holds as many; True when copied."""
    length = lock.row[2]
    wanted = source.offset(upload_id)
    if target.offset(upload_id) >= wanted:
        return False
    target.delete(upload_id)
    target.create(upload_id)
    with source.open(upload_id) as stream:
        hashed = _Hashing(stream)
        written = target.append(upload_id, hashed, 0, length, None, None, lock)
    if written != wanted or _sha256(target, upload_id) != hashed.digest.hexdigest():
        target.delete(upload_id)
        raise CopyDiffers(f"Upload {upload_id}: the copy differs from the original")
    log.info("Upload %s: %d bytes carried over", upload_id, written)
    return True

"""What a new tus upload may claim at its creation (issue 18, finding 8): a place among its
owner's unfinished uploads (TUS_MAX_UNFINISHED, 429 past it) and room for its bytes on the disk
that will hold them (507 otherwise).

The room is the free space of the chunk store's disk less what the unfinished uploads there still
need to reach their Upload-Length, so a burst of creations cannot promise the same free bytes
twice. Locally that disk holds the scratch files and the stored originals (a completion links,
it does not copy); with the bucket it is the web process's scratch folder, where a completion
receives the whole file before it is probed (the bucket's own space is not known).
"""
from flask import current_app
from sqlalchemy import select, update

from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.models_base import utcnow
from videoflix.videos.models.tus_upload import DONE, TusUpload
from videoflix.videos.uploads.headers import TusError

GB = 1000 ** 3


class TooManyUnfinished(TusError):
    status = 429


class InsufficientStorage(TusError):
    status = 507


def _size(count):
    return f"{count / GB:.1f} GB" if count >= GB / 10 else f"{count:,} bytes"


def check(owner_id, length, store):
    """Raise TooManyUnfinished or InsufficientStorage when an upload of `length` bytes by
    `owner_id` may not be created. The owner's row stays locked until the caller's commit (or
    rollback), so two creations of one staff member never both take the last place: a write
    that changes nothing takes the lock on every database (PostgreSQL: the row; SQLite: the file,
    before anything is read)."""
    db.session.execute(update(User).where(User.id == owner_id).values(updated_at=User.updated_at))
    unfinished = db.session.execute(
        select(TusUpload.id, TusUpload.owner_id, TusUpload.length)
        .where(TusUpload.status != DONE, TusUpload.expires_at > utcnow())).all()
    cap = current_app.config["TUS_MAX_UNFINISHED"]
    mine = sum(1 for row in unfinished if row.owner_id == owner_id)
    if cap and mine >= cap:
        raise TooManyUnfinished(f"You have {mine} unfinished uploads, the most allowed (TUS_MAX_UNFINISHED): "
                                "finish or delete one before starting another.")
    needed = sum(max(0, row.length - store.offset(row.id)) for row in unfinished) if store.held_locally else 0
    room = max(0, store.free_bytes() - needed)
    if length > room:
        raise InsufficientStorage(f"Not enough free space for an upload of {_size(length)}: {_size(room)} are free "
                                  "besides what unfinished uploads still need.")

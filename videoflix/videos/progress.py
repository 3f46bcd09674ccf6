"""Watch progress ("continue watching", API.md): where each user stopped in each video.

Players save it every ~10 s and on pause, so a save is two statements: one read (the video's
duration, and whether the viewer's account is still there) and one upsert (INSERT ... ON CONFLICT
DO UPDATE, on PostgreSQL and SQLite alike). On PostgreSQL the transaction does not wait for its
WAL flush (synchronous_commit off): a crash may lose the last positions saved, never corrupt them,
and a position is not worth an fsync every 10 s per viewer.
"""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from videoflix.auth import INVALID_TOKEN
from videoflix.auth.models import User
from videoflix.errors import APIError
from videoflix.extensions import db
from videoflix.models_base import utcnow
from videoflix.videos.catalogue import LIST_COLUMNS
from videoflix.videos.models import READY, Progress, Video

VIDEO_NOT_FOUND = "Video not found."
# From this share of the duration on, a video counts as watched (credits are not watched).
COMPLETED_SHARE = 0.95
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass
class Position:
    video_id: int
    position: float
    duration: float | None
    completed: bool
    updated_at: datetime | None


def watchable_duration(user_id, video_id, *, writing=False):
    """The duration (None if unknown) of a video the user can watch: a ready one.

    Raises APIError(404) for any other video, APIError(401) when the account is gone or inactive
    (its token is still valid). `writing`: the transaction will save a position (see above).
    """
    viewer = exists().where(User.id == user_id, User.is_active.is_(True))
    columns = [Video.duration, viewer.label("viewer")]
    if writing and db.session.get_bind().dialect.name == "postgresql":
        columns.append(func.set_config("synchronous_commit", "off", literal(True)))
    row = db.session.execute(select(*columns).where(Video.id == video_id, Video.status == READY)).first()
    if row is None:
        raise APIError(404, VIDEO_NOT_FOUND)
    if not row.viewer:
        raise APIError(401, INVALID_TOKEN)
    return row.duration


def save(user_id, video_id, position):
    """Record that `user_id` is at `position` seconds of a watchable video (clamped to its
    duration) and commit. Raises APIError as watchable_duration."""
    duration = watchable_duration(user_id, video_id, writing=True)
    if duration:
        position = min(position, duration)
    saved = Position(video_id, position, duration, bool(duration) and position >= COMPLETED_SHARE * duration, utcnow())
    table = Progress.__table__
    insert = _INSERT[db.session.get_bind().dialect.name](table).values(
        user_id=user_id, video_id=video_id, position=saved.position, completed=saved.completed,
        updated_at=saved.updated_at,
    )
    try:
        db.session.execute(insert.on_conflict_do_update(
            index_elements=[table.c.user_id, table.c.video_id],
            set_={c: insert.excluded[c] for c in ("position", "completed", "updated_at")},
        ))
        db.session.commit()
    except IntegrityError:  # the video (or the user) was deleted meanwhile
        db.session.rollback()
        raise APIError(404, VIDEO_NOT_FOUND) from None
    return saved


def load(user_id, video_id):
    """Where `user_id` stopped in a watchable video (position 0, never updated, when nowhere)."""
    duration = watchable_duration(user_id, video_id)
    row = db.session.get(Progress, (user_id, video_id))
    if row is None:
        return Position(video_id, 0, duration, False, None)
    return Position(video_id, row.position, duration, row.completed, row.updated_at)


def forget(user_id, video_id):
    """Remove the user's progress in a watchable video (nothing to remove is fine)."""
    watchable_duration(user_id, video_id)
    db.session.execute(delete(Progress).where(Progress.user_id == user_id, Progress.video_id == video_id))
    db.session.commit()


def continue_watching(user_id):
    """Rows (the six list columns, position, duration, progress_updated_at) of the ready videos the
    user started and did not finish, most recently watched first."""
    return db.session.execute(
        select(*LIST_COLUMNS, Progress.position, Video.duration, Progress.updated_at.label("progress_updated_at"))
        .join(Progress, Progress.video_id == Video.id)
        .where(Progress.user_id == user_id, Progress.position > 0, Progress.completed.is_(False),
               Video.status == READY)
        .order_by(Progress.updated_at.desc(), Video.id.desc())
    ).all()

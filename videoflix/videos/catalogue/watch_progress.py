"""Watch progress ("continue watching", API.md): where each user stopped in each video.

Players save it every ~10 s and on pause, so a save is one statement: an upsert (INSERT ...
SELECT FROM video ... ON CONFLICT DO UPDATE ... RETURNING, on PostgreSQL and SQLite alike) that
checks the video and the account, clamps the position and decides `completed` in the database.
On PostgreSQL the transaction does not wait for its WAL flush (synchronous_commit off): a crash
may lose the last positions saved, never corrupt them, and a position is not worth an fsync every
10 s per viewer.
"""
import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, Integer, and_, bindparam, case, delete, exists, false, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from videoflix.auth import INVALID_TOKEN
from videoflix.auth.models import User
from videoflix.errors import APIError
from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow
from videoflix.videos.catalogue.queries import LIST_COLUMNS
from videoflix.videos.models import READY, Video, WatchProgress

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


def watchable_duration(user_id, video_id):
    """The duration (None if unknown) of a video the user can watch: a ready one.

    Raises APIError(404) for any other video, APIError(401) when the account is gone or inactive
    (its token is still valid).
    """
    row = db.session.execute(
        select(Video.duration, _viewer(user_id).label("viewer")).where(Video.id == video_id, Video.status == READY)
    ).first()
    if row is None:
        raise APIError(404, VIDEO_NOT_FOUND)
    if not row.viewer:
        raise APIError(401, INVALID_TOKEN)
    return row.duration


def _viewer(user_id):
    return exists().where(User.id == user_id, User.is_active.is_(True))


@functools.cache
def save_statement(dialect, gate=None):
    """The save statement of a dialect, built once (its parameters: viewer_given, video_given,
    position_given, now_given), RETURNING position, completed, updated_at and the duration.

    `gate`, a selectable, is joined into the statement's source: when it has no row nothing is
    saved (analytics.beacons: only a session's newest beacon moves the position, decided in the
    same statement).
    """
    table = WatchProgress.__table__
    given = bindparam("position_given", type_=Float)
    clamped = case((Video.duration < given, Video.duration), else_=given)
    completed = case((and_(Video.duration > 0, clamped >= COMPLETED_SHARE * Video.duration), true()), else_=false())
    video_id = bindparam("video_given", type_=Integer)
    source = select(bindparam("viewer_given", type_=Integer), Video.id, clamped, completed,
                    bindparam("now_given", type_=UTCDateTime)).select_from(Video)
    if dialect == "postgresql":
        # The transaction's commit does not wait for the WAL flush (see the module's doc).
        nosync = select(func.set_config("synchronous_commit", "off", true())).cte("nosync")
        source = source.join(nosync, true())
    if gate is not None:
        source = source.join(gate, true())
    source = source.where(Video.id == video_id, Video.status == READY, _viewer(bindparam("viewer_given")))
    insert = _INSERT[dialect](table).from_select(["user_id", "video_id", "position", "completed", "updated_at"],
                                                  source)
    saved_video = Video.__table__.alias("saved_video")
    duration = select(saved_video.c.duration).where(saved_video.c.id == video_id).scalar_subquery()
    return insert.on_conflict_do_update(
        index_elements=[table.c.user_id, table.c.video_id],
        set_={c: insert.excluded[c] for c in ("position", "completed", "updated_at")},
    ).returning(table.c.position, table.c.completed, table.c.updated_at, duration.label("duration"))


def dialect_of(executor):
    """The dialect name ("postgresql", "sqlite") of the session or of a Connection."""
    dialect = getattr(executor, "dialect", None) or executor.get_bind().dialect
    return dialect.name


def save_params(user_id, video_id, position, now):
    return {"viewer_given": user_id, "video_given": video_id, "position_given": position, "now_given": now}


def save_on(executor, user_id, video_id, position, now):
    """Run the save on `executor` (the session, or a Connection) without committing: the saved
    Position, or None when nothing was written (the video is not watchable, the account inactive)."""
    row = executor.execute(save_statement(dialect_of(executor)), save_params(user_id, video_id, position, now)).first()
    return None if row is None else Position(video_id, row.position, row.duration, row.completed, row.updated_at)


def save(user_id, video_id, position):
    """Record that `user_id` is at `position` seconds of a watchable video and commit: clamped to
    its duration, completed from COMPLETED_SHARE of it. Raises APIError as watchable_duration.

    One statement: INSERT ... SELECT FROM video (only when the video is watchable and the account
    active) ON CONFLICT DO UPDATE ... RETURNING; when nothing was written, watchable_duration says why.
    """
    try:
        saved = save_on(db.session, user_id, video_id, position, utcnow())
        db.session.commit()
    except IntegrityError:  # the account was deleted meanwhile
        db.session.rollback()
        saved = None
    if saved is None:
        watchable_duration(user_id, video_id)  # raises the reason
        raise APIError(404, VIDEO_NOT_FOUND)
    return saved


def position_on(executor, user_id, video_id):
    """Where `user_id` stopped in a video, read on `executor` (no check that it is watchable):
    position 0, never updated, when nowhere; None for an unknown video."""
    row = executor.execute(
        select(Video.duration, WatchProgress.position, WatchProgress.completed, WatchProgress.updated_at)
        .select_from(Video)
        .outerjoin(WatchProgress, and_(WatchProgress.video_id == Video.id, WatchProgress.user_id == user_id))
        .where(Video.id == video_id)
    ).first()
    if row is None:
        return None
    if row.updated_at is None:
        return Position(video_id, 0, row.duration, False, None)
    return Position(video_id, row.position, row.duration, row.completed, row.updated_at)


def load(user_id, video_id):
    """Where `user_id` stopped in a watchable video (position 0, never updated, when nowhere)."""
    duration = watchable_duration(user_id, video_id)
    row = db.session.get(WatchProgress, (user_id, video_id))
    if row is None:
        return Position(video_id, 0, duration, False, None)
    return Position(video_id, row.position, duration, row.completed, row.updated_at)


def forget(user_id, video_id):
    """Remove the user's progress in a watchable video (nothing to remove is fine)."""
    watchable_duration(user_id, video_id)
    db.session.execute(
        delete(WatchProgress).where(WatchProgress.user_id == user_id, WatchProgress.video_id == video_id))
    db.session.commit()


def continue_watching(user_id):
    """Rows (the six list columns, position, duration, progress_updated_at) of the ready videos the
    user started and did not finish, most recently watched first."""
    return db.session.execute(
        select(*LIST_COLUMNS, WatchProgress.position, Video.duration,
               WatchProgress.updated_at.label("progress_updated_at"))
        .join(WatchProgress, WatchProgress.video_id == Video.id)
        .where(WatchProgress.user_id == user_id, WatchProgress.position > 0, WatchProgress.completed.is_(False),
               Video.status == READY)
        .order_by(WatchProgress.updated_at.desc(), Video.id.desc())
    ).all()

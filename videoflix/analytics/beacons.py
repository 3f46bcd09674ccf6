"""Playback beacons: the player's reports of a playback session, and the watch position they carry.

A beacon is one request (`POST /api/video/<id>/playback/`) and, on the hot path, two statements in
one transaction: one upsert of the session, from the video's row (so it also checks that the
account may watch the video), and the watch-position save (videoflix.videos.catalogue.watch_progress) when the
beacon is the session's newest. Beacons may arrive twice, late or never:

- each carries the session's sequence number; the session row keeps the newest (`last_seq`) and a
  bit per number of the WINDOW before it (`seen`), so a beacon is counted once, in any order (a
  beacon more than WINDOW numbers late is dropped as already seen: 10 minutes at one per 10 s);
- its quantities are increments since the player's previous beacon (seconds watched, stalls,
  seconds stalled, quality switches), so a lost beacon loses only its own;
- the range it watched (position - watched .. position) sets bits of the retention curve's 21
  points, an OR that order cannot change;
- only the newest beacon moves the session's (and the viewer's watch) position and rendition;
- the same upsert keeps the per-session rate limit (ANALYTICS_BEACONS_PER_MINUTE in a fixed
  minute), so a beacon costs no round trip to a rate-limit store.

A session rolled up already (closed: ended, or silent for SESSION_IDLE) takes no more beacons:
409, and the player starts a new session.
"""
import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from videoflix.analytics import prepared
from videoflix.analytics.models import PlaybackSession
from videoflix.auth.models import User
from videoflix.errors import APIError
from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow
from videoflix.videos.catalogue import watch_progress
from videoflix.videos.models import READY, Video, WatchProgress

WINDOW = 62  # sequence numbers remembered below the newest (a signed 64-bit integer's bits, kept clear of the sign)
WINDOW_MASK = (1 << WINDOW) - 1
POINTS = 21  # retention points: 0 %, 5 %, ..., 100 % of the duration
SESSION_CLOSED = "This playback session is closed; start a new one."
SESSION_TAKEN = "This playback session belongs to another video or account."
TOO_MANY = "Too many beacons for this playback session; slow down."
RATE_WINDOW = timedelta(minutes=1)
EVENTS = ("start", "progress", "pause", "seek", "end", "error")
EMPTY = 1e18  # an empty range: from EMPTY to -EMPTY
EDGE = 1e-9  # of a point: a range ending exactly on a point passes it, whatever the rounding
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
PREPARED = "videoflix_beacon"  # the statement's name in each PostgreSQL connection


@dataclass
class Beacon:
    """A loaded beacon body (schemas.BeaconSchema)."""

    session: str
    seq: int
    event: str
    position: float
    watched: float = 0.0
    ttff_ms: int | None = None
    stalls: int = 0
    stalled: float = 0.0
    switches: int = 0
    rendition: str | None = None


@dataclass
class Outcome:
    counted: bool  # False: a duplicate (or a beacon too late to tell)
    position: watch_progress.Position


def record(user_id, video_id, beacon, *, now=None):
    """Count `beacon` in its session (created by the first beacon to arrive) and, when it is the
    session's newest, save the viewer's watch position; commits. Returns an Outcome.

    Raises APIError 404 (video not watchable) or 401 (account gone) as watch_progress.save, and 409 when
    the session is closed or belongs to another video or account, 429 past the session's limit.
    """
    now = now or utcnow()
    try:
        outcome = count(db.session, user_id, video_id, beacon, now, current_app.config["ANALYTICS_BEACONS_PER_MINUTE"])
    except IntegrityError:  # the account was deleted meanwhile
        outcome = None
    if outcome is None:  # nothing written: not watchable, a duplicate, or a session that takes no beacon
        db.session.rollback()
        watch_progress.watchable_duration(user_id, video_id)  # raises 404 or 401
        _refuse_unless_duplicate(user_id, video_id, beacon.session, now)
        return Outcome(False, watch_progress.load(user_id, video_id))
    db.session.commit()
    return outcome


def count(executor, user_id, video_id, beacon, now, per_minute):
    """The beacon's writes on `executor` (the session, or a Connection), not committed: the
    Outcome of a counted beacon, or None when nothing was written (then `record` says why).

    On PostgreSQL it is one statement (`_counted`), prepared once per database connection
    (videoflix.analytics.prepared: PostgreSQL planned it in more time than it ran); elsewhere the session's
    upsert, then the watch position's save when the beacon is the session's newest, then the
    position as it is.
    """
    params = _params(user_id, video_id, beacon, now, per_minute)
    dialect = watch_progress.dialect_of(executor)
    if dialect == "postgresql":
        connection = executor if isinstance(executor, Connection) else executor.connection()
        row = prepared.execute(connection, PREPARED, _counted(), params).first()
        if row is None:
            return None
        if row.saved_at is not None:
            return Outcome(True, watch_progress.Position(video_id, row.saved, row.duration, row.saved_completed,
                                                         row.saved_at))
        return Outcome(True, watch_progress.Position(video_id, row.position or 0, row.duration,
                                                     bool(row.completed), row.updated_at))
    row = executor.execute(_upsert(dialect), params).first()
    if row is None:
        return None
    if row.last_seq == beacon.seq:  # the newest: the viewer is there now
        return Outcome(True, watch_progress.save_on(executor, user_id, video_id, beacon.position, now))
    return Outcome(True, watch_progress.position_on(executor, user_id, video_id))


def _params(user_id, video_id, beacon, now, per_minute):
    # The range played since the previous beacon; none: an empty range (start after end).
    start, end = (max(0.0, beacon.position - beacon.watched), beacon.position) if beacon.watched else (EMPTY, -EMPTY)
    return {
        "id": beacon.session, "user_id": user_id, "video_given": video_id, "day": now.date(), "now": now,
        "seq": beacon.seq, "position_given": beacon.position, "range_start": start, "range_end": end,
        "watched": beacon.watched, "ttff_ms": beacon.ttff_ms, "stalls": beacon.stalls, "stalled": beacon.stalled,
        "switches": beacon.switches, "errors": int(beacon.event == "error"), "rendition": beacon.rendition,
        "ended": beacon.event == "end", "window_from": now - RATE_WINDOW, "per_minute": per_minute,
        **watch_progress.save_params(user_id, video_id, beacon.position, now),
    }


@functools.cache
def _counted():
    """PostgreSQL: the beacon in one statement. The session's upsert (`_upsert`) and the watch
    position's save gated on it (only when the upsert made this beacon the newest) as
    data-modifying CTEs, then the position the viewer has after it: the one just saved, else the
    one before the statement (a CTE's snapshot). No row: the upsert wrote nothing."""
    session = _upsert("postgresql").cte("beacon")
    newest = select(session.c.last_seq).where(session.c.last_seq == bindparam("seq", type_=Integer)).subquery("newest")
    saved = watch_progress.save_statement("postgresql", newest).cte("saved")
    before = WatchProgress.__table__.alias("before")
    video = Video.__table__.alias("beacon_video")
    return (
        select(session.c.last_seq, saved.c.position.label("saved"), saved.c.completed.label("saved_completed"),
               saved.c.updated_at.label("saved_at"), before.c.position, before.c.completed, before.c.updated_at,
               video.c.duration)
        .select_from(session)
        .join(video, video.c.id == bindparam("video_given", type_=Integer))
        .outerjoin(saved, true())
        .outerjoin(before, and_(before.c.user_id == bindparam("user_id", type_=Integer),
                                before.c.video_id == video.c.id))
    )


def _refuse_unless_duplicate(user_id, video_id, session_id, now):
    """After an upsert that wrote nothing to a watchable video: APIError 409 unless the session is
    this viewer's, on this video, and still open; 429 when its minute's beacons are spent; else the
    beacon was a duplicate."""
    row = db.session.execute(
        select(PlaybackSession.user_id, PlaybackSession.video_id, PlaybackSession.rolled_up_at,
               PlaybackSession.window_start, PlaybackSession.window_beacons)
        .where(PlaybackSession.id == session_id)
    ).first()
    if row is None or (row.user_id, row.video_id) != (user_id, video_id):
        raise APIError(409, SESSION_TAKEN)
    if row.rolled_up_at is not None:
        raise APIError(409, SESSION_CLOSED)
    window_left = (row.window_start + RATE_WINDOW - now).total_seconds()
    if window_left > 0 and row.window_beacons >= current_app.config["ANALYTICS_BEACONS_PER_MINUTE"]:
        raise APIError(429, TOO_MANY, headers={"Retry-After": str(math.ceil(window_left))})


def coverage(duration, start, end):
    """SQL: the retention points (bit k: k * 5 % of `duration`) the range start..end passed. A point
    counts within a tolerance of half the distance between two points, at most 0.5 s, since
    players report positions at their own ticks; the range is clipped to the video.

    The points passed are a run of bits, first..last: (1 << last + 1) - (1 << first), a handful of
    operations (21 comparisons made PostgreSQL spend most of a beacon's time planning them)."""
    step = duration / float(POINTS - 1)
    tolerance = case((step / 2 < 0.5, step / 2), else_=0.5)
    low = (start - tolerance) / step  # in points
    high = (case((end > duration, duration), else_=end) + tolerance) / step
    first = cast(func.ceil(_clamp(low - EDGE, 0, POINTS)), Integer)
    last = cast(func.floor(_clamp(high + EDGE, -1, POINTS - 1)), Integer)
    one = cast(literal(1), BigInteger)
    bits = case((last >= first, one.op("<<")(last + 1) - one.op("<<")(first)), else_=0)
    return case((duration > 0, bits), else_=0)


def _clamp(value, lowest, highest):
    return case((value < lowest, lowest), (value > highest, highest), else_=value)


@functools.cache
def _upsert(dialect):
    """The beacon's statement for a dialect, built once: INSERT the session from the video's row
    (only when the video is watchable and the account active: then no row, nothing written) ...
    ON CONFLICT DO UPDATE (only when the beacon is new to an open session of this viewer and
    video) RETURNING the newest sequence number."""
    table = PlaybackSession.__table__
    c = table.c
    given = bindparam("position_given", type_=Float)
    played = (bindparam("range_start", type_=Float), bindparam("range_end", type_=Float))
    columns = {
        "id": bindparam("id", type_=String), "user_id": bindparam("user_id", type_=Integer), "video_id": Video.id,
        "day": bindparam("day", type_=Date), "started_at": bindparam("now", type_=UTCDateTime),
        "last_beacon_at": bindparam("now", type_=UTCDateTime), "last_seq": bindparam("seq", type_=Integer),
        "seen": cast(literal(1), BigInteger), "position": case((Video.duration < given, Video.duration), else_=given),
        "duration": Video.duration,
        "coverage": coverage(Video.duration, *played),
        **{name: bindparam(name, type_=kind) for name, kind in (
            ("watched", Float), ("ttff_ms", Integer), ("stalls", Integer), ("stalled", Float), ("switches", Integer),
            ("errors", Integer), ("rendition", String), ("ended", Boolean))},
        "window_start": bindparam("now", type_=UTCDateTime), "window_beacons": literal(1),
        "rolled_up_at": null(), "counted_viewer": false(),
    }
    viewer = exists().where(User.id == bindparam("user_id"), User.is_active.is_(True))
    source = select(*(value.label(name) for name, value in columns.items())).where(
        Video.id == bindparam("video_given", type_=Integer), Video.status == READY, viewer)
    insert = _INSERT[dialect](table).from_select(list(columns), source)
    return insert.on_conflict_do_update(
        index_elements=[c.id], set_=_merge(c, insert.excluded),
        where=and_(c.user_id == insert.excluded.user_id, c.video_id == insert.excluded.video_id,
                   c.rolled_up_at.is_(None), _unseen(c, insert.excluded),
                   or_(_new_window(c), c.window_beacons < bindparam("per_minute", type_=Integer))),
    ).returning(c.last_seq)


def _new_window(c):
    """The session's rate-limit window is over (a minute since it began)."""
    return c.window_start < bindparam("window_from", type_=UTCDateTime)


def _unseen(c, new):
    """The beacon's number is new: above the newest, or within the window and not seen."""
    behind = c.last_seq - new.last_seq
    one = cast(literal(1), BigInteger)
    return case((new.last_seq > c.last_seq, True),
                (behind < WINDOW, c.seen.op(">>")(behind).op("&")(one) == 0), else_=False)


def _merge(c, new):
    """The session's columns after a new beacon: increments added, coverage OR-ed, and the
    position and rendition of the newest beacon."""
    newer = new.last_seq > c.last_seq
    one = cast(literal(1), BigInteger)
    ahead, behind = new.last_seq - c.last_seq, c.last_seq - new.last_seq
    return {
        "last_seq": case((newer, new.last_seq), else_=c.last_seq),
        "seen": case(
            (and_(newer, ahead >= WINDOW), one),
            (newer, c.seen.op("<<")(ahead).op("|")(one).op("&")(cast(literal(WINDOW_MASK), BigInteger))),
            else_=c.seen.op("|")(one.op("<<")(behind)),
        ),
        "last_beacon_at": new.last_beacon_at,
        "window_start": case((_new_window(c), new.last_beacon_at), else_=c.window_start),
        "window_beacons": case((_new_window(c), 1), else_=c.window_beacons + 1),
        "position": case((newer, new.position), else_=c.position),
        "rendition": case((and_(newer, new.rendition.isnot(None)), new.rendition), else_=c.rendition),
        "watched": c.watched + new.watched,
        "coverage": c.coverage.op("|")(new.coverage),
        "ttff_ms": func.coalesce(c.ttff_ms, new.ttff_ms),
        "stalls": c.stalls + new.stalls,
        "stalled": c.stalled + new.stalled,
        "switches": c.switches + new.switches,
        "errors": c.errors + new.errors,
        "ended": or_(c.ended, new.ended),
    }


def active_sessions(since: datetime):
    """How many sessions are playing: not ended, not rolled up, a beacon since `since`."""
    return db.session.execute(
        select(func.count()).select_from(PlaybackSession)
        .where(PlaybackSession.rolled_up_at.is_(None), PlaybackSession.ended.is_(False),
               PlaybackSession.last_beacon_at >= since)
    ).scalar_one()

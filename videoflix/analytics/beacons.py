"""Playback beacons: the player's reports of a playback session, and the watch position they carry.

A beacon is one request (`POST /api/video/<id>/playback/`) and, on the hot path, three statements
in one transaction: the check that the account may watch the video (its duration), one upsert of
the session, and the watch-position save (videoflix.videos.progress) when the beacon is the
session's newest. Beacons may arrive twice, late or never:

- each carries the session's sequence number; the session row keeps the newest (`last_seq`) and a
  bit per number of the WINDOW before it (`seen`), so a beacon is counted once, in any order (a
  beacon more than WINDOW numbers late is dropped as already seen: 10 minutes at one per 10 s);
- its quantities are increments since the player's previous beacon (seconds watched, stalls,
  seconds stalled, quality switches), so a lost beacon loses only its own;
- the range it watched (position - watched .. position) sets bits of the retention curve's 21
  points, an OR that order cannot change;
- only the newest beacon moves the session's (and the viewer's watch) position and rendition.

A session rolled up already (closed: ended, or silent for SESSION_IDLE) takes no more beacons:
409, and the player starts a new session.
"""
import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, and_, case, cast, func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from videoflix.analytics.models import PlaybackSession
from videoflix.errors import APIError
from videoflix.extensions import db
from videoflix.models_base import utcnow
from videoflix.videos import progress

WINDOW = 62  # sequence numbers remembered below the newest (a signed 64-bit integer's bits, kept clear of the sign)
WINDOW_MASK = (1 << WINDOW) - 1
POINTS = 21  # retention points: 0 %, 5 %, ..., 100 % of the duration
SESSION_CLOSED = "This playback session is closed; start a new one."
SESSION_TAKEN = "This playback session belongs to another video or account."
EVENTS = ("start", "progress", "pause", "seek", "end", "error")
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


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
    position: progress.Position


def coverage_bits(start, end, duration):
    """The retention points (bit k: k * 5 % of `duration`) that the playback range start..end
    passed. A point counts within a small tolerance (at most 0.5 s, half the distance between two
    points) since players report positions at their own ticks."""
    if not duration or duration <= 0 or end < start:
        return 0
    tolerance = min(0.5, duration / (2 * (POINTS - 1)))
    start, end = max(0.0, start) - tolerance, min(duration, end) + tolerance
    bits = 0
    for k in range(POINTS):
        if start <= duration * k / (POINTS - 1) <= end:
            bits |= 1 << k
    return bits


def record(user_id, video_id, beacon, *, now=None):
    """Count `beacon` in its session (created by the first beacon to arrive) and, when it is the
    session's newest, save the viewer's watch position; commits. Returns an Outcome.

    Raises APIError 404 (video not watchable) or 401 (account gone) as progress.save, and 409 when
    the session is closed or belongs to another video or account.
    """
    duration = progress.watchable_duration(user_id, video_id)
    now = now or utcnow()
    params = _row(user_id, video_id, beacon, duration, now)
    row = db.session.execute(_upsert(db.session.get_bind().dialect.name), params).first()
    if row is None:  # nothing written: a duplicate, or a session that takes no beacon
        db.session.rollback()
        _refuse_unless_duplicate(user_id, video_id, beacon.session)
        return Outcome(False, progress.load(user_id, video_id))
    if row.last_seq == beacon.seq:  # the newest: the viewer is there now
        return Outcome(True, progress.save(user_id, video_id, beacon.position))  # commits both
    db.session.commit()
    return Outcome(True, progress.load(user_id, video_id))


def _row(user_id, video_id, beacon, duration, now):
    position = min(beacon.position, duration) if duration else beacon.position
    return {
        "id": beacon.session, "user_id": user_id, "video_id": video_id, "day": now.date(),
        "started_at": now, "last_beacon_at": now, "last_seq": beacon.seq, "seen": 1,
        "position": position, "duration": duration, "watched": beacon.watched,
        "coverage": coverage_bits(position - beacon.watched, position, duration) if beacon.watched else 0,
        "ttff_ms": beacon.ttff_ms, "stalls": beacon.stalls, "stalled": beacon.stalled,
        "switches": beacon.switches, "errors": int(beacon.event == "error"), "rendition": beacon.rendition,
        "ended": beacon.event == "end", "rolled_up_at": None, "counted_viewer": False,
    }


def _refuse_unless_duplicate(user_id, video_id, session_id):
    """After an upsert that wrote nothing: APIError 409 unless the session is this viewer's, on
    this video, and still open (then the beacon was a duplicate)."""
    row = db.session.execute(
        select(PlaybackSession.user_id, PlaybackSession.video_id, PlaybackSession.rolled_up_at)
        .where(PlaybackSession.id == session_id)
    ).first()
    if row is None or (row.user_id, row.video_id) != (user_id, video_id):
        raise APIError(409, SESSION_TAKEN)
    if row.rolled_up_at is not None:
        raise APIError(409, SESSION_CLOSED)


@functools.cache
def _upsert(dialect):
    """The beacon's statement for a dialect, built once: INSERT the session ... ON CONFLICT DO
    UPDATE (only when the beacon is new to an open session of this viewer and video) RETURNING
    the newest sequence number."""
    table = PlaybackSession.__table__
    c = table.c
    insert = _INSERT[dialect](table)
    new = insert.excluded
    newer = new.last_seq > c.last_seq
    behind = c.last_seq - new.last_seq
    one = cast(literal(1), BigInteger)
    unseen = case((newer, True), (behind < WINDOW, c.seen.op(">>")(behind).op("&")(one) == 0), else_=False)
    ahead = new.last_seq - c.last_seq
    seen = case(
        (and_(newer, ahead >= WINDOW), one),
        (newer, c.seen.op("<<")(ahead).op("|")(one).op("&")(cast(literal(WINDOW_MASK), BigInteger))),
        else_=c.seen.op("|")(one.op("<<")(behind)),
    )
    values = {
        "last_seq": case((newer, new.last_seq), else_=c.last_seq),
        "seen": seen,
        "last_beacon_at": new.last_beacon_at,
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
    return insert.on_conflict_do_update(
        index_elements=[c.id], set_=values,
        where=and_(c.user_id == new.user_id, c.video_id == new.video_id, c.rolled_up_at.is_(None), unseen),
    ).returning(c.last_seq)


def active_sessions(since: datetime):
    """How many sessions are playing: not ended, not rolled up, a beacon since `since`."""
    return db.session.execute(
        select(func.count()).select_from(PlaybackSession)
        .where(PlaybackSession.rolled_up_at.is_(None), PlaybackSession.ended.is_(False),
               PlaybackSession.last_beacon_at >= since)
    ).scalar_one()

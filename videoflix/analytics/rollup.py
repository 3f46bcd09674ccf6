"""The roll-up: closed playback sessions become per-video-day counts, once each.

A session is closed when it ended ENDED_GRACE ago (late beacons may still come) or has been
silent for SESSION_IDLE. Folding marks it (`rolled_up_at`, in the UPDATE that reads it, so each
session is counted once even by two workers) and adds its numbers to the video's day, with
additive upserts, in one transaction. After ANALYTICS_RAW_DAYS the folded sessions are deleted:
only counts remain. `run` takes a claim first, so two workers never run it at the same time.

Deleting an account folds its open sessions at once (`fold_account`, from the session hook at
the end): its views stay counted, its sessions go.
"""
import logging
import os
import socket
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, delete, event, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from videoflix.analytics.beacons import POINTS
from videoflix.analytics.models import PlaybackSession, RollupClaim, VideoDay, VideoDayBucket
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.models_base import utcnow
from videoflix.videos.models import Video

log = logging.getLogger(__name__)

SESSION_IDLE = timedelta(minutes=30)
ENDED_GRACE = timedelta(minutes=2)
CLAIM_NAME = "rollup"
CLAIM_TTL = timedelta(minutes=5)
BATCH = 20_000
VIEW_SHARE_OF_SHORT_VIDEO = 0.9  # a video shorter than ANALYTICS_VIEW_SECONDS: a view from 90 % of it
TTFF_MAX_MS = 60_000
UPSERT_ROWS = 1000
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
SESSION_COLUMNS = ("id", "user_id", "video_id", "day", "duration", "watched", "coverage", "ttff_ms", "stalls",
                   "stalled", "switches", "errors", "rendition")
DAY_SUMS = ("sessions", "views", "viewers", "watched", "view_share", "stalls", "stalled", "switches", "errors")


@dataclass
class DayTotals:
    """What a batch adds to one video's day."""

    sums: Counter = field(default_factory=Counter)
    buckets: Counter = field(default_factory=Counter)  # (metric, bucket) -> count


@dataclass
class Result:
    folded: int = 0
    purged: int = 0
    claimed: bool = True


def run(now=None):
    """Fold every closed session, then delete folded sessions past ANALYTICS_RAW_DAYS; commits
    per batch. Returns a Result (claimed False: another worker holds the roll-up, nothing done)."""
    now = now or utcnow()
    me = f"{socket.gethostname()[:60]}:{os.getpid()}:{os.urandom(4).hex()}"
    if not _claim(me, now):
        return Result(claimed=False)
    result = Result()
    try:
        closed = or_(PlaybackSession.last_beacon_at < now - SESSION_IDLE,
                     and_(PlaybackSession.ended.is_(True), PlaybackSession.last_beacon_at < now - ENDED_GRACE))
        while folded := fold(db.session.connection(), closed, now):
            result.folded += folded
            db.session.commit()
            if not _claim(me, utcnow()):  # taken over after our claim expired: stop here
                return result
        result.purged = purge(now)
        db.session.commit()
    finally:
        db.session.rollback()
        _release(me)
    if result.folded or result.purged:
        log.info("Analytics roll-up: %d session(s) folded, %d deleted", result.folded, result.purged)
    return result


def fold_account(connection, user_id):
    """Fold every open session of an account (it is being deleted) on `connection`, not committed."""
    while fold(connection, PlaybackSession.user_id == user_id, utcnow()):
        pass


def fold(connection, condition, now, batch=BATCH):
    """Mark up to `batch` open sessions matching `condition` as rolled up and add them to their
    videos' days, on `connection` (not committed). Returns how many were folded."""
    table = PlaybackSession.__table__
    chosen = select(table.c.id).where(table.c.rolled_up_at.is_(None), condition).limit(batch)
    rows = connection.execute(
        # The conditions again beside the ids: PostgreSQL checks them once more on a row a beacon
        # changed meanwhile (a session that just came back to life is not folded).
        update(table).where(table.c.id.in_(chosen.scalar_subquery()), table.c.rolled_up_at.is_(None), condition)
        .values(rolled_up_at=now)
        .returning(*(table.c[name] for name in SESSION_COLUMNS))
    ).all()
    if not rows:
        return 0
    view_seconds = current_app.config["ANALYTICS_VIEW_SECONDS"]
    days = defaultdict(DayTotals)
    views = []
    for row in rows:
        totals = days[(row.video_id, row.day)]
        if _add_session(totals, row, view_seconds):
            views.append(row)
    for video_id, day in _count_viewers(connection, views):
        days[(video_id, day)].sums["viewers"] += 1
    _add_days(connection, days)
    return len(rows)


def is_view(watched, duration, view_seconds):
    """A session is a view from `view_seconds` watched, or 90 % of a shorter video."""
    threshold = view_seconds if not duration else min(view_seconds, VIEW_SHARE_OF_SHORT_VIDEO * duration)
    return watched >= threshold


def _add_session(totals, row, view_seconds):
    """Add one session's numbers to its day; True when it is a view."""
    sums = totals.sums
    sums.update(sessions=1, watched=row.watched, stalls=row.stalls, stalled=row.stalled, switches=row.switches,
                errors=row.errors)
    if row.ttff_ms is not None:
        totals.buckets[("ttff", str(ttff_bin(row.ttff_ms)))] += 1
    if row.rendition:
        totals.buckets[("rendition", row.rendition)] += 1
    if not is_view(row.watched, row.duration, view_seconds):
        return False
    sums["views"] += 1
    if row.duration:
        sums["view_share"] += min(row.watched / row.duration, 1.0)
    for k in range(POINTS):
        if row.coverage >> k & 1:
            totals.buckets[("retention", str(k))] += 1
    return True


def _count_viewers(connection, views):
    """Mark, for each (viewer, video, day) of these views not counted before, one view as the one
    that counts the viewer; the (video, day) of each viewer newly counted."""
    first = {}
    for row in views:
        first.setdefault((row.user_id, row.video_id, row.day), row.id)
    if not first:
        return []
    table = PlaybackSession.__table__
    other = aliased(PlaybackSession)
    counted_before = exists().where(other.user_id == table.c.user_id, other.video_id == table.c.video_id,
                                    other.day == table.c.day, other.counted_viewer.is_(True))
    return connection.execute(
        update(table).where(table.c.id.in_(list(first.values())), ~counted_before)
        .values(counted_viewer=True).returning(table.c.video_id, table.c.day)
    ).all()


def _add_days(connection, days):
    """Additive upserts of the day rows and their buckets, UPSERT_ROWS rows a statement."""
    dialect = connection.dialect.name
    day_rows = [{"video_id": v, "day": d, **{k: totals.sums.get(k, 0) for k in DAY_SUMS}}
                for (v, d), totals in days.items()]
    bucket_rows = [{"video_id": v, "day": d, "metric": metric, "bucket": bucket, "count": count}
                   for (v, d), totals in days.items() for (metric, bucket), count in totals.buckets.items()]
    for table, keys, sums, rows in (
        (VideoDay.__table__, ("video_id", "day"), DAY_SUMS, day_rows),
        (VideoDayBucket.__table__, ("video_id", "day", "metric", "bucket"), ("count",), bucket_rows),
    ):
        for start in range(0, len(rows), UPSERT_ROWS):
            connection.execute(_additive(dialect, table, keys, sums, rows[start:start + UPSERT_ROWS]))


def _additive(dialect, table, keys, sums, rows):
    """One multi-row INSERT ... ON CONFLICT DO UPDATE that adds `sums` (a driver's executemany
    sends the rows one by one)."""
    statement = _INSERT[dialect](table).values(rows)
    return statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )


def ttff_bin(ms):
    """The histogram bin (its lower bound, ms) of a time to first frame: 10 ms below 1 s, 50 ms
    below 5 s, 500 ms up to TTFF_MAX_MS (the median is read to that precision)."""
    ms = min(max(int(ms), 0), TTFF_MAX_MS)
    width = 10 if ms < 1000 else 50 if ms < 5000 else 500
    return ms // width * width


def purge(now):
    """Delete the folded sessions of days older than ANALYTICS_RAW_DAYS (not committed); how many."""
    oldest_kept = (now - timedelta(days=current_app.config["ANALYTICS_RAW_DAYS"])).date()
    return db.session.execute(
        delete(PlaybackSession).where(PlaybackSession.day < oldest_kept, PlaybackSession.rolled_up_at.isnot(None))
    ).rowcount


def _claim(me, now):
    """Take (or keep) the roll-up claim for CLAIM_TTL; True when this process holds it (committed)."""
    table = RollupClaim.__table__
    dialect = db.session.get_bind().dialect.name
    db.session.execute(_INSERT[dialect](table).values(name=CLAIM_NAME).on_conflict_do_nothing())
    taken = db.session.execute(
        update(table).where(table.c.name == CLAIM_NAME,
                            or_(table.c.claimed_by == me, table.c.claimed_until.is_(None),
                                table.c.claimed_until < now))
        .values(claimed_by=me, claimed_until=now + CLAIM_TTL)
    ).rowcount
    db.session.commit()
    return taken == 1


def _release(me):
    table = RollupClaim.__table__
    db.session.execute(update(table).where(table.c.name == CLAIM_NAME, table.c.claimed_by == me)
                       .values(claimed_by=None, claimed_until=None))
    db.session.commit()


# On the sessions Flask-SQLAlchemy makes for the apps (db.session), not on every Session class.
@event.listens_for(db.session, "before_flush")
def _fold_sessions_of_deleted_accounts(session, flush_context, instances):
    """An account being deleted: its sessions are counted (folded) and then deleted, in the
    transaction that deletes it; a video being deleted takes its sessions and counts along
    (PostgreSQL's cascade does it too; SQLite needs it)."""
    connection = None
    for obj in list(session.deleted):
        if isinstance(obj, User) and obj.id is not None:
            connection = connection or session.connection()
            fold_account(connection, obj.id)
            connection.execute(delete(PlaybackSession).where(PlaybackSession.user_id == obj.id))
        elif isinstance(obj, Video) and obj.id is not None:
            connection = connection or session.connection()
            for table in (PlaybackSession, VideoDay, VideoDayBucket):
                connection.execute(delete(table).where(table.video_id == obj.id))


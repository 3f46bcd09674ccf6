"""The rows of viewing analytics.

- PlaybackSession: one playback of one video by one account, the running totals of its beacons.
  Raw data: it names the viewer, so it is deleted with the account, and ANALYTICS_RAW_DAYS after
  its day once rolled up.
- VideoDay and VideoDayBucket: what the roll-up keeps per video and day, counts only (no viewer).

Deleting an account first folds its sessions not yet rolled up into the counts, then deletes them
(PostgreSQL's ON DELETE CASCADE would drop them before the counts could see them; SQLite enforces
no foreign keys): see the session hook in videoflix.analytics.rollup.
"""
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.extensions import db
from videoflix.models_base import UTCDateTime


class PlaybackSession(db.Model):
    """A playback session: created by its first beacon, whichever it is, and updated by each later
    one exactly once (`last_seq` and the `seen` window of the sequence numbers before it)."""

    __tablename__ = "playback_session"
    __table_args__ = (
        # The viewer's sessions of a video on a day (unique viewers; the account's deletion).
        Index("ix_playback_session_viewer", "user_id", "video_id", "day"),
        # Sessions not rolled up yet, by their last beacon (the roll-up, active sessions).
        Index("ix_playback_session_open", "last_beacon_at",
              postgresql_where=text("rolled_up_at IS NULL"), sqlite_where=text("rolled_up_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the player's UUID
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)  # UTC day of the first beacon
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_beacon_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column()
    # Bit i: beacon last_seq - i was counted (beacons.WINDOW of them).
    seen: Mapped[int] = mapped_column(BigInteger, default=1)
    position: Mapped[float] = mapped_column(default=0.0)  # of the newest beacon
    duration: Mapped[float | None] = mapped_column()  # the video's, when the session began
    watched: Mapped[float] = mapped_column(default=0.0)  # seconds of playback
    # Bit k: the playback passed k * 5 % of the duration (k = 0..20): the retention curve.
    coverage: Mapped[int] = mapped_column(default=0)
    ttff_ms: Mapped[int | None] = mapped_column()  # time to first frame
    stalls: Mapped[int] = mapped_column(default=0)
    stalled: Mapped[float] = mapped_column(default=0.0)  # seconds spent rebuffering
    switches: Mapped[int] = mapped_column(default=0)  # quality switches
    errors: Mapped[int] = mapped_column(default=0)
    rendition: Mapped[str | None] = mapped_column(String(16))  # playing at the newest beacon
    ended: Mapped[bool] = mapped_column(default=False)
    # The per-session rate limit (ANALYTICS_BEACONS_PER_MINUTE): beacons counted since window_start.
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_beacons: Mapped[int] = mapped_column(default=1)
    rolled_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set on the one rolled-up view that counted its viewer among the video's unique viewers that day.
    counted_viewer: Mapped[bool] = mapped_column(default=False)


class VideoDay(db.Model):
    """A video's playback counts on a (UTC) day, from its rolled-up sessions."""

    __tablename__ = "video_day_stats"

    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    sessions: Mapped[int] = mapped_column(default=0)
    views: Mapped[int] = mapped_column(default=0)
    viewers: Mapped[int] = mapped_column(default=0)  # unique viewers (accounts with a view that day)
    watched: Mapped[float] = mapped_column(default=0.0)  # seconds, every session
    view_share: Mapped[float] = mapped_column(default=0.0)  # sum over views of min(watched/duration, 1)
    stalls: Mapped[int] = mapped_column(default=0)
    stalled: Mapped[float] = mapped_column(default=0.0)
    switches: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)


class VideoDayBucket(db.Model):
    """A distribution of a video's day, one row per bucket: `retention` (bucket "0".."20": views
    that passed k * 5 %), `ttff` (bucket: time to first frame, ms, rollup.ttff_bin: sessions) and
    `rendition` (bucket: a label such as "720p": sessions that ended on it)."""

    __tablename__ = "video_day_bucket"

    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class RollupClaim(db.Model):
    """Who runs the roll-up now (one row, `name` "rollup"): a worker takes it while it is free or
    expired, so two workers never fold the same sessions at once."""

    __tablename__ = "analytics_claim"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

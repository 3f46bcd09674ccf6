"""The WatchProgress row: where a user stopped watching a video."""
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow


class WatchProgress(db.Model):
    """Where a user stopped watching a video ("continue watching"); written by
    videoflix.videos.catalogue.watch_progress.

    Deleting the user or the video deletes the row: ON DELETE CASCADE on PostgreSQL, and the
    session hook below wherever foreign keys are not enforced (SQLite)."""

    __tablename__ = "watch_progress"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), primary_key=True, index=True)
    position: Mapped[float] = mapped_column(default=0.0)
    completed: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


"""The Subtitle row: one subtitle track of a video."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow
from videoflix.videos.models.video import Video


class Subtitle(db.Model):
    """A subtitle track of a video: one per language. `content` is the WebVTT text as accepted
    (the canonical copy, so every newly published version gets the track's files again); the
    files below the version folder are written from it (see videoflix.videos.jobs.subtitle_tracks)."""

    __table_args__ = (UniqueConstraint("video_id", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(35))   # BCP 47, normalised case ("pt-BR")
    label: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    video: Mapped[Video] = relationship(
        backref=backref("subtitles", cascade="all, delete-orphan", order_by="Subtitle.language"))

    def __repr__(self):
        return f"<Subtitle {self.video_id} {self.language}>"

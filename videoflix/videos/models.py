"""The Video row: the one record of a video's state, read by the API, the admin and the CLI."""
from datetime import datetime

from sqlalchemy import JSON, BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow

PENDING, PROCESSING, READY, FAILED = "pending", "processing", "ready", "failed"
STATUSES = (PENDING, PROCESSING, READY, FAILED)


class Video(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    status: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    progress: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    # Who is transcoding it and since when: a claim, so two workers never run the same video.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    duration: Mapped[float | None] = mapped_column()
    width: Mapped[int | None] = mapped_column()
    height: Mapped[int | None] = mapped_column()
    source_size: Mapped[int | None] = mapped_column(BigInteger)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    # Stored names, relative to MEDIA_ROOT's folders; never client-controlled.
    source_file: Mapped[str | None] = mapped_column(String(255))
    hls_dir: Mapped[str | None] = mapped_column(String(255))
    thumbnail: Mapped[str | None] = mapped_column(String(255))
    # [{"label": "720p", "width": 1280, "height": 720, "bandwidth": ..., ...}], best last.
    renditions: Mapped[list] = mapped_column(JSON, default=list)

    def __repr__(self):
        return f"<Video {self.id} {self.title!r} {self.status}>"

    @property
    def resolutions(self):
        return [r["label"] for r in self.renditions or []]

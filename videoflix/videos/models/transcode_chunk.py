"""The TranscodeChunk row: one part of a chunked transcode (or its one continuous audio encode,
number AUDIO), so any worker of any host can take it, and a dead worker loses only that part.

Rows live while their job runs; the job's end (published, failed, or queued again by force)
deletes them, and so does the video's (videoflix.videos.models.video's session hook).
Transitions go through videoflix.videos.jobs.state and jobs.part_state only.
"""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.extensions import db
from videoflix.models_base import UTCDateTime

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# The number of the audio row: the audio is encoded once, before and beside the video parts.
AUDIO = -1


class TranscodeChunk(db.Model):
    __tablename__ = "transcode_chunk"
    __table_args__ = (UniqueConstraint("video_id", "job", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    # The version the job makes (its folder hls/<video>/<job>/): a forced re-queue starts another.
    job: Mapped[str] = mapped_column(String(32))
    number: Mapped[int] = mapped_column()        # 0, 1 ... in timeline order; AUDIO for the audio
    start: Mapped[float] = mapped_column()       # seconds from the container start
    end: Mapped[float | None] = mapped_column()  # exclusive; None: to the end
    status: Mapped[str] = mapped_column(String(12), default=QUEUED)
    # "<host>:<pid>:<token>" of the worker doing it, and its heartbeat (as Video.claimed_by/at)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    position: Mapped[float] = mapped_column(default=0.0)  # seconds of it written so far
    error: Mapped[str | None] = mapped_column(Text)
    # media.parts.PartResult.to_dict() once done: its segments, sprites' frames, codecs
    result: Mapped[dict | None] = mapped_column(JSON)

    def __repr__(self):
        return f"<TranscodeChunk {self.video_id}/{self.job}#{self.number} {self.status}>"

    def seconds(self, duration):
        """How long the part is (the last one runs to `duration`)."""
        return max(0.0, (self.end if self.end is not None else duration) - self.start)

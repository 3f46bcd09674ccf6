"""The TusUpload row: one resumable upload (tus 1.0.0) between its creation and its expiry.

Its bytes are not counted here: the upload's offset is what its chunk store holds (the size of
its scratch file, or where its last part in the bucket ends: videoflix.videos.uploads.chunks), so the
row and the stored bytes can never disagree about it.
"""
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow

UPLOADING, DONE = "uploading", "done"


class TusUpload(db.Model):
    """`id` is random and unguessable (it is the upload's URL); `upload_metadata` holds the decoded
    Upload-Metadata (filename, title, description, category). While a request writes to the upload
    it holds `locked_by` (a random token), refreshed in `locked_at` as it goes, so a request on
    another web process gets 423 and a dead holder's lock lapses after TUS_LOCK_SECONDS. `done`
    with `video_id`: the file became that video."""

    __tablename__ = "tus_upload"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    length: Mapped[int] = mapped_column(BigInteger)
    upload_metadata: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), default=UPLOADING)
    video_id: Mapped[int | None] = mapped_column()
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self):
        return f"<TusUpload {self.id} {self.length} bytes {self.status}>"

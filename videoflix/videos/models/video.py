"""The Video row: the one record of a video's state, read by the API, the admin and the CLI.

State changes go through videoflix.videos.jobs.state only. Deleting a row (any ORM delete that is
committed) deletes the video's files too: see the session hooks at the end of this module.
"""
from dataclasses import dataclass, field
from datetime import datetime

from blinker import Namespace
from flask import current_app, has_app_context
from sqlalchemy import JSON, BigInteger, Boolean, Index, String, Text, delete, event
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow
from videoflix.videos.models import fulltext
from videoflix.videos.models.watch_progress import WatchProgress
from videoflix.videos.storage.keys import delete_files, files_of

PENDING, PROCESSING, READY, FAILED = "pending", "processing", "ready", "failed"


class Video(db.Model):
    """`status` says what viewers get: `ready` as long as a playable version is published
    (`hls_dir`), even while a re-transcode runs or after one failed. A first version published
    while it is still being transcoded (PUBLISH=playable) is `growing`: stored as `ready` (so the
    catalogue lists it and its files are served), shown as `processing` (`shown_status`) until
    its last part is stored. A job in flight is shown by `queued_at` (waiting or running),
    `claimed_by` (running) and `progress` (0-100 of that job); `error` is the last job's failure,
    if it failed."""

    # The catalogue's order within a status: one index range serves a page of ready videos.
    __table_args__ = (Index("ix_video_status_created_at_id", "status", "created_at", "id"),)

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
    # Set while a transcode job is wanted (queued or running); cleared when it ends.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who is transcoding it: "<host>:<pid>:<job>", so two workers never run the same video; and
    # the worker's heartbeat, refreshed while it works, so a dead worker's claim can be recognised
    # from any host (see state.claim_is_dead).
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    duration: Mapped[float | None] = mapped_column()
    width: Mapped[int | None] = mapped_column()
    height: Mapped[int | None] = mapped_column()
    source_size: Mapped[int | None] = mapped_column(BigInteger)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    # Stored names, relative to MEDIA_ROOT's folders; never client-controlled.
    source_file: Mapped[str | None] = mapped_column(String(255))
    # What the upload's probe found (probe.SourceInfo.to_dict(): container, codecs, keyframes...),
    # so the worker transcodes without reading the file again; None for rows older than it.
    source_info: Mapped[dict | None] = mapped_column(JSON)
    hls_dir: Mapped[str | None] = mapped_column(String(255))
    thumbnail: Mapped[str | None] = mapped_column(String(255))
    # The storyboard index of the current version ("<hls_dir>/storyboard.vtt"), None when it has
    # none: the detail names it without asking the media store.
    storyboard: Mapped[str | None] = mapped_column(String(255))
    # [{"label": "720p", "width": 1280, "height": 720, "bandwidth": ..., ...}], best last.
    renditions: Mapped[list] = mapped_column(JSON, default=list)
    # The published version is still growing (its playlists are EVENT playlists); see above.
    growing: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The running chunked job: {"job", "plan" (media.chunks.ChunkPlan), "renditions", "progressive"}.
    job_plan: Mapped[dict | None] = mapped_column(JSON)

    def __repr__(self):
        return f"<Video {self.id} {self.title!r} {self.status}>"

    @property
    def playable(self):
        return self.status == READY and bool(self.hls_dir)

    @property
    def shown_status(self):
        """The status clients see: `processing` while the published version grows."""
        return PROCESSING if self.growing and self.status == READY else self.status

    @property
    def resolutions(self):
        return [r["label"] for r in self.renditions or []]


# The search index is not a model (an FTS5 table on SQLite, a generated column with a GIN index on
# PostgreSQL):
# databases built by create_all() get it with the table, as migrated ones do.
event.listen(Video.__table__, "after_create", lambda target, connection, **kw: fulltext.create_index(connection))
event.listen(Video.__table__, "before_drop", lambda target, connection, **kw: fulltext.drop_index(connection))


# Sent after db.session commits a transaction that inserted, updated or deleted videos, with the
# app that committed and `video_ids`; videoflix.videos.delivery.index drops its cached entries of them.
videos_committed = Namespace().signal("videos-committed")

_CHANGES_KEY = "videoflix_video_changes"


@dataclass
class _Changes:
    """What one transaction did to videos, kept in session.info until it commits or rolls back."""

    ids: set = field(default_factory=set)
    deleted_files: list = field(default_factory=list)


# The one set of session hooks on videos, on the sessions Flask-SQLAlchemy makes for the apps
# (db.session), not on every Session class.
@event.listens_for(db.session, "after_flush")
def _record_changes(session, flush_context):
    """Remember which videos changed, and the files of deleted ones (resolved now, while the app
    context that deletes the row is certainly there), for after the commit. The watch progress of
    deleted videos and users goes in the same transaction (PostgreSQL's cascade already did it
    there; SQLite needs it)."""
    progress = WatchProgress.__table__
    chunks = db.metadata.tables["transcode_chunk"]
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Video):
            session.info.setdefault(_CHANGES_KEY, _Changes()).ids.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, Video):
            session.info[_CHANGES_KEY].deleted_files.append(files_of(obj))
            session.connection().execute(delete(progress).where(progress.c.video_id == obj.id))
            session.connection().execute(delete(chunks).where(chunks.c.video_id == obj.id))
        elif isinstance(obj, User):
            session.connection().execute(delete(progress).where(progress.c.user_id == obj.id))


@event.listens_for(db.session, "after_commit")
def _after_commit(session):
    """Delete the files of deleted videos, then tell the app which videos changed."""
    changes = session.info.pop(_CHANGES_KEY, None)
    if changes is None:
        return
    for files in changes.deleted_files:
        delete_files(files)
    if has_app_context():
        videos_committed.send(current_app._get_current_object(), video_ids=frozenset(changes.ids))


@event.listens_for(db.session, "after_rollback")
def _forget_changes(session):
    session.info.pop(_CHANGES_KEY, None)

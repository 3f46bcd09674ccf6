"""Helpers for the tests/test_videos_*.py modules: store a clip, read a row, watch transitions."""
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, select

from videoflix.extensions import db
from videoflix.videos import state, storage
from videoflix.videos.models import Video


def add_clip(app, clip, *, title="Clip", category="Drama", enqueue=True):
    """Store `clip` through storage.accept_upload (transcoded inline when enqueue); the video id."""
    with app.app_context(), open(clip, "rb") as stream:
        return storage.accept_upload(
            stream, filename=Path(clip).name, title=title, description="A test clip.", category=category,
            enqueue=enqueue,
        ).id


def row(app, video_id):
    """The video's columns as a dict (None when deleted), read in a fresh context."""
    with app.app_context():
        video = db.session.get(Video, video_id)
        if video is None:
            return None
        return {c.name: getattr(video, c.name) for c in Video.__table__.columns}


def queue(app, video_id, **kwargs):
    with app.app_context():
        state.queue(db.session.get(Video, video_id), **kwargs)


def mark_queued(app, video_id):
    """Queued as state.queue() leaves a video, without running its job (tests run tasks inline)."""
    with app.app_context():
        db.session.get(Video, video_id).queued_at = datetime.now(UTC)
        db.session.commit()


def media(app, *parts):
    return Path(app.config["MEDIA_ROOT"], *parts)


def files_below(path):
    path = Path(path)
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


class Transitions(list):
    """In a test with one video: its (status, progress), read back from the row after every commit
    that wrote to its table (the app announces nothing: the row is the record)."""

    def __init__(self, app):
        super().__init__()
        self.app = app
        self._wrote = False

    def __enter__(self):
        with self.app.app_context():
            self._engine = db.engine
        event.listen(self._engine, "before_cursor_execute", self._note)
        event.listen(db.session, "after_rollback", self._forget)
        event.listen(db.session, "after_commit", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self._engine, "before_cursor_execute", self._note)
        event.remove(db.session, "after_rollback", self._forget)
        event.remove(db.session, "after_commit", self._record)

    def _note(self, conn, cursor, statement, *args):
        table = Video.__table__.name.upper()
        if statement.lstrip().upper().startswith((f"UPDATE {table} ", f"INSERT INTO {table} ")):
            self._wrote = True

    def _forget(self, session):
        self._wrote = False

    def _record(self, session):
        if self._wrote:
            self._wrote = False
            with self._engine.connect() as connection:
                self.extend(tuple(r) for r in connection.execute(select(Video.status, Video.progress)))

    @property
    def statuses(self):
        collapsed = []
        for status, _ in self:
            if not collapsed or collapsed[-1] != status:
                collapsed.append(status)
        return collapsed


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def strand(app, video_id, *, pid, job="deadbeefdeadbeef", claimed_at=None, host=None):
    """Make the video look like a worker claimed it and then died mid-job (work folder included)."""
    host = host or socket.gethostname()[:60]
    with app.app_context():
        video = db.session.get(Video, video_id)
        video.queued_at = video.claimed_at = claimed_at or datetime.now(UTC)
        video.claimed_by = f"{host}:{pid}:{job}"
        video.status = "processing" if video.hls_dir is None else video.status
        db.session.commit()
    work = media(app, "work", job)
    work.mkdir(parents=True)
    (work / "partial.ts").write_bytes(b"half a segment")
    return work


def own_pid():
    return os.getpid()

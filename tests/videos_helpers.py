"""Helpers for the tests/test_videos_*.py modules: store a clip, read a row, watch transitions."""
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, select

from tests.conftest import PASSWORD
from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.tasks import queue_transcode
from videoflix.videos.uploads.service import accept


def add_clip(app, clip, *, title="Clip", category="Drama", enqueue=True):
    """Store `clip` through accept (then queued, so transcoded inline, when enqueue); the
    video id."""
    with app.app_context(), open(clip, "rb") as stream:
        video = accept(
            stream, filename=Path(clip).name, title=title, description="A test clip.", category=category,
        )
        if enqueue:
            queue_transcode(video)
        return video.id


def row(app, video_id):
    """The video's columns as a dict (None when deleted), read in a fresh context."""
    with app.app_context():
        video = db.session.get(Video, video_id)
        if video is None:
            return None
        return {c.name: getattr(video, c.name) for c in Video.__table__.columns}


def queue(app, video_id, **kwargs):
    with app.app_context():
        queue_transcode(db.session.get(Video, video_id), **kwargs)


def mark_queued(app, video_id):
    """Queued as state.queue() leaves a video, without running its job (tests run tasks inline)."""
    with app.app_context():
        db.session.get(Video, video_id).queued_at = datetime.now(UTC)
        db.session.commit()


def media(app, *parts):
    return Path(app.config["MEDIA_ROOT"], *parts)


def fsyncs_before(monkeypatch, owner, name):
    """Record every os.fsync (the path synced) and every call of owner.<name>, in order; returns
    a function giving the paths synced before the first such call."""
    events = []
    real_fsync, real_call = os.fsync, getattr(owner, name)

    def fsync(fd):
        events.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def call(*args, **kwargs):
        events.append(None)
        return real_call(*args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(owner, name, call)
    return lambda: events[:events.index(None)]


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


STAFF = "staff@example.com"


def csrf(client, path):
    """The CSRF token of the form at `path` (asserts the page answers 200)."""
    page = client.get(path)
    assert page.status_code == 200, page.data[:300]
    return re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()


def admin_sign_in(client, email=STAFF, password=PASSWORD):
    token = csrf(client, "/admin/login/")
    return client.post("/admin/login/", data={"csrf_token": token, "email": email, "password": password})


def sign_in_staff(make_user, client):
    """Create the staff account STAFF and sign `client` in to the admin; the user id."""
    user_id = make_user(STAFF, staff=True)
    response = admin_sign_in(client)
    assert response.status_code == 302, response.data
    return user_id

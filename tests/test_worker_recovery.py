"""Issue 10 item 4 with real workers: two `flask worker` processes on one file-backed queue; the
one transcoding is killed with SIGKILL (with its worker processes) while the other keeps running.
Without any restart, the survivor's recovery loop sees the dead claim and the video becomes ready
(within TRANSCODE_STALE_SECONDS + RECOVERY_INTERVAL; here: the pid is gone on this host, so one
RECOVERY_INTERVAL)."""
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.videos_helpers import row
from tests.worker_app import worker_config
from videoflix import create_app
from videoflix.extensions import db
from videoflix.tasks import huey
from videoflix.videos import uploads
from videoflix.videos.ffrun import ffmpeg_exe
from videoflix.videos.tasks import queue_transcode

ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 90  # a bound on waiting, not a timing assertion
pytestmark = pytest.mark.slow


@pytest.fixture
def queue_app(tmp_path):
    """An app bound to a fresh SQLite database and queue file, as the worker subprocesses are."""
    config = worker_config(f"sqlite:///{tmp_path / 'db.sqlite3'}", str(tmp_path / "queue.sqlite3"),
                           str(tmp_path / "media"))
    app = create_app({"TESTING": True, "HUEY_IMMEDIATE": False, **config})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()
        huey.flush()


@pytest.fixture
def slow_ffmpeg(tmp_path):
    """ffmpeg that waits 3 s before it starts: a transcode long enough to be killed in."""
    path = tmp_path / "slow-ffmpeg"
    path.write_text(f'#!/bin/sh\nsleep 3\nexec "{ffmpeg_exe()}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def start_worker(app, tmp_path, name, ffmpeg, recovery_interval):
    """`flask worker` in its own session (so its worker processes die with it on killpg)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOFLIX_", "FLASK_")) and k not in {
        "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "DB_NAME"}}
    env.update(
        WORKER_TEST_DB=app.config["SQLALCHEMY_DATABASE_URI"], WORKER_TEST_QUEUE=app.config["HUEY_FILE"],
        WORKER_TEST_MEDIA=app.config["MEDIA_ROOT"], VIDEOFLIX_ENV="development", PYTHONPATH=str(ROOT),
        FFMPEG_BINARY=ffmpeg, RECOVERY_INTERVAL=str(recovery_interval), TRANSCODE_STALE_SECONDS="15",
    )
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.worker_app:make_app", "worker", "--workers", "1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    proc.log_path = log_path
    return proc


def wait_for(predicate, workers, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    logs = "\n".join(f"--- {w.log_path.name}\n{w.log_path.read_text()}" for w in workers)
    pytest.fail(f"gave up waiting for {what}; worker logs:\n{logs}")


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def test_a_worker_killed_mid_transcode_is_taken_over_without_a_restart(queue_app, tmp_path, slow_ffmpeg,
                                                                       clip_360p):
    workers = [start_worker(queue_app, tmp_path, name, slow_ffmpeg, recovery_interval=1)
               for name in ("first", "second")]
    try:
        # both worker processes have started (and run their start-up recovery) before the job exists
        wait_for(lambda: all("ready; dead workers' videos recovered" in w.log_path.read_text() for w in workers),
                 workers, "both workers to start")
        with queue_app.app_context(), open(clip_360p, "rb") as stream:
            video = uploads.accept(stream, filename="clip.mp4", title="Clip", category="Drama")
            video_id = video.id
            queue_transcode(video)
        wait_for(lambda: row(queue_app, video_id)["claimed_by"], workers, "a worker to claim the video")
        claim = row(queue_app, video_id)["claimed_by"]
        pid = int(claim.rsplit(":", 2)[1])
        victim = next(w for w in workers if os.getpgid(pid) == w.pid)
        survivor = next(w for w in workers if w is not victim)
        kill_group(victim)

        wait_for(lambda: row(queue_app, video_id)["status"] == "ready", [survivor], "the video to be ready")
        assert survivor.poll() is None  # recovered by the running worker, not by a (re)start
    finally:
        for worker in workers:
            kill_group(worker)
    video = row(queue_app, video_id)
    assert video["claimed_by"] is None and video["progress"] == 100 and video["hls_dir"]
    assert video["attempts"] == 2
    assert "worker " in survivor.log_path.read_text() and "is gone" in survivor.log_path.read_text()

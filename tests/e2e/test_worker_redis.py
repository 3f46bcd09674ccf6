"""End to end: a real `flask worker` subprocess on Redis transcodes an upload, and on start takes over
a video a dead worker left behind. Needs TEST_REDIS_URL (always set in CI); skipped without it."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import TEST_REDIS_URL
from tests.fixtures.videos import add_clip, dead_pid, row, strand
from videoflix import create_app
from videoflix.extensions import db

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 120  # a bound on waiting, not a timing assertion
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TEST_REDIS_URL, reason="needs Redis: set TEST_REDIS_URL"),
]


@pytest.fixture
def redis_app(tmp_path):
    """An app that enqueues to Redis (not inline), sharing a SQLite file with the worker."""
    config = {
        "TESTING": True, "HUEY_IMMEDIATE": False, "REDIS_URL": TEST_REDIS_URL,
        "REDIS_PREFIX": f"vftest:{uuid.uuid4().hex[:8]}:",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}", "MEDIA_ROOT": str(tmp_path / "media"),
    }
    app = create_app(config)
    with app.app_context():
        db.create_all()
    yield app
    app.extensions["huey"].flush()
    with app.app_context():
        db.engine.dispose()


def start_worker(app, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOFLIX_", "FLASK_", "DB_"))}
    env.update(
        VIDEOFLIX_ENV="development", DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=TEST_REDIS_URL,
        REDIS_PREFIX=app.config["REDIS_PREFIX"], MEDIA_ROOT=app.config["MEDIA_ROOT"], PYTHONPATH=str(ROOT),
    )
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "videoflix:create_app", "worker", "--workers", "2"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )


def test_a_real_worker_transcodes_uploads_and_recovers_dead_claims(redis_app, tmp_path, clip_360p, clip_720p):
    stranded = add_clip(redis_app, clip_360p, enqueue=False)
    strand(redis_app, stranded, pid=dead_pid())
    uploaded = add_clip(redis_app, clip_720p)  # queued on Redis, nobody consumes it yet
    assert row(redis_app, uploaded)["status"] == "pending" and redis_app.extensions["huey"].pending_count() == 1

    log_path = tmp_path / "worker.log"
    worker = start_worker(redis_app, log_path)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and worker.poll() is None:
            if all(row(redis_app, i)["status"] in ("ready", "failed") for i in (stranded, uploaded)):
                break
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()

    log = log_path.read_text()
    for video_id in (stranded, uploaded):
        video = row(redis_app, video_id)
        assert video["status"] == "ready", log
        assert video["claimed_by"] is None and video["progress"] == 100 and video["hls_dir"]
    assert [r["label"] for r in row(redis_app, uploaded)["renditions"]] == ["480p", "720p"]
    assert "Re-queued videos left by dead workers" in log

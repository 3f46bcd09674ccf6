"""A dead worker's video is taken over by real `flask worker` processes, without any restart.

- File-backed queue: two workers share a film's parts; the one doing a part is killed with
  SIGKILL (with its worker processes) while the other keeps running, and the survivor's recovery
  loop sees the part's dead claim (within TRANSCODE_STALE_SECONDS + RECOVERY_INTERVAL; here the
  pid is gone on this host, so one RECOVERY_INTERVAL) and the video becomes ready.
- Redis (TEST_REDIS_URL, always set in CI; skipped without it): a worker transcodes an upload, and
  on start takes over a video a dead worker left behind.
"""
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import TEST_REDIS_URL
from tests.fixtures import workers
from tests.fixtures.clips import FFMPEG
from tests.fixtures.videos import add_clip, dead_pid, row, strand
from tests.fixtures.workers import kill_group
from videoflix import create_app
from videoflix.extensions import db
from videoflix.videos.models import TranscodeChunk
from videoflix.videos.tasks import request_transcode
from videoflix.videos.uploads.service import accept

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 120  # a bound on waiting, not a timing assertion
pytestmark = pytest.mark.slow


@pytest.fixture
def queue_app(tmp_path):
    with workers.queue_app(tmp_path) as app:
        yield app


@pytest.fixture
def slow_ffmpeg(tmp_path):
    """ffmpeg that waits 3 s before it starts: a transcode long enough to be killed in."""
    path = tmp_path / "slow-ffmpeg"
    path.write_text(f'#!/bin/sh\nsleep 3\nexec "{FFMPEG}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def start_worker(app, tmp_path, name, ffmpeg, recovery_interval):
    return workers.start_worker(app, tmp_path, name, FFMPEG_BINARY=ffmpeg, RECOVERY_INTERVAL=str(recovery_interval),
                                TRANSCODE_STALE_SECONDS="15", TRANSCODE_CHUNK_SECONDS="6")


def wait_for(predicate, workers, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    logs = "\n".join(f"--- {w.log_path.name}\n{w.log_path.read_text()}" for w in workers)
    pytest.fail(f"gave up waiting for {what}; worker logs:\n{logs}")


def test_a_worker_killed_mid_part_loses_only_that_part(queue_app, tmp_path, slow_ffmpeg, clip_tone):
    """Two workers share a film's parts; the one doing a part is killed (SIGKILL, with its worker
    processes) while the other keeps working: the survivor's recovery loop queues that part again
    (only that part: the parts already done stay done) and finishes the film."""
    workers = [start_worker(queue_app, tmp_path, name, slow_ffmpeg, recovery_interval=1)
               for name in ("first", "second")]
    try:
        # both worker processes have started (and run their start-up recovery) before the job exists
        wait_for(lambda: all("ready; dead workers' videos recovered" in w.log_path.read_text() for w in workers),
                 workers, "both workers to start")
        with queue_app.app_context(), open(clip_tone, "rb") as stream:
            video = accept(stream, filename="clip.mp4", title="Clip", category="Drama")
            video_id = video.id
            request_transcode(video)
        wait_for(lambda: running_parts(queue_app, video_id), workers, "a worker to take a part")
        number, claim = running_parts(queue_app, video_id)[0]
        pid = int(claim.rsplit(":", 2)[1])
        victim = next(w for w in workers if os.getpgid(pid) == w.pid)
        survivor = next(w for w in workers if w is not victim)
        kill_group(victim)

        wait_for(lambda: part_attempts(queue_app, video_id, number) == 2 or row(queue_app, video_id)["status"]
                 == "ready", [survivor], "the survivor to take the part over")
        wait_for(lambda: row(queue_app, video_id)["status"] == "ready" and not row(queue_app, video_id)["growing"],
                 [survivor], "the video to be ready")
        assert survivor.poll() is None  # recovered by the running worker, not by a (re)start
    finally:
        for worker in workers:
            kill_group(worker)
    video = row(queue_app, video_id)
    assert video["claimed_by"] is None and video["progress"] == 100 and video["hls_dir"]
    assert video["attempts"] == 1  # the video was planned once; only the part was done again
    log = survivor.log_path.read_text()
    assert f"part {number}: worker " in log and "is gone; it will be done again" in log
    assert len(m3u8_segments(queue_app, video)) == len(set(m3u8_segments(queue_app, video)))


def running_parts(app, video_id):
    """[(number, claimed_by)] of the video's parts being done now."""
    with app.app_context():
        return [(r.number, r.claimed_by) for r in db.session.query(TranscodeChunk).filter_by(
            video_id=video_id, status="running")]


def part_attempts(app, video_id, number):
    with app.app_context():
        found = db.session.query(TranscodeChunk).filter_by(video_id=video_id, number=number).one_or_none()
        return found.attempts if found else None


def m3u8_segments(app, video):
    text = Path(app.config["MEDIA_ROOT"], "hls", video["hls_dir"], "480p", "index.m3u8").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs Redis: set TEST_REDIS_URL")


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


def start_redis_worker(app, log_path):
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


@needs_redis
def test_a_real_worker_transcodes_uploads_and_recovers_dead_claims(redis_app, tmp_path, clip_360p, clip_720p):
    stranded = add_clip(redis_app, clip_360p, enqueue=False)
    strand(redis_app, stranded, pid=dead_pid())
    uploaded = add_clip(redis_app, clip_720p)  # queued on Redis, nobody consumes it yet
    assert row(redis_app, uploaded)["status"] == "pending" and redis_app.extensions["huey"].pending_count() == 1

    log_path = tmp_path / "worker.log"
    worker = start_redis_worker(redis_app, log_path)
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

"""Issue 10 item 4 with real workers: two `flask worker` processes on one file-backed queue; the
one transcoding is killed with SIGKILL (with its worker processes) while the other keeps running.
Without any restart, the survivor's recovery loop sees the dead claim and the video becomes ready
(within TRANSCODE_STALE_SECONDS + RECOVERY_INTERVAL; here: the pid is gone on this host, so one
RECOVERY_INTERVAL)."""
import os
import stat
import time

import pytest

from tests.fixtures import workers
from tests.fixtures.clips import FFMPEG
from tests.fixtures.videos import row
from tests.fixtures.workers import kill_group
from videoflix.videos.tasks import queue_transcode
from videoflix.videos.uploads.service import accept

WAIT_SECONDS = 90  # a bound on waiting, not a timing assertion
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
                                TRANSCODE_STALE_SECONDS="15")


def wait_for(predicate, workers, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    logs = "\n".join(f"--- {w.log_path.name}\n{w.log_path.read_text()}" for w in workers)
    pytest.fail(f"gave up waiting for {what}; worker logs:\n{logs}")


def test_a_worker_killed_mid_transcode_is_taken_over_without_a_restart(queue_app, tmp_path, slow_ffmpeg,
                                                                       clip_360p):
    workers = [start_worker(queue_app, tmp_path, name, slow_ffmpeg, recovery_interval=1)
               for name in ("first", "second")]
    try:
        # both worker processes have started (and run their start-up recovery) before the job exists
        wait_for(lambda: all("ready; dead workers' videos recovered" in w.log_path.read_text() for w in workers),
                 workers, "both workers to start")
        with queue_app.app_context(), open(clip_360p, "rb") as stream:
            video = accept(stream, filename="clip.mp4", title="Clip", category="Drama")
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

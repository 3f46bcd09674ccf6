"""Recognising dead workers from any host by their heartbeat, picking up queued videos whose task
was lost, and every worker process's recovery loop, which queues a killed worker's video again
without any restart (another host's by its stale heartbeat, this host's by its gone pid). Huey
runs inline."""
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.videos import add_clip, dead_pid, mark_queued, media, own_pid, queue, row, strand
from tests.fixtures.workers import ROOT
from videoflix import tasks as queues
from videoflix.config import TestingConfig
from videoflix.extensions import db
from videoflix.videos import tasks
from videoflix.videos.jobs import part_state, state, transcoding
from videoflix.videos.jobs import parts as part_jobs
from videoflix.videos.models import TranscodeChunk, Video
from videoflix.videos.tasks import request_transcode

pytestmark = pytest.mark.slow
HEARTBEAT_STALE = timedelta(seconds=TestingConfig.TRANSCODE_STALE_SECONDS)
STALE = HEARTBEAT_STALE + timedelta(seconds=30)


def test_flask_transcode_takes_over_a_stale_claim_from_another_host(app, runner, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    # a live pid here means nothing: the worker ran in another container
    work = strand(app, video_id, pid=own_pid(), host="worker-container", claimed_at=datetime.now(UTC) - STALE)

    result = runner.invoke(args=["transcode", str(video_id)])

    assert result.exit_code == 0 and f"Video {video_id} queued." in result.output, result.output
    video = row(app, video_id)
    assert video["status"] == "ready" and video["claimed_by"] is None and not work.exists()


def test_flask_transcode_leaves_a_claim_with_a_fresh_heartbeat_alone(app, runner, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    claimed_at = datetime.now(UTC) - HEARTBEAT_STALE + timedelta(seconds=30)
    work = strand(app, video_id, pid=dead_pid(), host="worker-container", claimed_at=claimed_at)

    result = runner.invoke(args=["transcode", str(video_id)])

    assert result.exit_code == 1 and "is being transcoded right now (worker-container:" in result.output
    video = row(app, video_id)
    assert video["status"] == "processing" and video["claimed_by"].startswith("worker-container:") and work.exists()


def test_the_progress_writer_refreshes_the_heartbeat_without_progress(app, clip_360p, monkeypatch):
    """A part's progress writer: a position that grew is written (with the heartbeat); otherwise
    only a due heartbeat; a part taken away from this worker stops it."""
    video_id = add_clip(app, clip_360p, enqueue=False)
    monkeypatch.setattr(tasks, "_put_part_on_queue", lambda *args, **kwargs: None)
    mark_queued(app, video_id)
    with app.app_context():
        job, numbers = transcoding.run_transcode(video_id)
        row_id, token = part_state.claim_part(video_id, job, numbers[0])
    long_ago = datetime.now(UTC) - STALE

    def age_claim():
        with app.app_context():
            db.session.get(TranscodeChunk, row_id).claimed_at = long_ago
            db.session.commit()

    def part():
        with app.app_context():
            found = db.session.get(TranscodeChunk, row_id)
            return found.position, found.claimed_at

    age_claim()
    with app.app_context():
        writer = part_jobs._PartProgress(video_id, row_id, token)
        writer(0)  # nothing due yet: no write
        assert part() == (0.0, long_ago)
        writer.at = time.monotonic() - state.heartbeat_interval().total_seconds()
        writer(0)  # the same position, but a heartbeat is due
    assert part()[0] == 0.0 and part()[1] > datetime.now(UTC) - timedelta(seconds=10)

    age_claim()
    with app.app_context():
        writer(1.0)
        assert part()[0] == 1.0 and not state.claim_is_dead(db.session.get(TranscodeChunk, row_id))
        # the share of the video's seconds written, at most 99 (100 comes with the finished version)
        assert row(app, video_id)["progress"] == min(99, int(1.0 * 100 / row(app, video_id)["duration"]))
        request_transcode(db.session.get(Video, video_id), force=True)  # taken away from this worker
        with pytest.raises(state.ClaimLost):
            writer(1.5)


def test_a_starting_worker_process_recovers_dead_claims(app, clip_360p):
    assert tasks.recover_on_process_start in queues._process_start_hooks
    video_id = add_clip(app, clip_360p, enqueue=False)
    work = strand(app, video_id, pid=dead_pid())

    tasks.recover_on_process_start(app)

    assert row(app, video_id)["status"] == "ready" and not work.exists()


def queue_without_task(app, video_id, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(tasks, "_put_on_queue", lambda video_id: None)  # e.g. Redis was down
        queue(app, video_id)


def test_worker_start_enqueues_queued_videos_whose_task_was_lost(app, clip_360p, monkeypatch):
    video_id = add_clip(app, clip_360p, enqueue=False)
    queue_without_task(app, video_id, monkeypatch)
    assert row(app, video_id)["status"] == "pending" and row(app, video_id)["queued_at"]

    tasks.recover_on_worker_start(app)

    video = row(app, video_id)
    assert video["status"] == "ready" and video["queued_at"] is None and media(app, "hls", video["hls_dir"]).exists()


def test_worker_start_does_not_duplicate_tasks_still_on_the_queue(app, clip_360p, monkeypatch):
    waiting, lost = (add_clip(app, clip_360p, enqueue=False) for _ in range(2))
    queue_without_task(app, waiting, monkeypatch)
    queue_without_task(app, lost, monkeypatch)
    enqueued = []
    with app.app_context():
        task = tasks.transcode_video.s(waiting)
    monkeypatch.setattr(app.extensions["huey"], "pending", lambda limit=None: [task])
    monkeypatch.setattr(tasks, "_put_on_queue", enqueued.append)

    tasks.recover_on_worker_start(app)

    assert enqueued == [lost]


def test_flask_worker_runs_recovery_in_every_worker_process(app_config, tmp_path, monkeypatch):
    from videoflix import create_app

    app_config.update(HUEY_IMMEDIATE=False, REDIS_URL=None, HUEY_FILE=str(tmp_path / "queue.sqlite3"))
    worker_app = create_app(app_config)
    huey = worker_app.extensions["huey"]
    started = []

    class Consumer:
        def run(self):  # what each worker process does first
            started.extend(huey._startup)

    monkeypatch.setattr(huey, "create_consumer", lambda **kwargs: Consumer())
    monkeypatch.setattr(huey, "_startup", {})
    with worker_app.app_context():
        db.create_all()
    result = worker_app.test_cli_runner().invoke(args=["worker", "--workers", "1"])

    assert result.exit_code == 0, result.output
    assert started == ["_fresh_connections", "recover_on_process_start"]


def wait_until(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)


def test_the_recovery_loop_is_started_in_every_worker_process(app, monkeypatch):
    assert tasks.recover_on_process_start in queues._process_start_hooks
    started = []
    monkeypatch.setattr(tasks.RecoveryLoop, "start", lambda loop: started.append(loop.app))
    app.config["RECOVERY_INTERVAL"] = 60
    tasks.recover_on_process_start(app)
    assert started == [app]
    app.config["RECOVERY_INTERVAL"] = 0  # off
    tasks.recover_on_process_start(app)
    assert started == [app]


@pytest.mark.parametrize("host_is_ours", [False, True])
def test_a_killed_workers_video_is_ready_again_without_a_restart(app, clip_360p, host_is_ours):
    app.config.update(RECOVERY_INTERVAL=0.2, TRANSCODE_STALE_SECONDS=1)
    video_id = add_clip(app, clip_360p, enqueue=False)
    # another host's worker, silent since it was killed; or a worker of this host whose pid is gone
    if host_is_ours:  # its heartbeat is fresh, but its pid is dead
        strand(app, video_id, pid=dead_pid(), claimed_at=datetime.now(UTC))
    else:  # a live pid here means nothing; its heartbeat is older than TRANSCODE_STALE_SECONDS
        strand(app, video_id, pid=os.getpid(), host="worker-container",
               claimed_at=datetime.now(UTC) - timedelta(seconds=2))
    assert row(app, video_id)["status"] == "processing"

    loop = tasks.RecoveryLoop(app)
    loop.start()
    try:
        wait_until(lambda: row(app, video_id)["status"] == "ready")
    finally:
        loop.stopped.set()
        loop.join()
    video = row(app, video_id)
    assert video["claimed_by"] is None and video["hls_dir"] and video["progress"] == 100


def test_a_claim_from_another_pid_namespace_of_this_hostname_is_not_judged_by_its_pid(app, clip_360p):
    """Containers on the host network share the hostname, not their pids: a worker in another pid
    namespace (a real one, made by unshare) whose pid does not run here keeps its fresh claim."""
    unshare = shutil.which("unshare")
    probe = [unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c",
             "from videoflix.videos.jobs import state; print(state.host_id())"]
    made = subprocess.run(probe, capture_output=True, text=True, cwd=ROOT) if unshare else None
    if made is None or made.returncode != 0:
        pytest.skip(f"no pid namespace here (unshare: {made and made.stderr.strip()})")
    host = made.stdout.split()[0]
    assert host != state.host_id() and host.split("~")[0] == state.host_id().split("~")[0]
    video_id = add_clip(app, clip_360p, enqueue=False)
    strand(app, video_id, pid=dead_pid(), host=host, claimed_at=datetime.now(UTC))  # not running here
    with app.app_context():
        assert not state.claim_is_dead(db.session.get(Video, video_id))
    strand_here = add_clip(app, clip_360p, enqueue=False)
    strand(app, strand_here, pid=dead_pid(), claimed_at=datetime.now(UTC), job="feedfacefeedface")
    with app.app_context():  # the same dead pid claimed in this namespace: dead
        assert state.claim_is_dead(db.session.get(Video, strand_here))

"""Issue 10 item 4: a worker killed with SIGKILL (another host, or a pid that is gone) does not
hold its video until some worker restarts: every worker's recovery loop queues it again."""
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.videos import add_clip, dead_pid, row, strand
from videoflix import tasks as queues
from videoflix.videos import tasks

pytestmark = pytest.mark.slow


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

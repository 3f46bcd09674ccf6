"""`flask worker` in a real subprocess on a file-backed queue: stopping it never loses a task.

SIGTERM (what Docker and systemd send) lets the running task finish; SIGINT interrupts it and the
task goes back on the queue, where the next worker picks it up. The worker logs JSON lines that
carry the task when LOG_JSON is set.
"""
import json
import signal

import pytest
from huey.api import PeriodicTask

from tests.fixtures import workers
from tests.fixtures.worker_app import busy_job, slow_job
from tests.fixtures.workers import WAIT_SECONDS, queue_app, stop, wait_for
from videoflix.auth.emails import deliver_email
from videoflix.tasks import QUEUES, queue_of

pytestmark = pytest.mark.slow


@pytest.fixture
def queue(tmp_path):
    with queue_app(tmp_path) as app:
        yield app


def start_worker(app, tmp_path, name):
    return workers.start_worker(app, tmp_path, name, LOG_JSON="1")


def pending_jobs(huey):
    """Tasks waiting on the queue, but for periodic ones (the scheduler may enqueue a sweep at any
    minute)."""
    return sum(not isinstance(task, PeriodicTask) for task in huey.pending())


def json_lines(path):
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines


def test_sigterm_lets_the_running_task_finish(queue, tmp_path):
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    with queue.app_context():
        slow_job(str(job_dir), WAIT_SECONDS)
    huey = queue_of(queue)
    assert pending_jobs(huey) == 1
    worker = start_worker(queue, tmp_path, "worker")
    wait_for(lambda: (job_dir / "started").exists(), worker, "the task to start")

    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "Shutting down gracefully" in worker.log_path.read_text(), worker, "the graceful stop")
    (job_dir / "go").touch()  # only now may the running task finish
    assert worker.wait(timeout=WAIT_SECONDS) == 0
    assert (job_dir / "done").read_text() == "ok"
    assert pending_jobs(huey) == 0
    # LOG_JSON works in the worker too, and a task's lines name the task and its arguments.
    records = json_lines(worker.log_path)
    working = [r for r in records if r.get("message", "").startswith("slow job working")]
    assert len(working) == 1, worker.log_path.read_text()
    assert working[0]["request_id"] == f"slow_job({str(job_dir)!r}, {WAIT_SECONDS})"
    assert working[0]["task_id"]
    assert any("Shutting down gracefully" in r.get("message", "") for r in records)


def test_sigint_puts_the_interrupted_task_back_and_the_next_worker_runs_it(queue, tmp_path):
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    with queue.app_context():
        slow_job(str(job_dir), WAIT_SECONDS)  # waits for `go`, which the first worker never sees
    huey = queue_of(queue)
    worker = start_worker(queue, tmp_path, "first")
    wait_for(lambda: (job_dir / "started").exists(), worker, "the task to start")

    stop(worker, signal.SIGINT)
    assert not (job_dir / "done").exists()
    assert pending_jobs(huey) == 1, worker.log_path.read_text()
    assert "re-queued" in worker.log_path.read_text()

    (job_dir / "started").unlink()
    (job_dir / "go").touch()
    second = start_worker(queue, tmp_path, "second")
    wait_for(lambda: (job_dir / "done").exists(), second, "the re-queued task to finish")
    assert stop(second, signal.SIGTERM) == 0
    assert pending_jobs(huey) == 0


def test_an_email_is_delivered_while_every_worker_is_busy(queue, tmp_path):
    """E-mails have their own queue and worker: an activation e-mail does not wait for a transcode."""
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    with queue.app_context():
        busy_job(str(job_dir))
    worker = start_worker(queue, tmp_path, "worker")  # one process worker: busy_job takes it
    wait_for(lambda: (job_dir / "started").exists(), worker, "the busy task to start")
    with queue.app_context():
        deliver_email("Confirm your email", "waiting@example.com", "Your link: https://x.example/a", "<p>link</p>")

    def sent():  # the development profile's console backend logs the whole message
        return [r for r in json_lines(worker.log_path) if "To: waiting@example.com" in r.get("message", "")]

    wait_for(sent, worker, "the e-mail to be sent while the only worker is busy")
    assert not (job_dir / "done").exists()  # it really was sent while the worker was busy
    assert "Your link: https://x.example/a" in sent()[0]["message"]
    assert sent()[0]["request_id"].startswith("deliver_email('Confirm your email'")  # the e-mail queue's task label
    (job_dir / "release").write_text("go")
    wait_for(lambda: (job_dir / "done").exists(), worker, "the busy task to finish")
    assert stop(worker, signal.SIGTERM) == 0
    assert all(pending_jobs(queue_of(queue, name)) == 0 for name in QUEUES)

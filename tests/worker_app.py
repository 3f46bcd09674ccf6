"""A real app plus one slow task, for tests/test_worker.py: `flask --app tests.worker_app:make_app worker`
runs it in a subprocess, and the test enqueues from its own process on the same file-backed queue."""
import logging
import os
import pathlib
import time

from videoflix import create_app
from videoflix.tasks import task

log = logging.getLogger(__name__)


def worker_config(db_url, queue_file, media_root):
    return {"SQLALCHEMY_DATABASE_URI": db_url, "HUEY_FILE": queue_file, "REDIS_URL": None, "MEDIA_ROOT": media_root}


def make_app():
    """The worker side: configuration from the WORKER_TEST_* variables the test sets."""
    env = os.environ
    return create_app(worker_config(env["WORKER_TEST_DB"], env["WORKER_TEST_QUEUE"], env["WORKER_TEST_MEDIA"]))


@task()
def slow_job(folder, seconds):
    """Writes `started`, waits until the test creates `go` (at most `seconds`, then fails), then
    writes `done` into folder: `done` exists only if it ran to the end."""
    folder = pathlib.Path(folder)
    (folder / "started").write_text(str(os.getpid()))
    log.info("slow job working in %s", folder)
    deadline = time.monotonic() + seconds
    while not (folder / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nobody created {folder / 'go'} within {seconds} s")
        time.sleep(0.05)
    (folder / "done").write_text("ok")


@task()
def busy_job(folder):
    """Stands in for a long transcode: writes `started`, holds its worker until the test writes
    `release` (at most a minute), then writes `done`."""
    folder = pathlib.Path(folder)
    (folder / "started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (folder / "done").write_text("ok")

"""Real `flask worker` subprocesses for the worker tests: an app bound to a fresh SQLite database and
queue file, and workers started on the same files, each in its own session (so killpg ends it and
the process workers it forked)."""
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.worker_app import worker_config
from videoflix import create_app
from videoflix.extensions import db
from videoflix.tasks import QUEUES, queue_of

ROOT = Path(__file__).resolve().parent.parent
# Variables of the developer's or CI's shell that would point the worker elsewhere.
FOREIGN = {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "DB_NAME"}


@contextmanager
def queue_app(tmp_path):
    """An app on tmp_path's database, queue file and media folder, as the worker subprocesses
    will be; its queues are flushed afterwards."""
    config = worker_config(f"sqlite:///{tmp_path / 'db.sqlite3'}", str(tmp_path / "queue.sqlite3"),
                           str(tmp_path / "media"))
    app = create_app({"TESTING": True, "HUEY_IMMEDIATE": False, **config})
    with app.app_context():
        db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        for name in QUEUES:
            queue_of(app, name).flush()


def start_worker(app, tmp_path, name, **env_overrides):
    """`flask worker --workers 1` for `app`'s files, logging to tmp_path/<name>.log (proc.log_path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOFLIX_", "FLASK_")) and k not in FOREIGN}
    env.update(
        WORKER_TEST_DB=app.config["SQLALCHEMY_DATABASE_URI"], WORKER_TEST_QUEUE=app.config["HUEY_FILE"],
        WORKER_TEST_MEDIA=app.config["MEDIA_ROOT"], VIDEOFLIX_ENV="development", PYTHONPATH=str(ROOT),
        **env_overrides,
    )
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.worker_app:make_app", "worker", "--workers", "1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    proc.log_path = log_path
    return proc


def kill_group(proc):
    """SIGKILL the worker and every process it started (its session): Huey's process workers
    outlive a parent killed alone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()

"""Application-wide commands: the Huey worker and the one-command development server."""
import functools
import logging
import signal
import subprocess
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from huey.api import PeriodicTask
from huey.signals import SIGNAL_INTERRUPTED
from werkzeug.serving import run_simple

from videoflix.env import cpu_cores

log = logging.getLogger(__name__)
_worker_start_hooks = []
_process_start_hooks = []


def on_worker_start(fn):
    """Register fn(app) to run once when `flask worker` starts (e.g. recover stuck jobs)."""
    _worker_start_hooks.append(fn)
    return fn


def on_worker_process_start(fn):
    """Register fn(app) to run in each worker process as it starts, including one the consumer
    starts again after it died."""
    _process_start_hooks.append(fn)
    return fn


@click.command("worker")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes (default: WORKERS, else one per core).")
@click.option("--max-tasks", type=int, default=None, help="Restart a worker process after this many tasks.")
@click.option(
    "--shutdown-timeout", type=int, default=None,
    help="On SIGTERM, wait at most this many seconds for running tasks, then interrupt and re-queue them "
    "(default: WORKER_SHUTDOWN_TIMEOUT; 0 waits for them to finish).",
)
@with_appcontext
def worker_command(workers, max_tasks, shutdown_timeout):
    """Run the Huey consumer (process workers).

    SIGTERM (docker stop, systemd) is the graceful stop: no new task starts and running tasks
    finish (up to the shutdown timeout). SIGINT (Ctrl-C) stops now. A task interrupted either way
    goes back on the queue, so it is never lost; SIGHUP restarts gracefully.
    """
    from videoflix.extensions import db
    from videoflix.tasks import huey

    app = current_app._get_current_object()
    if huey.immediate:
        raise click.ClickException("HUEY_IMMEDIATE is set: tasks run inline, there is nothing to consume.")
    workers = workers or app.config["WORKERS"] or cpu_cores()
    for hook in _worker_start_hooks:
        hook(app)
    # Forked worker processes must not share the parent's database connections.
    db.engine.dispose()

    @huey.on_startup()
    def _fresh_connections():
        with app.app_context():
            db.engine.dispose(close=False)

    for hook in _process_start_hooks:  # after _fresh_connections: Huey runs them in this order
        huey.on_startup(hook.__name__)(functools.partial(hook, app))

    huey.signal(SIGNAL_INTERRUPTED)(requeue_interrupted)
    if shutdown_timeout is None:
        shutdown_timeout = app.config["WORKER_SHUTDOWN_TIMEOUT"]
    consumer = huey.create_consumer(
        workers=workers, worker_type="process", max_tasks=max_tasks, periodic=True,
        graceful_signal="TERM", shutdown_timeout=shutdown_timeout or None,
    )
    log.info("Huey consumer: %d process worker(s) on %s", workers, type(huey.storage).__name__)
    consumer.run()


def requeue_interrupted(signal_name, task, *args):
    """Huey drops a task interrupted mid-run; put it back so another worker (or this one after a
    restart) runs it again. Tasks must therefore be safe to run twice."""
    from videoflix.tasks import huey

    if isinstance(task, PeriodicTask):
        return  # the scheduler enqueues it again anyway
    huey.enqueue(task)
    log.warning("Task %s was interrupted and has been re-queued.", task)


@click.command("dev")
@click.option("--host", default=None, help="Default: HOST, else 127.0.0.1.")
@click.option("--port", type=int, default=None, help="Default: PORT, else 8000.")
@click.option("--no-worker", is_flag=True, help="Do not start the Huey worker.")
@with_appcontext
def dev_command(host, port, no_worker):
    """Seed demo accounts if the database is empty, then run the web server and a worker in the
    foreground; Ctrl-C stops both."""
    from videoflix.auth.cli import seed_demo_accounts

    app = current_app._get_current_object()
    host = host or app.config["HOST"]
    port = port or app.config["PORT"]
    for email, password, staff in seed_demo_accounts():
        click.secho(f"Demo account: {email} / {password}{' (staff)' if staff else ''}", fg="green")
    worker = None
    if not no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"])
    click.secho(f"Videoflix on http://{host}:{port}/  (admin: /admin/, API: /api/)", fg="green")
    try:
        # app.run() refuses to run inside a `flask` command; run_simple is what it would call.
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        if worker is not None and worker.poll() is None:
            # SIGTERM is the worker's graceful stop (Ctrl-C already sent SIGINT to the whole group).
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def init_app(app):
    app.cli.add_command(worker_command)
    app.cli.add_command(dev_command)

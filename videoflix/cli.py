"""Application-wide commands: the Huey worker and the one-command development server."""
import logging
import os
import signal
import subprocess
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from videoflix import tasks
from videoflix.extensions import db

log = logging.getLogger(__name__)
# Declared where the queues are; re-exported for modules that register worker hooks through cli.
on_worker_start = tasks.on_worker_start
on_worker_process_start = tasks.on_worker_process_start


def default_workers():
    return max(1, os.cpu_count() or 1)


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
    """Run the Huey consumers: process workers for the default queue (transcodes), and one thread
    of the main process for the e-mail queue, so e-mails never wait behind transcodes.

    SIGTERM (docker stop, systemd) is the graceful stop: no new task starts and running tasks
    finish (up to the shutdown timeout). SIGINT (Ctrl-C) stops now. A task interrupted either way
    goes back on the queue, so it is never lost; SIGHUP restarts gracefully.
    """
    app = current_app._get_current_object()
    huey = tasks.queue_of(app)
    if huey.immediate:
        raise click.ClickException("HUEY_IMMEDIATE is set: tasks run inline, there is nothing to consume.")
    workers = workers or app.config["WORKERS"] or default_workers()
    tasks.bind_all(app)

    def _fresh_connections():  # forked worker processes must not share the parent's connections
        with app.app_context():
            db.engine.dispose(close=False)

    for hook in tasks.bind_worker_hooks(app, first=_fresh_connections):
        hook()
    db.engine.dispose()
    if shutdown_timeout is None:
        shutdown_timeout = app.config["WORKER_SHUTDOWN_TIMEOUT"]
    consumer = huey.create_consumer(
        workers=workers, worker_type="process", max_tasks=max_tasks, periodic=True,
        graceful_signal="TERM", shutdown_timeout=shutdown_timeout or None,
    )
    mail = start_mail_consumer(app)
    log.info("Huey consumer: %d process worker(s) on %s, e-mail on its own thread", workers,
             type(huey.storage).__name__)
    try:
        consumer.run()
    finally:
        mail.stop(graceful=True)


def start_mail_consumer(app):
    """Serve the app's MAIL queue with one worker thread and a scheduler thread (for retries) in
    this process; the caller stops it with .stop(graceful=True). The threads start before the
    process workers fork: those only run the default queue's tasks, on fresh connections."""
    consumer = tasks.queue_of(app, tasks.MAIL).create_consumer(workers=1, worker_type="thread", periodic=True)
    consumer.scheduler.start()
    for _, thread in consumer.worker_threads:
        thread.start()
    return consumer


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

"""Application-wide commands: the Huey worker and the one-command development server."""
import faulthandler
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from videoflix import tasks
from videoflix.env import cpu_cores
from videoflix.extensions import db

log = logging.getLogger(__name__)


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
    """Run the Huey consumers: process workers for the default queue (transcodes), and a process
    of its own for the e-mail queue, so e-mails never wait behind transcodes.

    SIGTERM (docker stop, systemd) is the graceful stop: no new task starts and running tasks
    finish (up to the shutdown timeout). SIGINT (Ctrl-C) stops now. A task interrupted either way
    goes back on the queue, so it is never lost; SIGHUP restarts gracefully.
    """
    app = current_app._get_current_object()
    huey = tasks.queue_of(app)
    if huey.immediate:
        raise click.ClickException("HUEY_IMMEDIATE is set: tasks run inline, there is nothing to consume.")
    workers = workers or app.config["WORKERS"] or cpu_cores()
    tasks.bind_all(app)

    def _fresh_connections():  # forked worker processes must not share the parent's connections
        with app.app_context():
            db.engine.dispose(close=False)

    for hook in tasks.bind_worker_hooks(app, first=_fresh_connections):
        hook()
    db.engine.dispose()
    if shutdown_timeout is None:
        shutdown_timeout = app.config["WORKER_SHUTDOWN_TIMEOUT"]
    mail = start_mail_consumer(app)
    consumer = huey.create_consumer(
        workers=workers, worker_type="process", max_tasks=max_tasks, periodic=True,
        graceful_signal="TERM", shutdown_timeout=shutdown_timeout or None, max_delay=IDLE_POLL_SECONDS,
    )
    log.info("Huey consumer: %d process worker(s) on %s; e-mail in process %s", workers,
             type(huey.storage).__name__, mail.pid)
    try:
        consumer.run()
    finally:
        stop_mail_consumer(mail, shutdown_timeout)


# An idle worker looks at a polled queue (the embedded SQLite file) at least this often: Huey's
# default backs off to 10 s, which a new video's first part would wait on (Redis blocks instead).
IDLE_POLL_SECONDS = 0.5


def start_mail_consumer(app):
    """Serve the app's MAIL queue (one worker thread and a scheduler for retries) in a child
    process, forked before anything else runs: no thread of this process is ever forked, and the
    process workers never touch the e-mail queue. The child stops when this process is gone."""
    process = multiprocessing.get_context("fork").Process(
        target=_run_mail_consumer, args=(app, os.getpid()), name="videoflix-mail")
    process.start()
    return process


def _run_mail_consumer(app, parent_pid):
    consumer = tasks.queue_of(app, tasks.MAIL).create_consumer(
        workers=1, worker_type="thread", periodic=True, graceful_signal="TERM")
    threading.Thread(target=_stop_when_orphaned, args=(parent_pid,), daemon=True).start()
    consumer.run()


def _stop_when_orphaned(parent_pid):
    """SIGTERM (graceful stop) to this process once its parent is gone (e.g. killed with SIGKILL)."""
    while os.getppid() == parent_pid:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_mail_consumer(process, timeout):
    """SIGTERM lets a message being sent finish; after `timeout` seconds (0: a minute) it is killed."""
    if process.is_alive():
        process.terminate()
    process.join(timeout or 60)
    if process.is_alive():
        process.kill()
        process.join()


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
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 <pid>: every thread's stack
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

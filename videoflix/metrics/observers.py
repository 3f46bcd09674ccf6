"""Instruments fed by what happens elsewhere, observed from outside: the transcode jobs (Huey's
signals, in the process that runs them) and the object store's calls (botocore's events); and
the worker's own metrics server (METRICS_PORT)."""
import functools
import logging
import multiprocessing
import os
import threading
import time

from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_EXECUTING
from sqlalchemy import select

from videoflix import tasks
from videoflix.extensions import db
from videoflix.metrics.instruments import BUCKET_ERRORS, FAILURES, METRICS_DIR, TIME_TO_PLAYABLE, TRANSCODE_SECONDS
from videoflix.models_base import utcnow
from videoflix.videos.models import Video
from videoflix.videos.storage import keys

log = logging.getLogger(__name__)
TRANSCODE_TASK = "transcode_video"
_running = {}  # task id -> (monotonic start, video had no published version yet)
_lock = threading.Lock()


def init_app(app):
    for huey in tasks.tasks_of(app).queues.values():
        huey.signal(SIGNAL_EXECUTING)(functools.partial(_task_started, app))
        huey.signal(SIGNAL_COMPLETE, SIGNAL_ERROR)(functools.partial(_task_finished, app))
    if app.config["MEDIA_STORAGE"] == "s3":
        store = keys.media_store(app)
        for client in (store.client, store.transfer_client):
            client.meta.events.register("after-call.s3", _bucket_call)
            client.meta.events.register("after-call-error.s3", _bucket_call_failed)


def _video(app, video_id):
    with app.app_context():
        return db.session.execute(
            select(Video.hls_dir, Video.error, Video.queued_at, Video.created_at).where(Video.id == video_id)
        ).first()


def _task_started(app, signal, task, *args):
    if task.name != TRANSCODE_TASK or not task.args:
        return
    row = _video(app, task.args[0])
    with _lock:
        _running[task.id] = (time.monotonic(), row is not None and row.hls_dir is None)


def _task_finished(app, signal, task, *args):
    if task.name != TRANSCODE_TASK:
        if signal == SIGNAL_ERROR:
            FAILURES.labels("task").inc()
        return
    with _lock:
        started, first = _running.pop(task.id, (None, False))
    if started is None or not task.args:
        return
    seconds = time.monotonic() - started
    if signal == SIGNAL_ERROR:  # a transient failure, raised so Huey retries it
        TRANSCODE_SECONDS.labels("retry").observe(seconds)
        FAILURES.labels("transcode_retry").inc()
        return
    row = _video(app, task.args[0])
    if row is None or row.queued_at is not None:  # deleted, or nothing done (another worker holds it)
        return
    if row.error:
        TRANSCODE_SECONDS.labels("failed").observe(seconds)
        FAILURES.labels("transcode").inc()
    elif row.hls_dir:
        TRANSCODE_SECONDS.labels("ready").observe(seconds)
        if first:
            TIME_TO_PLAYABLE.observe((utcnow() - row.created_at).total_seconds())


def _bucket_call(http_response=None, model=None, **kwargs):
    """Every S3 call's answer (after botocore's retries): a server error, or a refusal (403), is a
    bucket error; a missing key (404) or a precondition (304, 412) is an answer."""
    status = getattr(http_response, "status_code", 200)
    if status >= 500 or status == 403:
        BUCKET_ERRORS.labels(getattr(model, "name", "unknown")).inc()


def _bucket_call_failed(model=None, exception=None, **kwargs):
    """A call that got no answer at all (connection refused, timeout)."""
    BUCKET_ERRORS.labels(getattr(model, "name", "unknown")).inc()


@tasks.on_worker_start
def serve_worker_metrics(app):
    """With METRICS_PORT, `flask worker` serves its host's METRICS_DIR at http://METRICS_HOST:METRICS_PORT/
    from a child process forked now (before any thread exists), for a worker host without a web
    server (compose's worker containers): its transcode histograms and failures. Without METRICS_DIR
    the worker's processes keep their counters to themselves: nothing to serve."""
    port = app.config["METRICS_PORT"]
    if not port:
        return
    if not METRICS_DIR:
        log.error("METRICS_PORT is set without METRICS_DIR: the worker's metrics cannot be served.")
        return
    multiprocessing.get_context("fork").Process(
        target=_serve, args=(app.config["METRICS_HOST"], port, os.getpid()), name="videoflix-metrics",
        daemon=True).start()


def _serve(host, port, parent_pid):
    from prometheus_client import start_http_server
    from prometheus_client.core import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from videoflix.cli import _stop_when_orphaned

    registry = CollectorRegistry()
    MultiProcessCollector(registry, METRICS_DIR)
    start_http_server(port, addr=host, registry=registry)
    _stop_when_orphaned(parent_pid)

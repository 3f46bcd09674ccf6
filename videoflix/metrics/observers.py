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
# The tasks of a transcode job: the planner, then its parts, on any worker of any host.
TRANSCODE_TASKS = frozenset({"transcode_video", "transcode_part"})
_running = {}  # task id -> what the video's row said when the task started (_Before)
_seen = {}     # (video id, what) -> the job (its queued_at) already counted: one count per job
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
            select(Video.hls_dir, Video.error, Video.queued_at, Video.claimed_at, Video.created_at)
            .where(Video.id == video_id)
        ).first()


def _task_started(app, signal, task, *args):
    if task.name not in TRANSCODE_TASKS or not task.args:
        return
    row = _video(app, task.args[0])
    with _lock:
        _running[task.id] = (time.monotonic(), row)


def _task_finished(app, signal, task, *args):
    """A task of a transcode job ended. The job's wall time (from its planning) is counted by the
    task that ended the job (its last part, or a failure), the time to playable by the one that
    published a video's first version (its first part, with PUBLISH=playable)."""
    if task.name not in TRANSCODE_TASKS:
        if signal == SIGNAL_ERROR:
            FAILURES.labels("task").inc()
        return
    with _lock:
        started, before = _running.pop(task.id, (None, None))
    if started is None or before is None or before.queued_at is None or not task.args:
        return
    if signal == SIGNAL_ERROR:  # a transient failure, raised so Huey retries it
        TRANSCODE_SECONDS.labels("retry").observe(time.monotonic() - started)
        FAILURES.labels("transcode_retry").inc()
        return
    video_id, after = task.args[0], _video(app, task.args[0])
    if after is None:
        return
    if before.hls_dir is None and after.hls_dir and _first(video_id, "playable", before.queued_at):
        TIME_TO_PLAYABLE.observe((utcnow() - after.created_at).total_seconds())
    if after.queued_at is None and _first(video_id, "over", before.queued_at):
        seconds = (utcnow() - before.claimed_at).total_seconds() if before.claimed_at else time.monotonic() - started
        TRANSCODE_SECONDS.labels("failed" if after.error else "ready").observe(seconds)
        if after.error:
            FAILURES.labels("transcode").inc()


def _first(video_id, what, job):
    """Whether this is the first time `what` is counted for the video's job `job` in this process
    (tasks run inline in tests: a part ends inside its planner's task)."""
    with _lock:
        if _seen.get((video_id, what)) == job:
            return False
        if len(_seen) > 10_000:
            _seen.clear()
        _seen[(video_id, what)] = job
        return True


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

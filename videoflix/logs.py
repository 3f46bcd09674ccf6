"""Logging: one line per request with a request id; JSON lines when LOG_JSON is set.

In a Huey worker there is no request: every line logged while a task runs carries the task
instead (its name, arguments and id), so a worker's lines name the video they are about.
"""
import contextvars
import logging
import sys
import time
import uuid

from flask import g, request
from huey import signals
from pythonjsonlogger.json import JsonFormatter

access_log = logging.getLogger("videoflix.access")
# The task the current worker thread is running: {"task": ..., "task_id": ...} or None.
current_job = contextvars.ContextVar("videoflix_job", default=None)
JOB_LABEL_LENGTH = 120


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record; in a task, the task's label and fields."""

    def filter(self, record):
        from flask import has_request_context

        if has_request_context():
            record.request_id = g.get("request_id", "-")
            return True
        if getattr(record, "request_id", None):
            return True  # a line of the segment fast path, which names its request itself
        job = current_job.get()
        record.request_id = job["task"] if job else "-"
        if job:
            record.task_id = job["task_id"]
        return True


def job_label(task):
    """"transcode_video(12)": the task's short name and arguments, cut to a log-friendly length."""
    args = [repr(a) for a in task.args or ()] + [f"{k}={v!r}" for k, v in (task.kwargs or {}).items()]
    label = f"{task.name.rsplit('.', 1)[-1]}({', '.join(args)})"
    return label if len(label) <= JOB_LABEL_LENGTH else label[: JOB_LABEL_LENGTH - 3] + "..."


def watch_jobs(huey):
    """Track the running task through Huey's signals (emitted in the thread that runs it).
    Call once per Huey instance (tasks.init_app does, for each queue of an app)."""
    @huey.signal(signals.SIGNAL_EXECUTING)
    def _started(signal, task, *args):
        current_job.set({"task": job_label(task), "task_id": task.id})

    @huey.signal(
        signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR, signals.SIGNAL_INTERRUPTED, signals.SIGNAL_TIMEOUT,
        signals.SIGNAL_CANCELED, signals.SIGNAL_LOCKED, signals.SIGNAL_RATE_LIMITED,
    )
    def _finished(signal, task, *args):
        current_job.set(None)


def configure_logging(json_lines=False, level=logging.INFO):
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_videoflix", False)]:
        root.removeHandler(old)
    handler._videoflix = True
    root.addHandler(handler)
    root.setLevel(level)


def init_app(app):
    if not app.testing:
        configure_logging(app.config["LOG_JSON"])

    @app.before_request
    def start_timer():
        g.request_id = request_id_from(request.headers.get("X-Request-ID", ""))
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        full_path, path = loggable_paths()
        log_access(request.method, full_path, path, response.status_code, elapsed_ms)
        return response


# The WSGI environ's key for the request's URL rule (the route template), set by Flask's first
# hook or by a fast path that answers without Flask: request metrics count by it.
ROUTE_KEY = "videoflix.route"


def request_id_from(incoming):
    """The caller's X-Request-ID when it is sane (printable, at most 64 characters), else a new one."""
    return incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex


def log_access(method, full_path, path, status, elapsed_ms, request_id=None):
    """The one access log line of a request. Inside Flask the request id comes from the request
    context; the segment fast path, which has none, passes it."""
    extra = {"method": method, "path": path, "status": status, "ms": round(elapsed_ms, 1)}
    if request_id is not None:
        extra["request_id"] = request_id
    access_log.info("%s %s %s %.1fms", method, full_path, status, elapsed_ms, extra=extra)


def loggable_paths():
    """(path with query, path) of the request for the access log.

    A route with a `token` argument (activation, password reset) carries a secret in its path: its
    URL rule (/api/password_confirm/<uidb64>/<token>/) is logged instead, without the query.
    """
    if request.url_rule is not None and "token" in (request.view_args or {}):
        return request.url_rule.rule, request.url_rule.rule
    return request.full_path.rstrip("?"), request.path

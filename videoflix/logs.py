"""Logging: one line per request with a request id; JSON lines when LOG_JSON is set."""
import logging
import sys
import time
import uuid

from flask import g, request
from pythonjsonlogger.json import JsonFormatter

access_log = logging.getLogger("videoflix.access")


class RequestIdFilter(logging.Filter):
    """Adds the current request's id (or "-") to every record."""

    def filter(self, record):
        from flask import has_request_context

        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


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
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        access_log.info(
            "%s %s %s %.1fms",
            request.method,
            request.full_path.rstrip("?"),
            response.status_code,
            elapsed_ms,
            extra={"method": request.method, "path": request.path, "status": response.status_code, "ms": round(elapsed_ms, 1)},
        )
        return response

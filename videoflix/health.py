"""GET /api/health/: is every dependency of this process reachable? For load balancers and Docker.

No authentication, so the body names each check and how long it took, but never a host, a URL or
an exception message (those go to the log): the check's status and an error class are enough to
know where to look.
"""
import logging
import time

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields
from sqlalchemy import text

from videoflix.extensions import db
from videoflix.openapi import doc

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__, url_prefix="/api/health")

# A health probe must answer quickly even when Redis is a black hole.
REDIS_TIMEOUT_SECONDS = 2.0


def check_database():
    db.session.execute(text("SELECT 1"))
    return {}


def _redis_probe_client():
    """A Redis client with short timeouts, kept per app (the app's own client waits forever)."""
    client = current_app.extensions.get("videoflix_health_redis")
    if client is None:
        import redis

        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"],
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        current_app.extensions["videoflix_health_redis"] = client
    return client


def check_redis():
    """PING; without REDIS_URL the embedded defaults are in use and there is nothing to reach."""
    if not current_app.config["REDIS_URL"]:
        return {"backend": "embedded"}
    _redis_probe_client().ping()
    return {"backend": "redis"}


def check_queue():
    """The Huey storage answers a count of waiting tasks (enqueues nothing)."""
    from videoflix.tasks import huey

    backend = {"RedisStorage": "redis", "SqliteStorage": "sqlite", "MemoryStorage": "memory"}
    name = type(huey.storage).__name__
    return {"backend": backend.get(name, name), "pending": huey.pending_count()}


def check_ffmpeg():
    """The ffmpeg binary the transcoder would run answers `-version`."""
    from videoflix.videos.transcode import ffmpeg_version

    version = ffmpeg_version(current_app.config.get("FFMPEG_BINARY"))
    if version is None:
        raise RuntimeError("ffmpeg is not available")
    return {"version": version}


CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "queue": check_queue,
    "ffmpeg": check_ffmpeg,
}


def run_check(name, check):
    """Run one check: {"status": "ok", "ms": ..., **details} or {"status": "error", "ms", "error"}."""
    started = time.perf_counter()
    try:
        details = check()
        result = {"status": "ok"}
    except Exception as exc:  # any failure of a dependency is a failed check, never a 500
        log.warning("Health check %s failed: %s: %s", name, type(exc).__name__, exc)
        if name == "database":
            db.session.rollback()
        details, result = {}, {"status": "error", "error": type(exc).__name__}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    result.update(details)
    return result


class CheckSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "error"]})
    ms = fields.Float(required=True)
    error = fields.String(metadata={"description": "The error class of a failed check"})
    backend = fields.String()
    pending = fields.Integer()
    version = fields.String()


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "error"]})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), required=True)


health_schema = HealthSchema()


@bp.get("/")
@doc("Database, Redis, queue and ffmpeg checks (no authentication)", tags=["health"],
     responses={200: health_schema, 503: (health_schema, "A check failed")})
def health():
    """200 when every check passes, else 503; the same JSON shape either way."""
    checks = {name: run_check(name, check) for name, check in CHECKS.items()}
    ok = all(c["status"] == "ok" for c in checks.values())
    response = jsonify(health_schema.dump({"status": "ok" if ok else "error", "checks": checks}))
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app):
    app.register_blueprint(bp)

"""GET /api/health/: is every dependency of this process reachable? For load balancers and Docker.

No authentication, so the body names each check, its status, how long it took and a failed
check's error class, but never a host, a URL or an exception message (those go to the log). The
details (backends, queue length, the ffmpeg build) are for staff only: a request with a staff
user's access token (auth.credentials, as the media routes read and verify it) gets them too.
"""
import logging
import time

from flask import Blueprint, current_app, jsonify
from huey.storage import RedisStorage
from marshmallow import Schema, fields
from sqlalchemy import text

from videoflix.auth.credentials import VARY, access_token_from_request, verified_access_payload
from videoflix.auth.models import User
from videoflix.errors import APIError
from videoflix.extensions import db, redis_client
from videoflix.openapi import doc
from videoflix.tasks import QUEUES, queue_of
from videoflix.videos.storage.backends import round_trip
from videoflix.videos.storage.keys import media_store

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__, url_prefix="/api/health")

# This route needs no authentication, so what costs more than a query is answered once per
# process for a while: `ffmpeg -version` is a process spawn (per binary, for a minute); the
# storage check writes, reads and deletes an object in the bucket (per app, for STORAGE_CACHE_SECONDS:
# a load balancer polling every few seconds, or anyone else, does not turn into bucket writes).
FFMPEG_CACHE_SECONDS = 60.0
STORAGE_CACHE_SECONDS = 10.0
_ffmpeg_cache = {}  # binary setting -> (monotonic time of the check, version or None)
STORAGE_CACHE_KEY = "videoflix.health.storage"
QUEUE_BACKENDS = {"GuardedRedisStorage": "redis", "ForkSafeSqliteStorage": "sqlite", "MemoryStorage": "memory"}
STAFF_DETAILS = ("backend", "pending", "version")  # what a check reports beyond status, ms, error


def check_database():
    db.session.execute(text("SELECT 1"))
    return {}


def check_redis():
    """PING with the app's own client (its timeouts bound the wait); without REDIS_URL the
    embedded defaults are in use and there is nothing to reach."""
    client = redis_client()
    if client is None:
        return {"backend": "embedded"}
    client.ping()
    return {"backend": "redis"}


def check_queue():
    """The queues' storage answers a count of waiting tasks, all queues together (enqueues nothing)."""
    queues = [queue_of(name=name) for name in QUEUES]
    name = type(queues[0].storage).__name__
    return {"backend": QUEUE_BACKENDS.get(name, name), "pending": sum(q.pending_count() for q in queues)}


def check_ffmpeg():
    """The ffmpeg binary the transcoder would run answers `-version` (cached FFMPEG_CACHE_SECONDS)."""
    from videoflix.videos.media.ffmpeg import ffmpeg_version

    binary = current_app.config.get("FFMPEG_BINARY")
    version = _cached(_ffmpeg_cache, binary, FFMPEG_CACHE_SECONDS, lambda: ffmpeg_version(binary))
    if version is None:
        raise RuntimeError("ffmpeg is not available")
    return {"version": version}


def check_storage():
    """A write/read/delete round trip in the bucket (MEDIA_STORAGE=s3 only: local media need no
    network, and the disk is checked by every upload); its outcome, good or bad, is reused for
    STORAGE_CACHE_SECONDS."""
    cache = current_app.extensions.setdefault(STORAGE_CACHE_KEY, {})
    _cached(cache, "round trip", STORAGE_CACHE_SECONDS, lambda: round_trip(media_store()))
    return {"backend": "s3"}


def _cached(cache, key, seconds, compute):
    """compute()'s result, or the exception it raised (raised again), kept in `cache` under `key`
    for `seconds`."""
    checked_at, outcome = cache.get(key, (None, None))
    if checked_at is None or time.monotonic() - checked_at > seconds:
        try:
            outcome = compute()
        except Exception as exc:  # noqa: BLE001 - reported by run_check, like a fresh failure
            outcome = exc
        cache[key] = (time.monotonic(), outcome)
    if isinstance(outcome, Exception):
        raise outcome.with_traceback(None)
    return outcome


CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "queue": check_queue,
    "ffmpeg": check_ffmpeg,
    "storage": check_storage,
}


def checks_to_run():
    """Every check, without the storage check when media are local files."""
    local = current_app.config["MEDIA_STORAGE"] == "local"
    return {name: check for name, check in CHECKS.items() if not (local and name == "storage")}


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
@doc("Database, Redis, queue, ffmpeg (and object store) checks (no authentication; details for staff)",
     tags=["health"],
     responses={200: health_schema, 503: (health_schema, "A check failed")})
def health():
    """200 when every check passes, else 503; the same JSON shape either way."""
    checks = {}
    for name, check in checks_to_run().items():
        if name == "queue" and _queue_is_on_failed_redis(checks):
            # Same server: asking again would only wait out a second timeout.
            checks[name] = {"status": "error", "ms": 0.0, "error": checks["redis"]["error"], "backend": "redis"}
        else:
            checks[name] = run_check(name, check)
    ok = all(c["status"] == "ok" for c in checks.values())
    if not _asked_by_staff():
        checks = {name: {k: v for k, v in check.items() if k not in STAFF_DETAILS} for name, check in checks.items()}
    response = jsonify(health_schema.dump({"status": "ok" if ok else "error", "checks": checks}))
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    response.vary.update(VARY)
    return response


def _asked_by_staff():
    """True when the request carries a valid access token of an active staff user. A check that
    cannot be made (a dependency down) counts as no: the summary is always safe to give."""
    if access_token_from_request() is None:
        return False
    try:
        user = db.session.get(User, int(verified_access_payload()["sub"]))
    except APIError:
        return False
    except Exception as exc:  # noqa: BLE001 - Redis or the database is down: health reports that itself
        log.warning("Health: staff check not possible: %s", type(exc).__name__)
        db.session.rollback()
        return False
    return user is not None and user.is_active and user.is_staff


def _queue_is_on_failed_redis(checks):
    """True when the Redis check failed and the queue is stored on that same Redis."""
    return checks["redis"]["status"] == "error" and isinstance(queue_of().storage, RedisStorage)


def init_app(app):
    app.register_blueprint(bp)

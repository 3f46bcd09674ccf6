"""GET /api/health/: real checks against the configured database, Redis, queue and ffmpeg."""
import os

import pytest

from videoflix import create_app
from videoflix.tasks import huey, task

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connection is refused


@task()
def health_probe_task(n):
    """Only ever enqueued, never run: gives the queue something to count."""
    return n


def bare_app(app_config, **overrides):
    """An app without the fixture's teardown (which would talk to a broken Redis)."""
    return create_app({**app_config, **overrides})


def test_health_reports_every_check_ok(client, app):
    response = client.get("/api/health/")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"database", "redis", "queue", "ffmpeg"}
    assert all(c["status"] == "ok" and isinstance(c["ms"], float) for c in checks.values())
    expected_redis = "redis" if app.config["REDIS_URL"] else "embedded"
    assert checks["redis"]["backend"] == expected_redis
    assert checks["queue"]["pending"] == 0
    assert checks["ffmpeg"]["version"].startswith("ffmpeg version")
    assert response.headers["Cache-Control"] == "no-store"


def test_health_needs_no_authentication_and_refuses_writes(client):
    assert client.get("/api/health/").status_code == 200
    response = client.post("/api/health/")
    assert response.status_code == 405
    assert response.get_json() == {"detail": "Method not allowed."}


def test_unreachable_redis_makes_health_503(app_config):
    app = bare_app(app_config, REDIS_URL=UNREACHABLE_REDIS)
    response = app.test_client().get("/api/health/")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["redis"]["error"] == "ConnectionError"
    # The other checks still ran and passed; no address leaks into the public body.
    assert body["checks"]["database"]["status"] == "ok"
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_unreachable_database_makes_health_503(app_config):
    app = bare_app(app_config, SQLALCHEMY_DATABASE_URI="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/api/health/")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"]["status"] == "error"
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert body["checks"]["ffmpeg"]["status"] == "ok"


@pytest.mark.parametrize("use_redis", [False, True], ids=["sqlite-queue", "redis-queue"])
def test_queue_check_counts_pending_tasks(app_config, tmp_path, use_redis):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if use_redis and not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    app = bare_app(
        app_config,
        HUEY_IMMEDIATE=False,
        HUEY_FILE=str(tmp_path / "queue.sqlite3"),
        REDIS_URL=redis_url if use_redis else None,
    )
    try:
        with app.app_context():  # a task goes to the queue of the app that calls it
            health_probe_task(1)
            health_probe_task(2)
        body = app.test_client().get("/api/health/").get_json()
        assert body["checks"]["queue"] == {
            "status": "ok",
            "ms": body["checks"]["queue"]["ms"],
            "backend": "redis" if use_redis else "sqlite",
            "pending": 2,
        }
    finally:
        with app.app_context():
            huey.flush()


@pytest.fixture
def silent_redis():
    """A TCP port that accepts connections and never answers: a hung Redis."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


def test_a_hung_redis_makes_health_503_within_seconds(app_config, tmp_path, silent_redis):
    import time

    from videoflix.extensions import redis_client

    app = bare_app(app_config, REDIS_URL=silent_redis, HUEY_IMMEDIATE=False)
    started = time.monotonic()
    response = app.test_client().get("/api/health/")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["redis"]["status"] == "error" and checks["redis"]["error"] == "TimeoutError"
    # The queue lives on the same Redis: reported failed without waiting out a second timeout.
    assert checks["queue"] == {"status": "error", "ms": 0.0, "error": "TimeoutError", "backend": "redis"}
    assert elapsed < 8, elapsed  # the image's HEALTHCHECK gives up after 8 s
    with app.app_context():  # the probe used the app's client, not one of its own
        assert "videoflix_redis" in app.extensions and redis_client() is app.extensions["videoflix_redis"]


def test_ffmpeg_runs_once_per_minute_however_often_health_is_called(client, monkeypatch):
    from videoflix import health
    from videoflix.videos import transcode

    calls = []

    def spy(binary=None):
        calls.append(binary)
        return "ffmpeg version spy"

    monkeypatch.setattr(transcode, "ffmpeg_version", spy)
    monkeypatch.setattr(health, "_ffmpeg_cache", {})
    first, second = client.get("/api/health/").get_json(), client.get("/api/health/").get_json()
    assert first["checks"]["ffmpeg"]["version"] == second["checks"]["ffmpeg"]["version"] == "ffmpeg version spy"
    assert len(calls) == 1

    monkeypatch.setattr(health, "FFMPEG_CACHE_SECONDS", 0.0)  # the minute has passed
    client.get("/api/health/")
    assert len(calls) == 2

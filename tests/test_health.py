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
        huey.flush()

"""GET /api/health/: real checks against the configured database, Redis, queue and ffmpeg."""
import os
import re
import socket
from pathlib import Path

import pytest

from videoflix import create_app
from videoflix.config import REDIS_TIMEOUTS
from videoflix.tasks import huey, task

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connection is refused


@task()
def health_probe_task(n):
    """Only ever enqueued, never run: gives the queue something to count."""
    return n


def bare_app(app_config, **overrides):
    """An app without the fixture's teardown (which would talk to a broken Redis)."""
    return create_app({**app_config, **overrides})


@pytest.fixture
def staff_client(client, make_user, login):
    """`client`, signed in as an active staff user: health shows it the details."""
    make_user("staff@example.com", staff=True)
    login("staff@example.com")
    return client


def test_health_reports_every_check_ok(staff_client, app):
    response = staff_client.get("/api/health/")
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
def test_queue_check_counts_pending_tasks(app_config, tmp_path, use_redis, request):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if use_redis and not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    app_config.update(HUEY_IMMEDIATE=False, HUEY_FILE=str(tmp_path / "queue.sqlite3"),
                      REDIS_URL=redis_url if use_redis else None)
    client = request.getfixturevalue("staff_client")
    try:
        app = request.getfixturevalue("app")
        with app.app_context():  # a task goes to the queue of the app that calls it
            health_probe_task(1)
            health_probe_task(2)
        body = client.get("/api/health/").get_json()
        assert body["checks"]["queue"] == {
            "status": "ok",
            "ms": body["checks"]["queue"]["ms"],
            "backend": "redis" if use_redis else "sqlite",
            "pending": 2,
        }
    finally:
        with app.app_context():
            huey.flush()


class SilentServer:
    """A TCP port that accepts connections and never answers: a hung Redis."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.url = f"redis://127.0.0.1:{self.socket.getsockname()[1]}/0"

    def connections(self):
        """How many clients have connected so far (the kernel queued them; accepted here)."""
        self.socket.setblocking(False)
        count = 0
        while True:
            try:
                client, _ = self.socket.accept()
            except BlockingIOError:
                return count
            client.close()
            count += 1


@pytest.fixture
def silent_redis():
    server = SilentServer()
    yield server
    server.socket.close()


def test_the_redis_timeouts_fit_the_images_healthcheck():
    """The health check waits on Redis at most one socket timeout (the test below): that must stay
    below the time the image's HEALTHCHECK gives the request."""
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    [healthcheck_timeout] = re.findall(r"/api/health/.*timeout=(\d+)", dockerfile)
    assert max(REDIS_TIMEOUTS.values()) < int(healthcheck_timeout)


def test_a_hung_redis_makes_health_503_after_one_timeout(app_config, silent_redis, monkeypatch):
    from videoflix.extensions import redis_client

    # The app's own timeouts, shortened so the test need not wait them out.
    monkeypatch.setitem(REDIS_TIMEOUTS, "socket_timeout", 0.2)
    app = bare_app(app_config, REDIS_URL=silent_redis.url, HUEY_IMMEDIATE=False)
    response = app.test_client().get("/api/health/")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["redis"]["status"] == "error" and checks["redis"]["error"] == "TimeoutError"
    # The queue lives on the same Redis: reported failed without asking it (no second timeout).
    assert checks["queue"] == {"status": "error", "ms": 0.0, "error": "TimeoutError"}
    assert silent_redis.connections() == 1
    with app.app_context():  # the probe used the app's client, with the app's timeouts
        client = redis_client()
        assert client is app.extensions["videoflix_redis"]
        assert client.connection_pool.connection_kwargs["socket_timeout"] == 0.2


def test_ffmpeg_runs_once_per_minute_however_often_health_is_called(staff_client, monkeypatch):
    client = staff_client
    from videoflix import health
    from videoflix.videos.media import ffmpeg

    calls = []

    def spy(binary=None):
        calls.append(binary)
        return "ffmpeg version spy"

    monkeypatch.setattr(ffmpeg, "ffmpeg_version", spy)
    monkeypatch.setattr(health, "_ffmpeg_cache", {})
    first, second = client.get("/api/health/").get_json(), client.get("/api/health/").get_json()
    assert first["checks"]["ffmpeg"]["version"] == second["checks"]["ffmpeg"]["version"] == "ffmpeg version spy"
    assert len(calls) == 1

    [(binary, (checked_at, version))] = health._ffmpeg_cache.items()
    health._ffmpeg_cache[binary] = (checked_at - health.FFMPEG_CACHE_SECONDS - 1, version)  # a minute later
    client.get("/api/health/")
    assert len(calls) == 2


def test_details_are_for_staff_only(client, make_user, login, app):
    """Anyone gets each check's status and timing; backends, queue length and the ffmpeg build
    only a signed-in staff member (a plain user's or a forged token counts as anyone)."""
    summary = {"status", "ms"}
    anonymous = client.get("/api/health/")
    assert anonymous.status_code == 200 and anonymous.get_json()["status"] == "ok"
    assert {name: set(check) for name, check in anonymous.get_json()["checks"].items()} == {
        name: summary for name in ("database", "redis", "queue", "ffmpeg")}
    assert "Authorization" in anonymous.headers["Vary"] and "Cookie" in anonymous.headers["Vary"]
    forged = client.get("/api/health/", headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 200 and all(set(c) == summary for c in forged.get_json()["checks"].values())

    make_user("viewer@example.com")
    login("viewer@example.com")
    viewer = client.get("/api/health/").get_json()["checks"]
    assert all(set(c) == summary for c in viewer.values())

    make_user("staff@example.com", staff=True)
    login("staff@example.com")
    token = client.get_cookie("access_token").value
    client.delete_cookie("access_token")
    client.delete_cookie("refresh_token")
    staff = client.get("/api/health/", headers={"Authorization": f"Bearer {token}"}).get_json()["checks"]
    assert staff["ffmpeg"]["version"].startswith("ffmpeg version")
    assert staff["queue"]["pending"] == 0 and staff["database"] == {"status": "ok", "ms": staff["database"]["ms"]}
    assert staff["redis"]["backend"] == ("redis" if app.config["REDIS_URL"] else "embedded")

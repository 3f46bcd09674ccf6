"""Fixtures: `app`, `client`, `runner`, and helpers to make users and log in; and the markers.

The suite runs on in-memory SQLite and no Redis by default; set TEST_DATABASE_URL and
TEST_REDIS_URL to run the same tests against PostgreSQL and Redis (as .ci/run does).

Markers (pyproject.toml lists them; `make test-fast` leaves out slow, browser and s3):
- slow: real ffmpeg runs, real processes, browsers. Set here on every test that uses a clip
  (tests/fixtures/clips.py) and on every end-to-end test (tests/e2e/), besides the modules'
  own marks.
- browser: Debian's Chromium (the modules under tests/e2e/ that drive it).
- s3: the session's own SeaweedFS (set here on every test that uses it).
- media_store: the module reads or writes the media store; CI runs these again with
  TEST_MEDIA_STORAGE=s3 (.ci/run).
"""
import os
import uuid

import pytest
from flask.testing import FlaskClient

from tests.fixtures.databases import scratch_database
from videoflix import create_app
from videoflix.config import TestingConfig
from videoflix.extensions import db, limiter, redis_client

# Fixture modules: clips (real ffmpeg clips) and the streaming helpers (a playable video).
# object_store: a real SeaweedFS (TEST_MEDIA_STORAGE=s3 runs every test's media in its bucket).
pytest_plugins = ["tests.fixtures.clips", "tests.fixtures.streaming", "tests.fixtures.object_store",
                  "tests.fixtures.filesystems"]

E2E_DIR = os.path.join(os.path.dirname(__file__), "e2e")
S3_FIXTURES = {"seaweedfs", "s3_bucket", "s3_settings"}


def pytest_collection_modifyitems(items):
    """The marks a test's fixtures or folder imply (see the module docstring)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if any(name.startswith("clip_") for name in names) or str(item.path).startswith(E2E_DIR):
            item.add_marker(pytest.mark.slow)
        if names & S3_FIXTURES:
            item.add_marker(pytest.mark.s3)


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
S3_MODE = os.environ.get("TEST_MEDIA_STORAGE") == "s3"  # as tests.fixtures.object_store.S3_MODE
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def database_url():
    """In-memory SQLite, or a scratch PostgreSQL database created next to TEST_DATABASE_URL for
    this session (so concurrent runs never share tables) and dropped at the end."""
    if not TEST_DATABASE_URL:
        yield "sqlite://"
        return
    with scratch_database(TEST_DATABASE_URL) as url:
        yield url


@pytest.fixture
def app_config(request, tmp_path, database_url):
    """Overrides for the app under test; tests may change it before `app` is created. With
    TEST_MEDIA_STORAGE=s3, media go to a prefix of the session's SeaweedFS bucket."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "REDIS_PREFIX": f"vftest:{uuid.uuid4().hex[:8]}:",
    }
    if S3_MODE:
        config.update(request.getfixturevalue("s3_settings"))
    return config


@pytest.fixture
def app(app_config):
    app_config["RATELIMIT_KEY_PREFIX"] = app_config["REDIS_PREFIX"] + "rl"
    # Flask-Limiter keeps the first app's RATELIMIT_KEY_PREFIX for the process, but builds its
    # storage for every app: in Redis, this test's counters go under a key prefix of its own, so
    # the reset below removes only them (limits' RedisStorage.reset removes every key under its
    # prefix: with the default one, the counters of the tests in the suite's other processes too).
    app_config.setdefault("RATELIMIT_STORAGE_OPTIONS", {**TestingConfig.RATELIMIT_STORAGE_OPTIONS,
                                                        "key_prefix": app_config["REDIS_PREFIX"] + "LIMITS"})
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
        # The limiter is a process-wide singleton: start every test with empty counters.
        limiter.reset()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
        _flush_redis(app)


def _flush_redis(app):
    """Delete this test's keys from the shared test Redis (a test that runs its own redis-server
    cleans up by stopping it)."""
    client = redis_client()
    if client is not None and app.config["REDIS_URL"] == TEST_REDIS_URL:
        keys = list(client.scan_iter(app.config["REDIS_PREFIX"] + "*"))
        if keys:
            client.delete(*keys)
        client.close()
        client.connection_pool.disconnect()  # close() keeps the pool's sockets open until GC


@pytest.fixture
def outbox(app):
    """Messages the app hands to Flask-Mail (sending is suppressed in tests)."""
    from videoflix.extensions import mail

    with mail.record_messages() as messages:
        yield messages


class BufferedClient(FlaskClient):
    """Reads and closes every response, so the files send_file opened are closed in the test."""

    def open(self, *args, buffered=True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = BufferedClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """make_user(email, password=PASSWORD, active=True, staff=False) -> user id."""

    def make(email="user@example.com", password=PASSWORD, *, active=True, staff=False):
        from videoflix.auth.users import create_user

        with app.app_context():
            user = create_user(email, password, active=active, staff=staff)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def login(client):
    """login(email, password) -> the response; the client keeps the cookies."""

    def do(email="user@example.com", password=PASSWORD):
        response = client.post("/api/login/", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        return response

    return do


@pytest.fixture
def auth(make_user, login):
    """A logged-in active user: returns the user's id."""
    user_id = make_user()
    login()
    return user_id

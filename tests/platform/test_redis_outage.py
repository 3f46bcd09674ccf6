"""A Redis outage, black-box: the app is served by `flask run` in a subprocess on a Redis of this
test's own, which the test stops and starts, or hangs (SIGSTOP) and resumes.

While Redis is down nothing answers 500: what needs Redis (the revocation check behind every
authenticated route, the queues behind register and password reset) answers 503 JSON with
Retry-After; sign-in works, its rate limits counted in the process's memory; a revoked token is
never let through. Once Redis is back, everything works again without a restart and
/api/health/ says so. Needs redis-server on PATH (CI runs it: .ci/outage.sh).
"""
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD
from tests.fixtures.outage_app import outage_config
from tests.fixtures.redis_server import WAIT_SECONDS, OwnRedis, free_port, needs_redis_server, wait_until
from videoflix import create_app
from videoflix.extensions import db
from videoflix.tasks import MAIL, queue_of
from videoflix.videos.models import Video

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, needs_redis_server]


class Server:
    """The app under `flask run` (threaded, like `make run`), in a subprocess."""

    def __init__(self, env, log_path):
        self.port, self.log_path = free_port(), log_path
        self.base = f"http://127.0.0.1:{self.port}"
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "tests.fixtures.outage_app:make_app", "run",
                 "--port", str(self.port), "--no-reload", "--no-debugger", "--with-threads"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(self.up, "the server to start", log_path)

    def up(self):
        try:
            return requests.get(self.base + "/api/health/", timeout=5).status_code in (200, 503)
        except requests.ConnectionError:
            return False

    def healthy(self):
        return requests.get(self.base + "/api/health/", timeout=5).status_code == 200

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=WAIT_SECONDS)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, clip_360p):
    """Own Redis, a database with an active user and a ready video, and the served app."""
    folder = tmp_path_factory.mktemp("outage")
    own = OwnRedis(folder)
    own.start()
    prefix = f"vfoutage:{uuid.uuid4().hex[:8]}:"
    config = outage_config(own.url, f"sqlite:///{folder / 'db.sqlite3'}", str(folder / "media"), prefix)
    setup = create_app({**config, "HUEY_IMMEDIATE": True})  # transcodes the clip inline
    with setup.app_context():
        db.create_all()
    runner = setup.test_cli_runner()
    assert runner.invoke(args=["create-user", "user@example.com", "--password", PASSWORD]).exit_code == 0
    added = runner.invoke(args=["add-video", str(clip_360p), "--title", "Clip", "--category", "Drama"])
    assert added.exit_code == 0, added.output
    with setup.app_context():
        video = db.session.execute(db.select(Video)).scalar_one()
        assert video.status == "ready", video.error
        video_id, label = video.id, video.renditions[0]["label"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOFLIX_", "FLASK_")) and k not in {
        "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "DB_NAME"}}
    env.update(OUTAGE_TEST_REDIS=own.url, OUTAGE_TEST_DB=config["SQLALCHEMY_DATABASE_URI"],
               OUTAGE_TEST_MEDIA=config["MEDIA_ROOT"], OUTAGE_TEST_PREFIX=prefix, PYTHONPATH=str(ROOT))
    server = Server(env, folder / "server.log")
    stack = Stack(own, server, create_app(config), video_id, label)
    yield stack
    server.stop()
    own.resume()
    own.stop()
    log = server.log_path.read_text()
    print(log)  # .ci/outage.sh shows it: one line per request, the outage's warnings
    assert "Traceback" not in log and '" 500 ' not in log, log


class Stack:
    def __init__(self, own, server, app, video_id, label):
        self.redis, self.server, self.app = own, server, app
        self.video_id, self.label = video_id, label

    def session(self):
        """A signed-in requests session (Redis must be up: nothing else is needed for it)."""
        session = requests.Session()
        response = session.post(self.url("/api/login/"), json={"email": "user@example.com", "password": PASSWORD})
        assert response.status_code == 200, response.text
        return session

    def url(self, path):
        return self.server.base + path

    def playlist_and_segment(self, session):
        playlist = f"/api/video/{self.video_id}/{self.label}/index.m3u8"
        response = session.get(self.url(playlist), timeout=10)
        segment = re.search(r"^(seg\w+\.ts\S*)$", response.text, re.MULTILINE)
        return playlist, f"/api/video/{self.video_id}/{self.label}/{segment.group(1) if segment else 'seg000.ts'}"

    def everything(self, session, segment_paths):
        """The answer of every route, in the order a client would call them: {name: response}."""
        playlist, segment = segment_paths
        email = f"new-{uuid.uuid4().hex[:8]}@example.com"
        calls = {
            "login": ("post", "/api/login/", {"email": "user@example.com", "password": PASSWORD}),
            "list": ("get", "/api/video/", None),
            "playlist": ("get", playlist, None),
            "segment": ("get", segment, None),
            "refresh": ("post", "/api/token/refresh/", None),
            "register": ("post", "/api/register/", {"email": email, "password": "long-enough-passphrase",
                                                     "confirmed_password": "long-enough-passphrase"}),
            "password_reset": ("post", "/api/password_reset/", {"email": "user@example.com"}),
            "health": ("get", "/api/health/", None),
            "logout": ("post", "/api/logout/", None),
        }
        answers, took = {}, {}
        for name, (method, path, body) in calls.items():
            started = time.monotonic()
            answers[name] = session.request(method, self.url(path), json=body, timeout=30)
            took[name] = f"{answers[name].status_code} in {(time.monotonic() - started) * 1000:.0f} ms"
        print("answers:", took)  # figures for .ci/outage.sh's output; not asserted
        return answers

    def back_to_normal(self):
        wait_until(self.server.healthy, "/api/health/ to say ok", self.server.log_path)


# What needs Redis while it is down: 503 + Retry-After. Sign-in needs only the database (its
# rate limits fall back to memory).
DOWN = {"login": 200, "list": 503, "playlist": 503, "segment": 503, "refresh": 503, "register": 503,
        "password_reset": 503, "health": 503, "logout": 503}
UP = {"login": 200, "list": 200, "playlist": 200, "segment": 200, "refresh": 200, "register": 201,
      "password_reset": 200, "health": 200, "logout": 200}


def statuses(answers):
    return {name: response.status_code for name, response in answers.items()}


def assert_unavailable_answers(answers):
    for name, response in answers.items():
        assert response.headers["Content-Type"].startswith("application/json"), name
        if response.status_code == 503 and name != "health":
            assert response.json() == {"detail": response.json()["detail"]} and response.json()["detail"]
            assert int(response.headers["Retry-After"]) >= 1, name
    assert answers["health"].json()["checks"]["redis"]["status"] == "error"


def check_normal_service(stack):
    session = stack.session()
    paths = stack.playlist_and_segment(session)
    answers = stack.everything(session, paths)
    assert statuses(answers) == UP, {n: r.text[:200] for n, r in answers.items()}


def test_redis_stopped_then_started(stack):
    session = stack.session()
    paths = stack.playlist_and_segment(session)

    stack.redis.stop()
    try:
        answers = stack.everything(session, paths)
        assert statuses(answers) == DOWN, {n: r.text[:200] for n, r in answers.items()}
        assert_unavailable_answers(answers)
        # Sign-in is still rate limited, from memory: the fourth failure for one account is refused.
        wrong = [session.post(stack.url("/api/login/"), json={"email": "guess@example.com", "password": "wrong"},
                              timeout=30).status_code for _ in range(4)]
        assert wrong == [400, 400, 400, 429]
    finally:
        stack.redis.start()

    stack.back_to_normal()
    check_normal_service(stack)
    # Redis came back empty (no persistence here): only the e-mails of the last round are queued.
    assert queue_of(stack.app, MAIL).pending_count() == 2


def test_redis_hung_then_resumed_never_lets_a_revoked_token_through(stack):
    session = stack.session()
    paths = stack.playlist_and_segment(session)
    revoked = stack.session()
    stolen = dict(revoked.cookies)
    assert revoked.post(stack.url("/api/logout/"), timeout=10).status_code == 200

    stack.redis.hang()
    try:
        answers = stack.everything(session, paths)
        assert statuses(answers) == DOWN, {n: r.text[:200] for n, r in answers.items()}
        assert_unavailable_answers(answers)
        replay = requests.get(stack.url("/api/video/"), cookies=stolen, timeout=30)
        assert replay.status_code == 503 and replay.headers["Retry-After"]
    finally:
        stack.redis.resume()

    stack.back_to_normal()
    assert requests.get(stack.url("/api/video/"), cookies=stolen, timeout=30).status_code == 401
    check_normal_service(stack)

"""A real `flask worker` does what is asked after it went idle: an activation e-mail (register through
the API of a real server), a password reset e-mail, and a transcode of a real clip; the same after it
was idle past the consumer's longest pause between polls.

On the embedded default (SQLite, the file queue) the e-mail consumer, a process `flask worker` forks,
used to keep reading a deleted copy of the queue file's WAL index once the worker was up: nothing
queued afterwards was ever sent (issue 18). With TEST_DATABASE_URL / TEST_REDIS_URL the same tests
run the worker on PostgreSQL and Redis, as the rest of the suite does.

Nothing in the test process touches the queue before the worker is up: a connection of ours open
while the worker started kept SQLite from deleting those files, and so hid the defect.
"""
import inspect
import re
import signal
import time

import pytest
import requests
from huey.consumer import Consumer

from tests.fixtures.accounts import STRONG, link_from, printed_emails
from tests.fixtures.live_server import file_database, serve
from tests.fixtures.videos import add_clip, row
from tests.fixtures.workers import kill_group, start_worker, stop, wait_for
from videoflix.auth.emails import ACTIVATION_SUBJECT, RESET_SUBJECT

pytestmark = pytest.mark.slow
IDLE_SECONDS = 5  # by then each consumer has found its queue empty a dozen times
NEW_PASSWORD = "Green-Ladder-Evening-17"


def longest_backoff():
    """(seconds an idle consumer takes to reach its longest pause between polls of an empty queue,
    that pause). Huey's Consumer defaults, which `flask worker` keeps (it reads no setting for them):
    0.1 s, each pause 1.15 times the last, at most 10 s; so about 66 s, then every 10 s."""
    defaults = inspect.signature(Consumer.__init__).parameters
    pause, factor, longest = (defaults[name].default for name in ("initial_delay", "backoff", "max_delay"))
    idle = 0.0
    while pause < longest:
        idle += pause
        pause *= factor
    return idle, longest


@pytest.fixture
def app_config(app_config, tmp_path):
    """The suite's app on a database and queue a worker process can share: a SQLite file (unless
    PostgreSQL) and a queue file (unless Redis)."""
    file_database(app_config, tmp_path / "db.sqlite3")
    app_config.update(HUEY_IMMEDIATE=False, HUEY_FILE=str(tmp_path / "queue.sqlite3"))
    return app_config


@pytest.fixture
def server(app):
    with serve(app) as base_url:
        yield base_url


def consumers_started(proc):
    """Both consumers run: the e-mail consumer, and the process worker (forked after the consumer
    closed its own connection to the queue)."""
    log = proc.log_path.read_text()
    return "Huey consumer started with 1 thread" in log and re.search(r"Worker process \d+ ready", log)


@pytest.fixture
def worker(app, tmp_path):
    """A real `flask worker` on the app's database, queue and media folder, once its consumers run."""
    proc = start_worker(app, tmp_path, "worker")
    try:
        wait_for(lambda: consumers_started(proc), proc, "the worker's consumers to start")
        yield proc
    finally:
        if proc.poll() is None:
            stop(proc, signal.SIGTERM)
        kill_group(proc)  # the process workers, should one outlive the consumer


def ask_after_idle(app, server, worker, member, clip, idle_seconds):
    """Wait idle_seconds, then register, ask a password reset for `member` and upload `clip`; check
    both e-mails reach the worker's log with links that work, and the video becomes ready."""
    time.sleep(idle_seconds)
    api = requests.Session()
    newcomer = "newcomer@example.com"
    answer = api.post(f"{server}/api/register/", json={
        "email": newcomer, "password": STRONG, "confirmed_password": STRONG}, timeout=30)
    assert answer.status_code == 201, answer.text
    answer = api.post(f"{server}/api/password_reset/", json={"email": member}, timeout=30)
    assert answer.status_code == 200, answer.text
    video_id = add_clip(app, clip, title="Queued after idle")

    log = worker.log_path.read_text
    wait_for(lambda: printed_emails(log(), to=newcomer), worker, "the activation e-mail")
    wait_for(lambda: printed_emails(log(), to=member), worker, "the password reset e-mail")
    wait_for(lambda: row(app, video_id)["status"] in ("ready", "failed"), worker, "the transcode")

    video = row(app, video_id)
    assert video["status"] == "ready", log()
    assert video["progress"] == 100 and video["hls_dir"] and video["renditions"]
    [activation] = printed_emails(log(), to=newcomer)
    assert activation.subject == ACTIVATION_SUBJECT
    _, uid, token = link_from(activation)
    answer = api.get(f"{server}/api/activate/{uid}/{token}/", timeout=30)
    assert answer.json() == {"message": "Account successfully activated."}
    assert log_in(api, server, newcomer, STRONG)

    [reset] = printed_emails(log(), to=member)
    assert reset.subject == RESET_SUBJECT
    _, uid, token = link_from(reset)
    answer = api.post(f"{server}/api/password_confirm/{uid}/{token}/", timeout=30,
                      json={"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert answer.json() == {"detail": "Your Password has been successfully reset."}
    assert log_in(api, server, member, NEW_PASSWORD)


def log_in(api, server, email, password):
    """True when the API signs `email` in (and sets the access cookie)."""
    answer = api.post(f"{server}/api/login/", json={"email": email, "password": password}, timeout=30)
    return answer.status_code == 200 and answer.json()["detail"] == "Login successful" and "access_token" in api.cookies


def test_emails_and_a_transcode_asked_after_the_worker_went_idle_are_done(
        app, server, worker, make_user, clip_360p):
    make_user("member@example.com")
    ask_after_idle(app, server, worker, "member@example.com", clip_360p, IDLE_SECONDS)


def test_emails_and_a_transcode_asked_after_the_longest_backoff_are_done(
        app, server, worker, make_user, clip_360p):
    if app.config["REDIS_URL"]:
        pytest.skip("on Redis a consumer waits on the queue itself (a blocking read): it never backs off")
    reached, longest = longest_backoff()
    make_user("member@example.com")
    ask_after_idle(app, server, worker, "member@example.com", clip_360p, reached + longest)

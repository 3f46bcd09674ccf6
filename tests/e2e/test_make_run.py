"""`make run` as a newcomer meets it, on the embedded default (SQLite, the file queue, e-mails
printed): the real processes (`flask db upgrade`, then `flask dev`, which serves the API and starts
`flask worker`), a pause while the newcomer reads the console, then register, follow the link of the
printed activation e-mail, and sign in.

Until issue 18 this lost the activation e-mail whenever one registered more than a second or so
after the start: the e-mail consumer the worker forks read a stale copy of the queue file.
"""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.fixtures.accounts import STRONG, link_from, printed_emails
from tests.fixtures.redis_server import free_port
from tests.fixtures.workers import ROOT, clean_environ, kill_group, wait_for
from videoflix.auth.emails import ACTIVATION_SUBJECT

pytestmark = pytest.mark.slow
PAUSE_SECONDS = 15  # the console is read, the front end opened: the worker has long gone idle
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]  # as the Makefile's $(FLASK)


def answers(port):
    """The server accepts connections. (Not /api/health/: it opens the queue file, which a
    newcomer's browser never asks for, and which hid the lost e-mails.)"""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _as_in_a_terminal():
    """Ctrl-C reaches `make run` as in a terminal: a suite started in the background by a shell
    without job control (`cmd &` in a script) inherits SIGINT ignored, and Python then keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def make_run(tmp_path):
    """`make run`'s commands, isolated as .ci/run-check.sh does it (own database, queue file, media
    folder and port); yields (process, base URL) once it serves. Ctrl-C (SIGINT to the process
    group) stops it afterwards."""
    port = free_port()
    env = clean_environ() | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'videoflix.sqlite3'}", "HUEY_FILE": str(tmp_path / "huey.sqlite3"),
        "MEDIA_ROOT": str(tmp_path / "media"), "PORT": str(port), "PYTHONDONTWRITEBYTECODE": "1",
    }
    migrate = subprocess.run([*FLASK, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    log_path = tmp_path / "make-run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*FLASK, "dev"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_as_in_a_terminal)
    proc.log_path = log_path
    try:
        wait_for(lambda: answers(port), proc, "make run to serve")
        yield proc, f"http://127.0.0.1:{port}"
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            tree = subprocess.run(["ps", "-o", "pid,stat,wchan:20,etime,args", "-g", str(proc.pid)],
                                  capture_output=True, text=True).stdout
            os.kill(proc.pid, signal.SIGUSR1)  # flask dev writes every thread's stack to its log
            time.sleep(2)
            pytest.fail(f"Ctrl-C did not stop make run within 60 s.\nprocesses:\n{tree}\n"
                        f"log:\n{log_path.read_text()[-6000:]}")
    finally:
        kill_group(proc)


def test_register_after_a_pause_then_activate_from_the_printed_email_and_sign_in(make_run):
    proc, base = make_run
    time.sleep(PAUSE_SECONDS)
    api = requests.Session()
    email = "newcomer@example.com"
    answer = api.post(f"{base}/api/register/", timeout=30,
                      json={"email": email, "password": STRONG, "confirmed_password": STRONG})
    assert answer.status_code == 201, answer.text
    answer = api.post(f"{base}/api/login/", json={"email": email, "password": STRONG}, timeout=30)
    assert answer.status_code == 403  # not activated yet

    wait_for(lambda: printed_emails(proc.log_path.read_text(), to=email), proc, "the activation e-mail")
    [message] = printed_emails(proc.log_path.read_text(), to=email)
    assert message.subject == ACTIVATION_SUBJECT
    url, uid, token = link_from(message)
    assert "/pages/auth/activate.html?uid=" in url  # the front end's page
    answer = api.get(f"{base}/api/activate/{uid}/{token}/", timeout=30)
    assert answer.json() == {"message": "Account successfully activated."}

    answer = api.post(f"{base}/api/login/", json={"email": email, "password": STRONG}, timeout=30)
    assert answer.status_code == 200 and answer.json()["user"]["email"] == email
    answer = api.get(f"{base}/api/video/", timeout=30)  # the session cookie works
    assert answer.status_code == 200 and answer.json() == []

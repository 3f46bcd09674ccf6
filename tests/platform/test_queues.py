"""Two apps in one process never share a queue: each has its own Huey instances, a declared task
enqueues on the queue of the app that calls it and runs in that app's context. A process forked
while the queue file is open still sees what is queued later."""
import os
import subprocess
import sys
import time

import pytest
from huey import crontab

from videoflix import create_app
from videoflix.extensions import db
from videoflix.tasks import DEFAULT, MAIL, periodic_task, queue_of, task

ran = []


@task()
def which_app(tag):
    """Records the config of the app whose context it runs in."""
    from flask import current_app

    ran.append((tag, current_app.config["FRONTEND_URL"]))


@task(queue=MAIL)
def mail_job(tag):
    ran.append((tag, "mail"))


@periodic_task(crontab(minute="*/5"))
def every_five_minutes():
    ran.append(("periodic", None))


def queued_app(tmp_path, name):
    config = {"TESTING": True, "HUEY_IMMEDIATE": False, "REDIS_URL": None, "SQLALCHEMY_DATABASE_URI": "sqlite://",
              "HUEY_FILE": str(tmp_path / f"{name}.sqlite3"), "FRONTEND_URL": f"https://{name}.example"}
    return create_app(config)


@pytest.fixture
def two_apps(tmp_path):
    ran.clear()
    apps = queued_app(tmp_path, "first"), queued_app(tmp_path, "second")
    yield apps
    for app in apps:
        for name in (DEFAULT, MAIL):
            queue_of(app, name).flush()


def run_pending(app, name=DEFAULT):
    huey = queue_of(app, name)
    while (queued := huey.dequeue()) is not None:  # as a worker does
        huey.execute(queued)


def test_two_apps_have_separate_queues(two_apps):
    first, second = two_apps
    assert queue_of(first) is not queue_of(second)
    assert first.extensions["huey"] is queue_of(first)

    with first.app_context():
        which_app("a")
        which_app("b")
    with second.app_context():
        which_app("c")

    assert [t.args for t in queue_of(first).pending()] == [("a",), ("b",)]
    assert [t.args for t in queue_of(second).pending()] == [("c",)]


def test_a_task_runs_in_the_context_of_the_app_that_queued_it(two_apps):
    first, second = two_apps
    with second.app_context():
        which_app("to-second")
    with first.app_context():
        which_app("to-first")

    run_pending(second)
    run_pending(first)

    assert ran == [("to-second", "https://second.example"), ("to-first", "https://first.example")]


def test_a_second_app_does_not_take_over_the_first_apps_queue(two_apps, tmp_path):
    first, _ = two_apps
    queued_app(tmp_path, "third")  # created later: the first app keeps its own queue
    with first.app_context():
        which_app("still-first")
    run_pending(first)
    assert ran == [("still-first", "https://first.example")]


def test_mail_tasks_go_to_the_mail_queue_of_their_app(two_apps):
    first, second = two_apps
    with first.app_context():
        mail_job("m")
    assert queue_of(first, MAIL).pending_count() == 1
    assert queue_of(first).pending_count() == 0
    assert queue_of(second, MAIL).pending_count() == 0
    run_pending(first, MAIL)
    assert ran == [("m", "mail")]


def test_an_email_queued_on_the_default_queue_before_an_upgrade_still_runs(two_apps):
    first, _ = two_apps
    with first.app_context():
        old_message = mail_job.s("from-before")
    queue_of(first).enqueue(old_message)  # where e-mails went before they had a queue of their own
    run_pending(first)
    assert ran == [("from-before", "mail")]


def test_periodic_tasks_are_bound_to_every_app(two_apps):
    from datetime import datetime

    for app in two_apps:
        periodic = queue_of(app).read_periodic(datetime(2026, 11, 30, 12, 5))
        # This module's, and the analytics roll-up (videoflix.analytics.tasks), every 5 minutes too.
        assert sorted(t.name for t in periodic) == ["every_five_minutes", "rollup_playback_sessions"]
        assert queue_of(app).read_periodic(datetime(2026, 11, 30, 12, 6)) == []


def test_calling_a_task_outside_an_app_context_fails_loudly(two_apps):
    with pytest.raises(RuntimeError):
        which_app("nowhere")


def test_tasks_run_inline_in_immediate_mode_in_their_own_app(tmp_path):
    ran.clear()
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "FRONTEND_URL": "https://inline.example"})
    with app.app_context():
        db.create_all()
        which_app("now")
    assert ran == [("now", "https://inline.example")]


def test_a_child_forked_while_the_queue_file_is_open_sees_what_is_queued_later(tmp_path):
    """As `flask worker` forks its e-mail consumer: the parent has the file open (its start hooks
    list the pending transcodes), then closes it (Huey's consumer does, before forking its workers),
    then a web process queues an e-mail. SQLite forbids taking a connection across fork(); the
    child used to read a deleted copy of the file's WAL index and never saw the e-mail."""
    app = queued_app(tmp_path, "forking")
    queue_of(app).pending()
    child = os.fork()
    if child == 0:  # the e-mail consumer: its own storage object, polling
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and queue_of(app, MAIL).storage.dequeue() is None:
                time.sleep(0.05)
            os._exit(0 if time.monotonic() < deadline else 1)
        finally:
            os._exit(2)
    queue_of(app).storage.close()
    mail = queue_of(app, MAIL).storage
    web = "import sys; from huey.storage import SqliteStorage as S; S(sys.argv[1], filename=sys.argv[2]).enqueue(b'x')"
    subprocess.run([sys.executable, "-c", web, mail.name, mail.filename], check=True)  # the web process
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked consumer never saw the e-mail"

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.accounts import cookie, encode_uid, link_from
from videoflix.auth.models import User
from videoflix.extensions import db

OK = {"detail": "An email has been sent to reset your password."}
NEW = "Purple-Harbour-Lantern-7"


def request_reset(client, email="user@example.com"):
    return client.post("/api/password_reset/", json={"email": email})


def password_hash(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).password_hash


def test_reset_mail_only_for_existing_active_accounts(client, make_user, outbox):
    make_user("user@example.com")
    make_user("asleep@example.com", active=False)
    for email in ["USER@example.com", "nobody@example.com", "asleep@example.com"]:
        response = request_reset(client, email)
        assert response.status_code == 200, email
        assert response.get_json() == OK
    assert [m.recipients for m in outbox] == [["user@example.com"]]
    url, uid, token = link_from(outbox[0])
    assert url.startswith("http://127.0.0.1:5500/pages/auth/confirm_password.html?uid=")
    assert outbox[0].html and token in outbox[0].html


def test_reset_validates_the_email(client):
    for body in [{}, {"email": ""}, {"email": "nope"}, {"email": None}]:
        response = client.post("/api/password_reset/", json=body)
        assert response.status_code == 400, body
        assert list(response.get_json()) == ["email"]


def test_confirm_sets_password_ends_sessions_and_works_once(client, app, make_user, outbox, login):
    user_id = make_user("user@example.com")
    old_refresh = cookie(login(), "refresh_token")["value"]
    request_reset(client)
    _, uid, token = link_from(outbox[-1])

    response = client.post(f"/api/password_confirm/{uid}/{token}/", json={"new_password": NEW, "confirm_password": NEW})
    assert response.status_code == 200
    assert response.get_json() == {"detail": "Your Password has been successfully reset."}

    assert client.post("/api/login/", json={"email": "user@example.com", "password": PASSWORD}).status_code == 400
    # The old session is over: its refresh token no longer works, from any client.
    other = app.test_client()
    other.set_cookie("refresh_token", old_refresh)
    assert other.post("/api/token/refresh/").status_code == 401
    # A new login right after the reset works and can refresh.
    login("user@example.com", NEW)
    assert client.post("/api/token/refresh/").status_code == 200

    before = password_hash(app, user_id)
    again = client.post(f"/api/password_confirm/{uid}/{token}/",
                        json={"new_password": "Another-Good-Pass-9", "confirm_password": "Another-Good-Pass-9"})
    assert again.status_code == 400
    assert password_hash(app, user_id) == before


def test_confirm_refuses_bad_input_and_keeps_the_password(client, app, make_user, outbox):
    user_id = make_user("user@example.com")
    request_reset(client)
    _, uid, token = link_from(outbox[-1])
    before = password_hash(app, user_id)
    def both(password, confirm=None):
        return {"new_password": password, "confirm_password": password if confirm is None else confirm}

    cases = [
        (f"/api/password_confirm/{uid}/{token}/", both(NEW, NEW + "!"), "confirm_password"),
        (f"/api/password_confirm/{uid}/{token}/", both("12345678"), "new_password"),
        (f"/api/password_confirm/{uid}/{token}/", both("user@example"), "new_password"),
        (f"/api/password_confirm/{uid}/{token}/", {}, "new_password"),
        (f"/api/password_confirm/{uid}/{token}x/", both(NEW), "detail"),
        (f"/api/password_confirm/{encode_uid(user_id + 5)}/{token}/", both(NEW), "detail"),
        (f"/api/password_confirm/%%%/{token}/", both(NEW), "detail"),
    ]
    for path, body, key in cases:
        response = client.post(path, json=body)
        assert response.status_code == 400, (path, body)
        assert key in response.get_json(), (path, response.get_json())
    assert password_hash(app, user_id) == before


def test_expired_reset_link_is_refused(client, app, make_user, outbox):
    user_id = make_user("user@example.com")
    request_reset(client)
    _, uid, token = link_from(outbox[-1])
    app.config["RESET_TOKEN_MAX_AGE"] = -1
    before = password_hash(app, user_id)
    response = client.post(f"/api/password_confirm/{uid}/{token}/", json={"new_password": NEW, "confirm_password": NEW})
    assert response.status_code == 400
    assert password_hash(app, user_id) == before


def test_reset_link_lifetime_is_24_hours(app):
    assert app.config["RESET_TOKEN_MAX_AGE"] == 24 * 3600


def test_every_reset_request_queues_one_task_whatever_the_account(app_config, tmp_path, make_user):
    """The request does the same work for any address (no timing oracle); the task decides."""
    from videoflix import create_app
    from videoflix.extensions import mail
    from videoflix.tasks import MAIL, queue_of

    app_config.update(HUEY_IMMEDIATE=False, HUEY_FILE=str(tmp_path / "queue.sqlite3"))
    app = create_app(app_config)
    huey = queue_of(app, MAIL)
    with app.app_context():
        db.create_all()
    try:
        from videoflix.auth.users import create_user

        with app.app_context():
            create_user("user@example.com", PASSWORD, active=True)
            create_user("asleep@example.com", PASSWORD, active=False)
            db.session.commit()
        client = app.test_client()
        emails = [" USER@Example.com", "nobody@example.com", "asleep@example.com"]
        for email in emails:
            assert request_reset(client, email).get_json() == OK
        queued = huey.pending()
        assert [(t.name, t.args) for t in queued] == [
            ("send_password_reset_email", ("user@example.com",)),
            ("send_password_reset_email", ("nobody@example.com",)),
            ("send_password_reset_email", ("asleep@example.com",)),
        ]
        with mail.record_messages() as sent:
            for _ in queued:  # as the worker does
                huey.execute(huey.dequeue())
        assert [m.recipients for m in sent] == [["user@example.com"]]
        assert "/pages/auth/confirm_password.html?uid=" in sent[0].body
    finally:
        huey.flush()
        with app.app_context():
            db.drop_all()


def test_the_reset_request_does_no_account_lookup(client, app, make_user, monkeypatch):
    from videoflix.auth import emails, users

    calls = []
    make_user("user@example.com", active=True)
    monkeypatch.setattr(emails, "send_password_reset_email", lambda email: calls.append(email))
    monkeypatch.setattr(users, "find_user", lambda email: pytest.fail("the request looked the account up"))
    for email in ["user@example.com", "nobody@example.com"]:
        assert request_reset(client, email).get_json() == OK
    assert calls == ["user@example.com", "nobody@example.com"]


def test_new_password_and_ended_sessions_are_one_transaction(client, app, make_user, outbox, login):
    from sqlalchemy import event

    make_user("user@example.com")
    login("user@example.com")
    request_reset(client)
    _, uid, token = link_from(outbox[-1])
    steps = []

    def statement(conn, cursor, sql, *args):
        steps.append(" ".join(sql.split()[:3]).upper())

    def commit(conn):
        steps.append("COMMIT")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        response = client.post(f"/api/password_confirm/{uid}/{token}/",
                               json={"new_password": NEW, "confirm_password": NEW})
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert response.status_code == 200
    password = steps.index("UPDATE USERS SET")
    sessions = steps.index("UPDATE REFRESH_TOKEN SET")
    first_commit_after = steps.index("COMMIT", min(password, sessions))
    assert max(password, sessions) < first_commit_after, steps

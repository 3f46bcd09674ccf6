from sqlalchemy import func, select

from tests.fixtures.accounts import STRONG, encode_uid, link_from, register
from videoflix.auth.models import Profile, User
from videoflix.extensions import db, mail


def users(app):
    with app.app_context():
        return db.session.execute(select(User)).scalars().all()


def test_register_creates_inactive_user_with_profile_and_sends_activation(client, app, outbox):
    response = register(client, email="New.User@Example.COM", privacy_policy="on")

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"user", "token"}
    assert body["user"] == {"id": body["user"]["id"], "email": "new.user@example.com"}
    with app.app_context():
        user = db.session.get(User, body["user"]["id"])
        assert user.email == "new.user@example.com"
        assert not user.is_active and not user.is_staff
        assert user.password_hash != STRONG and user.password_hash.startswith("pbkdf2:")
        profile = db.session.execute(select(Profile).where(Profile.user_id == user.id)).scalar_one()
        assert profile.display_name == "new.user"
    assert len(outbox) == 1
    message = outbox[0]
    assert message.recipients == ["new.user@example.com"]
    assert message.html and message.body
    url, uid, token = link_from(message)
    assert url.startswith("http://127.0.0.1:5500/pages/auth/activate.html?uid=")
    assert uid == encode_uid(body["user"]["id"])
    assert token == body["token"]
    assert url in message.html.replace("&amp;", "&")


def test_duplicate_email_in_any_case_is_refused(client, app, make_user, outbox):
    make_user("taken@example.com")
    response = register(client, email="TAKEN@example.com")
    assert response.status_code == 400
    assert list(response.get_json()) == ["email"]
    assert isinstance(response.get_json()["email"][0], str)
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 1
    assert outbox == []


def test_password_mismatch_keyed_by_confirmed_password(client, app):
    response = register(client, password=STRONG, confirmed=STRONG + "x")
    assert response.status_code == 400
    assert list(response.get_json()) == ["confirmed_password"]
    assert users(app) == []


def test_weak_passwords_are_refused_with_reasons(client, app):
    cases = {
        "short1!": "too short",
        "1234567890123": "entirely numeric",
        "sunshine": "too common",
        "new.user2024": "too similar",
    }
    for password, reason in cases.items():
        response = register(client, email="new.user2024@example.com", password=password)
        assert response.status_code == 400, password
        assert reason in " ".join(response.get_json()["password"]), (password, response.get_json())
    assert users(app) == []


def test_missing_and_invalid_fields_are_keyed(client, app):
    response = client.post("/api/register/", json={})
    assert response.status_code == 400
    assert set(response.get_json()) == {"email", "password", "confirmed_password"}

    for bad in ["not-an-email", "a@", "@b.com", "", "   ", "a b@example.com"]:
        response = register(client, email=bad)
        assert response.status_code == 400, bad
        assert "email" in response.get_json(), bad
    assert users(app) == []


def test_register_reports_every_problem_at_once(client):
    response = register(client, email="bad", password="123", confirmed="456")
    assert set(response.get_json()) == {"email", "password", "confirmed_password"}


def test_production_register_token_activates_nothing(app_config, outbox):
    from videoflix import create_app

    app_config["EXPOSE_ACTIVATION_TOKEN"] = False
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
    try:
        client = app.test_client()
        with mail.record_messages() as sent:
            response = register(client)
        assert response.status_code == 201
        assert response.get_json()["token"] == ""
        uid = encode_uid(response.get_json()["user"]["id"])
        assert client.get(f"/api/activate/{uid}/{response.get_json()['token'] or 'x'}/").status_code == 400
        _, _, token = link_from(sent[0])
        assert client.get(f"/api/activate/{uid}/{token}/").status_code == 200
    finally:
        with app.app_context():
            db.drop_all()


def test_a_queue_failure_fails_the_registration_and_keeps_no_account(client, app, monkeypatch, outbox):
    import redis

    from videoflix.auth import emails

    def queue_down(*args, **kwargs):
        raise redis.ConnectionError("queue unreachable")

    monkeypatch.setattr(emails, "deliver_email", queue_down)
    response = register(client, email="stuck@example.com")
    assert response.status_code == 503
    assert response.get_json() == {
        "detail": "The activation e-mail could not be sent right now. Please try again later."
    }
    assert users(app) == []
    assert outbox == []

    monkeypatch.undo()  # the queue is back: the same address can register
    assert register(client, email="stuck@example.com").status_code == 201
    assert [u.email for u in users(app)] == ["stuck@example.com"]
    assert len(outbox) == 1

from tests.conftest import PASSWORD
from tests.fixtures.accounts import cookie
from videoflix.auth import passwords
from videoflix.auth.models import User
from videoflix.extensions import db


def test_login_sets_http_only_cookies_and_returns_user(client, app, make_user):
    user_id = make_user("person@example.com")
    response = client.post("/api/login/", json={"email": "Person@Example.com", "password": PASSWORD})

    assert response.status_code == 200
    assert response.get_json() == {
        "detail": "Login successful",
        "user": {"id": user_id, "username": "person@example.com", "email": "person@example.com"},
    }
    assert "token" not in response.get_data(as_text=True).lower().replace("access_token", "")
    lifetimes = {"access_token": app.config["JWT_ACCESS_TOKEN_EXPIRES"],
                 "refresh_token": app.config["JWT_REFRESH_TOKEN_EXPIRES"]}
    for name, lifetime in lifetimes.items():
        attrs = cookie(response, name)
        assert attrs["value"].count(".") == 2, name
        assert attrs["httponly"] is True
        assert attrs["samesite"] == "Lax"
        assert attrs["path"] == "/"
        assert int(attrs["max-age"]) == int(lifetime.total_seconds())
        assert "secure" not in attrs  # testing runs over plain HTTP
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() > 20 * 60
    with app.app_context():
        assert db.session.get(User, user_id).last_login is not None


def test_wrong_password_and_unknown_email_get_one_message(client, make_user):
    make_user("person@example.com")
    wrong = client.post("/api/login/", json={"email": "person@example.com", "password": "nope-nope-nope"})
    unknown = client.post("/api/login/", json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.get_json() == unknown.get_json()
    assert set(wrong.get_json()) == {"detail"}
    assert wrong.headers.getlist("Set-Cookie") == unknown.headers.getlist("Set-Cookie") == []


def test_unknown_email_spends_a_hash_check(client, app, monkeypatch):
    checked = []
    original = passwords.check_password_hash
    monkeypatch.setattr(passwords, "check_password_hash", lambda h, p: checked.append(h) or original(h, p))
    client.post("/api/login/", json={"email": "nobody@example.com", "password": PASSWORD})
    assert len(checked) == 1
    assert checked[0].startswith(app.config["PASSWORD_HASH_METHOD"].split(":")[0])


def test_inactive_account_with_right_password_is_403(client, make_user):
    make_user("sleepy@example.com", active=False)
    response = client.post("/api/login/", json={"email": "sleepy@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert "not activated" in response.get_json()["detail"]
    assert response.headers.getlist("Set-Cookie") == []
    wrong = client.post("/api/login/", json={"email": "sleepy@example.com", "password": "wrong-password-1"})
    assert wrong.status_code == 400


def test_missing_fields_are_keyed(client):
    response = client.post("/api/login/", json={"email": "a@example.com"})
    assert response.status_code == 400
    assert list(response.get_json()) == ["password"]
    response = client.post("/api/login/", json={"password": "x"})
    assert list(response.get_json()) == ["email"]


def test_production_cookies_are_secure(app_config):
    from videoflix import create_app

    app_config["JWT_COOKIE_SECURE"] = True
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
        from videoflix.auth.users import create_user

        create_user("p@example.com", PASSWORD, active=True)
        db.session.commit()
    try:
        response = app.test_client().post("/api/login/", json={"email": "p@example.com", "password": PASSWORD})
        assert cookie(response, "access_token")["secure"] is True
        assert cookie(response, "refresh_token")["secure"] is True
    finally:
        with app.app_context():
            db.drop_all()

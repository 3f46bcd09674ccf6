"""Refresh rotation, reuse detection, logout and revocation, through the HTTP API."""
import pytest
from flask import jsonify
from flask_jwt_extended import get_jwt_identity, jwt_required
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.fixtures.accounts import cookie, login_from
from videoflix.auth.models import RefreshToken, User
from videoflix.extensions import db

LOGOUT_OK = "Logout successful! All tokens will be deleted. Refresh token is now invalid."


@pytest.fixture
def protected(app):
    @jwt_required()
    def whoami():
        return jsonify(id=get_jwt_identity())

    app.add_url_rule("/api/test-whoami/", "whoami", whoami)
    return "/api/test-whoami/"


def tokens(response):
    return cookie(response, "access_token")["value"], cookie(response, "refresh_token")["value"]


def with_refresh(client, token):
    client.set_cookie("refresh_token", token)
    return client.post("/api/token/refresh/")


def test_protected_route_needs_a_token(client, protected):
    response = client.get(protected)
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Authentication credentials were not provided."}
    response = client.get(protected, headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Given token not valid for any token type"}


def test_cookie_and_bearer_both_authenticate(client, app, protected, auth, login):
    assert client.get(protected).get_json() == {"id": str(auth)}
    access, _ = tokens(login())
    other = app.test_client()
    assert other.get(protected, headers={"Authorization": f"Bearer {access}"}).get_json() == {"id": str(auth)}


def test_refresh_token_is_not_an_access_token(client, protected, auth, login):
    _, refresh = tokens(login())
    client.delete_cookie("access_token")
    response = client.get(protected, headers={"Authorization": f"Bearer {refresh}"})
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Given token not valid for any token type"}


def test_refresh_rotates_and_revokes_the_old_token(client, app, auth, login):
    _, first = tokens(login())
    response = client.post("/api/token/refresh/")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"detail", "access"} and body["detail"] == "Token refreshed"
    assert cookie(response, "access_token")["value"] == body["access"]
    second = cookie(response, "refresh_token")["value"]
    assert second != first
    with app.app_context():
        old = db.session.get(RefreshToken, _jti(app, first))
        assert old.revoked_at is not None and old.replaced_by == _jti(app, second)
    assert with_refresh(client, second).status_code == 200


def test_reusing_a_rotated_token_revokes_the_whole_family(client, app, auth, login):
    _, first = tokens(login())
    second = cookie(with_refresh(client, first), "refresh_token")["value"]

    stolen = with_refresh(client, first)
    assert stolen.status_code == 401
    assert "reuse" in stolen.get_json()["detail"]
    # The legitimate holder's newer token died with the family.
    assert with_refresh(client, second).status_code == 401

    # Another login (another family) is unaffected.
    _, other = tokens(login())
    assert with_refresh(client, other).status_code == 200
    with app.app_context():
        family = db.session.get(RefreshToken, _jti(app, first)).family
        rows = db.session.execute(select(RefreshToken).where(RefreshToken.family == family)).scalars().all()
        assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)


def test_refresh_errors(client, app, auth, login, make_user):
    missing = app.test_client().post("/api/token/refresh/")
    assert missing.status_code == 400
    assert missing.get_json() == {"detail": "Refresh token is required."}
    assert with_refresh(client, "garbage").status_code == 401
    access, refresh = tokens(login())
    assert with_refresh(client, access).status_code == 401  # an access token is not a refresh token

    with app.app_context():
        db.session.get(User, auth).is_active = False
        db.session.commit()
    response = with_refresh(client, refresh)
    assert response.status_code == 401
    assert set(response.get_json()) == {"detail"}


def test_expired_refresh_token_is_401(client, app, auth):
    from datetime import timedelta

    from flask_jwt_extended import create_refresh_token

    with app.app_context():
        expired = create_refresh_token(identity=str(auth), expires_delta=timedelta(seconds=-10))
    response = with_refresh(client, expired)
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Given token not valid for any token type"}


def test_logout_revokes_both_tokens_and_deletes_cookies(client, app, protected, auth, login):
    access, refresh = tokens(login())
    response = client.post("/api/logout/")
    assert response.status_code == 200
    assert response.get_json() == {"detail": LOGOUT_OK}
    for name in ("access_token", "refresh_token"):
        assert cookie(response, name)["max-age"] == "0"
        assert cookie(response, name)["value"] == ""

    assert with_refresh(client, refresh).status_code == 401
    response = app.test_client().get(protected, headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 401
    assert response.get_json()["detail"]


def test_logout_errors_delete_cookies_too(client, app, auth, login):
    response = app.test_client().post("/api/logout/")
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Refresh token is required."}
    assert cookie(response, "refresh_token")["max-age"] == "0"

    _, refresh = tokens(login())
    assert client.post("/api/logout/").status_code == 200
    client.set_cookie("refresh_token", refresh)
    again = client.post("/api/logout/")
    assert again.status_code == 400
    assert cookie(again, "access_token")["max-age"] == "0"

    client.set_cookie("refresh_token", "bad.token.value")
    assert client.post("/api/logout/").status_code == 400


def _jti(app, token):
    return _claim(app, token, "jti")


def _claim(app, token, name):
    from flask_jwt_extended import decode_token

    with app.app_context():
        return decode_token(token, allow_expired=True)[name]


@pytest.fixture
def db_revocations(app_config, tmp_path):
    """The revocation list in the database (no Redis), on a database threads can share."""
    app_config["REDIS_URL"] = None
    if app_config["SQLALCHEMY_DATABASE_URI"] == "sqlite://":  # one in-memory connection for all
        app_config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'revocations.sqlite3'}"
    return app_config


def test_revoking_a_user_twice_at_once_or_in_a_row_never_fails(db_revocations, app, make_user):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from videoflix.auth.models import RevokedToken
    from videoflix.auth.revocation import revoke_all_for_user

    user_id = make_user()
    start = threading.Barrier(8)

    def revoke(_):
        with app.app_context():
            start.wait()
            revoke_all_for_user(user_id)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(revoke, range(8)))  # re-raises a thread's IntegrityError
    with app.app_context():
        revoke_all_for_user(user_id)
        revoke_all_for_user(user_id)
        keys = db.session.execute(select(RevokedToken.key)).scalars().all()
    assert keys == [app.config["REDIS_PREFIX"] + f"revoked:user:{user_id}"]


def test_a_revocation_written_meanwhile_by_another_request_is_overwritten(db_revocations, app, make_user):
    """The race, forced: another request commits the same key just before this one writes it."""
    from sqlalchemy import event, text

    from videoflix.auth.models import RevokedToken
    from videoflix.auth.revocation import revoke_all_for_user

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite serializes writers: the other request would wait for this one")
    user_id = make_user()
    key = app.config["REDIS_PREFIX"] + f"revoked:user:{user_id}"
    with app.app_context():
        engine = db.engine

        raced = []

        def other_request_first(conn, cursor, statement, *args):
            if not raced and statement.lstrip().upper().startswith("INSERT INTO REVOKED_TOKEN"):
                raced.append(statement)
                with engine.connect() as other:
                    other.execute(text("INSERT INTO revoked_token (key, value, expires_at) "
                                       "VALUES (:k, '1', now() + interval '1 hour')"), {"k": key})
                    other.commit()

        event.listen(engine, "before_cursor_execute", other_request_first)
        try:
            revoke_all_for_user(user_id)
        finally:
            event.remove(engine, "before_cursor_execute", other_request_first)
        assert raced
        row = db.session.get(RevokedToken, key)
        assert row is not None and row.value != "1"  # this request's cut-off won


def test_logout_revokes_the_refresh_row_without_a_revocation_entry(db_revocations, app, client, auth, login):
    from videoflix.auth.models import RevokedToken

    access, refresh = tokens(login())
    assert client.post("/api/logout/").status_code == 200
    with app.app_context():
        assert db.session.get(RefreshToken, _jti(app, refresh)).revoked_at is not None
        listed = db.session.execute(select(RevokedToken.key)).scalars().all()
    # The session's family only (access tokens of this login); the refresh row needs no entry.
    assert listed == [app.config["REDIS_PREFIX"] + "revoked:fam:" + _claim(app, access, "fam")]
    assert with_refresh(app.test_client(), refresh).status_code == 401


def test_logout_revokes_a_bearer_access_token(app, protected, auth, login):
    access, refresh = tokens(login())
    mobile = app.test_client()  # a CLI or mobile client: no access cookie, a Bearer header
    mobile.set_cookie("refresh_token", refresh)
    response = mobile.post("/api/logout/", headers={"Authorization": f"Bearer {access}"})
    assert response.get_json() == {"detail": LOGOUT_OK}
    after = app.test_client().get(protected, headers={"Authorization": f"Bearer {access}"})
    assert after.status_code == 401
    assert after.get_json() == {"detail": "Token has been revoked."}


def test_logout_ignores_a_bearer_token_of_another_user(app, protected, make_user):
    make_user("one@example.com")
    make_user("two@example.com")
    one, two = app.test_client(), app.test_client()
    one_access, _ = tokens(one.post("/api/login/", json={"email": "one@example.com", "password": PASSWORD}))
    two.post("/api/login/", json={"email": "two@example.com", "password": PASSWORD})
    two.delete_cookie("access_token")
    assert two.post("/api/logout/", headers={"Authorization": f"Bearer {one_access}"}).status_code == 200
    assert app.test_client().get(protected, headers={"Authorization": f"Bearer {one_access}"}).status_code == 200


def test_reuse_detection_also_kills_the_access_token_of_the_last_rotation(app, make_user, make_video):
    make_user()
    client = app.test_client()
    stolen = cookie(login_from(client, "user@example.com"), "refresh_token")["value"]
    rotated = client.post("/api/token/refresh/")
    assert rotated.status_code == 200
    access = rotated.get_json()["access"]
    headers = {"Authorization": f"Bearer {access}"}
    video_id = make_video()
    segment = f"/api/video/{video_id}/480p/seg000.ts"
    # Verified in full once (Flask): from now on the segment fast path answers for this token.
    assert client.get("/api/video/", headers=headers).status_code == 200
    assert client.get(segment, headers=headers, buffered=True).status_code == 200
    assert client.get(segment, headers=headers, buffered=True).status_code == 200

    thief = app.test_client()
    thief.set_cookie("refresh_token", stolen)
    reused = thief.post("/api/token/refresh/")
    assert reused.status_code == 401 and "reuse" in reused.get_json()["detail"]

    for url in ("/api/video/", f"/api/video/{video_id}/", segment, f"/api/video/{video_id}/480p/index.m3u8"):
        response = client.get(url, headers=headers, buffered=True)
        assert response.status_code == 401, url
        assert response.get_json() == {"detail": "Token has been revoked."}
    # Another login of the same user (another family) is unaffected.
    fresh = app.test_client()
    login_from(fresh, "user@example.com")
    assert fresh.get(segment, buffered=True).status_code == 200

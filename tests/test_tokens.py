"""Refresh rotation, reuse detection, logout and revocation, through the HTTP API."""
import pytest
from flask import jsonify
from flask_jwt_extended import get_jwt_identity, jwt_required
from sqlalchemy import select

from tests.accounts import cookie
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
    from flask_jwt_extended import decode_token

    with app.app_context():
        return decode_token(token, allow_expired=True)["jti"]

"""CORS, the Origin check against cross-site writes, and production start-up rules."""
import pytest

from tests.accounts import cookie
from tests.conftest import PASSWORD
from videoflix import create_app
from videoflix.config import ProductionConfig

SPA = "http://127.0.0.1:5500"


def test_preflight_echoes_allowed_origin_with_credentials(client):
    response = client.options(
        "/api/login/",
        headers={
            "Origin": SPA, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_default_origins_and_no_wildcard(client, make_user):
    make_user()
    for origin in (SPA, "http://localhost:5500"):
        response = client.post(
            "/api/login/", json={"email": "user@example.com", "password": PASSWORD}, headers={"Origin": origin}
        )
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
    evil = client.post("/api/login/", json={"email": "user@example.com", "password": PASSWORD}, headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_cors_origins_from_config(app_config):
    app_config["CORS_ORIGINS"] = ["https://videos.example.org"]
    app = create_app(app_config)
    response = app.test_client().options(
        "/api/login/", headers={"Origin": "https://videos.example.org", "Access-Control-Request-Method": "POST"}
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://videos.example.org"


def test_cookie_authenticated_write_from_foreign_origin_is_refused(client, auth):
    refused = client.post("/api/logout/", headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    assert refused.get_json() == {"detail": "Cross-site request refused: origin not allowed."}
    refused = client.post("/api/token/refresh/", headers={"Referer": "http://evil.example/page.html"})
    assert refused.status_code == 403
    # Nothing was revoked: the session still refreshes from an allowed origin, or with no Origin.
    assert client.post("/api/token/refresh/", headers={"Origin": SPA}).status_code == 200
    assert client.post("/api/token/refresh/", headers={"Origin": "http://localhost"}).status_code == 200  # own host
    assert client.post("/api/token/refresh/").status_code == 200


def test_writes_without_cookies_are_not_checked(client, make_user):
    make_user()
    response = client.post("/api/login/", json={"email": "user@example.com", "password": PASSWORD}, headers={"Origin": "http://evil.example"})
    assert response.status_code == 200  # no ambient credentials: not a forgery


def test_production_refuses_weak_or_missing_secret_key():
    for key in ["", "secret", "short-key", "a" * 40]:
        config = type("Weak", (ProductionConfig,), {"SECRET_KEY": key})
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            create_app(config)
    strong = type("Strong", (ProductionConfig,), {"SECRET_KEY": "Zq8vN2rT5yW1xK4mP7sD0fG3hJ6lA9cE-bU"})
    assert create_app(strong).config["JWT_COOKIE_SECURE"] is True


def test_production_never_shows_a_stack_trace(app_config):
    app_config["PROPAGATE_EXCEPTIONS"] = False
    app = create_app(app_config)

    @app.get("/api/test-boom/")
    def boom():
        raise ZeroDivisionError("secret internals")

    response = app.test_client().get("/api/test-boom/")
    assert response.status_code == 500
    assert response.get_json() == {"detail": "Internal server error."}
    assert "ZeroDivisionError" not in response.get_data(as_text=True)


def test_json_responses_are_not_cached(client, auth):
    response = client.post("/api/token/refresh/")
    assert response.headers["Cache-Control"] == "no-store"
    assert cookie(response, "access_token")["httponly"] is True


def test_origins_are_compared_in_one_canonical_form():
    from videoflix.config import cors_origins, origin_of

    assert origin_of("HTTP://App.Example.org:8080/pages/x.html?a=1") == "http://app.example.org:8080"
    assert origin_of("/relative/path") is None and origin_of("null") is None
    assert cors_origins("not-a-url") == ["http://localhost:5500"]

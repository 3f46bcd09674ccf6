"""CORS, the Origin check against cross-site writes, production start-up rules, and the
headers that keep pages from being framed or running foreign code."""
import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.accounts import cookie
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
    # No ambient credentials, so not a forgery: the login happens and sets its cookies.
    assert response.status_code == 200 and response.get_json()["user"]["email"] == "user@example.com"
    assert {c.split("=", 1)[0] for c in response.headers.getlist("Set-Cookie")} >= {"access_token", "refresh_token"}


def test_production_refuses_weak_or_missing_secret_key():
    for key in ["", "secret", "short-key", "a" * 40]:
        config = type("Weak", (ProductionConfig,), {"SECRET_KEY": key})
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            create_app(config)
    strong = type("Strong", (ProductionConfig,), {"SECRET_KEY": secrets.token_urlsafe(48)})
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


# --- keys published in the repository -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
KEY_FILES = ("README.md", ".env.example", "docker-compose.yml", "videoflix/config.py")
KEY_LINE = re.compile(r"SECRET_KEY")
CANDIDATE = re.compile(r"""(?:SECRET_KEY\s*[=:]\s*|["'])([^\s"'`|)]+)""")


def published_keys():
    """Every value that a SECRET_KEY / JWT_SECRET_KEY line of the repository's known files gives
    as a key: assignments (`SECRET_KEY=...`, `SECRET_KEY: ...`) and string literals on such lines,
    minus placeholders (`...`, `${...}`) and names (environment variables, code)."""
    found = set()
    for name in KEY_FILES:
        for line in (ROOT / name).read_text().splitlines():
            if not KEY_LINE.search(line):
                continue
            for value in CANDIDATE.findall(line):
                if (value.startswith("$") or not re.search(r"[A-Za-z0-9]", value)
                        or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*\(?", value)):
                    continue
                found.add(value)
    return found


def test_production_refuses_every_key_published_in_the_repository(tmp_path):
    keys = published_keys()
    # The scan finds what we know is there (so it cannot silently find nothing).
    assert {"insecure-placeholder-replace-me-with-a-random-48-character-string",
            "testing-secret-key-0123456789abcdef0123456789",
            "dev-insecure-secret-key-change-me-0123456789"} <= keys
    base = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "HUEY_FILE": str(tmp_path / "huey.sqlite3")}
    for key in sorted(keys):
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            overrides = {**base, "SECRET_KEY": secrets.token_urlsafe(48), name: key}
            with pytest.raises(RuntimeError, match=name):
                create_app(type("Published", (ProductionConfig,), overrides))
    assert create_app(type("Fresh", (ProductionConfig,), {**base, "SECRET_KEY": secrets.token_urlsafe(48)}))


# --- cookies and headers in production and on the back office -------------------------------------

@pytest.fixture
def production_app(tmp_path, database_url):
    overrides = {"SECRET_KEY": secrets.token_urlsafe(48), "SQLALCHEMY_DATABASE_URI": database_url,
                 "HUEY_FILE": str(tmp_path / "huey.sqlite3"), "MEDIA_ROOT": str(tmp_path / "media")}
    return create_app(type("Production", (ProductionConfig,), overrides))


def test_the_admin_session_cookie_is_secure_in_production(production_app):
    """The `session` cookie holds the admin's CSRF secret: Secure, HttpOnly, SameSite=Lax, like the
    JWT cookies."""
    page = production_app.test_client().get("/admin/login/")
    assert page.status_code == 200
    session = cookie(page, "session")
    assert session["value"]
    assert session["secure"] is True and session["httponly"] is True and session["samesite"] == "Lax"


def test_json_answers_may_not_be_framed(client):
    response = client.get("/api/health/")
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


class InlineCode(HTMLParser):
    """What a page would run or style inline, and where it loads scripts and styles from."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self.styles, self.sources = [], [], [], []
        self._script = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name.startswith("on") or name == "href" and value.startswith("javascript:"):
                self.handlers.append(value)
            elif name == "style":
                self.styles.append(value)
        if tag == "script" and "src" in attrs or tag == "link" and attrs.get("rel") == "stylesheet":
            self.sources.append(attrs.get("src") or attrs.get("href"))
        elif tag in ("script", "style"):
            self._script = [tag, attrs.get("nonce"), ""]

    def handle_data(self, data):
        if self._script is not None:
            self._script[2] += data

    def handle_endtag(self, tag):
        if self._script is not None and tag == self._script[0]:
            self.scripts.append(tuple(self._script))
            self._script = None


def sha256_source(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_admin_pages_are_never_framed_and_run_only_what_their_policy_allows(client, make_user, login, make_video,
                                                                            app):
    """For each back-office page: every inline script or style block carries the response's nonce,
    every inline event handler and style attribute is allowed by its hash, and scripts and style
    sheets come from this server: what a browser would run is what the policy lets run."""
    video_id = make_video()
    make_user("staff@example.com", staff=True)
    assert client.get("/admin/login/").headers["X-Frame-Options"] == "DENY"
    login("staff@example.com")
    pages = ["/admin/login/", "/admin/videos/", "/admin/videos/new/", f"/admin/videos/edit/?id={video_id}",
             f"/admin/videos/details/?id={video_id}", "/admin/users/", "/admin/users/edit/?id=1"]
    handlers_seen = set()
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["X-Frame-Options"] == "DENY"
        policy = dict(d.strip().split(" ", 1) for d in page.headers["Content-Security-Policy"].split(";"))
        assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
        assert policy["object-src"] == "'none'" and "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
        script_src, style_src = policy["script-src"].split(), policy["style-src"].split()
        nonce = next(s for s in script_src if s.startswith("'nonce-"))[len("'nonce-"):-1]
        parsed = InlineCode()
        parsed.feed(page.get_data(as_text=True))
        for tag, tag_nonce, _text in parsed.scripts:
            assert tag_nonce == nonce, (path, tag)
        for handler in parsed.handlers:
            assert "'unsafe-hashes'" in script_src and sha256_source(handler) in script_src, (path, handler)
        for style in parsed.styles:
            assert "'unsafe-hashes'" in style_src and sha256_source(style) in style_src, (path, style)
        for source in parsed.sources:
            assert source.startswith("/") and not source.startswith("//"), (path, source)
        handlers_seen.update(parsed.handlers)
    # The pages exercised what needs allowing: bulk actions, the delete confirmation, a thumbnail.
    assert "return modelActions.execute('retranscode');" in handlers_seen
    assert any("safeConfirm" in h for h in handlers_seen)

"""Start-up checks and the cross-site request forgery defence for cookie-authenticated requests."""
from flask import current_app, request

from videoflix.auth.credentials import JSON_HEADERS, SECURITY_HEADERS, csrf_allows
from videoflix.config import DEVELOPMENT_SECRET_KEY, TESTING_SECRET_KEY
from videoflix.errors import error_response

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MIN_SECRET_LENGTH = 32
WEAK_SECRETS = {"secret", "changeme", "change-me", "dev", "development", "insecure"}
# Every signing key written anywhere in this repository: anyone can read them, so they sign
# nothing in production. tests/test_security.py checks that every example key in README.md,
# .env.example, docker-compose.yml and config.py is refused, so a new one cannot slip through.
PUBLISHED_SECRETS = frozenset({
    DEVELOPMENT_SECRET_KEY,
    TESTING_SECRET_KEY,
    "insecure-placeholder-replace-me-with-a-random-48-character-string",  # .env.example
})
SIGNING_KEYS = ("SECRET_KEY", "JWT_SECRET_KEY")  # JWT_SECRET_KEY: only when set (else SECRET_KEY signs)


def weak_secret(key):
    """True for a key that must not sign anything in production: short, a word, repetitive, or
    published in this repository."""
    return (len(key) < MIN_SECRET_LENGTH or key.lower() in WEAK_SECRETS or len(set(key)) < 10
            or "insecure" in key.lower() or key in PUBLISHED_SECRETS)


def check_secret_key(app):
    """Refuse to run outside development without a strong SECRET_KEY (and JWT_SECRET_KEY, if set).

    Raises RuntimeError naming the problem, so a misconfigured deployment fails at start.
    """
    if app.config["DEBUG"] or app.config["TESTING"]:
        return
    for name in SIGNING_KEYS:
        key = app.config.get(name)
        if (key is not None or name == "SECRET_KEY") and weak_secret(key or ""):
            raise RuntimeError(
                f"{name} must be set to a random string of at least 32 characters in production, never a "
                "published example (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')."
            )


def init_app(app):
    app.before_request(refuse_cross_site_writes)
    app.after_request(add_security_headers)


def refuse_cross_site_writes():
    """A cookie-authenticated write from a foreign page is refused (403).

    SPAs send no CSRF header, so the browser's Origin (else Referer) is checked instead, by
    credentials.csrf_allows. Requests without either header (CLI, mobile) and requests without
    auth cookies are not browser CSRF and pass.
    """
    if request.method not in UNSAFE_METHODS:
        return None
    config = current_app.config
    cookie_names = (config["JWT_ACCESS_COOKIE_NAME"], config["JWT_REFRESH_COOKIE_NAME"])
    if not any(name in request.cookies for name in cookie_names):
        return None
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or csrf_allows(source, request.host_url, config):
        return None
    return error_response(403, "Cross-site request refused: origin not allowed.")


def add_security_headers(response):
    """credentials.SECURITY_HEADERS on every answer, JSON_HEADERS and no-store on JSON ones (unless
    the route set its own)."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    if response.mimetype == "application/json":
        for name, value in JSON_HEADERS:
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
    return response

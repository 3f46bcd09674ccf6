"""Start-up checks and the cross-site request forgery defence for cookie-authenticated requests."""
from flask import current_app, request

from videoflix.auth.credentials import JSON_HEADERS, SECURITY_HEADERS, csrf_allows
from videoflix.errors import error_response

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MIN_SECRET_LENGTH = 32
WEAK_SECRETS = {"secret", "changeme", "change-me", "dev", "development", "insecure"}


def check_secret_key(app):
    """Refuse to run outside development without a strong SECRET_KEY.

    Raises RuntimeError naming the problem, so a misconfigured deployment fails at start.
    """
    if app.config["DEBUG"] or app.config["TESTING"]:
        return
    key = app.config.get("SECRET_KEY") or ""
    if len(key) < MIN_SECRET_LENGTH or key.lower() in WEAK_SECRETS or len(set(key)) < 10 or "insecure" in key:
        raise RuntimeError(
            "SECRET_KEY must be set to a random string of at least 32 characters in production "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')."
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
    if not any(name in request.cookies for name in (config["JWT_ACCESS_COOKIE_NAME"], config["JWT_REFRESH_COOKIE_NAME"])):
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

"""Start-up checks and the cross-site request forgery defence for cookie-authenticated requests."""
from flask import current_app, request

from videoflix.config import origin_of
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

    SPAs send no CSRF header, so the browser's Origin (else Referer) is checked instead: it must
    be an allowed CORS origin or this server's own. Requests without either header (CLI, mobile)
    and requests without auth cookies are not browser CSRF and pass.
    """
    if request.method not in UNSAFE_METHODS:
        return None
    config = current_app.config
    cookie_names = (config["JWT_ACCESS_COOKIE_NAME"], config["JWT_REFRESH_COOKIE_NAME"])
    if not any(name in request.cookies for name in cookie_names):
        return None
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return None
    origin = origin_of(source) if source != "null" else "null"
    allowed = {o.lower() for o in config["CORS_ORIGINS"]} | {origin_of(request.host_url)}
    if origin in allowed:
        return None
    return error_response(403, "Cross-site request refused: origin not allowed.")


# On every answer (unless the route set its own).
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))


def add_security_headers(response):
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    if response.mimetype == "application/json":
        response.headers.setdefault("Cache-Control", "no-store")
    return response

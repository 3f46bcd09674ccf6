"""Who is signed in to the back office.

The admin uses the API's own session: the `access_token` and `refresh_token` cookies. When the
access token has expired (30 minutes by default) but the refresh token is still good, the admin
rotates it exactly as POST /api/token/refresh/ does and sets the new cookies on its response, so a
staff member stays signed in for the refresh token's lifetime while pages keep being used.
(Two admin tabs refreshing the very same expired token at the same moment look like token theft to
the rotation rules and end that session; signing in again fixes it.)
"""
import logging
from urllib.parse import urlsplit

from flask import current_app, g, request

from videoflix.auth import sessions, users
from videoflix.auth.credentials import access_token_from_request, verified_payload
from videoflix.auth.models import User
from videoflix.errors import APIError
from videoflix.extensions import db

log = logging.getLogger(__name__)
# The back office's own wording for wrong credentials; the other refusals are the API's.
LOGIN_FAILED = "Please check your e-mail and password and try again."


class SignInRefused(Exception):
    """Sign-in failed; the message is for the person signing in, the status for the response."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def _user_from_access(token):
    """The active user an access token belongs to when the token passes the media routes' check
    (credentials.verified_payload: valid, unexpired, unrevoked), else None."""
    try:
        payload = verified_payload(token)
    except APIError:
        return None
    user = db.session.get(User, int(payload["sub"]))
    return user if user is not None and user.is_active else None


def current_admin_user():
    """The signed-in active user (staff or not), or None; rotates an expired session's refresh
    cookie once per request (the new cookies are set by `set_rotated_cookies`)."""
    if "admin_user" in g:
        return g.admin_user
    config = current_app.config
    user = _user_from_access(access_token_from_request())
    refresh = request.cookies.get(config["JWT_REFRESH_COOKIE_NAME"])
    if user is None and refresh:
        try:
            access, new_refresh = sessions.rotate(refresh)
        except sessions.SessionError as error:
            log.info("Admin session not renewed: %s", error.reason)
        else:
            g.admin_rotated = (access, new_refresh)
            user = _user_from_access(access)
    g.admin_user = user
    return user


def set_rotated_cookies(response):
    """after_request: hand out the tokens a transparent rotation produced."""
    rotated = g.pop("admin_rotated", None)
    if rotated is not None and not getattr(response, "clears_session", False):
        sessions.set_cookies(response, *rotated)
    return response


def sign_in(email, password):
    """Check credentials for the back office; the user's new (access, refresh) tokens.

    Raises SignInRefused: a wrong e-mail or password (400, one message for both), an account not
    activated (403) or one without the staff flag (403); TooManyRequests past the sign-in limits.
    """
    try:
        user = users.check_credentials(email or "", password or "", staff=True)
    except users.WrongCredentials:
        raise SignInRefused(LOGIN_FAILED, 400) from None
    except users.LoginRefused as error:
        raise SignInRefused(error.message, error.status) from None
    return sessions.open_session(user)


def sign_out(response):
    """Revoke the session the cookies carry (if still valid) and delete both cookies."""
    config = current_app.config
    refresh = request.cookies.get(config["JWT_REFRESH_COOKIE_NAME"])
    rotated = g.pop("admin_rotated", None)
    for token in filter(None, (rotated[1] if rotated else None, refresh)):
        try:
            sessions.logout(token, request.cookies.get(config["JWT_ACCESS_COOKIE_NAME"]))
            break
        except sessions.SessionError:
            continue
    sessions.clear_cookies(response)
    response.clears_session = True
    return response


def safe_next(target, default):
    """`target` when it is a path inside the admin (no open redirect), else `default`."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/") or target.startswith("//"):
        return default
    return target

"""Login sessions: JWT issue, refresh rotation with reuse detection, revocation, cookies."""
import uuid
from datetime import UTC, datetime

from flask import current_app
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    set_access_cookies,
    set_refresh_cookies,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from sqlalchemy import update

from videoflix.auth import INVALID_TOKEN as INVALID
from videoflix.auth import revocation
from videoflix.auth.models import RefreshToken, User
from videoflix.extensions import db


class SessionError(Exception):
    """A refresh token that cannot be used; `reason` is the sentence for the client."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _claims(family=None):
    claims = {revocation.ISSUED_MS_CLAIM: revocation._now_ms()}
    if family is not None:
        claims[revocation.FAMILY_CLAIM] = family
    return claims


def issue(user, family=None):
    """A new access and refresh token pair, both of `family` (a new login if None)."""
    family = family or uuid.uuid4().hex
    access = create_access_token(identity=str(user.id), additional_claims=_claims(family))
    refresh = create_refresh_token(identity=str(user.id), additional_claims=_claims(family))
    payload = decode_token(refresh)
    db.session.add(
        RefreshToken(
            jti=payload["jti"], user_id=user.id, family=family, expires_at=datetime.fromtimestamp(payload["exp"], UTC)
        )
    )
    return access, refresh


def open_session(user):
    """Sign `user` in (credentials already checked): a new token family, last_login; committed.
    Returns the (access, refresh) tokens."""
    tokens = issue(user)
    user.last_login = datetime.now(UTC)
    db.session.commit()
    return tokens


def decode_refresh(token):
    """The payload of a signature-valid, unexpired refresh token; SessionError otherwise."""
    try:
        payload = decode_token(token)
    except (PyJWTError, JWTExtendedException, ValueError):
        raise SessionError(INVALID) from None
    if payload.get("type") != "refresh":
        raise SessionError(INVALID)
    return payload


def rotate(token):
    """Exchange a refresh token for a new pair; the old one is revoked.

    A token already rotated away means it was stolen (or replayed): its whole family is revoked
    and SessionError raised. So is a revoked token, or one of an inactive or deleted user.
    """
    payload = decode_refresh(token)
    row = db.session.get(RefreshToken, payload["jti"])
    if row is None or revocation.is_revoked(payload):
        raise SessionError(INVALID)
    if row.replaced_by is not None:
        revoke_family(row.family)
        raise SessionError("Refresh token reuse detected; this session has been ended.")
    if row.revoked_at is not None:
        raise SessionError(INVALID)
    user = db.session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise SessionError(INVALID)
    access, refresh = issue(user, family=row.family)
    new_jti = decode_token(refresh)["jti"]
    # Conditional update: of two concurrent refreshes with the same token, exactly one wins.
    claimed = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.jti == row.jti, RefreshToken.replaced_by.is_(None), RefreshToken.revoked_at.is_(None))
        .values(replaced_by=new_jti, revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        revoke_family(row.family)
        raise SessionError("Refresh token reuse detected; this session has been ended.")
    db.session.commit()
    return access, refresh


def revoke_family(family):
    """End one login for good: its refresh tokens are revoked in the database (and committed,
    with whatever else the session holds) and its access tokens on the revocation list."""
    _revoke_refresh_tokens(RefreshToken.family == family)
    db.session.commit()
    revocation.revoke_family(family)


def _revoke_refresh_tokens(condition):
    """Mark the unrevoked refresh tokens matching `condition` revoked, in the current transaction."""
    db.session.execute(
        update(RefreshToken)
        .where(condition, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


def logout(refresh_token, access_token=None):
    """Revoke the refresh token, and the session of the access token when given, valid and the
    same user's (its whole family: older access tokens of that login too).

    Raises SessionError when the refresh token is invalid, expired or already revoked.
    """
    payload = decode_refresh(refresh_token)
    row = db.session.get(RefreshToken, payload["jti"])
    if row is None or row.revoked_at is not None or revocation.is_revoked(payload):
        raise SessionError("Refresh token is invalid or expired.")
    # The row is what every use of a refresh token checks: no revocation-list entry is needed.
    row.revoked_at = datetime.now(UTC)
    db.session.commit()
    if access_token:
        try:
            access = decode_token(access_token)
        except (PyJWTError, JWTExtendedException, ValueError):
            return
        if access.get("type") == "access" and access.get("sub") == payload["sub"]:
            revocation.revoke_session(access)


def end_all_sessions(user):
    """Revoke every refresh token of the user and cut off the access tokens issued so far.

    Commits the session: changes the caller made (a new password, a deactivation) land in the same
    transaction as the revoked refresh tokens. The cut-off is written after that commit, so a
    token issued until the change is final still predates it.
    """
    _revoke_refresh_tokens(RefreshToken.user_id == user.id)
    db.session.commit()
    revocation.revoke_all_for_user(user.id)


def set_cookies(response, access, refresh):
    set_access_cookies(response, access, max_age=int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()))
    set_refresh_cookies(response, refresh, max_age=int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()))


def clear_cookies(response):
    """Delete both cookies with Max-Age=0 (and an expiry in the past, for old browsers)."""
    config = current_app.config
    for name in (config["JWT_ACCESS_COOKIE_NAME"], config["JWT_REFRESH_COOKIE_NAME"]):
        response.set_cookie(
            name, "", max_age=0, expires=0, path="/", httponly=True,
            secure=config["JWT_COOKIE_SECURE"], samesite=config["JWT_COOKIE_SAMESITE"],
        )

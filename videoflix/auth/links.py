"""Activation and password-reset links: signed, time-limited, and bound to the user's state.

A token carries a fingerprint of the fields that its use changes (the active flag and the time of
the first activation for activation, the password hash for a reset), so a used or outdated link no
longer matches and is refused. An activation link stays dead after a later deactivation, because
activated_at stays set.
"""
import base64
import hashlib
import hmac

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from videoflix.extensions import db

ACTIVATION, RESET = "activation", "password-reset"


def encode_uid(user_id):
    """The user's id, URL-safe base64 without padding (as Django's urlsafe_base64_encode)."""
    return base64.urlsafe_b64encode(str(user_id).encode()).decode().rstrip("=")


def decode_uid(uidb64):
    """The id inside a uidb64, or None when it is not one."""
    if not isinstance(uidb64, str) or not 0 < len(uidb64) <= 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(uidb64 + "=" * (-len(uidb64) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


def _serializer(purpose):
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"videoflix-{purpose}")


def _fingerprint(user, purpose):
    state = f"{user.id}|{user.email}|{user.is_active}|{user.password_hash}"
    if purpose == ACTIVATION and user.activated_at is not None:
        # Appended only when set, so links mailed before activated_at existed keep working.
        state += f"|{user.activated_at.isoformat()}"
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), f"{purpose}|{state}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def make_token(user, purpose):
    return _serializer(purpose).dumps(_fingerprint(user, purpose))


def user_for_link(uidb64, token, purpose, max_age):
    """The user a valid link is for, or None for a malformed, unknown, expired or used link."""
    from videoflix.auth.models import User

    user_id = decode_uid(uidb64)
    if user_id is None or not isinstance(token, str) or len(token) > 256:
        return None
    try:
        fingerprint = _serializer(purpose).loads(token, max_age=max_age)
    except BadSignature:  # includes SignatureExpired
        return None
    user = db.session.get(User, user_id)
    if user is None or not isinstance(fingerprint, str):
        return None
    return user if hmac.compare_digest(fingerprint, _fingerprint(user, purpose)) else None

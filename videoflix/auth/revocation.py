"""The revocation list: Redis when REDIS_URL is set (keys expire with the token), else the database.

Two kinds of entry: a token's jti, and a per-user cut-off (milliseconds) before which every token
of that user is dead (password reset, deactivation). Checking a token is one lookup for both.
"""
import time
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from videoflix.extensions import db, redis_client

ISSUED_MS_CLAIM = "ims"  # issue time in ms: finer than iat, so a cut-off never hits a later login


def _now_ms():
    return int(time.time() * 1000)


def _keys(jti, user_id, redis_prefix=None):
    prefix = (redis_prefix or current_app.config["REDIS_PREFIX"]) + "revoked:"
    return prefix + "jti:" + jti, prefix + "user:" + str(user_id)


def lookup_keys(payload, redis_prefix=None):
    """The two entries that decide a decoded token: its jti's, and its user's cut-off."""
    return _keys(payload["jti"], payload["sub"], redis_prefix)


def revoked(payload, listed, cutoff):
    """The decision, from the two entries' values (None: absent)."""
    if listed is not None:
        return True
    return cutoff is not None and int(payload.get(ISSUED_MS_CLAIM, 0)) < int(cutoff)


# The databases the app supports, each with an INSERT ... ON CONFLICT DO UPDATE.
_UPSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


def _set(key, value, expires_at):
    """Write (or overwrite) one entry until `expires_at`; committed at once.

    Without Redis it is a single upsert, so two concurrent writes of the same key (two password
    resets, a reset and a deactivation) both succeed instead of one hitting the primary key.
    """
    client = redis_client()
    if client is not None:
        client.set(key, value, exat=max(int(expires_at.timestamp()) + 1, int(time.time()) + 1))
        return
    from videoflix.auth.models import RevokedToken

    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < datetime.now(UTC)))
    insert = _UPSERTS[db.session.get_bind().dialect.name](RevokedToken)
    db.session.execute(
        insert.values(key=key, value=str(value), expires_at=expires_at).on_conflict_do_update(
            index_elements=[RevokedToken.key],
            set_={"value": insert.excluded.value, "expires_at": insert.excluded.expires_at},
        )
    )
    db.session.commit()


def revoke_token(jti, expires_at):
    """Put one token on the list until it would have expired anyway."""
    _set(_keys(jti, 0)[0], 1, expires_at)


def revoke_all_for_user(user_id):
    """Every token the user holds now (access and refresh) stops working."""
    lifetime = max(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"], current_app.config["JWT_REFRESH_TOKEN_EXPIRES"])
    _set(_keys("-", user_id)[1], _now_ms(), datetime.now(UTC) + lifetime + timedelta(minutes=1))


def is_revoked(payload):
    """True when the decoded token's jti is listed or it predates its user's cut-off."""
    jti_key, user_key = lookup_keys(payload)
    client = redis_client()
    if client is not None:
        listed, cutoff = client.mget(jti_key, user_key)
    else:
        from videoflix.auth.models import RevokedToken

        now = datetime.now(UTC)
        rows = dict(
            db.session.execute(
                select(RevokedToken.key, RevokedToken.value).where(
                    RevokedToken.key.in_((jti_key, user_key)), RevokedToken.expires_at > now
                )
            ).all()
        )
        listed, cutoff = rows.get(jti_key), rows.get(user_key)
    return revoked(payload, listed, cutoff)

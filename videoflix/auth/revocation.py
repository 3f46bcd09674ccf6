"""The revocation list: Redis when REDIS_URL is set (keys expire with the token), else the database.

Two entries decide a token, read in one lookup: its session's (one key per token family: every
access and refresh token descended from one login carries the family's id) and its user's
cut-off (milliseconds) before which every token of that user is dead (password reset,
deactivation). A token issued before families existed is listed under its own jti instead.
"""
import time
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from videoflix.extensions import db, redis_client

ISSUED_MS_CLAIM = "ims"  # issue time in ms: finer than iat, so a cut-off never hits a later login
FAMILY_CLAIM = "fam"  # the login a token descends from (sessions.issue)


def _now_ms():
    return int(time.time() * 1000)


def _prefix(redis_prefix=None):
    return (redis_prefix or current_app.config["REDIS_PREFIX"]) + "revoked:"


def _family_key(family, redis_prefix=None):
    return _prefix(redis_prefix) + "fam:" + family


def lookup_keys(payload, redis_prefix=None):
    """The two entries that decide a decoded token: its session's (family, else jti), and its
    user's cut-off."""
    family = payload.get(FAMILY_CLAIM)
    session = _family_key(family, redis_prefix) if family else _prefix(redis_prefix) + "jti:" + payload["jti"]
    return session, _prefix(redis_prefix) + "user:" + str(payload["sub"])


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


def _outlives_every_token():
    """Until when an entry must last: every token issued so far has expired by then."""
    config = current_app.config
    longest = max(config["JWT_ACCESS_TOKEN_EXPIRES"], config["JWT_REFRESH_TOKEN_EXPIRES"])
    return datetime.now(UTC) + longest + timedelta(minutes=1)


def revoke_session(payload):
    """The decoded token's session stops working: every token of its family (access and refresh),
    or the token alone when it has no family."""
    _set(lookup_keys(payload)[0], 1, _outlives_every_token())


def revoke_family(family):
    """Every token descended from one login stops working (reuse of a rotated refresh token)."""
    _set(_family_key(family), 1, _outlives_every_token())


def revoke_all_for_user(user_id):
    """Every token the user holds now (access and refresh) stops working."""
    _set(_prefix() + "user:" + str(user_id), _now_ms(), _outlives_every_token())


def is_revoked(payload):
    """True when the decoded token's session is listed or it predates its user's cut-off."""
    session_key, user_key = lookup_keys(payload)
    client = redis_client()
    if client is not None:
        listed, cutoff = client.mget(session_key, user_key)
    else:
        from videoflix.auth.models import RevokedToken

        now = datetime.now(UTC)
        rows = dict(
            db.session.execute(
                select(RevokedToken.key, RevokedToken.value).where(
                    RevokedToken.key.in_((session_key, user_key)), RevokedToken.expires_at > now
                )
            ).all()
        )
        listed, cutoff = rows.get(session_key), rows.get(user_key)
    return revoked(payload, listed, cutoff)

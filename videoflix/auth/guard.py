"""`media_access_required`: @jwt_required() for the media hot path (playlists, segments,
thumbnails), cheaper per request.

A player sends the same access token hundreds of times; PyJWT's decoding is the largest part of a
segment request's CPU (measured with `make bench-serve`). So a token string's verified payload is
cached for the process, while expiry and the revocation list are checked on every request: a
revoked or expired token stops at its next request, exactly as with @jwt_required(). Tokens come
from the same places (the access_token cookie first, else `Authorization: Bearer`) and failures
get the same 401 messages.
"""
import time
from functools import wraps

from flask import current_app, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError

from videoflix.auth import EXPIRED_TOKEN, INVALID_TOKEN, NO_CREDENTIALS, REVOKED_TOKEN
from videoflix.auth.revocation import is_revoked
from videoflix.errors import APIError

CACHE_KEY = "videoflix_verified_tokens"
CACHE_SIZE = 10_000


def verified_tokens(app):
    """This process's cache: token string -> its verified payload (signature, type checked).

    Expiry and revocation are not part of it: whoever reads it checks both on every request.
    """
    return app.extensions.setdefault(CACHE_KEY, {})


def access_token_from_request():
    """The request's access token: the access_token cookie, else `Authorization: Bearer`; or None."""
    config = current_app.config
    token = request.cookies.get(config["JWT_ACCESS_COOKIE_NAME"])
    if token:
        return token
    return bearer_token(request.headers.get("Authorization", ""))


def bearer_token(authorization):
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def verified_access_payload():
    """The payload of the request's valid, unexpired, unrevoked access token.

    Raises APIError(401) with the contract's messages otherwise.
    """
    token = access_token_from_request()
    if token is None:
        raise APIError(401, NO_CREDENTIALS)
    cache = verified_tokens(current_app)
    payload = cache.get(token)
    if payload is None:
        try:
            payload = decode_token(token)
        except ExpiredSignatureError:
            raise APIError(401, EXPIRED_TOKEN) from None
        except (PyJWTError, JWTExtendedException, ValueError):
            raise APIError(401, INVALID_TOKEN) from None
        if payload.get("type") != "access":
            raise APIError(401, INVALID_TOKEN)
        if len(cache) >= CACHE_SIZE:
            cache.clear()  # bounded; refilling costs one decode per token
        cache[token] = payload
    if payload["exp"] <= time.time():
        raise APIError(401, EXPIRED_TOKEN)
    if is_revoked(payload):
        raise APIError(401, REVOKED_TOKEN)
    return payload


def media_access_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        verified_access_payload()
        return view(*args, **kwargs)

    return wrapper

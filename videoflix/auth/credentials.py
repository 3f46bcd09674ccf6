"""Everything about a request's credentials, in one place for Flask views, the admin and the
WSGI segment fast path (videos/delivery/fastpath.py) alike.

- Where an access token comes from: `access_token(environ, config)`, the one reading. It follows
  JWT_TOKEN_LOCATION in its order (["cookies", "headers"]: the JWT_ACCESS_COOKIE_NAME cookie first,
  else `JWT_HEADER_NAME: JWT_HEADER_TYPE <token>`), with cookies parsed by werkzeug's
  `parse_cookie`, exactly as Flask's `request.cookies` (a cookie sent twice: the first one).
  Flask-JWT-Extended's @jwt_required (the non-media routes) reads the same JWT_* keys of the
  app's config, so both look in the same places; only the header's scheme is matched ignoring
  case here ("bearer" too), as before.
- How it is verified: `verified_payload(token)`, the check of `media_access_required` (the media
  routes) and of the admin: a token string's verified payload is cached for the process (PyJWT's
  decoding is most of a segment request's CPU, `make bench-serve`), while expiry and the
  revocation list are checked on every request, so a revoked or expired token stops at its next
  request, exactly as with @jwt_required(); failures get the same 401 messages.
- Which origins are allowed: `cors_allows` (CORS_ORIGINS, for cross-origin reads) and
  `csrf_allows` (CORS_ORIGINS or this server's own, for cookie-authenticated writes).
- What answers vary on (`VARY`) and the headers every answer carries (`SECURITY_HEADERS`), plus the
  stricter ones of JSON answers (`JSON_HEADERS`) and of the back office's pages (`admin_page_headers`).
- The bound of ids in URLs (`MAX_ID`) and the route converter that applies it (`IdConverter`).
"""
import time
from functools import wraps

from flask import current_app, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError
from werkzeug.http import parse_cookie
from werkzeug.routing import IntegerConverter

from videoflix.auth import EXPIRED_TOKEN, INVALID_TOKEN, NO_CREDENTIALS, REVOKED_TOKEN
from videoflix.auth.revocation import is_revoked, lookup_keys, revoked
from videoflix.config import origin_of
from videoflix.errors import APIError
from videoflix.extensions import redis_client

CACHE_KEY = "videoflix_verified_tokens"
CACHE_SIZE = 10_000

# Every answer that depends on who asks varies on these (a shared cache must never mix two users
# up; CORS headers depend on the Origin).
VARY = ("Cookie", "Authorization", "Origin")


def vary_on_credentials(response):
    """An after_request hook for blueprints whose every answer depends on who asks: a shared cache
    must never mix two users up, and a browser must not reuse a same-origin answer cross-origin
    (the CORS headers depend on the Origin)."""
    response.vary.update(VARY)
    return response

# On every answer (unless the route set its own).
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
# JSON is never framed nor allowed to load anything.
JSON_HEADERS = (("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),)

MAX_ID = 2**31 - 1  # ids are INTEGER columns: 32-bit on PostgreSQL


class IdConverter(IntegerConverter):
    """Routes' `<int:...>`: an integer bounded to the id columns' range, so /api/video/99999999999/
    is a 404, not an overflow in the database driver."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def access_token(environ, config):
    """The access token of a WSGI environ (a Flask request's or the fast path's), or None.

    Looks in JWT_TOKEN_LOCATION's order: the access cookie (werkzeug's parsing, the first of
    duplicates), then `Authorization: Bearer <token>` (scheme in any case). Empty values count as
    absent.
    """
    for location in config["JWT_TOKEN_LOCATION"]:
        if location == "cookies":
            token = parse_cookie(environ.get("HTTP_COOKIE", "")).get(config["JWT_ACCESS_COOKIE_NAME"])
        elif location == "headers":
            header = "HTTP_" + config["JWT_HEADER_NAME"].upper().replace("-", "_")
            token = bearer_token(environ.get(header, ""), config["JWT_HEADER_TYPE"])
        else:
            token = None
        if token:
            return token
    return None


def access_token_from_request():
    """The current Flask request's access token (see `access_token`), or None."""
    return access_token(request.environ, current_app.config)


def bearer_token(authorization, scheme="Bearer"):
    """The token of an `Authorization: <scheme> <token>` header value (scheme in any case), or None."""
    given, _, value = authorization.partition(" ")
    return value.strip() if given.lower() == scheme.lower() and value.strip() else None


def verified_tokens(app):
    """This process's cache: token string -> its verified payload (signature, type checked).

    Expiry and revocation are not part of it: whoever reads it checks both on every request.
    """
    return app.extensions.setdefault(CACHE_KEY, {})


def now():
    """The time cached tokens are checked against (seconds since the epoch); tests move it here."""
    return time.time()


def cached_payload(app, token):
    """The payload of a token this process has verified before and that has not expired, else
    None (revocation still to be checked by the caller): the fast path's shortcut."""
    payload = verified_tokens(app).get(token) if token else None
    return payload if payload is not None and payload["exp"] > now() else None


def known_unrevoked(app, payload):
    """The WSGI fast paths' revocation check of a cached payload: True or False as the revocation
    list says, None when it could not be asked (then Flask asks again and answers with its own
    error handling). The same single lookup as `verified_payload`'s, outside a request.

    Redis is asked through the app's one client, so the connection always goes back to its pool,
    whatever thread asks and however many there are.
    """
    client = redis_client(app)
    try:
        if client is None:
            with app.app_context():
                return is_revoked(payload)
        listed, cutoff = client.mget(lookup_keys(payload, app.config["REDIS_PREFIX"]))
    except Exception:  # noqa: BLE001 - Redis or the database is down: Flask's answer, not ours
        return None
    return revoked(payload, listed, cutoff)


def fast_path_token(app, environ, *, verify=False):
    """The payload of the request's access token when a fast path may act on it: a token this
    process verified in full before (or, with `verify`, now: its signature and type, then cached)
    and that has not expired (revocation is the caller's last check, `known_unrevoked`); None
    sends the request to Flask, which answers any failure with its own error."""
    token = access_token(environ, app.config)
    payload = cached_payload(app, token)
    if payload is None and verify and token:
        with app.app_context():
            try:
                payload = _verified_signature(token)
            except APIError:
                return None
        payload = payload if payload["exp"] > now() else None
    return payload


def verified_payload(token):
    """The payload of a valid, unexpired, unrevoked access token (in an app context).

    Raises APIError(401) with the contract's messages otherwise.
    """
    if not token:
        raise APIError(401, NO_CREDENTIALS)
    payload = _verified_signature(token)
    if payload["exp"] <= now():
        raise APIError(401, EXPIRED_TOKEN)
    if is_revoked(payload):
        raise APIError(401, REVOKED_TOKEN)
    return payload


def _verified_signature(token):
    """The token's payload from the process's cache, else decoded (signature and type checked;
    APIError 401 otherwise) and cached (in an app context)."""
    cache = verified_tokens(current_app)
    payload = cache.get(token)
    if payload is None:
        payload = _decode_access(token)
        if len(cache) >= CACHE_SIZE:
            cache.clear()  # bounded; refilling costs one decode per token
        cache[token] = payload
    return payload


def _decode_access(token):
    try:
        payload = decode_token(token)
    except ExpiredSignatureError:
        raise APIError(401, EXPIRED_TOKEN) from None
    except (PyJWTError, JWTExtendedException, ValueError):
        raise APIError(401, INVALID_TOKEN) from None
    if payload.get("type") != "access":
        raise APIError(401, INVALID_TOKEN)
    return payload


def verified_access_payload():
    """The payload of the current request's access token; APIError(401) as `verified_payload`."""
    return verified_payload(access_token_from_request())


def media_access_required(view):
    """@jwt_required() for the hot paths (playlists, segments, thumbnails, playback beacons),
    cheaper per request; the view reads who asks with `access_identity()`."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.videoflix_access = verified_access_payload()
        return view(*args, **kwargs)

    return wrapper


def access_identity():
    """The user id of the access token media_access_required verified for this request."""
    return int(g.videoflix_access["sub"])


def admin_page_headers(nonce, script_hashes=(), style_hashes=()):
    """The headers of a back-office page: never framed (clickjacking), and scripts and styles only
    from this server, plus the inline ones the admin allows exactly (a nonce for its <script>
    blocks, hashes of its event handlers and style attributes; see admin/csp.py)."""
    scripts = ["'self'", f"'nonce-{nonce}'", *(["'unsafe-hashes'", *script_hashes] if script_hashes else [])]
    styles = ["'self'", *(["'unsafe-hashes'", *style_hashes] if style_hashes else [])]
    policy = "; ".join([
        "default-src 'self'", "script-src " + " ".join(scripts), "style-src " + " ".join(styles),
        "img-src 'self' data:", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
        "frame-ancestors 'none'",
    ])
    return (("X-Frame-Options", "DENY"), ("Content-Security-Policy", policy))


def cors_allows(origin, config):
    """True when `origin` (an Origin header, present) is one CORS_ORIGINS allows, as flask-cors
    decides it (ignoring case); such an answer carries Access-Control-Allow-Origin: <origin>."""
    return origin.lower() in {allowed.lower() for allowed in config["CORS_ORIGINS"]}


def csrf_allows(source, host_url, config):
    """May a cookie-authenticated write come from `source` (its Origin, else Referer)?

    Yes for an allowed CORS origin or this server's own (`host_url`), ignoring case; "null" only
    when CORS_ORIGINS lists it.
    """
    origin = origin_of(source) if source != "null" else "null"
    return origin is not None and (origin == origin_of(host_url) or cors_allows(origin, config))

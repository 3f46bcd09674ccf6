"""The beacon fast path: a thin WSGI layer in front of Flask for the request every player repeats
every 10 s, POST /api/video/<id>/playback/ (200 beacons/s for 2,000 viewers: `make bench-analytics`).

Flask's request machinery (context, routing, hooks, CORS, the limiter's bookkeeping, the ORM
session) costs more than the beacon's own work. This layer gives the same answer itself, but only
for a beacon that is counted, and only when everything about the request is plain:

- a JSON object body (`application/json`, or `text/plain` as navigator.sendBeacon sends it) of a
  known length that BeaconSchema loads without an error (the schema is the one of the route);
- the access token is valid, not expired, not revoked (auth.credentials' `fast_path_token` and
  `known_unrevoked`, as for segments; unlike a segment's, a token this process has not seen yet is
  verified here: 2,000 viewers' first beacons in each of gunicorn's processes);
- no cross-site question: without the auth cookies, or without an Origin/Referer, or from an
  allowed CORS origin (an Origin, when there is one, also gets flask-cors's two headers);
- `beacons.count` wrote the beacon (on PostgreSQL one prepared statement, in autocommit, on an
  engine of this layer's without the pool's pre-ping).

Anything else goes to Flask with the body it sent: a beacon the count did not write (a duplicate,
an unknown or unready video, an inactive account, a closed or foreign session, the session's rate
limit) wrote nothing, so the route runs it again and gives the refusal or the duplicate's answer
from its one home. A database error falls through the same way (nothing was committed).
tests/analytics/test_beacon_fast_path.py checks that both give the same status, headers and body.
create_app mounts it (register_middleware) behind the segment fast path, outside ProxyFix.
"""
import json
import re
import time
from dataclasses import asdict
from io import BytesIO

from marshmallow import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import parse_cookie, parse_options_header

from videoflix.analytics import beacons
from videoflix.analytics.schemas import beacon_answer_schema, beacon_schema
from videoflix.auth.credentials import (
    JSON_HEADERS,
    MAX_ID,
    SECURITY_HEADERS,
    VARY,
    cors_allows,
    csrf_allows,
    fast_path_token,
    known_unrevoked,
)
from videoflix.extensions import db
from videoflix.logs import ROUTE_KEY, log_access, request_id_from
from videoflix.models_base import utcnow

BEACON_URL = re.compile(r"/api/video/([1-9][0-9]{0,9})/playback/?")
BEACON_ENDPOINT = "analytics.playback_beacon"
BODY_TYPES = frozenset({"application/json", "text/plain"})
MAX_BODY = 4096  # a beacon is ~250 bytes; anything larger is Flask's to read


class BeaconFastPath:
    """WSGI middleware: answers a beacon that is counted, else calls Flask (with the body)."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app  # Flask's (behind ProxyFix when configured)
        self._engine = None
        self._rule = None

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "POST":
            return self.wsgi_app(environ, start_response)
        match = BEACON_URL.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or int(match[1]) > MAX_ID or environ.get("QUERY_STRING"):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        answer = self.answer(environ, int(match[1]))
        if answer is None:
            return self.wsgi_app(environ, start_response)
        body, origin = answer
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Vary", ", ".join(VARY)),
                   *SECURITY_HEADERS, *JSON_HEADERS, ("Cache-Control", "no-store"), ("X-Request-ID", request_id)]
        if origin is not None:  # allowed (plain_origin): flask-cors's answer to it
            headers += [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
        start_response("200 OK", headers)
        environ[ROUTE_KEY] = self.rule()
        path = environ["PATH_INFO"]
        log_access("POST", path, path, 200, (time.perf_counter() - started) * 1000, request_id)
        return [body]

    def answer(self, environ, video_id):
        """(the 200's body, the allowed Origin or None) of a counted beacon, or None to let Flask
        answer; then the environ's input holds the body again."""
        config = self.app.config
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        origin = plain_origin(environ, config, cookies)
        if origin is False:
            return None
        payload = fast_path_token(self.app, environ, verify=True)
        if payload is None:
            return None
        raw = read_body(environ)
        if raw is None:
            return None
        beacon = load_beacon(raw)
        # Last before writing, and only once everything else holds: the token's revocation lookup.
        if beacon is None or known_unrevoked(self.app, payload) is not False:
            return None
        outcome = self.count(int(payload["sub"]), video_id, beacon)
        if outcome is None:
            return None
        data = beacon_answer_schema.dump(
            {**asdict(outcome.position), "session": beacon.session, "seq": beacon.seq, "counted": True})
        return self.app.json.response(data).get_data(), origin  # the bytes Flask would send

    def count(self, user_id, video_id, beacon):
        """beacons.count on a connection of its own, committed; None when it wrote nothing or the
        database failed (rolled back: Flask runs the beacon again)."""
        engine = self.engine()
        per_minute = self.app.config["ANALYTICS_BEACONS_PER_MINUTE"]
        try:
            with engine.connect() as connection:
                outcome = beacons.count(connection, user_id, video_id, beacon, utcnow(), per_minute)
                if outcome is None:
                    connection.rollback()
                    return None
                connection.commit()
                return outcome
        except SQLAlchemyError:
            return None

    def engine(self):
        """The app's engine; on PostgreSQL a small one of this layer's, in autocommit (the beacon
        is one statement) and without the pool's pre-ping (a round trip per beacon): a connection
        that went stale fails its statement, which writes nothing, and Flask answers instead."""
        if self._engine is None:
            with self.app.app_context():
                engine = db.engine
            if engine.dialect.name == "postgresql":
                options = {**self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}), "pool_pre_ping": False,
                           "isolation_level": "AUTOCOMMIT"}
                engine = create_engine(engine.url, **options)
            self._engine = engine
        return self._engine

    def rule(self):
        """The route's URL rule, as Flask's metrics name it (metrics.middleware)."""
        if self._rule is None:
            self._rule = next(r.rule for r in self.app.url_map.iter_rules() if r.endpoint == BEACON_ENDPOINT)
        return self._rule


def plain_origin(environ, config, cookies):
    """The request's Origin when flask-cors allows it, None without one; False when Flask must
    decide (an Origin not allowed, or a cookie-authenticated write whose Origin/Referer is not a
    CORS origin: security.refuse_cross_site_writes also knows this server's own origin)."""
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and not cors_allows(origin, config):
        return False
    source = origin or environ.get("HTTP_REFERER")
    auth_cookies = (config["JWT_ACCESS_COOKIE_NAME"], config["JWT_REFRESH_COOKIE_NAME"])
    if source and any(name in cookies for name in auth_cookies) and not csrf_allows(source, "", config):
        return False
    return origin


def read_body(environ):
    """The body's bytes when it is a small JSON or text/plain one of a known length, else None.
    What was read is put back into the environ, so Flask can read it if this layer declines."""
    mimetype, _ = parse_options_header(environ.get("CONTENT_TYPE", ""))
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if mimetype not in BODY_TYPES or not 0 < length <= MAX_BODY or environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = BytesIO(raw)
    return raw


def load_beacon(raw):
    """The Beacon of a body, or None when it is not a JSON object the schema loads."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError
        return None
    if not isinstance(data, dict):
        return None
    try:
        return beacon_schema.load(data)
    except ValidationError:
        return None

"""The segment fast path: a thin WSGI layer in front of Flask for the request a player repeats
hundreds of times per film, GET /api/video/<id>/<resolution>/<segNNN.ts>[/][?v=<version>].

Flask's request machinery (context, routing, hooks, CORS, the limiter's bookkeeping) costs
several times the work such a request needs (`make bench-serve`). This layer gives the same
answer itself, but only when everything about the request is already known and fine:

- the access token (the access_token cookie, else `Authorization: Bearer`, as in auth.guard) is
  one this process has verified in full before (auth.guard's cache); it has not expired, and it
  is not revoked: the same single lookup as on the full path (Redis MGET, else the database);
- the video's entry in the media index is fresh and playable, it has that rendition, and a
  `?v=` in the URL names its current version;
- the file passes storage's no-symlink rule (storage.hls_file);
- an Origin, when there is one, is an allowed CORS origin, spelled exactly;
- nginx sends the bytes (MEDIA_ACCEL_REDIRECT), or the request has no Range or conditional
  header (then the answer is a plain 200 with the file, sent with sendfile by gunicorn).

Anything else, every refusal included, goes to Flask untouched: this layer only ever answers
200, so every rule and every error message keeps its one home in the blueprint.
tests/test_fast_path.py checks that both give the same status, headers, body and log line.
"""
import re
import threading
import time

from werkzeug.http import http_date
from werkzeug.wsgi import wrap_file

from videoflix import MAX_ID
from videoflix.auth.guard import bearer_token, verified_tokens
from videoflix.auth.revocation import is_revoked, lookup_keys, revoked
from videoflix.extensions import redis_client
from videoflix.logs import log_access, request_id_from
from videoflix.security import SECURITY_HEADERS
from videoflix.videos import storage
from videoflix.videos.delivery import (
    IMMUTABLE,
    REVALIDATE,
    SEGMENT_TYPE,
    MediaFile,
    accel_location,
    etag_of,
    media_index,
)
from videoflix.videos.routes import VARY

# Ids as the routes' converter reads them (no sign, no leading zero; bounded below).
SEGMENT_URL = re.compile(r"/api/video/([1-9][0-9]{0,9})/(480p|720p|1080p)/(seg[0-9]{1,6}\.ts)/?")
VERSION_QUERY = re.compile(r"v=([A-Za-z0-9_-]{1,64})")
# When the app sends the bytes itself, these make the answer something else than a plain 200
# (206, 304, 412, 416): werkzeug decides those, through Flask.
CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH",
               "HTTP_IF_UNMODIFIED_SINCE")


class SegmentFastPath:
    """WSGI middleware: answers a segment request that is certain to succeed, else calls Flask."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app  # Flask's (behind ProxyFix when configured)
        self._local = threading.local()  # one Redis connection per thread

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        answer = self.answer(environ)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        headers, body = answer
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        headers.append(("X-Request-ID", request_id))
        start_response("200 OK", headers)
        path, query = environ["PATH_INFO"], environ.get("QUERY_STRING", "")
        log_access("GET", f"{path}?{query}" if query else path, path, 200,
                   (time.perf_counter() - started) * 1000, request_id)
        return body

    def answer(self, environ):
        """(headers, body) of the 200 that Flask would give, or None to let Flask answer."""
        if environ["REQUEST_METHOD"] != "GET":
            return None
        match = SEGMENT_URL.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        config = self.app.config
        video_id, label, name = int(match[1]), match[2], match[3]
        query = environ.get("QUERY_STRING", "")
        version = None
        if query:
            version_match = VERSION_QUERY.fullmatch(query)
            if version_match is None:
                return None
            version = version_match[1]
        accel = config.get("MEDIA_ACCEL_REDIRECT")
        if not accel and any(header in environ for header in CONDITIONAL):
            return None
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in config["CORS_ORIGINS"]:
            return None
        if video_id > MAX_ID:
            return None

        payload = verified_tokens(self.app).get(access_token(environ, config["JWT_ACCESS_COOKIE_NAME"]))
        if payload is None or payload["exp"] <= time.time():
            return None
        entry = media_index(self.app).peek(video_id)
        if entry is None or not entry.servable or (version is not None and version != entry.version):
            return None
        relative = entry.rendition_file(label, name)
        if relative is None:
            return None
        try:
            media = MediaFile(relative, *storage.hls_file(relative, config["MEDIA_ROOT"]), entry.version)
        except ValueError:
            return None
        # Last, and only once everything else holds: the token's one revocation lookup.
        if self.revoked(payload) is not False:
            return None

        cache_control = IMMUTABLE if version == entry.version else REVALIDATE
        if accel:
            headers = [("Content-Type", SEGMENT_TYPE), ("Content-Length", "0"),
                       ("X-Accel-Redirect", accel_location(accel, relative))]
            body = [b""]
        else:
            try:
                file = open(media.path, "rb")  # noqa: SIM115 - the WSGI server closes the wrapper
            except OSError:
                return None  # replaced meanwhile: Flask re-reads the row
            headers = [("Content-Type", SEGMENT_TYPE), ("Content-Length", str(media.stat.st_size)),
                       ("Last-Modified", http_date(int(media.stat.st_mtime))),
                       ("ETag", f'"{etag_of(media)}"'), ("Accept-Ranges", "bytes"),
                       ("Content-Disposition", f"inline; filename={name}")]
            body = wrap_file(environ, file)
        headers += [("Cache-Control", cache_control), ("Vary", ", ".join(VARY)), *SECURITY_HEADERS]
        if origin is not None:  # allowed (checked above): flask-cors's answer to it
            headers += [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
        return headers, body

    def revoked(self, payload):
        """True or False as the revocation list says; None when it could not be asked (Flask
        then asks again and answers with its own error handling)."""
        client = redis_client(self.app)
        if client is None:
            try:
                with self.app.app_context():
                    return is_revoked(payload)
            except Exception:  # noqa: BLE001 - the database is down: Flask's answer, not ours
                return None
        # The MGET on a connection of this thread's own, without the client's per-command
        # bookkeeping (a third of a segment request's cost); any error drops the connection.
        connection = getattr(self._local, "connection", None)
        try:
            if connection is None:
                connection = self._local.connection = client.connection_pool.make_connection()
            connection.send_command("MGET", *lookup_keys(payload, self.app.config["REDIS_PREFIX"]))
            listed, cutoff = connection.read_response()
        except Exception:  # noqa: BLE001 - Redis errors, timeouts, a broken connection
            if connection is not None:
                connection.disconnect()
            self._local.connection = None
            return None
        return revoked(payload, listed, cutoff)


def access_token(environ, cookie_name):
    """The access token as auth.guard finds it: the cookie, else `Authorization: Bearer`.

    The cookie header is split plainly; a cookie given twice yields None (Flask decides). Only a
    token already in the verified cache is ever accepted, so a token read differently from
    werkzeug could at most be another valid token the client itself sent.
    """
    found = None
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == cookie_name:
            if found is not None:
                return None
            found = value.strip()
    if found:
        return found
    return bearer_token(environ.get("HTTP_AUTHORIZATION", ""))

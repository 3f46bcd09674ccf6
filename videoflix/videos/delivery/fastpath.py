"""The segment fast path: a thin WSGI layer in front of Flask for the request a player repeats
hundreds of times per film, GET /api/video/<id>/<resolution>/<segNNN.ts>[/][?v=<version>].

Flask's request machinery (context, routing, hooks, CORS, the limiter's bookkeeping) costs
several times the work such a request needs (`make bench-serve`). This layer gives the same
answer itself, but only when everything about the request is already known and fine:

- the access token (read by auth.credentials.access_token, the one reading of the cookie and
  the Bearer header) is one this process has verified in full before (auth.credentials' cache);
  it has not expired, and it is not revoked: the same single lookup as on the full path (an MGET
  on the app's one Redis client, whose pool gets the connection back, else the database);
- the video's entry in the media index is fresh and playable, it has that rendition, and a
  `?v=` in the URL names its current version;
- media are local files (MEDIA_STORAGE=local), and the file passes storage's no-symlink rule
  (hls_file);
- an Origin, when there is one, is an allowed CORS origin (auth.credentials.cors_allows);
- nginx sends the bytes (MEDIA_ACCEL_REDIRECT), or the request has no Range or conditional
  header (then the answer is a plain 200 with the file, sent with sendfile by gunicorn).

Anything else, every refusal included, goes to Flask untouched: this layer only ever answers
200, so every rule and every error message keeps its one home in the blueprint.
tests/test_fast_path.py checks that both give the same status, headers, body and log line.
create_app mounts it (register_middleware), outside ProxyFix.
"""
import re
import time
from dataclasses import dataclass

from werkzeug.http import http_date
from werkzeug.wsgi import wrap_file

from videoflix.auth.credentials import MAX_ID, SECURITY_HEADERS, VARY, cors_allows, fast_path_token, known_unrevoked
from videoflix.logs import log_access, request_id_from
from videoflix.videos.delivery.files import MediaFile
from videoflix.videos.delivery.index import media_index
from videoflix.videos.delivery.send import IMMUTABLE, REVALIDATE, SEGMENT_TYPE, accel_location, etag_of
from videoflix.videos.media.layout import LABEL_PATTERN, SEGMENT_PATTERN
from videoflix.videos.storage.keys import hls_file, is_local

# Ids as the routes' converter reads them (no sign, no leading zero; bounded below).
SEGMENT_URL = re.compile(rf"/api/video/([1-9][0-9]{{0,9}})/({LABEL_PATTERN})/({SEGMENT_PATTERN})/?")
VERSION_QUERY = re.compile(r"v=([A-Za-z0-9_-]{1,64})")
# When the app sends the bytes itself, these make the answer something else than a plain 200
# (206, 304, 412, 416): werkzeug decides those, through Flask.
CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH",
               "HTTP_IF_UNMODIFIED_SINCE")


@dataclass(frozen=True)
class SegmentRequest:
    """What the URL and headers of a segment request say, once they are known to be plain."""

    video_id: int
    label: str
    name: str
    version: str | None  # the URL's ?v=, if any
    origin: str | None  # an allowed Origin, if any


def segment_request(environ, config):
    """The request as a SegmentRequest when it is a plain GET of a segment URL with nothing this
    layer leaves to Flask (another query, a conditional or range header while the app sends the
    bytes, an origin not allowed, an id beyond the column); else None."""
    if environ["REQUEST_METHOD"] != "GET":
        return None
    match = SEGMENT_URL.fullmatch(environ.get("PATH_INFO", ""))
    if match is None or int(match[1]) > MAX_ID:
        return None
    version = None
    if query := environ.get("QUERY_STRING", ""):
        version_match = VERSION_QUERY.fullmatch(query)
        if version_match is None:
            return None
        version = version_match[1]
    if not config.get("MEDIA_ACCEL_REDIRECT") and any(header in environ for header in CONDITIONAL):
        return None
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and not cors_allows(origin, config):
        return None
    return SegmentRequest(int(match[1]), match[2], match[3], version, origin)


class SegmentFastPath:
    """WSGI middleware: answers a segment request that is certain to succeed, else calls Flask."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app  # Flask's (behind ProxyFix when configured)

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
        config = self.app.config
        segment = segment_request(environ, config)
        if segment is None:
            return None
        payload = fast_path_token(self.app, environ)
        if payload is None:
            return None
        media = self.media_file(segment)
        if media is None:
            return None
        # Last, and only once everything else holds: the token's one revocation lookup.
        if self.revoked(payload) is not False:
            return None
        return respond(environ, config, segment, media)

    def media_file(self, segment):
        """The MediaFile when the media index knows the video as playable, in the URL's version,
        with that rendition and a file storage would serve; else None."""
        if not is_local(self.app):
            return None  # objects in a bucket: Flask streams them (or nginx, or presigned URLs)
        entry = media_index(self.app).peek(segment.video_id)
        if entry is None or not entry.servable or segment.version not in (None, entry.version):
            return None
        relative = entry.rendition_file(segment.label, segment.name)
        if relative is None:
            return None
        try:
            return MediaFile(relative, *hls_file(relative, self.app.config["MEDIA_ROOT"]), entry.version)
        except ValueError:
            return None

    def revoked(self, payload):
        """True or False as the revocation list says; None when it could not be asked."""
        return known_unrevoked(self.app, payload)


def respond(environ, config, segment, media):
    """(headers, body) of the 200: the file (or nginx's X-Accel-Redirect to it) with the headers
    the blueprint and flask-cors would add; None when the file went away meanwhile."""
    if accel := config.get("MEDIA_ACCEL_REDIRECT"):
        headers = [("Content-Type", SEGMENT_TYPE), ("Content-Length", "0"),
                   ("X-Accel-Redirect", accel_location(accel, media.relative))]
        body = [b""]
    else:
        try:
            file = open(media.path, "rb")  # noqa: SIM115 - the WSGI server closes the wrapper
        except OSError:
            return None  # replaced meanwhile: Flask re-reads the row
        headers = [("Content-Type", SEGMENT_TYPE), ("Content-Length", str(media.stat.st_size)),
                   ("Last-Modified", http_date(int(media.stat.st_mtime))),
                   ("ETag", f'"{etag_of(media)}"'), ("Accept-Ranges", "bytes"),
                   ("Content-Disposition", f"inline; filename={segment.name}")]
        body = wrap_file(environ, file)
    cache_control = IMMUTABLE if segment.version == media.version else REVALIDATE
    headers += [("Cache-Control", cache_control), ("Vary", ", ".join(VARY)), *SECURITY_HEADERS]
    if segment.origin is not None:  # allowed (segment_request): flask-cors's answer to it
        headers += [("Access-Control-Allow-Origin", segment.origin), ("Access-Control-Allow-Credentials", "true")]
    return headers, body

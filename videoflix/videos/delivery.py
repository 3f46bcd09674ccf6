"""Media delivery: a short-lived index of playable videos, files below hls/ in the store, HTTP
caching, ranges, nginx X-Accel-Redirect, and presigned segment URLs (MEDIA_DELIVERY=signed).

Only files below hls/<hls_dir>/ are ever served; uploads/ and work/ have no route.
"""
import os
import posixpath
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass

from botocore.exceptions import ClientError
from flask import Response, current_app, request, send_file, stream_with_context
from sqlalchemy import event
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from videoflix.errors import APIError
from videoflix.extensions import db
from videoflix.videos.models import READY, Video
from videoflix.videos.storage.backends import NotStored
from videoflix.videos.storage.keys import hls_file, hls_key, is_local, media_store, read_hls

LABELS = frozenset({"480p", "720p", "1080p"})
SEGMENT_RE = re.compile(r"seg\d{1,6}\.ts")
# hls_dir and thumbnail come from the database, never from the client; checked anyway.
STORED_DIR_RE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
STORED_JPEG_RE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*\.jpg")

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/MP2T"
JPEG_TYPE = "image/jpeg"
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
NOT_FOUND = "Not found."
EXTENSION_KEY = "videoflix_media_index"


@dataclass(frozen=True)
class MediaEntry:
    """What delivery needs to know of a video, without touching the row again."""

    status: str
    hls_dir: str | None
    labels: frozenset
    thumbnail: str | None

    @property
    def playable(self):
        return self.status == READY and bool(self.hls_dir)

    @property
    def servable(self):
        """Playable, with a well-formed hls_dir (it comes from the database; checked anyway)."""
        return self.playable and bool(STORED_DIR_RE.fullmatch(self.hls_dir))

    @property
    def version(self):
        """The version folder of hls_dir ("12/ab34cd" -> "ab34cd"): the `?v=` of immutable URLs."""
        return posixpath.basename(self.hls_dir)

    def rendition_file(self, label, name):
        """The path below hls/ of a file of one rendition, or None when the video lacks it."""
        return f"{self.hls_dir}/{label}/{name}" if label in self.labels else None


class MediaIndex:
    """video id -> MediaEntry, cached in process for a few seconds.

    Positive answers live `ttl` seconds, misses `negative_ttl` (a video that just became ready
    shows up quickly in every worker). Commits in this process invalidate at once (see
    `_track_changes`); other processes rely on the TTL, and a vanished file forces a re-read.
    """

    def __init__(self, ttl=5.0, negative_ttl=1.0, max_entries=10_000):
        self.ttl, self.negative_ttl, self.max_entries = ttl, negative_ttl, max_entries
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, video_id, *, fresh=False):
        """The entry for video_id, or None for an unknown video (one SELECT on a miss)."""
        now = time.monotonic()
        cached = self._entries.get(video_id)
        if cached is not None and not fresh and cached[0] > now:
            return cached[1]
        row = db.session.execute(
            db.select(Video.status, Video.hls_dir, Video.renditions, Video.thumbnail).where(Video.id == video_id)
        ).first()
        entry = None
        if row is not None:
            labels = frozenset(r.get("label") for r in row.renditions or [] if isinstance(r, dict)) & LABELS
            entry = MediaEntry(row.status, row.hls_dir, labels, row.thumbnail)
        ttl = self.ttl if entry is not None and entry.playable else self.negative_ttl
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # crude, but bounded; a refill costs one SELECT per video
            self._entries[video_id] = (now + ttl, entry)
        return entry

    def peek(self, video_id):
        """The cached entry for video_id while it is fresh, else None; never touches the database."""
        cached = self._entries.get(video_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def invalidate(self, video_id):
        with self._lock:
            self._entries.pop(video_id, None)


def media_index(app=None):
    app = app or current_app
    index = app.extensions.get(EXTENSION_KEY)
    if index is None:
        ttl = float(app.config["MEDIA_CACHE_TTL"])
        index = app.extensions[EXTENSION_KEY] = MediaIndex(ttl=ttl, negative_ttl=min(ttl, 1.0))
    return index


# On the sessions Flask-SQLAlchemy makes for the apps (db.session), not on every Session class.
@event.listens_for(db.session, "after_flush")
def _track_changes(session, flush_context):
    changed = {o.id for o in (*session.dirty, *session.deleted, *session.new) if isinstance(o, Video)}
    if changed:
        session.info.setdefault("videoflix_changed_videos", set()).update(changed)


@event.listens_for(db.session, "after_commit")
def _invalidate_committed(session):
    changed = session.info.pop("videoflix_changed_videos", None)
    if changed and current_app:
        index = current_app.extensions.get(EXTENSION_KEY)
        for video_id in changed if index is not None else ():
            index.invalidate(video_id)


@event.listens_for(db.session, "after_rollback")
def _forget_changes(session):
    session.info.pop("videoflix_changed_videos", None)


@dataclass(frozen=True)
class MediaFile:
    """A file below hls/ that may be sent: where it is, and its video's current version.

    `path` and `stat` describe the local file (MEDIA_STORAGE=local); both are None for an object
    in a bucket, which is not asked for anything before it is sent (one request, not two).
    """

    relative: str                 # below hls/, e.g. "12/ab34cd/480p/seg000.ts"
    path: str | None              # absolute
    stat: os.stat_result | None
    version: str                  # "ab34cd": the version folder, the `?v=` of immutable URLs


def _find(relative, version):
    """The MediaFile of `relative`; ValueError when a local file is not there."""
    if is_local():
        return MediaFile(relative, *hls_file(relative), version)
    return MediaFile(relative, None, None, version)


def _locate(video_id, relative_of, version=None):
    """The MediaFile at relative_of(entry) for a playable video; APIError(404) otherwise.

    relative_of returns the path below hls/ or None when the entry lacks that file. The cached
    entry is tried first (no SQL); when it or its file is missing, or it is older than the
    `version` the client asks for (a playlist another process published), one fresh read follows.
    """
    index = media_index()
    for fresh in (False, True):
        entry = index.get(video_id, fresh=fresh)
        if entry is None or not entry.servable:
            continue
        if version and version != entry.version and not fresh:
            continue
        relative = relative_of(entry)
        if relative is None:
            continue
        try:
            return _find(relative, entry.version)
        except ValueError:
            pass  # gone (re-transcoded meanwhile?): the fresh pass re-reads the row
    raise APIError(404, NOT_FOUND)


def rendition_file(video_id, label, name, version=None):
    """A rendition's playlist (`index.m3u8`) or segment (`segNNN.ts`) of the current version
    (re-read when `version`, the client's `?v=`, is not the cached one) as a MediaFile.

    Raises APIError(404) for an unknown or unplayable video, a rendition it lacks, any other
    name, or a file that is not there.
    """
    if label not in LABELS or not (name == "index.m3u8" or SEGMENT_RE.fullmatch(name)):
        raise APIError(404, NOT_FOUND)
    return _locate(video_id, lambda e: e.rendition_file(label, name), version)


def master_file(video_id):
    """The master playlist the transcoder wrote into the version folder; APIError(404)."""
    return _locate(video_id, lambda e: f"{e.hls_dir}/master.m3u8")


def thumbnail_file(video_id):
    """A ready video's thumbnail; its version is the folder it lives in. APIError(404)."""
    media = _locate(video_id, lambda e: e.thumbnail if STORED_JPEG_RE.fullmatch(e.thumbnail or "") else None)
    return MediaFile(media.relative, media.path, media.stat, thumbnail_version(media.relative))


def thumbnail_version(thumbnail):
    """The version folder a thumbnail lives in ("12/ab34cd/thumbnail.jpg" -> "ab34cd"): the base
    name of its folder, as posixpath.basename(posixpath.dirname(...)) says, in string operations
    (the unpaged list asks for thousands)."""
    return thumbnail.rpartition("/")[0].rstrip("/").rpartition("/")[2] or "0"


def accel_location(prefix, relative, presigned_url=None):
    """The X-Accel-Redirect target of a file below hls/: MEDIA_ACCEL_REDIRECT + "hls/" + relative
    for local files; for an object, MEDIA_ACCEL_REDIRECT + the presigned URL's path and query
    (nginx's internal location proxies that to the bucket's endpoint, which checks the signature)."""
    if presigned_url is None:
        return prefix.rstrip("/") + "/hls/" + relative
    url = urllib.parse.urlsplit(presigned_url)
    return prefix.rstrip("/") + url.path + "?" + url.query


def etag_of(media):
    """The ETag (unquoted) of a local MediaFile. The path is unique per version (a new transcode
    writes a new folder), so it only needs to tell files apart within it."""
    st = media.stat
    return f"{media.relative.replace('/', '-')}-{st.st_size:x}-{st.st_mtime_ns:x}"


def signed_url_seconds(duration):
    """How long presigned URLs live: SIGNED_URL_SECONDS, else the video's duration plus 4 hours."""
    return current_app.config["SIGNED_URL_SECONDS"] or int(duration or 0) + 4 * 3600


def send_media(media, mimetype, cache_control, extra_headers=None):
    """Answer with the MediaFile: X-Accel-Redirect when MEDIA_ACCEL_REDIRECT is set (nginx then
    does ranges, ETag and 304s, and keeps this Cache-Control), else the bytes with a strong ETag,
    Last-Modified, 304 and 206/416 (from the local file, or streamed from the bucket).

    Raises RequestedRangeNotSatisfiable (416) for a range beyond the file, APIError(404) when
    the object is not in the bucket. (Vary on the credentials is the videos blueprint's, for
    every answer it gives.)
    """
    prefix = current_app.config.get("MEDIA_ACCEL_REDIRECT")
    if prefix:
        presigned = None if media.path else media_store().url(hls_key(media.relative), 300)
        response = Response(b"", mimetype=mimetype)
        response.headers["X-Accel-Redirect"] = accel_location(prefix, media.relative, presigned)
    elif media.path is None:
        response = _send_object(media, mimetype)
    else:
        response = send_file(media.path, mimetype=mimetype, conditional=True, etag=etag_of(media),
                             last_modified=media.stat.st_mtime)
        # The server sends Date (gunicorn and werkzeug's own always do): a second one from
        # werkzeug's make_conditional would be a repeated singleton header.
        response.headers.remove("Date")
    response.headers["Cache-Control"] = cache_control
    for key, value in (extra_headers or {}).items():
        response.headers[key] = value
    return response


def version_file(video_id, name):
    """A file of the current version by its name inside the version folder (the storyboard's and
    the subtitle tracks' files; callers check `name` against their own patterns); APIError(404)."""
    return _locate(video_id, lambda e: f"{e.hls_dir}/{name}")


def send_current(video_id, locate, send):
    """send(media) of the MediaFile locate() finds (send: send_media with its other arguments
    bound, or send_media_playlist). An object in a bucket is not looked at before it is sent, so
    a 404 there may come from a cached entry naming a version that has just been replaced (the
    vanished file a local lookup notices): that one is retried on the fresh row."""
    media = locate()
    try:
        return send(media)
    except APIError:
        if media.path is not None:
            raise
    media_index().invalidate(video_id)
    return send(locate())


def _object_range():
    """The request's Range as S3 takes it ("bytes=a-b"), when it is one range that still applies
    (If-Range naming another version voids it, as for files); else None (the whole object)."""
    ranges = request.range
    if ranges is None or len(ranges.ranges) != 1 or "If-Range" in request.headers:
        return None
    start, stop = ranges.ranges[0]
    if start < 0:
        return f"bytes={start}"
    return f"bytes={start}-{'' if stop is None else stop - 1}"


def _send_object(media, mimetype):
    """Stream an object from the bucket (one GET): 200, 206 for a single range, 304 when the
    ETag or date still match, 416 for a range beyond it."""
    ranged = _object_range()
    try:
        answer = media_store().get(hls_key(media.relative), ranged)
    except NotStored:
        raise APIError(404, NOT_FOUND) from None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidRange":
            raise RequestedRangeNotSatisfiable() from None
        raise
    body = answer["Body"]
    etag = f"{media.relative.replace('/', '-')}-{answer['ETag'].strip(chr(34))}"
    response = Response(stream_with_context(_chunks(body)), mimetype=mimetype, direct_passthrough=True)
    response.set_etag(etag)
    response.last_modified = answer["LastModified"]
    response.headers["Accept-Ranges"] = "bytes"
    if not _modified(etag, answer["LastModified"]):
        body.close()
        response = Response(status=304)
        response.set_etag(etag)
        return response
    if ranged and "ContentRange" in answer:
        response.status_code = 206
        response.headers["Content-Range"] = answer["ContentRange"]
    response.content_length = answer["ContentLength"]
    return response


def _modified(etag, last_modified):
    if request.if_none_match:
        return not request.if_none_match.contains(etag)
    if request.if_modified_since:
        return last_modified.replace(microsecond=0) > request.if_modified_since
    return True


def _chunks(body, size=256 * 1024):
    try:
        while chunk := body.read(size):
            yield chunk
    finally:
        body.close()


SEGMENT_LINE = re.compile(r"(seg\d{1,6}\.ts)(?:\?v=[A-Za-z0-9_-]+)?")


def send_media_playlist(media):
    """A rendition's media playlist. With MEDIA_DELIVERY=signed and a bucket, its segment URIs
    become presigned object URLs (the segments then never reach the API; these URLs stay valid
    until they expire, whatever happens to the session meanwhile); else the stored file as is."""
    config = current_app.config
    if config["MEDIA_DELIVERY"] != "signed" or media.path is not None:
        return send_media(media, PLAYLIST_TYPE, REVALIDATE)
    store = media_store()
    try:
        text = read_hls(media.relative).decode("utf-8")
    except NotStored:
        raise APIError(404, NOT_FOUND) from None
    folder = posixpath.dirname(media.relative)
    seconds = signed_url_seconds(_playlist_seconds(text))
    lines = [
        store.url(hls_key(f"{folder}/{match[1]}"), seconds) if (match := SEGMENT_LINE.fullmatch(line))
        else line for line in text.splitlines()
    ]
    response = Response("\n".join(lines) + "\n", mimetype=PLAYLIST_TYPE)
    response.headers["Cache-Control"] = REVALIDATE
    return response


def _playlist_seconds(text):
    """The sum of a media playlist's #EXTINF durations."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            try:
                total += float(line[8:].split(",", 1)[0])
            except ValueError:
                pass
    return total

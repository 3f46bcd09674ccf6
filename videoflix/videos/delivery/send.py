"""Sending a media file: HTTP caching, ranges, nginx X-Accel-Redirect, a bucket's object streamed
through, and media playlists that name presigned segment URLs (MEDIA_DELIVERY=signed).
"""
import functools
import logging
import posixpath
import re
import urllib.parse

from botocore.exceptions import ClientError
from flask import Response, current_app, request, send_file, stream_with_context
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from videoflix.errors import APIError
from videoflix.videos.delivery.files import NOT_FOUND
from videoflix.videos.delivery.index import media_index
from videoflix.videos.media.layout import SEGMENT_PATTERN, playlist_seconds
from videoflix.videos.storage.backends import NotStored, StorageUnavailable
from videoflix.videos.storage.keys import hls_key, media_store, read_hls

log = logging.getLogger(__name__)
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/MP2T"
JPEG_TYPE = "image/jpeg"
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
# A growing media playlist (EVENT) changes as parts are stored: kept at most this long, which is
# shorter than a segment (API.md, "Playable while transcoding").
GROWING = "private, max-age=1"


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
    """The object's bytes; when the bucket stops answering mid-object (the status is sent by
    then) the answer ends short, which the client sees as a cut connection and asks again."""
    try:
        while chunk := body.read(size):
            yield chunk
    except StorageUnavailable as error:
        log.warning("Media store unavailable mid-object: the answer ends short (%s)", error)
    finally:
        body.close()


@functools.lru_cache(maxsize=1024)
def _media_playlist_text(store, relative):
    """A rendition's media playlist as stored. Kept in memory: a published version's media
    playlists never change (a new transcode writes a new version folder), so once read, signing
    it needs no bucket and goes on working while the bucket is away. Raises NotStored or
    StorageUnavailable (not kept)."""
    return read_hls(relative).decode("utf-8")


SEGMENT_LINE = re.compile(rf"({SEGMENT_PATTERN})(?:\?v=[A-Za-z0-9_-]+)?")


def send_media_playlist(media):
    """A rendition's media playlist. With MEDIA_DELIVERY=signed and a bucket, its segment URIs
    become presigned object URLs (the segments then never reach the API; these URLs stay valid
    until they expire, whatever happens to the session meanwhile); else the stored file as is."""
    config = current_app.config
    cache_control = GROWING if media.growing else REVALIDATE
    if config["MEDIA_DELIVERY"] != "signed" or media.path is not None:
        return send_media(media, PLAYLIST_TYPE, cache_control)
    store = media_store()
    try:  # a growing playlist is read again every time; a finished one never changes
        if media.growing:
            text = read_hls(media.relative).decode("utf-8")
        else:
            text = _media_playlist_text(store, media.relative)
    except NotStored:
        raise APIError(404, NOT_FOUND) from None
    folder = posixpath.dirname(media.relative)
    seconds = signed_url_seconds(playlist_seconds(text))
    lines = [
        store.url(hls_key(f"{folder}/{match[1]}"), seconds) if (match := SEGMENT_LINE.fullmatch(line))
        else line for line in text.splitlines()
    ]
    response = Response("\n".join(lines) + "\n", mimetype=PLAYLIST_TYPE)
    response.headers["Cache-Control"] = cache_control
    return response

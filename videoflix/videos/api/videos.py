"""The videos API (see "Videos" in API.md): a video's details and its media: the master and media
playlists, segments, the thumbnail, subtitle tracks and the storyboard.

Details are JSON (never cached: security.py adds no-store). The media are files of the published
version in the store, found and sent by videoflix.videos.delivery. The list is the catalogue's
(api/catalogue.py).
"""
from functools import partial

from flask import Blueprint, jsonify, request
from flask_jwt_extended import jwt_required

from videoflix.auth import current_account
from videoflix.auth.credentials import media_access_required, vary_on_credentials
from videoflix.errors import APIError
from videoflix.extensions import db, limiter
from videoflix.openapi import ErrorSchema, doc, file_response
from videoflix.videos.api.schemas import (
    staff_video_schema,
    subtitles_schema,
    video_schema,
)
from videoflix.videos.catalogue.watch_progress import VIDEO_NOT_FOUND
from videoflix.videos.delivery.files import NOT_FOUND, master_file, rendition_file, thumbnail_file, version_file
from videoflix.videos.delivery.send import (
    IMMUTABLE,
    JPEG_TYPE,
    PLAYLIST_TYPE,
    REVALIDATE,
    SEGMENT_TYPE,
    send_current,
    send_media,
    send_media_playlist,
)
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.media import layout
from videoflix.videos.models import READY, Video

bp = Blueprint("videos", __name__, url_prefix="/api/video")


# The media hot path: no rate limit applies, so Flask-Limiter skips them before any bookkeeping.
MEDIA_ENDPOINTS = frozenset(
    {"videos.master_playlist", "videos.media_playlist", "videos.media_segment", "videos.thumbnail",
     "videos.subtitle_file", "videos.storyboard_index", "videos.storyboard_sprite"}
)


@limiter.request_filter
def _media_is_not_rate_limited():
    return request.endpoint in MEDIA_ENDPOINTS


PLAYLIST_DOC = file_response(PLAYLIST_TYPE, "An HLS playlist")
FILE_RESPONSES = {
    304: "Not modified (If-None-Match / If-Modified-Since)",
    404: (ErrorSchema, "Unknown video, not ready, or no such rendition or file"),
}
SEGMENT_DOC = {
    200: file_response(SEGMENT_TYPE, "An MPEG-TS segment", {"type": "string", "format": "binary"}),
    206: file_response(SEGMENT_TYPE, "A byte range of the segment", {"type": "string", "format": "binary"}),
    416: "Range not satisfiable",
    **FILE_RESPONSES,
}


bp.after_request(vary_on_credentials)


@bp.get("/<id:video_id>/")
@doc("A video's details (staff also see videos that are not ready, with their error)", auth=True,
     responses={200: staff_video_schema, 404: ErrorSchema})
@jwt_required()
def video_detail(video_id):
    """A ready video; staff also get videos that are not ready, with their status and error."""
    video = db.session.get(Video, video_id)
    account = current_account() if video is not None and video.status != READY else None
    staff = bool(account and account.is_staff)
    if video is None or (video.status != READY and not staff):
        raise APIError(404, VIDEO_NOT_FOUND)
    return (staff_video_schema if staff else video_schema).dump(video)


# File routes keep strict slashes (the app's default is lenient): "index.m3u8/" is a 404, since
# the playlist's relative URIs would resolve below it.
@bp.get(f"/<id:video_id>/{layout.MASTER}", strict_slashes=True)
@doc("The adaptive (master) HLS playlist", auth=True, responses={200: PLAYLIST_DOC, **FILE_RESPONSES})
@media_access_required
def master_playlist(video_id):
    """The master playlist the transcoder wrote with the version (measured bandwidths, best last).

    Its URIs are relative (`720p/index.m3u8`), so they resolve to media_playlist below.
    """
    return send_current(video_id, lambda: master_file(video_id), partial(send_media, mimetype=PLAYLIST_TYPE,
                                                                         cache_control=REVALIDATE))


@bp.get(f"/<id:video_id>/<resolution>/{layout.MEDIA_PLAYLIST}", strict_slashes=True)
@doc("The media playlist of one rendition (480p, 720p or 1080p)", auth=True,
     responses={200: PLAYLIST_DOC, **FILE_RESPONSES})
@media_access_required
def media_playlist(video_id, resolution):
    return send_current(video_id, lambda: rendition_file(video_id, resolution, layout.MEDIA_PLAYLIST),
                        send_media_playlist)


# hls.js asks without the slash, API.md lists it with one: both answer, never a redirect.
@bp.get("/<id:video_id>/<resolution>/<segment>/", strict_slashes=False)
@doc("An MPEG-TS segment of a rendition (with or without the trailing slash; Range supported)", auth=True,
     responses=SEGMENT_DOC)
@media_access_required
def media_segment(video_id, resolution, segment):
    """A segment's bytes; the hot path: no SQL query but the token's revocation lookup.

    Published playlists name segments `segNNN.ts?v=<version>`: with the current version the
    answer is immutable; any other URL (none, or a version replaced by a re-transcode) revalidates,
    so a browser never mixes the segments of two versions under one cached URL.
    """
    if not layout.SEGMENT_RE.fullmatch(segment):
        raise APIError(404, NOT_FOUND)
    version = request.args.get("v")
    media = rendition_file(video_id, resolution, segment, version)
    cache = IMMUTABLE if version == media.version else REVALIDATE
    return send_media(media, SEGMENT_TYPE, cache)


@bp.get(f"/<id:video_id>/{layout.THUMBNAIL}", strict_slashes=True)
@doc("The video's JPEG thumbnail", auth=True,
     responses={200: file_response(JPEG_TYPE, "A JPEG", {"type": "string", "format": "binary"}),
                206: file_response(JPEG_TYPE, "A byte range", {"type": "string", "format": "binary"}),
                416: "Range not satisfiable", **FILE_RESPONSES})
@media_access_required
def thumbnail(video_id):
    """The JPEG for an <img> on the SPA's origin, authenticated by the cookie.

    Cross-Origin-Resource-Policy is cross-origin: Chromium never counts two IP-address origins
    (127.0.0.1:5500 and :8000) as same-site, and the cookie check already keeps others out.

    With the current version in `?v=` it is immutable; any other URL revalidates.
    """
    media = thumbnail_file(video_id)
    cache = IMMUTABLE if request.args.get("v") == media.version else REVALIDATE
    return send_media(media, JPEG_TYPE, cache, {"Cross-Origin-Resource-Policy": "cross-origin"})


# ---------------------------------------------------------------- subtitles and storyboard

VTT_TYPE = "text/vtt"  # send_file adds "; charset=utf-8" to text types
VTT_DOC = file_response(VTT_TYPE, "A WebVTT file")


@bp.get("/<id:video_id>/subtitles/")
@doc("The video's subtitle tracks", auth=True, responses={200: subtitles_schema, 404: ErrorSchema})
@jwt_required()
def subtitle_list(video_id):
    video = db.session.get(Video, video_id)
    if video is None or video.status != READY:
        raise APIError(404, VIDEO_NOT_FOUND)
    return jsonify(subtitles_schema.dump(video.subtitles))


@bp.get("/<id:video_id>/subtitles/<name>", strict_slashes=True)
@doc("A subtitle track (<language>.vtt) or its HLS subtitle media playlist (<language>.m3u8)", auth=True,
     responses={200: VTT_DOC, **FILE_RESPONSES})
@media_access_required
def subtitlefile_response(video_id, name):
    match = subtitle_tracks.FILE_RE.fullmatch(name)
    if not match:
        raise APIError(404, NOT_FOUND)
    mimetype = VTT_TYPE if match["ext"] == "vtt" else PLAYLIST_TYPE
    return send_current(video_id, lambda: version_file(video_id, f"{layout.SUBTITLES_DIR}/{name}"),
                        partial(send_media, mimetype=mimetype, cache_control=REVALIDATE))


@bp.get(f"/<id:video_id>/{layout.STORYBOARD_VTT}", strict_slashes=True)
@doc("The storyboard: seek-preview cues pointing into JPEG sprites (relative URLs)", auth=True,
     responses={200: VTT_DOC, **FILE_RESPONSES})
@media_access_required
def storyboard_index(video_id):
    return send_current(video_id, lambda: version_file(video_id, layout.STORYBOARD_VTT),
                        partial(send_media, mimetype=VTT_TYPE, cache_control=REVALIDATE))


@bp.get("/<id:video_id>/storyboard/<sprite>", strict_slashes=True)
@doc("A storyboard sprite (JPEG, tiles as the storyboard's #xywh fragments say)", auth=True,
     responses={200: file_response(JPEG_TYPE, "A JPEG", {"type": "string", "format": "binary"}), **FILE_RESPONSES})
@media_access_required
def storyboard_sprite(video_id, sprite):
    if not layout.SPRITE_RE.fullmatch(sprite):
        raise APIError(404, NOT_FOUND)
    return send_current(video_id, lambda: version_file(video_id, f"{layout.STORYBOARD_DIR}/{sprite}"),
                        partial(send_media, mimetype=JPEG_TYPE, cache_control=REVALIDATE,
                                extra_headers={"Cross-Origin-Resource-Policy": "cross-origin"}))

"""Output schemas of the videos API, and the absolute URLs they carry."""
from flask import g, url_for
from marshmallow import Schema, fields

from videoflix.errors import APIError
from videoflix.videos.delivery import thumbnail_version, version_file
from videoflix.videos.models import READY
from videoflix.videos.storyboard import VTT_NAME as STORYBOARD_VTT


def api_base():
    """The absolute URL of /api/video/ for this request (built once per request: 10,000 list
    items must not each pay for url_for)."""
    base = g.get("videoflix_video_base")
    if base is None:
        base = g.videoflix_video_base = url_for("videos.list_videos", _external=True)
    return base


def thumbnail_url(video_id, thumbnail):
    """Absolute, versioned thumbnail URL (immutable for that version), or None."""
    if not thumbnail:
        return None
    return f"{api_base()}{video_id}/thumbnail.jpg?v={thumbnail_version(thumbnail)}"


def master_url(video_id):
    return f"{api_base()}{video_id}/master.m3u8"


def subtitle_url(video_id, language):
    return f"{api_base()}{video_id}/subtitles/{language}.vtt"


def storyboard_index_url(video):
    """The storyboard index of a ready video whose current version has one, else None."""
    if video.status != READY or not video.hls_dir:
        return None
    try:
        version_file(video.id, STORYBOARD_VTT)
    except APIError:
        return None
    return f"{api_base()}{video.id}/{STORYBOARD_VTT}"


def _get(obj, key):
    return obj[key] if isinstance(obj, dict) or hasattr(obj, "keys") else getattr(obj, key)


class VideoListSchema(Schema):
    """One item of GET /api/video/: exactly the six fields of API.md.

    Dumps ORM rows or row mappings (the list route selects only these columns).
    """

    id = fields.Integer()
    created_at = fields.DateTime(format="iso")
    title = fields.String()
    description = fields.String()
    thumbnail_url = fields.Function(lambda v: thumbnail_url(_get(v, "id"), _get(v, "thumbnail")))
    category = fields.String()


class VideoSchema(Schema):
    """GET /api/video/<id>/."""

    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    created_at = fields.DateTime(format="iso")
    status = fields.String()
    progress = fields.Integer()
    duration = fields.Float(allow_none=True)
    resolutions = fields.List(fields.String())
    thumbnail_url = fields.Function(lambda v: thumbnail_url(v.id, v.thumbnail) if v.status == READY else None)
    master_url = fields.Function(lambda v: master_url(v.id) if v.status == READY else None)
    storyboard_url = fields.Function(storyboard_index_url)


class StaffVideoSchema(VideoSchema):
    """Staff also see why a video is not playable."""

    error = fields.String(allow_none=True)


class SubtitleSchema(Schema):
    """One item of GET /api/video/<id>/subtitles/."""

    language = fields.String()
    label = fields.String()
    url = fields.Function(lambda s: subtitle_url(s.video_id, s.language))


videos_schema = VideoListSchema(many=True)
subtitles_schema = SubtitleSchema(many=True)
video_schema = VideoSchema()
staff_video_schema = StaffVideoSchema()

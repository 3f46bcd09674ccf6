"""Schemas of the videos API (the catalogue's query, the list, details, watch progress), and the
absolute URLs they carry."""
from json.encoder import encode_basestring_ascii as json_string

from flask import current_app, g, jsonify, url_for
from marshmallow import Schema, fields, validate

from videoflix.auth.credentials import MAX_ID
from videoflix.validation import BaseSchema, StrictString
from videoflix.videos.delivery.files import thumbnail_version
from videoflix.videos.media.layout import MASTER, STORYBOARD_VTT, THUMBNAIL
from videoflix.videos.models import READY

MAX_PAGE = 100
MAX_QUERY = 200


def api_base():
    """The absolute URL of /api/video/ for this request (built once per request: 10,000 list
    items must not each pay for url_for)."""
    base = g.get("videoflix_video_base")
    if base is None:
        base = g.videoflix_video_base = url_for("viewing.list_videos", _external=True)
    return base


def thumbnail_url(video_id, thumbnail):
    """Absolute, versioned thumbnail URL (immutable for that version), or None."""
    if not thumbnail:
        return None
    return f"{api_base()}{video_id}/{THUMBNAIL}?v={thumbnail_version(thumbnail)}"


def master_url(video_id):
    return f"{api_base()}{video_id}/{MASTER}"


def subtitle_url(video_id, language):
    return f"{api_base()}{video_id}/subtitles/{language}.vtt"


def storyboard_index_url(video):
    """The storyboard index of a ready video whose current version has one, else None."""
    if video.status != READY or not video.hls_dir or not video.storyboard:
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


def list_items(rows):
    """The list items of (id, created_at, title, description, thumbnail, category) rows: what
    VideoListSchema dumps, byte for byte, without its per-field machinery (10,000 items dumped by
    marshmallow cost about 10 times more than the query; tests pin that both agree)."""
    base = api_base()
    return [
        {
            "id": video_id,
            "created_at": created_at.isoformat(),
            "title": title,
            "description": description,
            "thumbnail_url": f"{base}{video_id}/{THUMBNAIL}?v={thumbnail_version(thumbnail)}" if thumbnail else None,
            "category": category,
        }
        for video_id, created_at, title, description, thumbnail, category in rows
    ]


def list_response(rows):
    """The JSON response of list_items(rows), as jsonify() would send it, byte for byte.

    With the app's JSON settings as they are (compact, keys sorted, ASCII only) the text is written
    row by row from the columns: building 10,000 dicts and sorting their keys again costs more than
    the query. Any other setting (debug mode's indented output) goes through jsonify().
    """
    provider = current_app.json
    if not (provider.compact or (provider.compact is None and not current_app.debug)) or not (
        provider.sort_keys and provider.ensure_ascii
    ):
        return jsonify(list_items(rows))
    base = api_base()
    text = ",".join(
        f'{{"category":{json_string(category)},"created_at":"{created_at.isoformat()}",'
        f'"description":{json_string(description)},"id":{video_id},"thumbnail_url":'
        f'{json_string(f"{base}{video_id}/{THUMBNAIL}?v={thumbnail_version(thumbnail)}") if thumbnail else "null"},'
        f'"title":{json_string(title)}}}'
        for video_id, created_at, title, description, thumbnail, category in rows
    )
    return current_app.response_class(f"[{text}]\n", mimetype=provider.mimetype)


class CatalogueQuerySchema(BaseSchema):
    """The query parameters of GET /api/video/ (API.md, "Catalogue"); unknown ones are ignored."""

    category = StrictString(
        validate=[validate.Length(min=1, error="This field may not be blank."),
                  validate.Length(max=80, error="Ensure this field has no more than 80 characters.")],
        metadata={"example": "Drama"},
    )
    q = StrictString(
        validate=validate.Length(max=MAX_QUERY, error=f"Ensure this field has no more than {MAX_QUERY} characters."),
        metadata={"description": "Every word must start a word of the title or description (a one-letter "
                                 "word: be one); counts against SEARCH_LIMIT", "example": "ocean"},
    )
    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE), metadata={
        "example": 24, "description": "One page of this many (without it: every match from `offset`)"})
    offset = fields.Integer(validate=validate.Range(min=0, max=MAX_ID), metadata={
        "example": 0, "description": "Matches to skip (with `q`, a page past the first 1,000 matches is "
                                     "slower the deeper it is)"})


class CategorySchema(Schema):
    name = fields.String()
    count = fields.Integer()


class JSONNumber(fields.Float):
    """A JSON number: unlike marshmallow's Float, a string such as "12" is not one."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


# The watch-progress schemas keep their names: a class name is the OpenAPI component's ("Progress",
# "ProgressBody"), which clients' generated code may use.
class ProgressBodySchema(BaseSchema):
    position = JSONNumber(
        required=True, allow_nan=False, validate=validate.Range(min=0),
        error_messages={"required": "This field is required.", "null": "This field may not be null."},
        metadata={"example": 42.5},
    )


class ProgressSchema(Schema):
    """A viewer's watch progress in a video: PUT/GET /api/video/<id>/progress/."""

    video_id = fields.Integer()
    position = fields.Float()
    duration = fields.Float(allow_none=True)
    completed = fields.Boolean()
    updated_at = fields.DateTime(format="iso", allow_none=True)


class ContinueWatchingSchema(VideoListSchema):
    """An item of GET /api/continue-watching/: a list item and where the user stopped."""

    position = fields.Float()
    duration = fields.Float(allow_none=True)
    progress_updated_at = fields.DateTime(format="iso")


class VideoSchema(Schema):
    """GET /api/video/<id>/."""

    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    created_at = fields.DateTime(format="iso")
    # "processing" while a published first version still grows (API.md, "Playable while transcoding")
    status = fields.String(attribute="shown_status")
    progress = fields.Integer()
    playable = fields.Boolean()
    duration = fields.Float(allow_none=True)
    resolutions = fields.List(fields.String())
    thumbnail_url = fields.Function(lambda v: thumbnail_url(v.id, v.thumbnail) if v.playable else None)
    master_url = fields.Function(lambda v: master_url(v.id) if v.playable else None)
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
catalogue_query_schema = CatalogueQuerySchema()
categories_schema = CategorySchema(many=True)
watch_progress_body_schema = ProgressBodySchema()
watch_progress_schema = ProgressSchema()
continue_watching_schema = ContinueWatchingSchema(many=True)
video_schema = VideoSchema()
staff_video_schema = StaffVideoSchema()

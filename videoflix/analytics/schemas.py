"""Schemas of the analytics API: the beacon body, the stats query, and the answers."""
import uuid
from datetime import UTC, date, datetime, timedelta

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates

from videoflix.analytics.beacons import EVENTS, Beacon
from videoflix.validation import BaseSchema, StrictString
from videoflix.videos.api.schemas import JSONNumber, ProgressSchema

MAX_SEQ = 1_000_000
MAX_BEACON_SECONDS = 600  # watched or stalled between two beacons (background tabs tick slowly)
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
REQUIRED = {"required": "This field is required.", "null": "This field may not be null."}


def _number(minimum, maximum, **kwargs):
    return JSONNumber(allow_nan=False, validate=validate.Range(min=minimum, max=maximum), **kwargs)


class StrictInteger(fields.Integer):
    """A JSON integer: not a string, not 1.5 (strict), not a boolean."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool | str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class BeaconSchema(BaseSchema):
    """POST /api/video/<id>/playback/: what happened in a playback session since the player's
    previous beacon."""

    session = StrictString(required=True, error_messages=REQUIRED,
                           metadata={"description": "The playback session's UUID, made by the player", "format": "uuid",
                                     "example": "0b6f1c9e-2a41-4c59-9a57-3b2d8f1e6c10"})
    seq = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_SEQ), error_messages=REQUIRED,
                        metadata={"description": "0 for the session's first beacon, then +1 each", "example": 3})
    event = StrictString(required=True, validate=validate.OneOf(EVENTS), error_messages=REQUIRED,
                         metadata={"example": "progress"})
    position = _number(0, 10**7, required=True, error_messages=REQUIRED,
                       metadata={"description": "Seconds into the video (where the watched range ends)",
                                 "example": 42.5})
    watched = _number(0, MAX_BEACON_SECONDS, load_default=0.0,
                      metadata={"description": "Seconds played since the previous beacon", "example": 10.0})
    ttff_ms = StrictInteger(validate=validate.Range(min=0, max=600_000), load_default=None, allow_none=True,
                            metadata={"description": "Time to first frame (ms), once per session", "example": 640})
    stalls = StrictInteger(validate=validate.Range(min=0, max=10_000), load_default=0,
                           metadata={"description": "Rebuffering stalls since the previous beacon"})
    stalled = _number(0, MAX_BEACON_SECONDS, load_default=0.0,
                      metadata={"description": "Seconds spent rebuffering since the previous beacon"})
    switches = StrictInteger(validate=validate.Range(min=0, max=10_000), load_default=0,
                             metadata={"description": "Quality switches since the previous beacon"})
    rendition = StrictString(validate=validate.Regexp(r"^[0-9]{2,4}p$", error="Not a rendition label."),
                             load_default=None, allow_none=True, metadata={"example": "720p"})

    @validates("session")
    def _uuid(self, value, **kwargs):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            raise ValidationError("Not a valid UUID.") from None
        if str(parsed) != value.lower():
            raise ValidationError("Not a valid UUID.")

    @post_load
    def _beacon(self, data, **kwargs):
        data["session"] = data["session"].lower()
        return Beacon(**data)


class BeaconAnswerSchema(ProgressSchema):
    """The saved watch position (as PUT /progress/), and whether the beacon was counted."""

    session = fields.String()
    seq = fields.Integer()
    counted = fields.Boolean(metadata={"description": "false: a duplicate, already counted"})


class RangeQuerySchema(BaseSchema):
    """`from` and `to`: UTC dates (YYYY-MM-DD), inclusive; default the last 30 days to today."""

    start = fields.Date(data_key="from", metadata={"example": "2026-11-01"})
    end = fields.Date(data_key="to", metadata={"example": "2026-11-30"})

    @post_load
    def _defaults(self, data, **kwargs):
        end = data.get("end") or max(datetime.now(UTC).date(), data.get("start") or date.min)
        start = data.get("start") or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if start > end:
            raise ValidationError({"from": ["Must not be after 'to'."]})
        if (end - start).days >= MAX_RANGE_DAYS:
            raise ValidationError({"from": [f"The range may span at most {MAX_RANGE_DAYS} days."]})
        return {"start": start, "end": end}


class CatalogueStatsQuerySchema(RangeQuerySchema):
    limit = fields.Integer(validate=validate.Range(min=1, max=100), load_default=10, metadata={"example": 10})

    @post_load
    def _defaults(self, data, **kwargs):
        limit = data.pop("limit", 10)
        return {**super()._defaults(data), "limit": limit}


class SummarySchema(Schema):
    sessions = fields.Integer()
    views = fields.Integer(metadata={"description": "Sessions with ANALYTICS_VIEW_SECONDS watched (or 90 % of a "
                                                    "shorter video)"})
    watch_seconds = fields.Float()
    average_percent_watched = fields.Float(allow_none=True)
    retention = fields.List(fields.Float(allow_none=True),
                            metadata={"description": "Share of views that passed 0 %, 5 %, ..., 100 % of the video"})
    median_ttff_ms = fields.Float(allow_none=True)
    rebuffering_ratio = fields.Float(allow_none=True, metadata={"description": "stalled / (watched + stalled)"})
    stalls = fields.Integer()
    quality_switches = fields.Integer()
    errors = fields.Integer()
    renditions = fields.Dict(keys=fields.String(), values=fields.Integer(),
                             metadata={"description": "Sessions by the rendition they ended on"})


class DaySchema(SummarySchema):
    date = fields.String()
    unique_viewers = fields.Integer()


class TotalsSchema(SummarySchema):
    viewer_days = fields.Integer(metadata={"description": "Unique viewers of each day, summed"})


class VideoStatsSchema(Schema):
    video_id = fields.Integer()
    title = fields.String()
    duration = fields.Float(allow_none=True)
    start = fields.String(data_key="from")
    end = fields.String(data_key="to")
    totals = fields.Nested(TotalsSchema)
    days = fields.List(fields.Nested(DaySchema))


class VideoRankSchema(Schema):
    video_id = fields.Integer()
    title = fields.String()
    sessions = fields.Integer()
    views = fields.Integer()
    watch_seconds = fields.Float()
    average_percent_watched = fields.Float(allow_none=True)
    median_ttff_ms = fields.Float(allow_none=True)
    rebuffering_ratio = fields.Float(allow_none=True)
    errors = fields.Integer()


class CatalogueStatsSchema(Schema):
    start = fields.String(data_key="from")
    end = fields.String(data_key="to")
    top_watch_time = fields.List(fields.Nested(VideoRankSchema))
    worst_quality = fields.List(fields.Nested(VideoRankSchema))


beacon_schema = BeaconSchema()
beacon_answer_schema = BeaconAnswerSchema()
range_query_schema = RangeQuerySchema()
catalogue_query_schema = CatalogueStatsQuerySchema()
video_stats_schema = VideoStatsSchema()
catalogue_stats_schema = CatalogueStatsSchema()

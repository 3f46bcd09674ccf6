"""The analytics API: the player's beacons (every viewer) and the statistics (staff only).

Thin routes: the rules are in beacons, rollup and stats.
"""
from dataclasses import asdict

from flask import Blueprint, current_app, request
from flask_jwt_extended import jwt_required

from videoflix.analytics import beacons, stats
from videoflix.analytics.schemas import (
    beacon_answer_schema,
    beacon_schema,
    catalogue_query_schema,
    catalogue_stats_schema,
    range_query_schema,
    video_stats_schema,
)
from videoflix.auth import current_account
from videoflix.auth.credentials import VARY, access_identity, media_access_required
from videoflix.errors import APIError
from videoflix.extensions import db
from videoflix.openapi import BAD_REQUEST, ErrorSchema, doc
from videoflix.validation import json_body
from videoflix.videos.catalogue.watch_progress import VIDEO_NOT_FOUND
from videoflix.videos.models import Video

bp = Blueprint("analytics", __name__, url_prefix="/api")
STAFF_ONLY = "Only staff may see statistics."


@bp.after_request
def _vary_on_credentials(response):
    response.vary.update(VARY)  # answers depend on who asks (see videos.routes)
    return response


def _beacon_data():
    """The beacon's JSON object: `application/json`, or `text/plain` as navigator.sendBeacon sends
    it without a CORS preflight (the Origin check of cookie writes applies all the same)."""
    if request.mimetype != "text/plain":
        return json_body()
    try:
        data = current_app.json.loads(request.get_data(as_text=True))
    except ValueError:
        raise APIError(400, "Malformed JSON body.") from None
    if not isinstance(data, dict):
        raise APIError(400, "Expected a JSON object.")
    return data


@bp.post("/video/<id:video_id>/playback/")
@doc("Report a playback session's progress (also saves the watch position, as PUT /progress/ does)", auth=True,
     body=beacon_schema,
     responses={200: beacon_answer_schema, 400: BAD_REQUEST, 404: (ErrorSchema, "Unknown video, or not ready"),
                409: (ErrorSchema, "The session is closed, or another viewer's or video's"),
                415: ErrorSchema, 429: (ErrorSchema, "ANALYTICS_BEACONS_PER_MINUTE spent for this session")})
@media_access_required  # a beacon comes every 10 s from every viewer: as hot a path as segments
def playback_beacon(video_id):
    beacon = beacon_schema.load(_beacon_data())
    outcome = beacons.record(access_identity(), video_id, beacon)
    return beacon_answer_schema.dump(
        {**asdict(outcome.position), "session": beacon.session, "seq": beacon.seq, "counted": outcome.counted})


def _staff_only():
    account = current_account()
    if account is None or not account.is_staff:
        raise APIError(403, STAFF_ONLY)


@bp.get("/video/<id:video_id>/stats/")
@doc("A video's viewing statistics by day (staff)", auth=True, query=range_query_schema,
     responses={200: video_stats_schema, 400: BAD_REQUEST, 403: ErrorSchema, 404: ErrorSchema})
@jwt_required()
def video_stats(video_id):
    _staff_only()
    query = range_query_schema.load(request.args)
    video = db.session.get(Video, video_id)
    if video is None:
        raise APIError(404, VIDEO_NOT_FOUND)
    return video_stats_schema.dump(stats.video_stats(video, query["start"], query["end"]))


@bp.get("/stats/videos/")
@doc("The catalogue's most watched videos and those that play worst (staff)", auth=True,
     query=catalogue_query_schema, responses={200: catalogue_stats_schema, 400: BAD_REQUEST, 403: ErrorSchema})
@jwt_required()
def catalogue_stats():
    _staff_only()
    query = catalogue_query_schema.load(request.args)
    return catalogue_stats_schema.dump(stats.catalogue_stats(query["start"], query["end"], query["limit"]))

"""What viewers browse and resume (API.md, "GET /api/video/", "Catalogue" and "Continue watching"):
the list of ready videos (filtered, searched, paged), the categories, each video's watch
progress, and the "continue watching" row.

Thin routes: the rules are in videoflix.videos.catalogue (queries, watch_progress).
"""
from dataclasses import asdict

from flask import Blueprint, jsonify, request, url_for
from flask_jwt_extended import get_jwt_identity, jwt_required

from videoflix import ratelimit
from videoflix.auth.credentials import vary_on_credentials
from videoflix.openapi import BAD_REQUEST, ErrorSchema, doc, file_response
from videoflix.validation import json_body
from videoflix.videos.api.schemas import (
    catalogue_query_schema,
    categories_schema,
    continue_watching_schema,
    list_response,
    videos_schema,
    watch_progress_body_schema,
    watch_progress_schema,
)
from videoflix.videos.catalogue import queries, watch_progress
from videoflix.videos.catalogue.queries import all_ready_rows, ready_page

bp = Blueprint("viewing", __name__, url_prefix="/api")
PROGRESS_REMOVED = "Progress removed."
WATCH_PROGRESS_DOC = {200: watch_progress_schema, 404: (ErrorSchema, "Unknown video, or not ready")}


bp.after_request(vary_on_credentials)
PAGE_HEADERS = {
    "X-Total-Count": {"description": "The number of matches (with any parameter)", "schema": {"type": "integer"}},
    "X-Total-Count-Estimated": {"description": "`true` when X-Total-Count is an estimate (a search with more "
                                               "than 1,000 matches)", "schema": {"type": "string", "enum": ["true"]}},
    "Link": {"description": '`<absolute url>; rel="next"` while more remain', "schema": {"type": "string"}},
}


def _viewer_id():
    """The id in the access token (watch_progress.watchable_duration checks the account is there)."""
    return int(get_jwt_identity())


@bp.get("/video/")
@doc("The ready videos, newest first; filtered, searched and paged with the parameters", auth=True,
     query=catalogue_query_schema, tags=["videos"],
     responses={200: {"description": "The videos", "headers": PAGE_HEADERS,
                      "content": {"application/json": {"schema": videos_schema}}},
                400: BAD_REQUEST,
                429: (ErrorSchema, "SEARCH_LIMIT spent by this account (searches only), with Retry-After"),
                # A query string past the server's request-line limit (gunicorn: 4094 bytes) is
                # refused by gunicorn or nginx before the app, with their HTML page.
                414: file_response("text/html", "Request line too long (answered by the web server)")})
@jwt_required()
def list_videos():
    """Ready videos, newest first (API.md, "GET /api/video/" and "Catalogue").

    Without parameters: all of them, one SELECT of six columns. With any: the page and its
    X-Total-Count (X-Total-Count-Estimated) and Link headers. Bad parameters: ValidationError
    (400 keyed by parameter). A search counts against the account's SEARCH_LIMIT (429).
    """
    params = catalogue_query_schema.load(request.args)
    if not params:
        return list_response(all_ready_rows())
    if queries.is_search(params.get("q")):
        ratelimit.charge("SEARCH_LIMIT", "search", _viewer_id())
    page = ready_page(**params)
    response = list_response(page.rows)
    response.headers["X-Total-Count"] = str(page.total)
    if page.estimated:
        response.headers["X-Total-Count-Estimated"] = "true"
    # Readable by the SPA's cross-origin fetch (only this answer has them, so it is set here).
    response.headers["Access-Control-Expose-Headers"] = "X-Total-Count, X-Total-Count-Estimated, Link"
    if page.next_offset is not None:
        url = url_for("viewing.list_videos", _external=True, **{**params, "offset": page.next_offset})
        response.headers["Link"] = f'<{url}>; rel="next"'
    return response


@bp.get("/categories/")
@doc("The categories that have ready videos, by name, with their number of videos", auth=True,
     responses={200: categories_schema})
@jwt_required()
def categories():
    return jsonify(categories_schema.dump({"name": name, "count": count} for name, count in queries.categories()))


@bp.put("/video/<id:video_id>/progress/")
@doc("Save where the user is in a video (clamped to its duration; completed from 95 %)", auth=True,
     body=watch_progress_body_schema, responses={**WATCH_PROGRESS_DOC, 400: BAD_REQUEST})
@jwt_required()
def save_watch_progress(video_id):
    body = json_body(watch_progress_body_schema)
    return watch_progress_schema.dump(asdict(watch_progress.save(_viewer_id(), video_id, body["position"])))


@bp.get("/video/<id:video_id>/progress/")
@doc("Where the user stopped in a video (position 0 when nowhere)", auth=True, responses=WATCH_PROGRESS_DOC)
@jwt_required()
def get_watch_progress(video_id):
    return watch_progress_schema.dump(asdict(watch_progress.load(_viewer_id(), video_id)))


@bp.delete("/video/<id:video_id>/progress/")
@doc("Forget the user's progress in a video (it leaves continue watching)", auth=True,
     responses={200: ErrorSchema, 404: WATCH_PROGRESS_DOC[404]})
@jwt_required()
def forget_watch_progress(video_id):
    watch_progress.forget(_viewer_id(), video_id)
    return {"detail": PROGRESS_REMOVED}


@bp.get("/continue-watching/")
@doc("The ready videos the user started and did not finish, most recently watched first", auth=True,
     responses={200: continue_watching_schema})
@jwt_required()
def continue_watching():
    return jsonify(continue_watching_schema.dump(watch_progress.continue_watching(_viewer_id())))

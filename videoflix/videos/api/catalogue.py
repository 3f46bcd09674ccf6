"""What viewers browse and resume beyond the list (API.md, "Catalogue" and "Continue watching"):
the categories, each video's watch progress, and the "continue watching" row.

Thin routes: the rules are in videoflix.videos.catalogue (queries, watch_progress).
"""
from dataclasses import asdict

from flask import Blueprint, jsonify
from flask_jwt_extended import get_jwt_identity, jwt_required

from videoflix.auth.credentials import VARY
from videoflix.openapi import BAD_REQUEST, ErrorSchema, doc
from videoflix.validation import json_body
from videoflix.videos.api.schemas import (
    categories_schema,
    continue_watching_schema,
    progress_body_schema,
    progress_schema,
)
from videoflix.videos.catalogue import queries, watch_progress

bp = Blueprint("viewing", __name__, url_prefix="/api")
PROGRESS_REMOVED = "Progress removed."
PROGRESS_DOC = {200: progress_schema, 404: (ErrorSchema, "Unknown video, or not ready")}


@bp.after_request
def _vary_on_credentials(response):
    response.vary.update(VARY)  # answers depend on who asks (see videos.routes)
    return response


def _viewer_id():
    """The id in the access token (watch_progress.watchable_duration checks the account is there)."""
    return int(get_jwt_identity())


@bp.get("/categories/")
@doc("The categories that have ready videos, by name, with their number of videos", auth=True,
     responses={200: categories_schema})
@jwt_required()
def categories():
    return jsonify(categories_schema.dump({"name": name, "count": count} for name, count in queries.categories()))


@bp.put("/video/<id:video_id>/progress/")
@doc("Save where the user is in a video (clamped to its duration; completed from 95 %)", auth=True,
     body=progress_body_schema, responses={**PROGRESS_DOC, 400: BAD_REQUEST})
@jwt_required()
def save_progress(video_id):
    body = json_body(progress_body_schema)
    return progress_schema.dump(asdict(watch_progress.save(_viewer_id(), video_id, body["position"])))


@bp.get("/video/<id:video_id>/progress/")
@doc("Where the user stopped in a video (position 0 when nowhere)", auth=True, responses=PROGRESS_DOC)
@jwt_required()
def get_progress(video_id):
    return progress_schema.dump(asdict(watch_progress.load(_viewer_id(), video_id)))


@bp.delete("/video/<id:video_id>/progress/")
@doc("Forget the user's progress in a video (it leaves continue watching)", auth=True,
     responses={200: ErrorSchema, 404: PROGRESS_DOC[404]})
@jwt_required()
def delete_progress(video_id):
    watch_progress.forget(_viewer_id(), video_id)
    return {"detail": PROGRESS_REMOVED}


@bp.get("/continue-watching/")
@doc("The ready videos the user started and did not finish, most recently watched first", auth=True,
     responses={200: continue_watching_schema})
@jwt_required()
def continue_watching():
    return jsonify(continue_watching_schema.dump(watch_progress.continue_watching(_viewer_id())))

"""/api/uploads/: resumable uploads over tus 1.0.0 for staff (see "Resumable uploads" in API.md).

Routes only read headers and answer them; the protocol's rules are in videoflix.videos.uploads.tus.
Successful answers are tus's (201/204, headers, no body); errors are the app's JSON envelope.
Every answer carries Tus-Resumable and Cache-Control: no-store.
"""
import click
from flask import Blueprint, make_response, request, url_for
from flask_jwt_extended import get_jwt_identity, jwt_required
from werkzeug.http import http_date

from videoflix.auth import current_account
from videoflix.auth.credentials import vary_on_credentials
from videoflix.errors import APIError, error_response
from videoflix.videos.uploads import tus
from videoflix.videos.uploads.headers import TusError, encode_metadata, parse_checksum, parse_length, parse_metadata
from videoflix.videos.uploads.service import UploadRefused, UploadTooLarge

bp = Blueprint("tus", __name__, url_prefix="/api/uploads")

OFFSET_STREAM = "application/offset+octet-stream"
UPLOAD_URL = "/<upload_id>/"


@bp.before_request
def _check_version():
    """412 for a client of another tus version (OPTIONS, the discovery, needs no version)."""
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != tus.VERSION:
        return error_response(412, f"Tus-Resumable {tus.VERSION} is required.", headers={"Tus-Version": tus.VERSION})
    return None


@bp.after_request
def _tus_headers(response):
    response.headers["Tus-Resumable"] = tus.VERSION
    response.headers["Cache-Control"] = "no-store"
    return vary_on_credentials(response)


@bp.errorhandler(TusError)
def _tus_error(error):
    return error_response(error.status, error.detail, payload=error.payload)


@bp.errorhandler(UploadRefused)
def _refused(error):
    """A refused file (probe, limits) is 422 {"detail"}; refused fields at creation are 400 by field."""
    if request.method == "POST" and "file" not in error.errors:
        return error_response(400, payload=error.errors)
    return error_response(413 if isinstance(error, UploadTooLarge) else 422, str(error))


def _staff_id():
    """The signed-in staff member's id; APIError 403 for anyone else (401 is @jwt_required's)."""
    account = current_account()
    if account is None or not account.is_staff:
        raise APIError(403)
    return int(get_jwt_identity())


def _answer(status, headers):
    response = make_response("", status)
    del response.headers["Content-Type"]  # no body
    response.headers.update({k: str(v) for k, v in headers.items() if v is not None})
    return response


def _allow_upload_body():
    """This request may carry up to a whole upload (the app's limit is small elsewhere)."""
    request.max_content_length = tus.max_size()


def _write_headers(written):
    return {"Upload-Offset": written.offset, "Video-Id": written.video_id,
            "Upload-Expires": written.expires and http_date(written.expires)}


@bp.route("/", methods=["OPTIONS"])
def discover():
    """The server's tus capabilities (no credentials: a browser's preflight is an OPTIONS too)."""
    return _answer(204, {
        "Tus-Version": tus.VERSION, "Tus-Extension": tus.EXTENSIONS, "Tus-Max-Size": tus.max_size(),
        "Tus-Checksum-Algorithm": tus.CHECKSUM_ALGORITHMS,
    })


@bp.post("/")
@jwt_required()
def create():
    """creation (+ creation-with-upload when the body is application/offset+octet-stream)."""
    owner_id = _staff_id()
    if "Upload-Defer-Length" in request.headers:
        raise TusError("Upload-Defer-Length is not supported: send Upload-Length.")
    length = parse_length(request.headers.get("Upload-Length"))
    upload = tus.create(owner_id, length, parse_metadata(request.headers.get("Upload-Metadata")))
    headers = {"Location": url_for(".upload", upload_id=upload.id, _external=True),
               "Upload-Expires": http_date(upload.expires_at)}
    if request.mimetype == OFFSET_STREAM:
        _allow_upload_body()
        headers.update(_write_headers(tus.write(upload, request.stream, 0, **_body_options())))
    return _answer(201, headers)


def _body_options():
    return {"content_length": request.content_length,
            "checksum": parse_checksum(request.headers.get("Upload-Checksum"))}


@bp.route(UPLOAD_URL, methods=["HEAD"])
@jwt_required()
def upload(upload_id):
    """Where the upload stands: Upload-Offset is the bytes on disk."""
    found = tus.find(upload_id, _staff_id())
    done = found.status == tus.DONE
    return _answer(200, {
        "Upload-Offset": found.length if done else tus.current_offset(upload_id), "Upload-Length": found.length,
        "Upload-Expires": None if done else http_date(found.expires_at),
        "Upload-Metadata": encode_metadata(found.upload_metadata), "Video-Id": found.video_id,
    })


@bp.patch(UPLOAD_URL)
@jwt_required()
def append(upload_id):
    """Append the body at Upload-Offset; the last byte makes the video (Video-Id) or a 422."""
    found = tus.find(upload_id, _staff_id())
    if request.mimetype != OFFSET_STREAM:
        raise APIError(415, f"Content-Type must be {OFFSET_STREAM}.")
    offset = parse_length(request.headers.get("Upload-Offset"))
    _allow_upload_body()
    written = tus.write(found, request.stream, offset, **_body_options())
    return _answer(204, _write_headers(written))


@bp.delete(UPLOAD_URL)
@jwt_required()
def terminate(upload_id):
    """termination: the upload and its bytes are gone (a finished upload's video stays)."""
    tus.terminate(tus.find(upload_id, _staff_id()))
    return _answer(204, {})


@bp.cli.command("sweep")
def sweep_command():
    """Delete expired resumable uploads (rows and scratch files) now; the worker does it every 15 min."""
    click.echo(f"{len(tus.sweep_expired())} expired upload(s) deleted.")


def init_app(app):
    app.register_blueprint(bp)

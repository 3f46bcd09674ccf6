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
from videoflix.openapi import BAD_REQUEST, TERMINATED_UPLOAD_EXAMPLE, ErrorSchema, doc
from videoflix.videos.uploads import tus
from videoflix.videos.uploads.headers import TusError, encode_metadata, parse_checksum, parse_length, parse_metadata
from videoflix.videos.uploads.service import UploadRefused, UploadTooLarge

bp = Blueprint("tus", __name__, url_prefix="/api/uploads")

OFFSET_STREAM = "application/offset+octet-stream"
UPLOAD_URL = "/<upload_id>/"

# ------------------------------------------------------------------------------------ OpenAPI
# The tus headers, so the document (and the fuzzer, .ci/fuzz.sh) knows them.
_INT = {"type": "integer", "minimum": 0, "maximum": 10 ** 19 - 1}
TUS_RESUMABLE = {"name": "Tus-Resumable", "required": True, "schema": {"type": "string", "enum": [tus.VERSION]},
                 "description": "The tus version the client speaks (another: 412)."}
UPLOAD_LENGTH = {"name": "Upload-Length", "required": True, "schema": _INT, "example": 1048576,
                 "description": "The upload's size in bytes (ASCII digits; past Tus-Max-Size: 413)."}
UPLOAD_METADATA = {"name": "Upload-Metadata", "required": False, "schema": {"type": "string"},
                   "example": "filename Y2xpcC5tcDQ=,title VGl0bGU=,category RHJhbWE=",
                   "description": "Comma-separated `key base64value` pairs: filename, title, description, "
                                  "category (UTF-8; refused fields: 400 by field)."}
UPLOAD_OFFSET = {"name": "Upload-Offset", "required": True, "schema": _INT, "example": 0,
                 "description": "Where the body goes: the bytes received so far (another: 409)."}
UPLOAD_CHECKSUM = {"name": "Upload-Checksum", "required": False, "schema": {"type": "string"},
                   "example": "sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                   "description": "`sha1 <base64 digest>` of the body (no match: 460, nothing kept)."}


def _headers(**names):
    """Response headers: name (underscores for dashes) -> description."""
    return {name.replace("_", "-"): {"description": text, "schema": {"type": "string"}} for name, text in names.items()}


TUS_OUT = _headers(Tus_Resumable="Always 1.0.0.")
ERRORS = {
    400: BAD_REQUEST, 403: (ErrorSchema, "Not staff"), 404: (ErrorSchema, "No such upload of this staff member"),
    410: (ErrorSchema, "The upload expired"),
    412: {"description": "Another Tus-Resumable", "headers": _headers(Tus_Version="1.0.0"),
          "content": {"application/json": {"schema": ErrorSchema}}},
    423: (ErrorSchema, "Another request is writing to the upload"),
}
WRITE_ERRORS = {
    **ERRORS, 409: (ErrorSchema, "Upload-Offset is not the bytes received"),
    413: (ErrorSchema, "The body goes past Upload-Length, or the upload past Tus-Max-Size"),
    415: (ErrorSchema, "The body is not application/offset+octet-stream"),
    422: (ErrorSchema, "The completed file was refused (probe, limits): nothing is kept"),
    460: (ErrorSchema, "The body does not match Upload-Checksum: nothing of it is kept"),
}
WRITTEN = _headers(Upload_Offset="The bytes received.", Upload_Expires="When an unfinished upload expires.",
                   Video_Id="The video the upload became (its last byte arrived).", Tus_Resumable="1.0.0")


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
@doc("tus: the server's capabilities (no credentials)", methods=["OPTIONS"], tags=["uploads"], responses={
    204: {"description": "Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm", "headers": _headers(
        Tus_Version="1.0.0", Tus_Extension="creation,creation-with-upload,termination,expiration,checksum",
        Tus_Max_Size="MAX_UPLOAD_MB in bytes", Tus_Checksum_Algorithm="sha1")},
    200: "A browser's CORS preflight (with Origin and Access-Control-Request-Method)"})
def discover():
    """The server's tus capabilities (no credentials: a browser's preflight is an OPTIONS too)."""
    return _answer(204, {
        "Tus-Version": tus.VERSION, "Tus-Extension": tus.EXTENSIONS, "Tus-Max-Size": tus.max_size(),
        "Tus-Checksum-Algorithm": tus.CHECKSUM_ALGORITHMS,
    })


@bp.post("/")
@doc("tus creation: a new upload (staff); with a body, creation-with-upload", auth=True, tags=["uploads"],
     headers=[TUS_RESUMABLE, UPLOAD_LENGTH, UPLOAD_METADATA, UPLOAD_CHECKSUM],
     raw_body={"content_type": OFFSET_STREAM, "required": False},
     responses={**WRITE_ERRORS,
                201: {"description": "Created: Location is the upload's URL",
                      "headers": {**_headers(Location="The upload's URL."), **WRITTEN}},
                429: (ErrorSchema, "TUS_MAX_UNFINISHED unfinished uploads already"),
                507: (ErrorSchema, "Upload-Length does not fit the free space of the disk that will hold it")})
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
@doc("tus: where an upload stands (Upload-Offset)", auth=True, methods=["HEAD"], tags=["uploads"],
     headers=[TUS_RESUMABLE], responses={**ERRORS, 200: {"description": "No body: the headers", "headers": _headers(
         Upload_Offset="The bytes received.", Upload_Length="The upload's size.",
         Upload_Expires="When it expires (unfinished only).", Upload_Metadata="Its metadata, as sent.",
         Video_Id="The video it became (finished only).", Tus_Resumable="1.0.0")}})
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
@doc("tus: append the body at Upload-Offset (the last byte makes the video: Video-Id)", auth=True,
     tags=["uploads"], headers=[TUS_RESUMABLE, UPLOAD_OFFSET, UPLOAD_CHECKSUM],
     raw_body={"content_type": OFFSET_STREAM, "required": True},
     responses={**WRITE_ERRORS, 204: {"description": "Written", "headers": WRITTEN}})
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
@doc("tus termination: the upload and its bytes go (a finished upload's video stays)", auth=True,
     tags=["uploads"], headers=[TUS_RESUMABLE], examples={"upload_id": TERMINATED_UPLOAD_EXAMPLE},
     responses={**ERRORS, 204: {"description": "Deleted",
                                                                             "headers": TUS_OUT}})
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

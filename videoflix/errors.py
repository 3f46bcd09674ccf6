"""One JSON error envelope for every failure: {"detail": "..."} or field-keyed lists."""
import logging

from flask import current_app, jsonify
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from videoflix.connections.redis_conn import UNAVAILABLE, retry_after
from videoflix.extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "The uploaded file is too large.",
    415: "Unsupported media type.",
    429: "Request was throttled. Please try again later.",
    500: "Internal server error.",
    503: "Service temporarily unavailable. Please try again later.",
}


class APIError(Exception):
    """An error that becomes a JSON response: a sentence, or a dict of field errors."""

    def __init__(self, status, detail=None, *, payload=None, headers=None):
        super().__init__(detail)
        self.status = status
        self.payload = error_body(status, detail, payload)
        self.headers = headers or {}


def error_body(status, detail=None, payload=None):
    """`payload` when given, else {"detail": detail or the status's standard sentence}."""
    return payload if payload is not None else {"detail": detail or MESSAGES.get(status, "Error.")}


def error_response(status, detail=None, payload=None, headers=None):
    """The JSON error response; a 503 always says when to try again (Retry-After)."""
    response = jsonify(error_body(status, detail, payload))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    if status == 503 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(current_app.config["REDIS_RETRY_AFTER"])
    return response


def handle_api_error(error):
    return error_response(error.status, payload=error.payload, headers=error.headers)


def handle_validation_error(error):
    """Field errors from a schema's load(): always a dict (json_body refuses non-object bodies)."""
    return error_response(400, payload=error.messages)


def handle_http_exception(error):
    detail = MESSAGES.get(error.code) if error.code in MESSAGES else error.description
    if error.code == 429 and getattr(error, "description", None):
        detail = f"Request was throttled: limit of {error.description}. Please try again later."
    response = error_response(error.code or 500, detail)
    for key, value in error.get_headers():
        if key.lower() not in {"content-type", "content-length"}:
            response.headers[key] = value
    return response


def handle_unavailable(error):
    """Redis (the revocation list, a queue on it) is unreachable or too slow: 503 with Retry-After,
    logged in one line, never a traceback. Nothing was decided, so nothing was let through."""
    log.warning("Redis unavailable: %s: %s", type(error).__name__, error)
    seconds = retry_after(error, current_app.config["REDIS_RETRY_AFTER"])
    return error_response(503, headers={"Retry-After": str(seconds)})


def handle_database_unavailable(error):
    """The database cannot be reached (or its connection broke): 503 with Retry-After and one log
    line; the transaction is rolled back, so nothing half-written remains."""
    log.warning("Database unavailable: %s: %s", type(error).__name__, str(error).splitlines()[0] if str(error) else "")
    db.session.rollback()
    return error_response(503)


def handle_storage_unavailable(error):
    """The media store cannot be used now (videoflix.videos.storage's StorageUnavailable: the
    bucket down, hung or failing, or a full media disk): 503 with Retry-After (507 for a full
    disk) and its sentence, logged in one line; the transaction is rolled back. videos.init_app
    registers it (this module knows no store)."""
    log.warning("Media store unavailable: %s", error.reason() if hasattr(error, "reason") else error)
    db.session.rollback()
    if getattr(error, "full", False):
        return error_response(507, error.detail)
    seconds = getattr(error, "retry_after", None) or current_app.config["S3_RETRY_AFTER"]
    return error_response(503, error.detail, headers={"Retry-After": str(seconds)})


def handle_unexpected(error):
    log.exception("Unhandled error", exc_info=error)
    return handle_http_exception(InternalServerError())


class RequestJSONProvider(DefaultJSONProvider):
    """JSON that Python parses but the app cannot use reads as malformed (ValueError), which every
    JSON route answers with the envelope's 400: nesting too deep for the parser (RecursionError)
    and strings with lone surrogates (no UTF-8 for them: hashing, the database, logs would fail)."""

    def loads(self, s, **kwargs):
        try:
            data = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply.") from None
        if _has_lone_surrogate(data):
            raise ValueError("JSON string with a lone surrogate.")
        return data


def _has_lone_surrogate(data):
    """Any string (key or value) in `data` that cannot be encoded as UTF-8; walked without
    recursion, so depth costs nothing."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def register_error_handlers(app):
    app.json = RequestJSONProvider(app)
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    for unavailable in UNAVAILABLE:
        app.register_error_handler(unavailable, handle_unavailable)
    for unavailable in (OperationalError, InterfaceError):
        app.register_error_handler(unavailable, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)

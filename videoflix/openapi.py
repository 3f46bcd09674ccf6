"""The OpenAPI 3 document, generated from the marshmallow schemas the routes load and dump.

Routes declare what they take and answer with `@doc(...)`; `build_spec(app)` walks the URL map,
so a route without `@doc` is simply not documented, and a documented one cannot drift from the
schemas it really uses.
"""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify, url_for
from marshmallow import Schema, fields

from videoflix.auth.credentials import MAX_ID

OPENAPI_VERSION = "3.0.3"
# Realistic values for the docs page and the fuzzer's examples phase.
# upload_id: an unfinished upload .ci/fuzz.sh seeds, so the tus routes are reached past their 404
# (DELETE has one of its own: TERMINATED_UPLOAD_EXAMPLE).
PARAM_EXAMPLES = {"video_id": 1, "resolution": "480p", "segment": "seg000.ts", "uidb64": "MQ",
                  "upload_id": "f" * 32}
TERMINATED_UPLOAD_EXAMPLE = "e" * 32
_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


class ErrorSchema(Schema):
    detail = fields.String(required=True, metadata={"example": "Not found."})


class MessageSchema(Schema):
    message = fields.String(required=True)


FIELD_ERRORS = {
    "type": "object",
    "description": "Validation errors keyed by field: a list of sentences per field.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


ERROR_REF = {"$ref": "#/components/schemas/Error"}
# A 400 is either {"detail": ...} (malformed body, invalid link) or field errors.
BAD_REQUEST = {
    "description": "Malformed body, or validation errors keyed by field",
    "content": {"application/json": {"schema": {"oneOf": [ERROR_REF, FIELD_ERRORS]}}},
}


def file_response(content_type, description, schema=None):
    """A documented answer whose body is not JSON (a playlist, a segment, an image, a web server's
    HTML page)."""
    return {"description": description, "content": {content_type: {"schema": schema or {"type": "string"}}}}


def doc(summary, *, body=None, query=None, responses=None, auth=False, tags=None, description=None,
        headers=None, raw_body=None, methods=None, examples=None):
    """Describe a view for the OpenAPI document.

    `query` is the Schema its query string is loaded with (one parameter per field).

    `responses` maps a status code to a Schema (class or instance), a (Schema, description) pair,
    a plain description (no body), or a dict {"content": {...}, "headers": {...}} for non-JSON
    bodies or answers with headers.

    `headers` are the request headers it reads (OpenAPI parameter objects without "in");
    `raw_body` is {"content_type": ..., "required": bool} for a body of bytes (not JSON);
    `methods` the methods documented (default: the rule's, without HEAD and OPTIONS, which Flask
    adds to every rule; a HEAD or OPTIONS view names them here). A HEAD's answers have no body.
    `examples` override PARAM_EXAMPLES for this view's path parameters.
    """

    def decorator(fn):
        fn._openapi = {
            "summary": summary,
            "description": description,
            "body": body,
            "query": query,
            "responses": responses or {},
            "auth": auth,
            "tags": tags,
            "headers": headers or [],
            "raw_body": raw_body,
            "methods": methods,
            "examples": examples,
        }
        return fn

    return decorator


def _path_and_params(rule, examples=None):
    params = []
    examples = {**PARAM_EXAMPLES, **(examples or {})}

    def replace(match):
        converter = match.group("converter") or "string"
        schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID} if converter == "id" else {"type": "string"}
        name = match.group("name")
        param = {"in": "path", "name": name, "required": True, "schema": schema}
        if name in examples:
            param["example"] = examples[name]
        params.append(param)
        return "{" + match.group("name") + "}"

    return _PARAM.sub(replace, rule.rule), params


def _response(spec_value):
    if isinstance(spec_value, str):
        return {"description": spec_value}
    if isinstance(spec_value, dict):
        return {"description": spec_value.get("description", ""), **spec_value}
    schema, description = spec_value if isinstance(spec_value, tuple) else (spec_value, "")
    return {"description": description or "", "content": {"application/json": {"schema": schema}}}


def _operation(info, params, tag, method="get"):
    responses = {str(code): _response(value) for code, value in info["responses"].items()}
    # Anything else (405, 413, 415, 429, 500, ...) is an error envelope.
    responses.setdefault(
        "default",
        {**BAD_REQUEST, "description": "An error (405, 413, 415, 429, ...)"},
    )
    params = [*params, *({"in": "header", **header} for header in info["headers"])]
    operation = {"summary": info["summary"], "tags": info["tags"] or [tag], "responses": responses}
    if info["description"]:
        operation["description"] = info["description"]
    if info["query"] is not None:
        params = [*params, {"in": "query", "schema": info["query"]}]
    if params:
        operation["parameters"] = params
    if info["body"] is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": info["body"]}}}
    if info["raw_body"] is not None:
        operation["requestBody"] = {"required": info["raw_body"]["required"], "content": {
            info["raw_body"]["content_type"]: {"schema": {"type": "string", "format": "binary"}}}}
    if info["auth"]:
        operation["security"] = [{"cookieAuth": []}, {"bearerAuth": []}]
        responses.setdefault("401", _response((ErrorSchema, "No valid, unrevoked access token")))
    if method == "head":  # the same answers, without their bodies
        for code, answer in responses.items():
            responses[code] = {k: v for k, v in answer.items() if k != "content"}
    return operation


def build_spec(app):
    """The OpenAPI document (a dict) of every documented route of `app`."""
    spec = APISpec(
        title="Videoflix API",
        version=app.config["API_VERSION"],
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": "Accounts, the video list and HLS streaming. "
                             "Errors are JSON: {\"detail\": ...} or keyed by field."},
    )
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme("cookieAuth", {"type": "apiKey", "in": "cookie", "name": "access_token"})
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    paths = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        info = getattr(app.view_functions.get(rule.endpoint), "_openapi", None)
        if info is None:
            continue
        path, params = _path_and_params(rule, info["examples"])
        tag = rule.endpoint.split(".")[0]
        methods = info["methods"] or (rule.methods or set()) - {"HEAD", "OPTIONS"}
        for method in sorted(methods):
            paths.setdefault(path, {})[method.lower()] = _operation(info, params, tag, method.lower())
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


bp = Blueprint("openapi", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi_json():
    spec = current_app.extensions.get("openapi_spec")
    if spec is None:
        spec = current_app.extensions["openapi_spec"] = build_spec(current_app)
    return jsonify(spec)


def init_app(app):
    from flask_swagger_ui import get_swaggerui_blueprint

    app.register_blueprint(bp)
    with app.test_request_context():
        spec_url = url_for("openapi.openapi_json")
    # Outside /api/: every answer under /api/ is JSON, and this page is HTML.
    docs = get_swaggerui_blueprint("/docs", spec_url, config={"app_name": "Videoflix API"}, blueprint_name="api_docs")
    app.register_blueprint(docs)

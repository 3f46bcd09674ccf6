"""Reading request bodies: JSON objects only, loaded through a marshmallow schema."""
from flask import request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from videoflix.errors import APIError

REQUIRED = "This field is required."


def json_body(schema=None):
    """The request's JSON object, loaded by `schema` when given.

    Raises APIError 415 for another content type (forms included), 400 for malformed JSON or a
    body that is not an object, and marshmallow's ValidationError (400 keyed by field) otherwise.
    """
    if not request.is_json:
        if not request.content_length and not request.mimetype:
            data = {}
        else:
            raise APIError(415, "Unsupported media type: send a JSON object with Content-Type: application/json.")
    else:
        data = request.get_json(silent=True)
        if data is None:
            raise APIError(400, "Malformed JSON body.")
    if not isinstance(data, dict):
        raise APIError(400, "Expected a JSON object.")
    return schema.load(data) if schema is not None else data


class StrictString(fields.String):
    """A string without NUL bytes or surrounding whitespace surprises; max length checked."""

    default_error_messages = {"nul": "Null characters are not allowed.", "invalid": "Not a valid string."}

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in value:
            raise self.make_error("nul")
        return value


class BaseSchema(Schema):
    class Meta:
        unknown = EXCLUDE


def required_string(max_length, **kwargs):
    return StrictString(
        required=True,
        validate=validate.Length(max=max_length, error=f"Ensure this field has no more than {max_length} characters."),
        error_messages={"required": REQUIRED, "null": "This field may not be null."},
        **kwargs,
    )


__all__ = ["BaseSchema", "StrictString", "ValidationError", "json_body", "required_string"]

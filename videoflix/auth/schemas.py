"""Request schemas of the accounts API."""
from marshmallow import ValidationError, fields, validates_schema

from videoflix.auth.addresses import EMAIL_MAX, InvalidEmail, normalize_email
from videoflix.auth.passwords import password_problems
from videoflix.validation import REQUIRED, BaseSchema, StrictString, required_string

PASSWORD_MAX = 128


class EmailField(StrictString):
    """An e-mail address, returned as addresses.normalize_email spells it."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return normalize_email(super()._deserialize(value, attr, data, **kwargs))
        except InvalidEmail as error:
            raise ValidationError(str(error)) from None


def email_field():
    return EmailField(
        required=True,
        error_messages={"required": REQUIRED, "null": "This field may not be null."},
        metadata={"format": "email", "maxLength": EMAIL_MAX},
    )


class EmailSchema(BaseSchema):
    email = email_field()


class RegisterSchema(BaseSchema):
    email = email_field()
    password = required_string(PASSWORD_MAX)
    confirmed_password = required_string(PASSWORD_MAX)

    @validates_schema(skip_on_field_errors=False)
    def passwords(self, data, **kwargs):
        errors = {}
        password = data.get("password")
        if "confirmed_password" in data and password is not None and password != data["confirmed_password"]:
            errors["confirmed_password"] = ["Passwords do not match."]
        if password is not None and (problems := password_problems(password, data.get("email", ""))):
            errors["password"] = problems
        if errors:
            raise ValidationError(errors)


class LoginSchema(BaseSchema):
    # Not validated as an address: any string simply fails to log in, with the common message.
    email = required_string(EMAIL_MAX)
    password = required_string(PASSWORD_MAX)


class PasswordConfirmSchema(BaseSchema):
    new_password = required_string(PASSWORD_MAX)
    confirm_password = required_string(PASSWORD_MAX)

    @validates_schema(skip_on_field_errors=False)
    def passwords(self, data, **kwargs):
        if "new_password" in data and "confirm_password" in data and data["new_password"] != data["confirm_password"]:
            raise ValidationError({"confirm_password": ["Passwords do not match."]})


register_schema = RegisterSchema()
login_schema = LoginSchema()
email_schema = EmailSchema()
password_confirm_schema = PasswordConfirmSchema()


# Responses (dumped by the routes and documented in the OpenAPI document).
class UserSchema(BaseSchema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)


class LoginUserSchema(UserSchema):
    username = fields.String(required=True)


class RegisterResponseSchema(BaseSchema):
    user = fields.Nested(UserSchema, required=True)
    token = fields.String(
        required=True, metadata={"description": "The activation token (development only; empty in production)."}
    )


class DetailSchema(BaseSchema):
    detail = fields.String(required=True)


class LoginResponseSchema(DetailSchema):
    user = fields.Nested(LoginUserSchema, required=True)


class RefreshResponseSchema(DetailSchema):
    access = fields.String(required=True, metadata={"description": "The new access token (also set as a cookie)."})


register_response_schema = RegisterResponseSchema()
login_response_schema = LoginResponseSchema()
refresh_response_schema = RefreshResponseSchema()
detail_schema = DetailSchema()

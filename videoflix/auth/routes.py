"""The accounts API (see "Accounts" in API.md)."""
import logging

from flask import Blueprint, current_app, jsonify, request

from videoflix.auth import emails, sessions, users
from videoflix.auth.credentials import access_token_from_request
from videoflix.auth.links import ACTIVATION, RESET, user_for_link
from videoflix.auth.passwords import hash_password, password_problems
from videoflix.auth.schemas import (
    detail_schema,
    email_schema,
    login_response_schema,
    login_schema,
    password_confirm_schema,
    refresh_response_schema,
    register_response_schema,
    register_schema,
)
from videoflix.connections.redis_conn import UNAVAILABLE
from videoflix.errors import APIError
from videoflix.extensions import db
from videoflix.openapi import BAD_REQUEST, ErrorSchema, MessageSchema, doc
from videoflix.ratelimit import client_ip, limit, login_limits, register_limits
from videoflix.validation import json_body

bp = Blueprint("auth", __name__, url_prefix="/api")

EMAIL_TAKEN = "An account with this email already exists."
QUEUE_DOWN = "The activation e-mail could not be sent right now. Please try again later."
log = logging.getLogger(__name__)


@bp.post("/register/")
@doc("Create an inactive account and send the activation e-mail", body=register_schema,
     responses={201: register_response_schema, 400: BAD_REQUEST, 429: ErrorSchema,
                503: (ErrorSchema, "The activation e-mail could not be queued; nothing was created")})
@register_limits
def register():
    data = json_body(register_schema)
    try:
        user = users.create_user(data["email"], data["password"])
    except users.EmailTaken:
        raise APIError(400, payload={"email": [EMAIL_TAKEN]}) from None
    token, link = emails.activation_link(user)
    # Queued before the commit: an account whose e-mail never left would be stuck inactive.
    try:
        emails.send_activation_email(user, link)
    except Exception as error:
        db.session.rollback()
        # A Redis outage is expected (one line in the log); anything else keeps its traceback.
        log.warning("Could not queue the activation e-mail; registration of %s rolled back: %s: %s", data["email"],
                    type(error).__name__, error, exc_info=not isinstance(error, UNAVAILABLE))
        raise APIError(503, QUEUE_DOWN) from None
    db.session.commit()
    shown = token if current_app.config["EXPOSE_ACTIVATION_TOKEN"] else ""
    return register_response_schema.dump({"user": user, "token": shown}), 201


@bp.get("/activate/<uidb64>/<token>/")
@doc("Activate an account from the e-mailed link", responses={200: MessageSchema, 400: MessageSchema})
def activate(uidb64, token):
    user = user_for_link(uidb64, token, ACTIVATION, current_app.config["ACTIVATION_TOKEN_MAX_AGE"])
    if user is None or user.is_active or user.activated_at is not None:
        return jsonify(message="Activation failed."), 400
    user.is_active = True  # also records activated_at (see models._record_activation)
    db.session.commit()
    return jsonify(message="Account successfully activated.")


@bp.post("/login/")
@doc("Log in: sets the access_token and refresh_token cookies", body=login_schema,
     responses={200: login_response_schema, 400: BAD_REQUEST, 403: (ErrorSchema, "Account not activated yet"),
                429: ErrorSchema})
@login_limits()
def login():
    data = json_body(login_schema)
    try:
        user = users.check_credentials(data["email"], data["password"])
    except users.LoginRefused as error:
        raise APIError(error.status, error.message) from None
    access, refresh = sessions.open_session(user)
    body = {"detail": "Login successful", "user": {"id": user.id, "username": user.email, "email": user.email}}
    response = jsonify(login_response_schema.dump(body))
    sessions.set_cookies(response, access, refresh)
    return response


def _refresh_cookie():
    return request.cookies.get(current_app.config["JWT_REFRESH_COOKIE_NAME"])


@bp.post("/logout/")
@doc("Revoke the session's tokens and delete both cookies (reads the refresh_token cookie; the access "
     "token from its cookie or an Authorization: Bearer header)",
     responses={200: detail_schema, 400: ErrorSchema})
def logout():
    token = _refresh_cookie()
    if not token:
        response = jsonify(detail="Refresh token is required.")
        response.status_code = 400
    else:
        try:
            sessions.logout(token, access_token_from_request())
            response = jsonify(detail="Logout successful! All tokens will be deleted. Refresh token is now invalid.")
        except sessions.SessionError as error:
            response = jsonify(detail=error.reason)
            response.status_code = 400
    sessions.clear_cookies(response)
    return response


@bp.post("/token/refresh/")
@doc("Rotate the refresh token and issue a new access token (reads the refresh_token cookie)",
     responses={200: refresh_response_schema, 400: ErrorSchema, 401: ErrorSchema})
def refresh():
    token = _refresh_cookie()
    if not token:
        raise APIError(400, "Refresh token is required.")
    try:
        access, new_refresh = sessions.rotate(token)
    except sessions.SessionError as error:
        raise APIError(401, error.reason) from None
    response = jsonify(refresh_response_schema.dump({"detail": "Token refreshed", "access": access}))
    sessions.set_cookies(response, access, new_refresh)
    return response


@bp.post("/password_reset/")
@doc("Send a password reset link (the same answer whether or not the account exists)", body=email_schema,
     responses={200: detail_schema, 400: BAD_REQUEST, 429: ErrorSchema})
@limit("PASSWORD_RESET_LIMIT", key_func=client_ip, scope="password-reset")
def password_reset():
    data = json_body(email_schema)
    # One queued task for any address, known or not: the answer takes the same time either way.
    emails.send_password_reset_email(data["email"])
    return jsonify(detail="An email has been sent to reset your password.")


@bp.post("/password_confirm/<uidb64>/<token>/")
@doc("Set a new password from the e-mailed link; ends every session of the user", body=password_confirm_schema,
     responses={200: detail_schema, 400: BAD_REQUEST})
def password_confirm(uidb64, token):
    data = json_body(password_confirm_schema)
    user = user_for_link(uidb64, token, RESET, current_app.config["RESET_TOKEN_MAX_AGE"])
    if user is None:
        raise APIError(400, "The reset link is invalid or has expired.")
    if problems := password_problems(data["new_password"], user.email):
        raise APIError(400, payload={"new_password": problems})
    user.password_hash = hash_password(data["new_password"])
    sessions.end_all_sessions(user)  # commits the new password with the revoked refresh tokens
    return jsonify(detail="Your Password has been successfully reset.")

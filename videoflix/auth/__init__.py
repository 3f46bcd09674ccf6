"""Accounts: registration, activation, JWT cookie sessions, password reset."""
from videoflix.errors import error_response
from videoflix.extensions import db, jwt

NO_CREDENTIALS = "Authentication credentials were not provided."
INVALID_TOKEN = "Given token not valid for any token type"
EXPIRED_TOKEN = "Token is expired."
REVOKED_TOKEN = "Token has been revoked."


def init_app(app):
    from videoflix.auth import cli, routes

    app.register_blueprint(routes.bp)
    app.cli.add_command(cli.create_user_command)


@jwt.unauthorized_loader
def _no_token(reason):
    return error_response(401, NO_CREDENTIALS)


@jwt.invalid_token_loader
def _invalid_token(reason):
    return error_response(401, INVALID_TOKEN)


@jwt.expired_token_loader
def _expired_token(header, payload):
    return error_response(401, EXPIRED_TOKEN)


@jwt.revoked_token_loader
def _revoked_token(header, payload):
    return error_response(401, REVOKED_TOKEN)


@jwt.token_in_blocklist_loader
def _is_revoked(header, payload):
    from videoflix.auth.revocation import is_revoked

    return is_revoked(payload)


def current_account():
    """The active User behind the request's verified token, or None.

    There is deliberately no Flask-JWT-Extended user loader: it would cost a SELECT on every
    protected request (segments included). Routes that need the row call this instead.
    """
    from flask import g
    from flask_jwt_extended import get_jwt_identity

    from videoflix.auth.models import User

    if "videoflix_account" not in g:
        identity = get_jwt_identity()
        user = db.session.get(User, int(identity)) if identity and str(identity).isdigit() else None
        g.videoflix_account = user if user is not None and user.is_active else None
    return g.videoflix_account

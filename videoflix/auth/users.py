"""The user service: find, create and check the credentials of accounts.

The API, the admin, the CLI and the e-mail tasks all come here, so a rule such as "an account not
activated cannot sign in" is written once; addresses are normalised by auth/addresses.py.
"""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from videoflix import ratelimit
from videoflix.auth.addresses import EMAIL_MAX, InvalidEmail, lookup_form, normalize_email
from videoflix.auth.models import Profile, User
from videoflix.auth.passwords import hash_password, verify_password
from videoflix.extensions import db

LOGIN_FAILED = "Please check your input and try again."
NOT_ACTIVE = "Your account is not activated yet. Please check your email for the activation link."
NOT_STAFF = "This account has no access to the back office."


class EmailTaken(Exception):
    """An account with this address (in any spelling that normalises alike) exists."""


class LoginRefused(Exception):
    """Credentials that do not open a session; `status` is the HTTP status that says why."""

    status = 400

    def __init__(self, message=None):
        super().__init__(message or self.default_message)
        self.message = str(self)


class WrongCredentials(LoginRefused):
    """Unknown e-mail or wrong password (deliberately one answer for both)."""

    default_message = LOGIN_FAILED


class NotActivated(LoginRefused):
    status = 403
    default_message = NOT_ACTIVE


class NotStaff(LoginRefused):
    status = 403
    default_message = NOT_STAFF


def find_user(email):
    """The account of `email` in any spelling that normalises alike, or None."""
    return db.session.execute(select(User).where(User.email == lookup_form(email))).scalar_one_or_none()


def create_user(email, password, *, active=False, staff=False):
    """Add a user and their profile (flushed, not committed); `email` is normalised first.

    Raises InvalidEmail, or EmailTaken (the session rolled back when a concurrent registration of
    the same address won the race).
    """
    email = normalize_email(email)
    if find_user(email) is not None:
        raise EmailTaken(email)
    user = User(email=email, password_hash=hash_password(password), is_active=active, is_staff=staff)
    user.profile = Profile(display_name=email.split("@")[0])
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise EmailTaken(email) from None
    return user


def check_credentials(email, password, *, staff=False):
    """The active user (with the staff flag when `staff`) these credentials open.

    Raises WrongCredentials, NotActivated or NotStaff (after the password was checked, so no
    answer tells an account exists without its password), and werkzeug's TooManyRequests past
    the sign-in limits (see ratelimit.sign_in_attempt).
    """
    with ratelimit.sign_in_attempt(lookup_form(email), LoginRefused):
        user = find_user(email)
        # An unknown address spends the same hash check as a known one (nothing to time).
        if not verify_password(user.password_hash if user else None, password):
            raise WrongCredentials()
        if not user.is_active:
            raise NotActivated()
        if staff and not user.is_staff:
            raise NotStaff()
    return user


__all__ = ["EMAIL_MAX", "EmailTaken", "InvalidEmail", "LoginRefused", "NotActivated", "NotStaff", "WrongCredentials",
           "check_credentials", "create_user", "find_user", "lookup_form", "normalize_email"]

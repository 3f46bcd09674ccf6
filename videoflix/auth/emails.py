"""Account e-mails, delivered by Huey tasks with retries.

The activation e-mail is rendered in the request (its link was just made) and queued as text.
A password reset is queued as the bare e-mail address, always: the task looks the account up,
so the request does the same work whether or not the account exists (nothing to time).
"""
import logging

from flask import current_app, render_template
from flask_mail import Message

from videoflix.auth.links import ACTIVATION, RESET, encode_uid, make_token
from videoflix.auth.users import find_user
from videoflix.extensions import mail
from videoflix.tasks import MAIL, task

log = logging.getLogger(__name__)
ACTIVATION_SUBJECT = "Confirm your email for Videoflix"
RESET_SUBJECT = "Reset your Videoflix password"


def activation_link(user):
    token = make_token(user, ACTIVATION)
    base = current_app.config["FRONTEND_URL"]
    return token, f"{base}/pages/auth/activate.html?uid={encode_uid(user.id)}&token={token}"


def reset_link(user):
    token = make_token(user, RESET)
    base = current_app.config["FRONTEND_URL"]
    return f"{base}/pages/auth/confirm_password.html?uid={encode_uid(user.id)}&token={token}"


def send_activation_email(user, link):
    """Queue the activation e-mail. Raises when the queue cannot take it (the caller rolls back)."""
    text, html = _render("activation", ACTIVATION_SUBJECT, user.email, link=link,
                         hours=current_app.config["ACTIVATION_TOKEN_MAX_AGE"] // 3600)
    deliver_email(ACTIVATION_SUBJECT, user.email, text, html)


@task(queue=MAIL, retries=5, retry_delay=30)
def send_password_reset_email(email):
    """Send the reset e-mail if `email` (normalized) belongs to an active account; else nothing.

    Runs on a worker; raises on SMTP failure, so Huey retries it (with a fresh link).
    """
    user = find_user(email)
    if user is None or not user.is_active:
        return
    text, html = _render("password_reset", RESET_SUBJECT, user.email, link=reset_link(user),
                         hours=current_app.config["RESET_TOKEN_MAX_AGE"] // 3600)
    send_message(RESET_SUBJECT, user.email, text, html)


def _render(template, subject, recipient, **context):
    """The (text, html) parts of emails/<template>."""
    context.update(email=recipient, subject=subject)
    return render_template(f"emails/{template}.txt", **context), render_template(f"emails/{template}.html", **context)


@task(queue=MAIL, retries=5, retry_delay=30)
def deliver_email(subject, recipient, text, html):
    """Send one already rendered message; raises on SMTP failure, so Huey retries it."""
    send_message(subject, recipient, text, html)


def send_message(subject, recipient, text, html):
    """Send one message (text and HTML parts), or print it with the console backend.

    Raises on SMTP failure.
    """
    message = Message(subject=subject, recipients=[recipient], body=text, html=html)
    if current_app.config["EMAIL_BACKEND"] == "console":
        print_email(message)
        return
    mail.send(message)
    log.info("Sent %r to %s", subject, recipient)


def print_email(message):
    """The whole message on the log, parts decoded, so its links can be followed in development."""
    sender = message.sender or current_app.config["MAIL_DEFAULT_SENDER"]
    divider = "-" * 72
    log.warning(
        "E-mail (console backend)\n%s\nFrom: %s\nTo: %s\nSubject: %s\n\n[text/plain]\n%s\n[text/html]\n%s\n%s",
        divider, sender, ", ".join(message.recipients), message.subject, message.body, message.html, divider,
    )

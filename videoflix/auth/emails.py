"""Account e-mails: rendered in the request, delivered by a Huey task with retries."""
import logging

from flask import current_app, render_template
from flask_mail import Message

from videoflix.auth.links import ACTIVATION, RESET, encode_uid, make_token
from videoflix.extensions import mail
from videoflix.tasks import task

log = logging.getLogger(__name__)


def activation_link(user):
    token = make_token(user, ACTIVATION)
    return token, f"{current_app.config['FRONTEND_URL']}/pages/auth/activate.html?uid={encode_uid(user.id)}&token={token}"


def reset_link(user):
    token = make_token(user, RESET)
    return f"{current_app.config['FRONTEND_URL']}/pages/auth/confirm_password.html?uid={encode_uid(user.id)}&token={token}"


def send_activation_email(user, link):
    _queue("activation", "Confirm your email for Videoflix", user.email, link=link,
           hours=current_app.config["ACTIVATION_TOKEN_MAX_AGE"] // 3600)


def send_password_reset_email(user):
    _queue("password_reset", "Reset your Videoflix password", user.email, link=reset_link(user),
           hours=current_app.config["RESET_TOKEN_MAX_AGE"] // 3600)


def _queue(template, subject, recipient, **context):
    context.update(email=recipient, subject=subject)
    text = render_template(f"emails/{template}.txt", **context)
    html = render_template(f"emails/{template}.html", **context)
    deliver_email(subject, recipient, text, html)


@task(retries=5, retry_delay=30)
def deliver_email(subject, recipient, text, html):
    """Send one message (text and HTML parts). Raises on SMTP failure, so Huey retries it."""
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

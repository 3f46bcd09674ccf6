"""E-mail through a real SMTP listener (aiosmtpd), and the console backend."""
import email
import logging
import socket

import pytest
from aiosmtpd.controller import Controller

from tests.fixtures.accounts import link_from, register


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_inbox():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def smtp_app_config(app_config, smtp_inbox):
    _, port = smtp_inbox
    app_config.update(MAIL_SUPPRESS_SEND=False, MAIL_SERVER="127.0.0.1", MAIL_PORT=port, EMAIL_BACKEND="smtp",
                      MAIL_DEFAULT_SENDER="Videoflix <noreply@videoflix.test>")
    return app_config


def parts(message):
    return {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk() if not part.is_multipart()
    }


def test_activation_email_arrives_with_both_parts_and_a_working_link(smtp_app_config, smtp_inbox, app, client):
    inbox, _ = smtp_inbox
    response = register(client, email="reader@example.com")
    assert response.status_code == 201
    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert recipients == ["reader@example.com"]
    assert message["Subject"] == "Confirm your email for Videoflix"
    assert "noreply@videoflix.test" in message["From"]
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert 'name="viewport"' in body["text/html"]

    class Text:  # link_from reads a message's text part
        pass

    Text.body = body["text/plain"]
    url, uid, token = link_from(Text)
    assert url.replace("&", "&amp;") in body["text/html"]
    activated = client.get(f"/api/activate/{uid}/{token}/")
    assert activated.status_code == 200


def test_failed_delivery_does_not_fail_the_request_and_is_retried(app_config, smtp_inbox):
    from videoflix import create_app
    from videoflix.extensions import db
    from videoflix.tasks import MAIL, queue_of

    inbox, port = smtp_inbox
    app_config.update(MAIL_SUPPRESS_SEND=False, MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), EMAIL_BACKEND="smtp")
    app = create_app(app_config)
    huey = queue_of(app, MAIL)
    with app.app_context():
        db.create_all()
    try:
        response = register(app.test_client(), email="later@example.com")
        assert response.status_code == 201  # SMTP is down, the account still exists
        [retry] = huey.scheduled()
        assert retry.name == "deliver_email" and retry.retries == 4
        assert inbox.messages == []

        app.config["MAIL_PORT"] = port  # the server is back
        from videoflix.extensions import mail

        mail.init_app(app)
        huey.execute(retry, timestamp=retry.eta)  # as the consumer does once the delay has passed
        assert [rcpt for rcpt, _ in inbox.messages] == [["later@example.com"]]
    finally:
        with app.app_context():
            db.drop_all()


def test_console_backend_prints_the_whole_message(app_config, caplog):
    from videoflix import create_app
    from videoflix.extensions import db

    app_config["EMAIL_BACKEND"] = "console"
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
    try:
        with caplog.at_level(logging.INFO, logger="videoflix.auth.emails"):
            token = register(app.test_client(), email="console@example.com").get_json()["token"]
        printed = caplog.text
        assert "To: console@example.com" in printed
        assert "Subject: Confirm your email for Videoflix" in printed
        assert f"/pages/auth/activate.html?uid=MQ&token={token}" in printed
        assert "[text/html]" in printed and "<!DOCTYPE html>" in printed
    finally:
        with app.app_context():
            db.drop_all()

from itsdangerous import URLSafeTimedSerializer

from tests.fixtures.accounts import encode_uid, link_from, register
from videoflix.auth.models import User
from videoflix.extensions import db


def registered(client, outbox):
    response = register(client)
    _, uid, token = link_from(outbox[-1])
    return response.get_json()["user"]["id"], uid, token


def is_active(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).is_active


def test_activation_link_activates_once(client, app, outbox):
    user_id, uid, token = registered(client, outbox)

    response = client.get(f"/api/activate/{uid}/{token}/")
    assert response.status_code == 200
    assert response.get_json() == {"message": "Account successfully activated."}
    assert is_active(app, user_id)

    again = client.get(f"/api/activate/{uid}/{token}/")
    assert again.status_code == 400
    assert again.get_json() == {"message": "Activation failed."}


def test_bad_links_fail_and_change_nothing(client, app, outbox):
    user_id, uid, token = registered(client, outbox)
    other_uid = encode_uid(user_id + 1)
    for path in [
        f"/api/activate/{uid}/{token[:-2]}xx/",
        f"/api/activate/{other_uid}/{token}/",
        f"/api/activate/!!!/{token}/",
        f"/api/activate/{encode_uid('abc')}/{token}/",
        f"/api/activate/{uid}/not-a-token/",
        f"/api/activate/{uid}/{'a' * 400}/",
    ]:
        response = client.get(path)
        assert response.status_code == 400, path
        assert response.get_json() == {"message": "Activation failed."}
    assert not is_active(app, user_id)


def test_expired_activation_link_fails(client, app, outbox):
    user_id, uid, token = registered(client, outbox)
    app.config["ACTIVATION_TOKEN_MAX_AGE"] = -1
    assert client.get(f"/api/activate/{uid}/{token}/").status_code == 400
    assert not is_active(app, user_id)


def test_reset_token_cannot_activate(client, app, outbox):
    user_id, uid, _ = registered(client, outbox)
    with app.app_context():
        from videoflix.auth.links import RESET, make_token

        reset_token = make_token(db.session.get(User, user_id), RESET)
    assert client.get(f"/api/activate/{uid}/{reset_token}/").status_code == 400
    assert not is_active(app, user_id)


def test_token_signed_with_another_key_fails(client, app, outbox):
    user_id, uid, _ = registered(client, outbox)
    forged = URLSafeTimedSerializer("some-other-key", salt="videoflix-activation").dumps("x" * 32)
    assert client.get(f"/api/activate/{uid}/{forged}/").status_code == 400
    assert not is_active(app, user_id)


def deactivate(app, user_id):
    """What the admin's Deactivate action does."""
    from videoflix.auth import sessions

    with app.app_context():
        user = db.session.get(User, user_id)
        user.is_active = False
        db.session.commit()
        sessions.end_all_sessions(user)


def activated_at(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).activated_at


def test_an_old_link_cannot_reactivate_a_deactivated_account(client, app, outbox):
    user_id, uid, token = registered(client, outbox)
    assert activated_at(app, user_id) is None
    assert client.get(f"/api/activate/{uid}/{token}/").status_code == 200
    first_activation = activated_at(app, user_id)
    assert first_activation is not None

    deactivate(app, user_id)
    replay = client.get(f"/api/activate/{uid}/{token}/")
    assert replay.status_code == 400
    assert replay.get_json() == {"message": "Activation failed."}
    assert not is_active(app, user_id)
    assert activated_at(app, user_id) == first_activation
    login = client.post("/api/login/", json={"email": "new@example.com", "password": "Blue-Kettle-Morning-42"})
    assert login.status_code == 403


def test_activation_by_an_admin_or_the_cli_also_kills_the_link(client, app, outbox, runner):
    user_id, uid, token = registered(client, outbox)
    with app.app_context():
        db.session.get(User, user_id).is_active = True  # the admin's form and Activate action
        db.session.commit()
    assert activated_at(app, user_id) is not None
    deactivate(app, user_id)
    assert client.get(f"/api/activate/{uid}/{token}/").status_code == 400
    assert not is_active(app, user_id)

    result = runner.invoke(args=["create-user", "cli@example.com", "--password", "Blue-Kettle-Morning-42"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        cli_user = db.session.execute(db.select(User).where(User.email == "cli@example.com")).scalar_one()
        assert cli_user.is_active and cli_user.activated_at is not None

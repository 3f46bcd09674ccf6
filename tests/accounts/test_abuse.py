"""Findings of the adversarial review on accounts (issue 10, items 5 to 8 and shared addresses),
through HTTP only."""
import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.fixtures.accounts import STRONG, cookie, register
from videoflix.auth.models import User
from videoflix.extensions import db

JSON_ROUTES = ["/api/register/", "/api/login/", "/api/password_reset/", "/api/password_confirm/MQ/abc/"]


def count_users(app):
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def emails(app):
    with app.app_context():
        return sorted(db.session.scalars(select(User.email)))


def login(client, email, password=PASSWORD, ip="10.0.0.1"):
    return client.post("/api/login/", json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip})


# --- 5. bad input that gave 500 -----------------------------------------------------------------

@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("body", ["[" * 100_000, '{"email": ' + "[" * 100_000, "[" * 50_000 + "]" * 50_000])
def test_deeply_nested_json_is_a_400(client, app, route, body):
    response = client.post(route, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Malformed JSON body."}
    assert count_users(app) == 0


@pytest.mark.parametrize("route,body", [
    ("/api/login/", {"email": "user@example.com", "password": "\ud800"}),
    ("/api/login/", {"email": "user@example.com", "password": "abc\udfffdef"}),
    ("/api/register/",
     {"email": "a@example.com", "password": "\ud800" + STRONG, "confirmed_password": "\ud800" + STRONG}),
    ("/api/register/", {"email": "a\udc80@example.com", "password": STRONG, "confirmed_password": STRONG}),
    ("/api/password_reset/", {"email": "\ud800@example.com"}),
    ("/api/password_confirm/MQ/abc/", {"new_password": "\ud800", "confirm_password": "\ud800"}),
])
def test_lone_surrogates_are_a_400(client, app, make_user, outbox, route, body):
    make_user("user@example.com")
    response = client.post(route, json=body)  # the test client escapes them: {"password": "\\ud800"}
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Malformed JSON body."}
    assert count_users(app) == 1 and outbox == []


# --- 6. e-mail addresses -------------------------------------------------------------------------

def test_a_non_ascii_local_part_is_refused_at_registration(client, app, outbox):
    response = register(client, email="jörg@example.com")
    assert response.status_code == 400
    assert list(response.get_json()) == ["email"]
    assert count_users(app) == 0 and outbox == []


def test_look_alike_spellings_are_one_account(client, app, outbox):
    assert register(client, email="Anna@Bücher.Example").status_code == 201
    assert emails(app) == ["anna@xn--bcher-kva.example"]
    # The activation e-mail goes to an address any mail server takes (no SMTPUTF8 needed).
    assert outbox[0].recipients == ["anna@xn--bcher-kva.example"]
    for spelling in ["ａｎｎａ@bücher.example", "ANNA@BÜCHER.EXAMPLE", "anna@xn--bcher-kva.example",
                     "ａｎｎａ@ｂüｃｈｅｒ.ｅｘａｍｐｌｅ"]:
        response = register(client, email=spelling)
        assert response.status_code == 400, spelling
        assert response.get_json() == {"email": ["An account with this email already exists."]}
    assert count_users(app) == 1 and len(outbox) == 1


def test_login_and_reset_use_the_same_normalisation(client, app, make_user, outbox):
    make_user("user@bücher.example")
    assert emails(app) == ["user@xn--bcher-kva.example"]
    for spelling in ["ｕｓｅｒ@bücher.example", "USER@XN--BCHER-KVA.EXAMPLE", " user@Bücher.example "]:
        response = login(client, spelling)
        assert response.status_code == 200, spelling
        assert response.get_json()["user"]["email"] == "user@xn--bcher-kva.example"
    assert client.post("/api/password_reset/", json={"email": "ｕｓｅｒ@BÜCHER.example"}).status_code == 200
    assert [m.recipients for m in outbox] == [["user@xn--bcher-kva.example"]]


# --- 7. a stolen refresh token -------------------------------------------------------------------

def test_reuse_detection_also_kills_the_access_token_of_the_last_rotation(app, make_user, make_video):  # noqa: F811
    make_user()
    client = app.test_client()
    stolen = cookie(login(client, "user@example.com"), "refresh_token")["value"]
    rotated = client.post("/api/token/refresh/")
    assert rotated.status_code == 200
    access = rotated.get_json()["access"]
    headers = {"Authorization": f"Bearer {access}"}
    video_id = make_video()
    segment = f"/api/video/{video_id}/480p/seg000.ts"
    # Verified in full once (Flask): from now on the segment fast path answers for this token.
    assert client.get("/api/video/", headers=headers).status_code == 200
    assert client.get(segment, headers=headers, buffered=True).status_code == 200
    assert client.get(segment, headers=headers, buffered=True).status_code == 200

    thief = app.test_client()
    thief.set_cookie("refresh_token", stolen)
    reused = thief.post("/api/token/refresh/")
    assert reused.status_code == 401 and "reuse" in reused.get_json()["detail"]

    for url in ("/api/video/", f"/api/video/{video_id}/", segment, f"/api/video/{video_id}/480p/index.m3u8"):
        response = client.get(url, headers=headers, buffered=True)
        assert response.status_code == 401, url
        assert response.get_json() == {"detail": "Token has been revoked."}
    # Another login of the same user (another family) is unaffected.
    fresh = app.test_client()
    login(fresh, "user@example.com")
    assert fresh.get(segment, buffered=True).status_code == 200


# --- 8. per-account lockout ----------------------------------------------------------------------

def test_failures_from_rotating_addresses_do_not_lock_the_owner_out(app, client, make_user):
    make_user("victim@example.com")
    attackers = [f"10.9.0.{i}" for i in range(40)]
    codes = [login(client, "victim@example.com", f"guess-{i}", ip=ip).status_code for i, ip in enumerate(attackers)]
    assert 429 in codes  # the account's budget (LOGIN_ATTEMPTS_PER_ACCOUNT) is spent ...
    assert codes.count(400) <= 10  # ... after at most its first window of guesses
    # The owner, from an address without failures, signs in with the right password.
    owner = login(client, "victim@example.com", PASSWORD, ip="192.0.2.7")
    assert owner.status_code == 200
    assert cookie(owner, "access_token") is not None
    # Attackers keep getting 429: from a used address even with the right password, and from a
    # fresh one for a wrong guess.
    assert login(client, "victim@example.com", PASSWORD, ip=attackers[0]).status_code == 429
    assert login(client, "victim@example.com", "guess-x", ip="10.9.1.1").status_code == 429
    assert login(client, "victim@example.com", PASSWORD, ip="10.9.1.1").status_code == 429


# --- shared addresses ----------------------------------------------------------------------------

def test_a_classroom_behind_one_address_can_register(client, app, outbox):
    for i in range(20):
        assert register(client, email=f"pupil{i}@school.example").status_code == 201, i
    assert count_users(app) == 20
    burst = register(client, email="pupil99@school.example")  # REGISTER_LIMIT: a burst per client
    assert burst.status_code == 429 and "Retry-After" in burst.headers
    assert count_users(app) == 20


def test_registrations_are_counted_per_email_domain(client, app, outbox):
    app.config["REGISTER_LIMIT_PER_DOMAIN"] = "3/hour"

    def from_address(email, ip):
        body = {"email": email, "password": STRONG, "confirmed_password": STRONG}
        return client.post("/api/register/", json=body, environ_base={"REMOTE_ADDR": ip})

    for i in range(2):
        assert from_address(f"bot{i}@spam.example", f"10.8.0.{i}").status_code == 201
    assert from_address("bot0@spam.example", "10.8.0.9").status_code == 400  # taken: not counted
    assert from_address("bot2@spam.example", "10.8.0.2").status_code == 201
    blocked = from_address("bot9@Spam.Example", "10.8.0.10")
    assert blocked.status_code == 429 and set(blocked.get_json()) == {"detail"}
    assert from_address("someone@other.example", "10.8.0.10").status_code == 201
    assert emails(app) == ["bot0@spam.example", "bot1@spam.example", "bot2@spam.example", "someone@other.example"]

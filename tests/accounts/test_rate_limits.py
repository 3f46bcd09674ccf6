"""Failed logins per account and per client, register and password reset per client: 429 JSON; and
what the limits must never do: lock an owner out, or keep a classroom behind one address from
registering."""
from tests.conftest import PASSWORD
from tests.fixtures.accounts import STRONG, cookie, count_users, emails, login_from, register


def test_failed_logins_per_account_and_client(app, client, make_user):
    app.config["LOGIN_FAILURES_PER_ACCOUNT_CLIENT"] = "3/minute"
    make_user("victim@example.com")
    for _ in range(3):
        assert login_from(client, "victim@example.com", "wrong-password", ip="10.0.1.1").status_code == 400
    blocked = login_from(client, "VICTIM@example.com", PASSWORD, ip="10.0.1.1")
    assert blocked.status_code == 429
    assert set(blocked.get_json()) == {"detail"} and "3 per 1 minute" in blocked.get_json()["detail"]
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.headers.getlist("Set-Cookie") == []
    # The owner elsewhere, and other accounts from the same client, are not affected.
    assert login_from(client, "victim@example.com", PASSWORD, ip="10.0.1.2").status_code == 200
    make_user("other@example.com")
    assert login_from(client, "other@example.com", PASSWORD, ip="10.0.1.1").status_code == 200


def test_successful_logins_do_not_count(app, client, make_user):
    app.config["LOGIN_FAILURES_PER_ACCOUNT_CLIENT"] = "2/minute"
    make_user("busy@example.com")
    for _ in range(5):
        assert login_from(client, "busy@example.com", PASSWORD).status_code == 200


def test_failed_logins_per_client(app, client, make_user):
    app.config["LOGIN_FAILURES_PER_CLIENT"] = "4/minute"
    for i in range(4):
        assert login_from(client, f"nobody{i}@example.com", "wrong-password", ip="10.0.2.1").status_code == 400
    assert login_from(client, "nobody9@example.com", "wrong-password", ip="10.0.2.1").status_code == 429
    assert login_from(client, "nobody9@example.com", "wrong-password", ip="10.0.2.2").status_code == 400


def test_register_and_reset_per_client(app, client, outbox):
    app.config["REGISTER_LIMIT"] = "2/hour"
    app.config["PASSWORD_RESET_LIMIT"] = "2/hour"
    assert register(client, email="a1@example.com").status_code == 201
    assert register(client, email="a2@example.com").status_code == 201
    blocked = register(client, email="a3@example.com")
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    for _ in range(2):
        assert client.post("/api/password_reset/", json={"email": "a1@example.com"}).status_code == 200
    assert client.post("/api/password_reset/", json={"email": "a1@example.com"}).status_code == 429
    assert len(outbox) == 2  # two activations, no reset mail (accounts inactive)


def test_a_spent_account_budget_lets_only_clients_without_failures_check_a_password(app, client, make_user):
    app.config.update(LOGIN_ATTEMPTS_PER_ACCOUNT="4/minute", LOGIN_LOCKED_ATTEMPTS_PER_CLIENT="2/hour")
    make_user("busy@example.com")
    make_user("other@example.com")
    assert login_from(client, "busy@example.com", "wrong-password", ip="10.0.3.50").status_code == 400
    for i in range(3):  # normal use: a few logins, even from several addresses, all succeed
        assert login_from(client, "busy@example.com", PASSWORD, ip=f"10.0.3.{i}").status_code == 200
    # The budget is spent: a client that failed on this account gets 429 even with the password.
    blocked = login_from(client, "Busy@example.com", PASSWORD, ip="10.0.3.50")
    assert blocked.status_code == 429
    assert set(blocked.get_json()) == {"detail"}
    assert blocked.headers.getlist("Set-Cookie") == []
    # A client without failures still signs in, a few times; a wrong guess from it is a 429.
    assert login_from(client, "busy@example.com", PASSWORD, ip="10.0.3.60").status_code == 200
    assert login_from(client, "busy@example.com", "wrong-password", ip="10.0.3.61").status_code == 429
    assert login_from(client, "busy@example.com", PASSWORD, ip="10.0.3.61").status_code == 429  # now it failed
    assert login_from(client, "busy@example.com", PASSWORD, ip="10.0.3.60").status_code == 200
    assert login_from(client, "busy@example.com", PASSWORD, ip="10.0.3.60").status_code == 429  # 2/hour used
    assert login_from(client, "other@example.com", PASSWORD, ip="10.0.3.50").status_code == 200


def test_a_burst_of_concurrent_guesses_is_bounded_by_the_ceiling(app, make_user, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from videoflix.auth import passwords

    # The account budget is charged before the password check: concurrent guesses cannot overrun
    # it, and once it is spent each fresh address gets one try at most (then it has failed).
    app.config.update(LOGIN_ATTEMPTS_PER_ACCOUNT="3/minute", LOGIN_LOCKED_ATTEMPTS_PER_CLIENT="1/hour")
    make_user("victim@example.com")
    checked = []
    original = passwords.check_password_hash
    monkeypatch.setattr(passwords, "check_password_hash", lambda h, p: checked.append(p) or original(h, p))

    def guess(i):
        return login_from(app.test_client(), "victim@example.com", f"wrong-{i}", ip=f"10.0.4.{i % 4}").status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(guess, range(12)))  # three requests from each of 4 addresses
    assert sorted(codes) == [400] * 3 + [429] * 9
    assert len(checked) <= 3 + 4  # the budget, then at most one try per address


def admin_sign_in(client, email, password, ip):
    import re

    page = client.get("/admin/login/", environ_base={"REMOTE_ADDR": ip})
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    return client.post("/admin/login/", data={"csrf_token": token, "email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def test_admin_sign_in_shares_the_failed_login_limits(app, client, make_user):
    app.config["LOGIN_FAILURES_PER_ACCOUNT_CLIENT"] = "5/minute"
    make_user("staff@example.com", staff=True)
    for _ in range(5):
        assert admin_sign_in(client, "staff@example.com", "wrong-password", ip="10.0.5.1").status_code == 400
    blocked = admin_sign_in(client, "Staff@example.com", PASSWORD, ip="10.0.5.1")
    assert blocked.status_code == 429
    assert client.get_cookie("access_token") is None
    # The same counters as the API's door: it is closed for this account and client too.
    assert login_from(client, "staff@example.com", PASSWORD, ip="10.0.5.1").status_code == 429
    # The sign-in page itself stays reachable, and the owner signs in from elsewhere.
    assert client.get("/admin/login/", environ_base={"REMOTE_ADDR": "10.0.5.1"}).status_code == 200
    assert admin_sign_in(client, "staff@example.com", PASSWORD, ip="10.0.5.2").status_code == 302


def test_non_staff_probing_the_admin_sign_in_is_limited(app, client, make_user):
    make_user("viewer@example.com")
    for _ in range(5):  # a right password gets 403 here: it counts as a failure
        assert admin_sign_in(client, "viewer@example.com", PASSWORD, ip="10.0.6.1").status_code == 403
    assert admin_sign_in(client, "viewer@example.com", PASSWORD, ip="10.0.6.1").status_code == 429


def test_failures_from_rotating_addresses_do_not_lock_the_owner_out(app, client, make_user):
    make_user("victim@example.com")
    attackers = [f"10.9.0.{i}" for i in range(40)]
    codes = [login_from(client, "victim@example.com", f"guess-{i}", ip=ip).status_code
             for i, ip in enumerate(attackers)]
    assert 429 in codes  # the account's budget (LOGIN_ATTEMPTS_PER_ACCOUNT) is spent ...
    assert codes.count(400) <= 10  # ... after at most its first window of guesses
    # The owner, from an address without failures, signs in with the right password.
    owner = login_from(client, "victim@example.com", PASSWORD, ip="192.0.2.7")
    assert owner.status_code == 200
    assert cookie(owner, "access_token") is not None
    # Attackers keep getting 429: from a used address even with the right password, and from a
    # fresh one for a wrong guess.
    assert login_from(client, "victim@example.com", PASSWORD, ip=attackers[0]).status_code == 429
    assert login_from(client, "victim@example.com", "guess-x", ip="10.9.1.1").status_code == 429
    assert login_from(client, "victim@example.com", PASSWORD, ip="10.9.1.1").status_code == 429


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

"""Failed logins per account and per client, register and password reset per client: 429 JSON."""
from tests.accounts import register
from tests.conftest import PASSWORD


def login(client, email, password, ip="10.0.0.1"):
    return client.post("/api/login/", json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip})


def test_failed_logins_per_account_from_any_address(app, client, make_user):
    app.config["LOGIN_FAILURES_PER_ACCOUNT"] = "3/minute"
    make_user("victim@example.com")
    for i in range(3):
        assert login(client, "victim@example.com", "wrong-password", ip=f"10.0.1.{i}").status_code == 400
    blocked = login(client, "VICTIM@example.com", PASSWORD, ip="10.0.1.99")
    assert blocked.status_code == 429
    assert set(blocked.get_json()) == {"detail"}
    assert int(blocked.headers["Retry-After"]) > 0
    # Other accounts are not affected.
    make_user("other@example.com")
    assert login(client, "other@example.com", PASSWORD, ip="10.0.1.99").status_code == 200


def test_successful_logins_do_not_count(app, client, make_user):
    app.config["LOGIN_FAILURES_PER_ACCOUNT"] = "2/minute"
    make_user("busy@example.com")
    for _ in range(5):
        assert login(client, "busy@example.com", PASSWORD).status_code == 200


def test_failed_logins_per_client(app, client, make_user):
    app.config["LOGIN_FAILURES_PER_CLIENT"] = "4/minute"
    for i in range(4):
        assert login(client, f"nobody{i}@example.com", "wrong-password", ip="10.0.2.1").status_code == 400
    assert login(client, "nobody9@example.com", "wrong-password", ip="10.0.2.1").status_code == 429
    assert login(client, "nobody9@example.com", "wrong-password", ip="10.0.2.2").status_code == 400


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

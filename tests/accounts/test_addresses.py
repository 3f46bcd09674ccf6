"""E-mail addresses are normalised once (auth/addresses.py): look-alike spellings are one account, at
registration, login and password reset alike, and a non-ASCII part before the @ is refused."""
from tests.fixtures.accounts import count_users, emails, login_from, register


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
        response = login_from(client, spelling)
        assert response.status_code == 200, spelling
        assert response.get_json()["user"]["email"] == "user@xn--bcher-kva.example"
    assert client.post("/api/password_reset/", json={"email": "ｕｓｅｒ@BÜCHER.example"}).status_code == 200
    assert [m.recipients for m in outbox] == [["user@xn--bcher-kva.example"]]

"""Every malformed body gets a 4xx JSON answer and changes nothing."""
import pytest

from tests.fixtures.accounts import STRONG, count_users

ROUTES = ["/api/register/", "/api/login/", "/api/password_reset/", "/api/password_confirm/MQ/abc/"]
BAD_BODIES = [
    ("malformed", "{not json", "application/json", 400),
    ("array", '[{"email": "a@example.com"}]', "application/json", 400),
    ("string", '"a@example.com"', "application/json", 400),
    ("number", "42", "application/json", 400),
    ("null", "null", "application/json", 400),
    ("form", "email=a%40example.com&password=x", "application/x-www-form-urlencoded", 415),
    ("text", "email=a@example.com", "text/plain", 415),
    ("bad utf-8", b'{"email": "\xff\xfe"}', "application/json", 400),
]



@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name,body,content_type,status", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies(client, app, route, name, body, content_type, status):
    response = client.post(route, data=body, content_type=content_type)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert isinstance(response.get_json()["detail"], str)
    assert count_users(app) == 0


def test_wrong_types_are_field_errors(client, app):
    response = client.post(
        "/api/register/", json={"email": ["a@example.com"], "password": 12345678, "confirmed_password": None}
    )
    assert response.status_code == 400
    assert set(response.get_json()) == {"email", "password", "confirmed_password"}
    assert count_users(app) == 0


def test_overlong_email_and_password_and_nul_bytes(client, app):
    long_email = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"
    assert len(long_email) > 254
    cases = [
        ({"email": long_email, "password": STRONG, "confirmed_password": STRONG}, "email"),
        ({"email": "ok@example.com", "password": "Aa1-" * 300, "confirmed_password": "Aa1-" * 300}, "password"),
        ({"email": "ok\x00@example.com", "password": STRONG, "confirmed_password": STRONG}, "email"),
        ({"email": "ok@example.com", "password": STRONG + "\x00", "confirmed_password": STRONG + "\x00"}, "password"),
    ]
    for body, field in cases:
        response = client.post("/api/register/", json=body)
        assert response.status_code == 400
        assert field in response.get_json()
    login = client.post("/api/login/", json={"email": "ok@example.com", "password": "x" * 100_000})
    assert login.status_code == 400 and "password" in login.get_json()
    assert count_users(app) == 0


def test_wrong_methods_and_unknown_paths_are_json(client):
    for method, path, status in [
        ("get", "/api/register/", 405), ("put", "/api/login/", 405), ("delete", "/api/logout/", 405),
        ("get", "/api/nope/", 404),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == status
        assert response.is_json and response.get_json()["detail"]


def test_huge_body_is_refused_without_5xx(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    response = client.post("/api/login/", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", content_type="application/json")
    assert response.status_code == 413
    assert response.is_json


def test_paths_without_the_trailing_slash_answer_json_directly(client, make_user):
    make_user()
    response = client.post("/api/login", json={"email": "user@example.com", "password": "correct-horse-battery"})
    assert response.status_code == 200  # no redirect: its body would be HTML
    assert response.get_json()["detail"] == "Login successful"
    for path, status in [("/api/video", 200), ("/api//video/", 404), ("/api/register//", 405)]:
        response = client.get(path)
        assert response.status_code == status, path
        assert response.is_json, path


def test_the_html_docs_page_lives_outside_the_json_api(client):
    page = client.get("/docs/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b"swagger" in page.data.lower() and b"/api/openapi.json" in page.data
    for path in ("/api/docs/", "/api/docs"):
        gone = client.get(path)
        assert gone.status_code == 404 and gone.get_json() == {"detail": "Not found."}
    spec = client.get("/api/openapi.json").get_json()
    from videoflix.auth.credentials import MAX_ID

    playlist = spec["paths"]["/api/video/{video_id}/{resolution}/index.m3u8"]["get"]
    assert playlist["parameters"][0]["schema"]["maximum"] == MAX_ID


@pytest.mark.parametrize("route", ROUTES)
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

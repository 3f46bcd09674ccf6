"""One log line per request, as JSON when LOG_JSON is set, carrying the request id."""
import io
import json
import logging

import pytest

from videoflix import logs


@pytest.fixture
def json_log():
    """The app's JSON log handler on the root logger for one test, writing to a buffer we read."""
    root = logging.getLogger()
    level = root.level
    logs.configure_logging(json_lines=True)
    [handler] = [h for h in root.handlers if getattr(h, "_videoflix", False)]
    buffer = io.StringIO()
    handler.setStream(buffer)  # stderr in production; pytest swaps sys.stderr between phases

    def records():
        return [json.loads(line) for line in buffer.getvalue().splitlines()]  # every line must be JSON

    yield records
    root.removeHandler(handler)
    root.setLevel(level)


def access_records(records):
    return [r for r in records if r["name"] == "videoflix.access"]


def test_request_log_is_one_json_line_with_the_callers_request_id(client, json_log):
    response = client.get("/api/nothing-here/?x=1", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    [record] = access_records(json_log())
    assert record["request_id"] == "abc-123"
    assert record["method"] == "GET"
    assert record["path"] == "/api/nothing-here/"
    assert record["status"] == 404
    assert isinstance(record["ms"], float)
    assert record["message"].startswith("GET /api/nothing-here/?x=1 404 ")
    assert record["levelname"] == "INFO"


def test_request_id_is_generated_when_missing_or_unusable(client, json_log):
    first = client.get("/api/health/")
    second = client.get("/api/health/", headers={"X-Request-ID": "x" * 65})
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(len(i) == 32 and i != "x" * 65 for i in ids) and ids[0] != ids[1]
    assert [r["request_id"] for r in access_records(json_log())] == ids


def test_log_lines_inside_a_request_carry_its_id(app, client, json_log):
    @app.get("/api/_log_probe/")
    def probe():
        logging.getLogger("videoflix.probe").warning("inside the request")
        return {"ok": True}

    client.get("/api/_log_probe/", headers={"X-Request-ID": "req-42"})
    records = json_log()
    [inside] = [r for r in records if r["message"] == "inside the request"]
    assert inside["request_id"] == "req-42"
    assert inside["name"] == "videoflix.probe"


def test_link_tokens_never_reach_the_access_log(client, caplog):
    secret = "Ab3-secret-token-value"
    with caplog.at_level(logging.INFO, logger="videoflix.access"):
        client.get(f"/api/activate/MQ/{secret}/")
        client.post(f"/api/password_confirm/MQ/{secret}/?x={secret}", json={})
        client.get("/api/health/?probe=1")
    records = [r for r in caplog.records if r.name == "videoflix.access"]
    assert [r.getMessage().rsplit(" ", 1)[0] for r in records] == [
        "GET /api/activate/<uidb64>/<token>/ 400",
        "POST /api/password_confirm/<uidb64>/<token>/ 400",
        "GET /api/health/?probe=1 200",  # routes without a token keep their real path
    ]
    assert [r.path for r in records] == [
        "/api/activate/<uidb64>/<token>/", "/api/password_confirm/<uidb64>/<token>/", "/api/health/",
    ]
    assert secret not in caplog.text

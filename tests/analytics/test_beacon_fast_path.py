"""The beacon fast path (videoflix/analytics/fastpath.py): a counted beacon is answered without
Flask, exactly as Flask answers it; everything else (duplicates, refusals, bad input, failures)
reaches Flask with its body and gets Flask's answer.

`paths.fast` is the app as deployed (both fast paths in front of Flask), `paths.flask` Flask alone;
`paths.calls` lists the requests the beacon fast path handed to Flask. Runs on SQLite and, with
TEST_DATABASE_URL and TEST_REDIS_URL, on PostgreSQL (one statement in autocommit) and Redis (the
revocation lookup).
"""
import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from werkzeug.test import Client

from tests.conftest import PASSWORD
from tests.fixtures.catalogue_rows import PENDING, add_videos
from tests.fixtures.playback import new_session, sessions
from videoflix.analytics.fastpath import BeaconFastPath
from videoflix.analytics.models import PlaybackSession
from videoflix.auth import INVALID_TOKEN, revocation
from videoflix.extensions import db
from videoflix.logs import RequestIdFilter
from videoflix.metrics.instruments import REQUESTS
from videoflix.videos.models import WatchProgress

SPA = "http://localhost:5500"
REQUEST_ID = "beacon-fast-path-0001"


@pytest.fixture
def films(app):
    return add_videos(app, dict(title="Film", duration=100.0), dict(title="Draft", status=PENDING))


@pytest.fixture
def paths(app, auth, client, films):
    segment_fast_path = app.wsgi_app
    fast_path = segment_fast_path.wsgi_app
    assert isinstance(fast_path, BeaconFastPath)
    flask_alone = fast_path.wsgi_app
    calls = []

    def counted(environ, start_response):
        calls.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return flask_alone(environ, start_response)

    fast_path.wsgi_app = counted

    class Paths:
        fast = Client(segment_fast_path, app.response_class, use_cookies=False)
        flask = Client(flask_alone, app.response_class, use_cookies=False)

    Paths.calls, Paths.layer, Paths.user = calls, fast_path, auth
    Paths.token = client.get_cookie("access_token").value
    Paths.bearer = {"Authorization": f"Bearer {Paths.token}"}
    Paths.url = f"/api/video/{films[0]}/playback/"
    yield Paths
    fast_path.wsgi_app = flask_alone


def post(client_, url, body, headers=None, content_type="application/json"):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client_.post(url, data=data, headers={"X-Request-ID": REQUEST_ID, "Content-Type": content_type,
                                                 **(headers or {})}, buffered=True)


def body(session, seq, event="progress", position=0.0, watched=0.0, **extra):
    return {"session": session, "seq": seq, "event": event, "position": position, "watched": watched, **extra}


def comparable(response):
    """Status, headers and body, without what differs between two sessions (the session's id,
    the time of the save)."""
    data = response.get_json()
    data.pop("session", None), data.pop("updated_at", None)
    headers = sorted((k, v) for k, v in response.headers.to_wsgi_list() if k != "Content-Length")
    return response.status, headers, data


@pytest.mark.parametrize("auth_by", ["bearer", "cookie"])
@pytest.mark.parametrize("origin", [None, SPA])
def test_a_counted_beacon_is_answered_as_flask_answers_it(app, paths, caplog, auth_by, origin):
    headers = dict(paths.bearer) if auth_by == "bearer" else {"Cookie": f"theme=dark; access_token={paths.token}"}
    if origin:
        headers["Origin"] = origin
    answers, lines = [], []
    caplog.handler.addFilter(RequestIdFilter())
    for client_ in (paths.fast, paths.flask):
        session = new_session()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="videoflix.access"):
            answers.append(post(client_, paths.url, body(session, 0, "start", 12.5, 2.5, ttff_ms=300,
                                                         rendition="720p"), headers))
        [record] = [r for r in caplog.records if r.name == "videoflix.access"]
        lines.append((record.getMessage().rsplit(" ", 1)[0], record.request_id, record.path, record.status))
    fast, flask = answers
    assert paths.calls == [], "the fast path handed a beacon it can count to Flask"
    assert comparable(fast) == comparable(flask)
    assert fast.status_code == 200 and fast.headers["X-Request-ID"] == REQUEST_ID
    assert fast.get_json() == {**fast.get_json(), "position": 12.5, "duration": 100.0, "completed": False,
                               "seq": 0, "counted": True}
    assert (fast.headers.get("Access-Control-Allow-Origin"), fast.headers.get("Access-Control-Allow-Credentials")) \
        == ((origin, "true") if origin else (None, None))
    assert lines[0] == lines[1] == (f"POST {paths.url} 200", REQUEST_ID, paths.url, 200)
    # What it wrote: the session, and the watch position (the answer's updated_at is the row's).
    fast_session = fast.get_json()["session"]
    row = sessions(app)[fast_session]
    assert (row.user_id, row.last_seq, row.watched, row.ttff_ms, row.rendition, row.position, row.window_beacons) \
        == (paths.user, 0, 2.5, 300, "720p", 12.5, 1)
    with app.app_context():
        saved = db.session.get(WatchProgress, (paths.user, row.video_id))
        assert saved.position == 12.5 and saved.updated_at.isoformat() == flask.get_json()["updated_at"]


def test_duplicates_and_reordered_beacons_count_once(app, paths):
    session = new_session()
    sent = {seq: (10.0 * seq, 10.0 if seq else 0.0) for seq in range(5)}
    answers = []
    for seq in (0, 2, 1, 1, 4, 3, 2, 0):
        position, watched = sent[seq]
        answer = post(paths.fast, paths.url, body(session, seq, position=position, watched=watched, stalls=1),
                      paths.bearer)
        assert answer.status_code == 200, answer.get_json()
        answers.append((seq, answer.get_json()["counted"], answer.get_json()["position"]))
    # A late beacon is counted and answers with the newest position; a duplicate goes to Flask.
    assert answers == [(0, True, 0.0), (2, True, 20.0), (1, True, 20.0), (1, False, 20.0), (4, True, 40.0),
                       (3, True, 40.0), (2, False, 40.0), (0, False, 40.0)]
    assert paths.calls == [("POST", paths.url)] * 3  # the three duplicates, and nothing else
    row = sessions(app)[session]
    assert (row.watched, row.stalls, row.last_seq, row.position) == (40.0, 5, 4, 40.0)
    assert row.coverage == (1 << 9) - 1  # 0 % to 40 % of 100 s
    with app.app_context():
        assert db.session.get(WatchProgress, (paths.user, row.video_id)).position == 40.0


def test_sendbeacon_text_plain_is_counted_by_the_fast_path(app, paths):
    session = new_session()
    answer = post(paths.fast, paths.url, json.dumps(body(session, 0, "pause", 30.0, 5.0)), paths.bearer,
                  content_type="text/plain;charset=UTF-8")
    assert answer.status_code == 200 and answer.get_json()["counted"] is True
    assert paths.calls == []
    assert sessions(app)[session].watched == 5.0


def test_the_session_rate_limit_is_flasks_429(app, paths):
    app.config["ANALYTICS_BEACONS_PER_MINUTE"] = 2
    session = new_session()
    codes = [post(paths.fast, paths.url, body(session, seq, watched=1), paths.bearer).status_code for seq in range(3)]
    assert codes == [200, 200, 429]
    assert paths.calls == [("POST", paths.url)]  # the refused one
    refused = post(paths.fast, paths.url, body(session, 3, watched=1), paths.bearer)
    assert refused.get_json() == {"detail": "Too many beacons for this playback session; slow down."}
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert sessions(app)[session].watched == 2
    with app.app_context():  # a minute later the fast path counts again
        db.session.get(PlaybackSession, session).window_start -= timedelta(seconds=61)
        db.session.commit()
    paths.calls.clear()
    assert post(paths.fast, paths.url, body(session, 4, watched=1), paths.bearer).get_json()["counted"] is True
    assert paths.calls == [] and sessions(app)[session].watched == 3


def test_a_token_this_process_has_not_seen_is_verified_by_the_fast_path(app, paths, client, login):
    login()  # a second login: a token no request has used yet
    fresh = client.get_cookie("access_token").value
    assert fresh != paths.token
    paths.calls.clear()  # the login
    answer = post(paths.fast, paths.url, body(new_session(), 0, "start"), {"Authorization": f"Bearer {fresh}"})
    assert answer.status_code == 200 and paths.calls == []


@pytest.mark.parametrize(("headers", "detail"), [
    ({}, "Authentication credentials were not provided."),
    ({"Authorization": "Bearer not.a.token"}, INVALID_TOKEN),
])
def test_without_a_valid_token_flask_answers_401(app, paths, headers, detail):
    answer = post(paths.fast, paths.url, body(new_session(), 0, "start"), headers)
    assert answer.status_code == 401 and answer.get_json() == {"detail": detail}
    assert paths.calls == [("POST", paths.url)]
    assert sessions(app) == {}


def test_a_revoked_token_stops_at_its_next_beacon(app, paths):
    session = new_session()
    assert post(paths.fast, paths.url, body(session, 0, "start"), paths.bearer).status_code == 200
    with app.app_context():
        revocation.revoke_all_for_user(paths.user)
    answer = post(paths.fast, paths.url, body(session, 1, watched=5), paths.bearer)
    assert answer.status_code == 401 and answer.get_json() == {"detail": "Token has been revoked."}
    assert paths.calls == [("POST", paths.url)]
    assert sessions(app)[session].last_seq == 0


BAD = [
    # (body, content type, status, what the answer says)
    (b"{", "application/json", 400, {"detail": "Malformed JSON body."}),
    (b"[1]", "text/plain", 400, {"detail": "Expected a JSON object."}),
    (b"\xff\xfe", "text/plain", 400, None),
    (b"session=x", "application/x-www-form-urlencoded", 415, None),
    (json.dumps(body("S", -1, "start")).encode(), "application/json", 400, "seq"),
    (json.dumps(body("not-a-uuid", 0, "start")).encode(), "application/json", 400, "session"),
    (json.dumps(body("S", 0, "rewind")).encode(), "application/json", 400, "event"),
    (json.dumps({**body("S", 0, "start"), "position": float("nan")}).encode(), "application/json", 400, "position"),
    (json.dumps({**body("S", 0, "start"), "rendition": "x" * 5000}).encode(), "application/json", 400, "rendition"),
]


@pytest.mark.parametrize(("raw", "content_type", "status", "says"), BAD)
def test_bad_beacons_get_flasks_4xx_json(app, paths, raw, content_type, status, says):
    raw = raw.replace(b'"S"', json.dumps(new_session()).encode())
    fast = post(paths.fast, paths.url, raw, paths.bearer, content_type)
    flask = post(paths.flask, paths.url, raw, paths.bearer, content_type)
    assert paths.calls == [("POST", paths.url)]
    assert fast.status_code == flask.status_code == status
    assert fast.get_json() == flask.get_json()
    if isinstance(says, dict):
        assert fast.get_json() == says
    elif isinstance(says, str):
        assert says in fast.get_json()
    else:
        assert "detail" in fast.get_json()
    assert sessions(app) == {}


@pytest.mark.parametrize("video", ["draft", "unknown"])
def test_videos_that_cannot_be_watched_are_flasks_404(app, paths, films, video):
    url = f"/api/video/{films[1] if video == 'draft' else 999999}/playback/"
    answer = post(paths.fast, url, body(new_session(), 0, "start"), paths.bearer)
    assert answer.status_code == 404 and answer.get_json() == {"detail": "Video not found."}
    assert paths.calls == [("POST", url)] and sessions(app) == {}


def test_another_viewers_session_is_flasks_409(app, paths, make_user, login, client):
    session = new_session()
    assert post(paths.fast, paths.url, body(session, 0, "start"), paths.bearer).status_code == 200
    make_user("b@example.com")
    login("b@example.com", PASSWORD)
    other = {"Authorization": f"Bearer {client.get_cookie('access_token').value}"}
    answer = post(paths.fast, paths.url, body(session, 1, watched=5), other)
    assert answer.status_code == 409 and "another video or account" in answer.get_json()["detail"]
    assert sessions(app)[session].watched == 0


def test_a_cross_site_cookie_write_is_flasks_403(app, paths):
    headers = {"Cookie": f"access_token={paths.token}", "Origin": "https://evil.example"}
    answer = post(paths.fast, paths.url, body(new_session(), 0, "start"), headers)
    assert answer.status_code == 403 and paths.calls == [("POST", paths.url)]
    assert sessions(app) == {}


def test_a_database_failure_is_flasks_to_answer(app, paths, monkeypatch):
    """The fast path's write fails (its engine is unreachable): nothing is written, Flask runs the
    beacon on the app's own database and counts it once."""
    broken = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    monkeypatch.setattr(paths.layer, "_engine", broken)
    session = new_session()
    answer = post(paths.fast, paths.url, body(session, 0, "start", 10.0, 10.0), paths.bearer)
    assert answer.status_code == 200 and answer.get_json()["counted"] is True
    assert paths.calls == [("POST", paths.url)]
    assert sessions(app)[session].watched == 10.0


def test_a_beacon_of_the_fast_path_is_counted_under_its_route(app, paths):
    labels = ("/api/video/<id:video_id>/playback/", "POST", "200")
    before = REQUESTS.labels(*labels)._value.get()
    as_deployed = Client(app, app.response_class, use_cookies=False)  # through MeasuredFlask's entry point
    assert post(as_deployed, paths.url, body(new_session(), 0, "start"), paths.bearer).status_code == 200
    assert paths.calls == []
    assert REQUESTS.labels(*labels)._value.get() == before + 1


def test_other_requests_pass_through_untouched(app, paths, films):
    progress = paths.fast.put(f"/api/video/{films[0]}/progress/", json={"position": 5.0}, headers=paths.bearer)
    assert progress.status_code == 200
    query = post(paths.fast, paths.url + "?x=1", body(new_session(), 0, "start"), paths.bearer)
    assert query.status_code == 200
    assert paths.calls == [("PUT", f"/api/video/{films[0]}/progress/"), ("POST", paths.url)]


def test_a_stale_connection_costs_one_beacon_to_flask(app, paths):
    """On PostgreSQL the fast path's engine has no pre-ping: after the server dropped its
    connections (a restart), the next beacon's statement fails, writes nothing and Flask counts
    it; the pool is renewed and the following beacon is the fast path's again."""
    if paths.layer.engine().dialect.name != "postgresql":
        pytest.skip("the fast path's own engine: PostgreSQL (TEST_DATABASE_URL)")
    session = new_session()
    assert post(paths.fast, paths.url, body(session, 0, "start"), paths.bearer).status_code == 200
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        db.session.commit()
    assert paths.calls == []
    answer = post(paths.fast, paths.url, body(session, 1, watched=10.0, position=10.0), paths.bearer)
    assert answer.status_code == 200 and answer.get_json()["counted"] is True
    assert paths.calls == [("POST", paths.url)]
    assert post(paths.fast, paths.url, body(session, 2, watched=10.0, position=20.0), paths.bearer).status_code == 200
    assert paths.calls == [("POST", paths.url)]
    assert (sessions(app)[session].watched, sessions(app)[session].last_seq) == (20.0, 2)

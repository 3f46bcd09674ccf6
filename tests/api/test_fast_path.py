"""The segment fast path (videoflix/videos/fastpath.py): it answers exactly as Flask would, and
hands everything it is not sure of to Flask.

Each case runs one request through the app as deployed (fast path in front) and the same request
through Flask alone, and compares status, headers, body and the access log line. Revocation is
looked up in Redis when TEST_REDIS_URL is set (CI), else in the database: both branches run.
"""
import logging
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client

from tests.conftest import PASSWORD
from tests.fixtures.videos import media, row
from videoflix import create_app
from videoflix.analytics.fastpath import BeaconFastPath
from videoflix.auth import INVALID_TOKEN, NO_CREDENTIALS, credentials
from videoflix.auth.credentials import CACHE_KEY, access_token, cors_allows, csrf_allows
from videoflix.extensions import redis_client
from videoflix.logs import RequestIdFilter
from videoflix.videos.delivery.fastpath import SegmentFastPath

SPA = "http://localhost:5500"
REQUEST_ID = "fast-path-test-0001"


@pytest.fixture(params=[False, True], ids=["app-sends-bytes", "x-accel"])
def accel(request, app_config):
    if request.param:
        app_config["MEDIA_ACCEL_REDIRECT"] = "/protected-media/"
    return request.param


@pytest.fixture
def paths(accel, app, auth, client, make_video):
    """Two WSGI clients on the same app: `fast` (as deployed) and `flask` (Flask alone); and
    `flask_calls`, the requests that reached Flask through the fast path's fallback."""
    fast_path = app.wsgi_app
    assert isinstance(fast_path, SegmentFastPath)
    flask_alone = fast_path.wsgi_app
    flask_calls = []

    def counted(environ, start_response):
        flask_calls.append(environ["PATH_INFO"])
        return flask_alone(environ, start_response)

    fast_path.wsgi_app = counted
    token = client.get_cookie("access_token").value
    video_id = make_video(labels=("480p", "720p"))
    version = row(app, video_id)["hls_dir"].rsplit("/", 1)[1]

    class Paths:
        fast = Client(fast_path, app.response_class, use_cookies=False)
        flask = Client(flask_alone, app.response_class, use_cookies=False)
        calls = flask_calls

    Paths.token, Paths.video, Paths.version = token, video_id, version
    # The first request verifies the token in full (Flask), which is what lets later ones through.
    warm = Paths.fast.get(f"/api/video/{video_id}/480p/index.m3u8", headers={"Cookie": f"access_token={token}"},
                          buffered=True)
    assert warm.status_code == 200
    flask_calls.clear()
    yield Paths
    fast_path.wsgi_app = flask_alone


def both(paths, caplog, url, headers=None, method="GET"):
    """(fast path response, Flask response), each with .log_line: its access log line without the
    timing, with the record's request id, method, path and status."""
    headers = {"X-Request-ID": REQUEST_ID, **(headers or {})}
    responses = []
    caplog.handler.addFilter(RequestIdFilter())  # as on the app's own handler
    for client_ in (paths.fast, paths.flask):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="videoflix.access"):
            response = client_.open(url, method=method, headers=headers, buffered=True)
        [record] = [r for r in caplog.records if r.name == "videoflix.access"]
        response.log_line = (record.getMessage().rsplit(" ", 1)[0], record.request_id, record.method, record.path,
                             record.status)
        responses.append(response)
    return responses


def assert_same(fast, flask):
    assert fast.status == flask.status
    assert sorted(fast.headers.to_wsgi_list()) == sorted(flask.headers.to_wsgi_list())
    assert fast.get_data() == flask.get_data()
    assert fast.log_line == flask.log_line


@pytest.mark.parametrize("auth_by", ["cookie", "bearer"])
@pytest.mark.parametrize("origin", [None, SPA])
@pytest.mark.parametrize("url", ["{id}/480p/seg001.ts?v={v}", "{id}/720p/seg000.ts/?v={v}", "{id}/480p/seg002.ts"])
def test_the_fast_path_answers_exactly_as_flask(paths, caplog, accel, app, url, origin, auth_by):
    headers = {"Cookie": f"theme=dark; access_token={paths.token}"} if auth_by == "cookie" \
        else {"Authorization": f"Bearer {paths.token}"}
    if origin:
        headers["Origin"] = origin
    path = "/api/video/" + url.format(id=paths.video, v=paths.version)
    fast, flask = both(paths, caplog, path, headers)
    assert paths.calls == [], "the fast path handed a request it can answer to Flask"
    assert_same(fast, flask)
    assert fast.status_code == 200
    assert fast.headers["X-Request-ID"] == REQUEST_ID
    assert fast.headers["Cache-Control"] == ("private, max-age=31536000, immutable" if "?v=" in url
                                             else "private, no-cache")
    if origin:
        assert fast.headers["Access-Control-Allow-Origin"] == origin
        assert fast.headers["Access-Control-Allow-Credentials"] == "true"
    file = path.split("?")[0].rstrip("/").split("/")[-2:]
    if accel:
        assert fast.get_data() == b""
        assert fast.headers["X-Accel-Redirect"].endswith("/".join(file))
    else:
        hls_dir = row(app, paths.video)["hls_dir"]
        with open(media(app, "hls", hls_dir, *file), "rb") as f:
            assert fast.get_data() == f.read()


def test_the_log_line_names_the_request(paths, caplog):
    path = f"/api/video/{paths.video}/480p/seg001.ts?v={paths.version}"
    fast, flask = both(paths, caplog, path, {"Cookie": f"access_token={paths.token}"})
    assert paths.calls == []
    assert fast.log_line == flask.log_line == (f"GET {path} 200", REQUEST_ID, "GET", path.split("?")[0], 200)


DEFERRED = [
    # (url, extra headers, method, why Flask must answer)
    ("{id}/480p/seg001.ts?v=oldversion", {}, "GET", "another version: Flask re-reads the row"),
    ("{id}/480p/seg001.ts?v={v}&x=1", {}, "GET", "a query it does not know"),
    ("{id}/480p/seg001.ts?v=", {}, "GET", "an empty version"),
    ("{id}/1080p/seg000.ts", {}, "GET", "a rendition the video lacks: 404"),
    ("{id}/480p/seg999.ts", {}, "GET", "no such file: 404"),
    ("{id}/480p/seg001.ts/x", {}, "GET", "not a segment URL"),
    ("0{id}/480p/seg001.ts", {}, "GET", "an id with a leading zero"),
    ("9999999999/480p/seg001.ts", {}, "GET", "an id beyond the column"),
    ("{id}/480p/seg001.ts", {"Origin": "https://evil.example"}, "GET", "an origin not allowed"),
    ("{id}/480p/seg001.ts", {}, "HEAD", "not a GET"),
    ("{id}/480p/seg001.ts", {}, "POST", "not a GET: 405"),
]


@pytest.mark.parametrize("url, extra, method, why", DEFERRED, ids=[d[3] for d in DEFERRED])
def test_anything_uncertain_goes_to_flask(paths, caplog, url, extra, method, why):
    path = "/api/video/" + url.format(id=paths.video, v=paths.version)
    fast, flask = both(paths, caplog, path, {"Cookie": f"access_token={paths.token}", **extra}, method)
    assert paths.calls == [path.split("?")[0]], why
    assert_same(fast, flask)


@pytest.mark.parametrize("extra, status", [({"Range": "bytes=0-99"}, 206), ({"If-None-Match": '"x"'}, 200),
                                           ({"If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT"}, 200)])
def test_ranges_and_conditional_requests_are_flasks_unless_nginx_sends_the_bytes(paths, caplog, accel, extra, status):
    """nginx answers ranges and conditionals itself after an X-Accel-Redirect; the app's own
    answers to them (206, 304, 416) are werkzeug's, through Flask."""
    path = f"/api/video/{paths.video}/480p/seg001.ts?v={paths.version}"
    fast, flask = both(paths, caplog, path, {"Cookie": f"access_token={paths.token}", **extra})
    assert paths.calls == ([] if accel else [path.split("?")[0]])
    assert_same(fast, flask)
    assert fast.status_code == (200 if accel else status)


def test_an_unknown_token_is_verified_by_flask_first(app, paths, make_user):
    make_user("second@example.com")
    other = app.test_client()
    assert other.post("/api/login/", json={"email": "second@example.com", "password": PASSWORD}).status_code == 200
    fresh = other.get_cookie("access_token").value
    assert fresh not in app.extensions[CACHE_KEY]
    paths.calls.clear()
    path = f"/api/video/{paths.video}/480p/seg001.ts"
    headers = {"Cookie": f"access_token={fresh}"}
    first = paths.fast.get(path, headers=headers, buffered=True)
    assert first.status_code == 200 and paths.calls == [path]
    second = paths.fast.get(path, headers=headers, buffered=True)
    assert second.status_code == 200 and paths.calls == [path], "the verified token now takes the fast path"
    forged = paths.fast.get(path, headers={"Cookie": f"access_token={fresh[:-2]}xx"}, buffered=True)
    assert forged.status_code == 401 and forged.get_json() == {"detail": INVALID_TOKEN}


def test_revoked_or_expired_tokens_stop_at_the_next_segment(paths, app, monkeypatch):
    from videoflix.auth.revocation import revoke_all_for_user

    path = f"/api/video/{paths.video}/480p/seg001.ts"
    headers = {"Cookie": f"access_token={paths.token}"}
    assert paths.fast.get(path, headers=headers, buffered=True).status_code == 200 and paths.calls == []

    with monkeypatch.context() as later:  # half an hour on, for the token checks only
        later.setattr(credentials, "now", lambda: time.time() + 31 * 60)
        late = paths.fast.get(path, headers=headers, buffered=True)
    assert late.status_code == 401 and late.get_json() == {"detail": "Token is expired."}

    assert paths.fast.get(path, headers=headers, buffered=True).status_code == 200
    with app.app_context():
        user_id = int(app.extensions[CACHE_KEY][paths.token]["sub"])
        revoke_all_for_user(user_id)
    revoked = paths.fast.get(path, headers=headers, buffered=True)
    assert revoked.status_code == 401 and revoked.get_json() == {"detail": "Token has been revoked."}
    assert paths.calls == [path, path]


def test_a_symlink_or_a_replaced_version_is_flasks(paths, app):
    hls_dir = row(app, paths.video)["hls_dir"]
    path = f"/api/video/{paths.video}/480p/seg001.ts"
    headers = {"Cookie": f"access_token={paths.token}"}
    target = str(media(app, "hls", hls_dir, "480p", "seg001.ts"))
    os.replace(target, target + ".moved")
    os.symlink(target + ".moved", target)
    refused = paths.fast.get(path, headers=headers, buffered=True)
    assert refused.status_code == 404 and refused.get_json() == {"detail": "Not found."}
    assert paths.calls == [path]


# --- credentials and origins: one reading (videoflix.auth.credentials) on both paths ------------

GARBAGE = "not-a-token"
CREDENTIALS = [
    # (case, headers with {t} for the valid token, status, answered by the fast path)
    ("cookie", {"Cookie": "access_token={t}"}, 200, True),
    ("bearer", {"Authorization": "Bearer {t}"}, 200, True),
    ("lower-case bearer", {"Authorization": "bearer {t}"}, 200, True),
    ("both: the cookie wins", {"Cookie": "access_token={t}", "Authorization": f"Bearer {GARBAGE}"}, 200, True),
    ("both: a bad cookie wins too", {"Cookie": f"access_token={GARBAGE}", "Authorization": "Bearer {t}"}, 401, False),
    ("duplicated cookie: the first", {"Cookie": f"access_token={{t}}; access_token={GARBAGE}"}, 200, True),
    ("duplicated cookie: a bad first", {"Cookie": f"access_token={GARBAGE}; access_token={{t}}"}, 401, False),
    ("malformed cookie header", {"Cookie": 'theme; =x; ;; access_token={t}; broken="unterminated'}, 200, True),
    ("quoted cookie", {"Cookie": 'access_token="{t}"'}, 200, True),
    ("cookie glued to the next", {"Cookie": "access_token={t},theme=dark"}, 401, False),
    ("empty cookie, then bearer", {"Cookie": "access_token=", "Authorization": "Bearer {t}"}, 200, True),
    ("empty cookie", {"Cookie": "access_token="}, 401, False),
    ("empty bearer", {"Authorization": "Bearer "}, 401, False),
    ("another scheme", {"Authorization": "Basic {t}"}, 401, False),
    ("a longer cookie name", {"Cookie": "my_access_token={t}"}, 401, False),
    ("nothing", {}, 401, False),
]


@pytest.mark.parametrize("case, headers, status, fast", CREDENTIALS, ids=[c[0] for c in CREDENTIALS])
def test_every_credential_source_is_read_alike_on_both_paths(paths, caplog, case, headers, status, fast):
    path = f"/api/video/{paths.video}/480p/seg001.ts?v={paths.version}"
    headers = {name: value.format(t=paths.token) for name, value in headers.items()}
    fast_answer, flask_answer = both(paths, caplog, path, headers)
    assert_same(fast_answer, flask_answer)
    assert fast_answer.status_code == status, case
    assert paths.calls == ([] if fast else [path.split("?")[0]]), case
    if status == 401:
        assert fast_answer.get_json()["detail"] in {INVALID_TOKEN, NO_CREDENTIALS}


ORIGINS = [
    # (case, Origin, allowed by CORS, answered by the fast path)
    ("no origin", None, False, True),
    ("allowed", SPA, True, True),
    ("allowed, other case", SPA.upper(), True, True),
    ("allowed with a slash", SPA + "/", False, False),
    ("not allowed", "https://evil.example", False, False),
    ("null", "null", False, False),
]


@pytest.mark.parametrize("case, origin, allowed, fast", ORIGINS, ids=[o[0] for o in ORIGINS])
def test_every_origin_rule_is_applied_alike_on_both_paths(paths, caplog, case, origin, allowed, fast):
    path = f"/api/video/{paths.video}/480p/seg001.ts?v={paths.version}"
    headers = {"Cookie": f"access_token={paths.token}", **({"Origin": origin} if origin else {})}
    fast_answer, flask_answer = both(paths, caplog, path, headers)
    assert_same(fast_answer, flask_answer)
    assert fast_answer.status_code == 200
    assert paths.calls == ([] if fast else [path.split("?")[0]]), case
    assert fast_answer.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)


def test_the_rules_of_the_one_module(app):
    """What the table tests above rely on, stated directly: the reading of a WSGI environ, the
    CORS and the CSRF origin rules."""
    config = app.config
    assert access_token({"HTTP_COOKIE": "a=1; access_token=abc ; b=2"}, config) == "abc"
    assert access_token({"HTTP_COOKIE": "access_token=", "HTTP_AUTHORIZATION": "BEARER xyz"}, config) == "xyz"
    assert access_token({"HTTP_AUTHORIZATION": "Bearer "}, config) is None
    assert access_token({}, {**config, "JWT_TOKEN_LOCATION": ["headers"]}) is None
    assert access_token({"HTTP_COOKIE": "access_token=abc"}, {**config, "JWT_TOKEN_LOCATION": ["headers"]}) is None
    assert cors_allows(SPA, config) and cors_allows(SPA.upper(), config)
    assert not cors_allows("null", config) and not cors_allows(SPA + "/", config)
    own = "https://api.example.org/"
    assert csrf_allows("https://API.example.org", own, config)
    assert csrf_allows(SPA + "/some/page.html", own, config)  # a Referer
    assert not csrf_allows("null", own, config) and not csrf_allows("/relative", own, config)
    assert csrf_allows("null", own, {**config, "CORS_ORIGINS": ["null"]})
    assert not csrf_allows("https://api.example.org.evil.example", own, config)


# --- Redis: the app's one client, connections always back in its pool ---------------------------

def test_many_threads_return_every_redis_connection_to_the_pool(paths, app):
    """A thread per request (as `flask run` and gunicorn's gthread serve): 150 threads, 50 at a
    time, each streaming two segments. Before, each thread took a connection of its own out of the
    pool and never gave it back: at the pool's size (100) every Redis use of the process failed."""
    if not app.config["REDIS_URL"]:
        pytest.skip("the Redis branch needs TEST_REDIS_URL")
    path = f"/api/video/{paths.video}/480p/seg001.ts?v={paths.version}"
    statuses = []

    def stream():
        client_ = Client(app.wsgi_app, app.response_class, use_cookies=False)
        for _ in range(2):
            answer = client_.get(path, headers={"Cookie": f"access_token={paths.token}"}, buffered=True)
            statuses.append(answer.status_code)

    for _ in range(3):
        threads = [threading.Thread(target=stream) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 300
    assert paths.calls == [], "every request was the fast path's"
    client_ = redis_client(app)
    (free, _), (in_use, _) = client_.connection_pool.get_connection_count()
    assert in_use == 0
    assert free <= 50  # at most one per concurrent request, all back in the pool
    assert client_.ping() is True
    with app.app_context():
        listing = app.test_client().get("/api/video/", headers={"Authorization": f"Bearer {paths.token}"})
    assert listing.status_code == 200 and [v["id"] for v in listing.get_json()] == [paths.video]


@pytest.fixture
def own_redis(tmp_path, app_config):
    """A redis-server of this test's own, which it may stop (`stop()`); the app uses it."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(tmp_path)]

    class Server:
        def start(self):
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.05)
            raise RuntimeError("redis-server did not start")

        def stop(self):
            self.process.terminate()
            self.process.wait(10)

    server = Server()
    server.start()
    app_config["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    yield server
    server.stop()


def test_a_redis_failure_is_flasks_to_answer(own_redis, paths, caplog):
    """When the revocation lookup cannot be made, the fast path never answers (a revoked token
    must not pass): Flask does, with its own error handling, exactly as without the fast path."""
    path = f"/api/video/{paths.video}/480p/seg001.ts"
    headers = {"Cookie": f"access_token={paths.token}"}
    assert paths.fast.get(path, headers=headers, buffered=True).status_code == 200 and paths.calls == []
    own_redis.stop()
    try:
        fast, flask = both(paths, caplog, path, headers)
    finally:
        own_redis.start()  # for the app's teardown
    assert paths.calls == [path]
    assert fast.status_code == flask.status_code != 200
    assert fast.get_json() == flask.get_json()


def test_create_app_mounts_the_fast_path_outside_proxy_fix(app_config):
    """The middleware order is create_app's (register_middleware): the segment fast path first,
    the beacon fast path (analytics), then ProxyFix when proxies are trusted, then Flask."""
    app_config["PROXY_COUNT"] = 1
    app = create_app(app_config)
    assert isinstance(app.wsgi_app, SegmentFastPath)
    assert isinstance(app.wsgi_app.wsgi_app, BeaconFastPath)
    assert isinstance(app.wsgi_app.wsgi_app.wsgi_app, ProxyFix)
    assert app.wsgi_app.wsgi_app.wsgi_app.app.__self__ is app  # Flask's own wsgi_app
    assert isinstance(create_app({**app_config, "PROXY_COUNT": 0}).wsgi_app.wsgi_app.wsgi_app.__self__, type(app))

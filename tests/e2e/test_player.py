"""End to end: our player (player/) in Debian's Chromium against a real API server.

The API runs in a werkzeug server thread on a free port of 127.0.0.1, the player is served from
another port (another origin, the same site), and the video is a real transcode of a short
two-rendition clip. Nothing is mocked: cookies, CORS, hls.js, MSE and H.264/AAC decoding are real.
"""
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.fixtures.clips import FFMPEG
from videoflix.extensions import db
from videoflix.videos.media.transcode import transcode
from videoflix.videos.models import READY, Video

pytestmark = pytest.mark.slow

PLAYER_DIR = Path(__file__).resolve().parents[2] / "player"
HLS_JS = PLAYER_DIR / "node_modules" / "hls.js" / "dist" / "hls.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EMAIL, PASSWORD = "viewer@example.com", "correct-horse-battery"
TIMEOUT_MS = 15_000


def _ffmpeg():
    return FFMPEG


def require_tool(present, what):
    """In CI (CI set, as .ci/run runs) a missing browser or npm fails the test; on a developer's
    Python-only machine (the promise of `make test`) it skips with the install hint instead."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: .ci/run installs it")
    pytest.skip(f"{what} is not installed (apt-get install chromium npm) - the browser test needs it")


@pytest.fixture(scope="module", autouse=True)
def browser_tools():
    require_tool(os.path.exists(CHROMIUM), "Debian's chromium (/usr/bin/chromium)")
    require_tool(shutil.which("npm") or HLS_JS.is_file(), "npm")


@pytest.fixture(scope="module")
def hls_js():
    """hls.js from npm at the version pinned in player/package-lock.json; installed when missing.

    Fails (never skips) when it cannot be installed: the player is part of what CI checks.
    """
    if installed_hls_js() != pinned_hls_js():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed: cannot install hls.js for player/ (run `make player-deps`)")
        proc = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=PLAYER_DIR,
                              capture_output=True, text=True, timeout=180)
        if proc.returncode != 0 or installed_hls_js() != pinned_hls_js() or not HLS_JS.is_file():
            pytest.fail(f"`npm ci` in player/ failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return pinned_hls_js()


def pinned_hls_js():
    lock = json.loads((PLAYER_DIR / "package-lock.json").read_text())
    return lock["packages"]["node_modules/hls.js"]["version"]


def installed_hls_js():
    try:
        return json.loads((PLAYER_DIR / "node_modules" / "hls.js" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def source_clip(tmp_path_factory):
    """8 s of 1280x720 H.264 + AAC: plays past 2 s with time to spare, transcodes to 480p + 720p."""
    path = tmp_path_factory.mktemp("player-clip") / "source.mp4"
    subprocess.run(
        [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=10:duration=8",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=8",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "20",
         "-c:a", "aac", "-b:a", "64k", "-shortest", str(path)],
        check=True, timeout=120,
    )
    return path


@contextlib.contextmanager
def serving(server):
    """Run a socketserver-style server in a background thread; shut it down afterwards."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def player_origin(hls_js):
    """A static server for player/ on a free port: (origin, server)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(PLAYER_DIR)))
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def app_config(app_config, tmp_path, player_origin):
    """The player's origin may call the API; SQLite becomes a file the server thread shares."""
    app_config["CORS_ORIGINS"] = [player_origin]
    if app_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app_config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    return app_config


def closing(app):
    """The app, with every response closed even when the client hangs up.

    werkzeug's development server skips close() when the connection drops mid-request (a
    browser cancelling a segment it no longer needs), which would leak the open media file.
    """

    def wsgi(environ, start_response):
        iterable = app(environ, start_response)
        try:
            yield from iterable
        finally:
            if hasattr(iterable, "close"):
                iterable.close()

    return wsgi


@pytest.fixture
def api_base(app):
    """The real API on a free port of 127.0.0.1, served by werkzeug in a thread."""
    server = make_server("127.0.0.1", 0, closing(app), threaded=True)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def ready_video(app, source_clip):
    """A READY video whose HLS folder is a real transcode, laid out as MEDIA_ROOT/hls/<id>/<version>/."""
    with app.app_context():
        video = Video(title="Test pattern", description="Bars and a beep.", category="Documentary")
        db.session.add(video)
        db.session.flush()
        hls_dir = f"{video.id}/{uuid.uuid4().hex[:12]}"
        result = transcode(source_clip, os.path.join(app.config["MEDIA_ROOT"], "hls", hls_dir))
        video.renditions = [asdict(r) for r in result.renditions]
        video.hls_dir = hls_dir
        video.thumbnail = f"{hls_dir}/{result.thumbnail}"
        video.storyboard = f"{hls_dir}/{result.storyboard}" if result.storyboard else None
        video.duration = result.duration
        video.width, video.height = result.info.width, result.info.height
        video.status, video.progress = READY, 100
        db.session.commit()
        labels = [r["label"] for r in video.renditions]
        assert labels == ["480p", "720p"], labels
        # H.264 video and AAC audio in every rendition: playback proves Chromium decodes both in MSE.
        assert all(r["codecs"].startswith("avc1.") and "mp4a.40" in r["codecs"] for r in video.renditions)
        return {"id": video.id, "labels": labels}


class Browser:
    """A Chromium page on the player, with what it logged and requested (for failure messages)."""

    def __init__(self, page):
        self.page, self.console, self.requests = page, [], []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        page.on("request", lambda request: self.requests.append(request.url))

    def diagnostics(self):
        return ("\nconsole:\n" + "\n".join(self.console[-30:])
                + "\nrequests:\n" + "\n".join(self.requests[-40:]))


@pytest.fixture
def browser(api_base, player_origin):
    """A fresh Chromium page (closed before the servers stop)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            yield Browser(page)
        finally:
            context.close()
            chromium.close()


@pytest.fixture
def logged_in(browser, player_origin, api_base, make_user, ready_video, hls_js):
    """The player opened on the API (with the ready video) and logged in from its own origin."""
    page = browser.page
    make_user(EMAIL, PASSWORD)
    page.goto(f"{player_origin}/?api={api_base}")
    page.wait_for_selector("#login-view:not([hidden])")
    assert page.evaluate("() => Hls.version") == hls_js
    assert page.text_content("#api-base") == api_base
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    with page.expect_response(f"{api_base}/api/login/") as login:
        page.click("#login-submit")
    # Cross-origin with credentials: the answer is readable (CORS) and its cookies are kept.
    assert login.value.status == 200, login.value.text()
    assert login.value.headers["access-control-allow-origin"] == player_origin
    assert login.value.headers["access-control-allow-credentials"] == "true"
    assert {"access_token", "refresh_token"} <= {c["name"] for c in page.context.cookies(api_base)}
    page.wait_for_selector("#session:not([hidden])")
    # The rows above the list (continue watching, categories) arrive after it and push it down: a
    # click aimed at a card while they arrive can land elsewhere.
    page.wait_for_selector("#catalogue-view[data-loaded]")
    assert page.text_content("#user-email") == EMAIL
    assert page.text_content("#message") == "Logged in."
    return browser


def test_catalogue_lists_the_video_with_its_thumbnail(logged_in, api_base, ready_video):
    page, video_id = logged_in.page, ready_video["id"]
    card = page.wait_for_selector(f'.video-card[data-video-id="{video_id}"]')
    assert card.text_content() == "Test patternDocumentary"
    thumbnail = f'.video-card[data-video-id="{video_id}"] img'
    src = page.get_attribute(thumbnail, "src")
    assert src.startswith(f"{api_base}/api/video/{video_id}/thumbnail.jpg"), src
    page.wait_for_function("img => img.complete", arg=page.query_selector(thumbnail))
    size = page.eval_on_selector(thumbnail, "i => [i.naturalWidth, i.naturalHeight]")
    # Chromium refuses Cross-Origin-Resource-Policy: same-site between IP-address origins
    # (127.0.0.1:5500 -> 127.0.0.1:8000, ERR_BLOCKED_BY_RESPONSE.NotSameSite): the route must
    # answer cross-origin for this <img> to load.
    assert size == [640, 360], f"the <img> did not load the thumbnail{logged_in.diagnostics()}"


def test_play_switch_quality_and_logout(logged_in, api_base, ready_video):
    page, video_id = logged_in.page, ready_video["id"]
    requests = logged_in.requests

    # Playback: the master playlist from the detail route's master_url, segments, real decoding.
    page.click(f'.video-card[data-video-id="{video_id}"]')
    try:
        page.wait_for_function("() => document.getElementById('video').currentTime > 2", timeout=30_000)
    except Exception as error:
        state = page.evaluate("""() => { const v = document.getElementById('video');
            return {time: v.currentTime, paused: v.paused, ready: v.readyState, error: v.error && v.error.message,
                    message: document.getElementById('message').textContent}; }""")
        pytest.fail(f"playback did not pass 2 s: {state}{logged_in.diagnostics()}\n{error}")
    assert f"{api_base}/api/video/{video_id}/master.m3u8" in requests, logged_in.diagnostics()
    assert page.text_content("#now-playing") == "Test pattern"

    # The quality menu: Auto plus one entry per rendition; pinning one loads that rendition.
    options = page.eval_on_selector_all("#quality option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [["-1", "Auto"], ["0", "480p"], ["1", "720p"]], options
    playing = page.wait_for_selector("#level-status[data-level]").get_attribute("data-level")
    chosen = next(label for label in ready_video["labels"] if label != playing)
    prefix = f"{api_base}/api/video/{video_id}/{chosen}/seg"
    with page.expect_request(lambda request: request.url.startswith(prefix)) as segment:
        page.select_option("#quality", label=chosen)
    segment_url = segment.value.url
    assert segment.value.response().status == 200, logged_in.diagnostics()
    page.wait_for_function("label => document.getElementById('level-status').dataset.level === label", arg=chosen)
    assert page.text_content("#level-status") == f"Playing {chosen} (manual)"
    # What plays now is that rendition's picture (the 480p and 720p ladders differ in height).
    height = int(chosen.removesuffix("p"))
    page.wait_for_function("h => document.getElementById('video').videoHeight === h", arg=height)

    # The page's own fetch of that segment works while logged in (cookies + CORS) ...
    fetch_status = """async url => { const r = await fetch(url, {credentials: 'include'});
                                     return [r.status, r.status === 200 ? null : await r.json()]; }"""
    assert page.evaluate(fetch_status, segment_url) == [200, None]

    # ... and is refused after logout, as is the master playlist.
    with page.expect_response(f"{api_base}/api/logout/") as logout:
        page.click("#logout")
    assert logout.value.status == 200
    assert logout.value.json()["detail"].startswith("Logout successful!")
    page.wait_for_selector("#login-view:not([hidden])")
    assert page.text_content("#message") == "Logged out."
    assert page.is_hidden("#player-view")
    assert not {"access_token", "refresh_token"} & {c["name"] for c in page.context.cookies(api_base)}
    refused = [401, {"detail": "Authentication credentials were not provided."}]
    assert page.evaluate(fetch_status, segment_url) == refused
    assert page.evaluate(fetch_status, f"{api_base}/api/video/{video_id}/master.m3u8") == refused


@pytest.fixture
def more_videos(app):
    """Two more ready videos in the list (no media: they are only browsed, never played)."""
    with app.app_context():
        for title, category in (("Harbour at dawn", "Nature"), ("Harbour lights", "Drama")):
            db.session.add(Video(title=title, description="Boats.", category=category, status=READY))
        db.session.commit()


def list_titles(page):
    return page.eval_on_selector_all("#videos .video-card .title", "ts => ts.map(t => t.textContent)")


def test_search_categories_and_pages_as_you_scroll(more_videos, logged_in, player_origin, api_base, ready_video):
    page = logged_in.page
    page.wait_for_function("() => document.querySelectorAll('#videos .video-card').length === 3")
    assert page.text_content("#videos") and page.get_attribute("#videos", "data-total") == "3"
    # A row per category, with its count; its heading filters the list.
    page.wait_for_function("() => document.querySelectorAll('.category-row .video-card').length === 3")
    rows = page.eval_on_selector_all(".category-row h2", "hs => hs.map(h => h.textContent)")
    assert rows == ["Documentary (1)", "Drama (1)", "Nature (1)"], rows
    page.click('.category-row[data-category="Nature"] h2 button')
    page.wait_for_function("() => document.getElementById('list-heading').textContent === 'Nature'")
    page.wait_for_function("() => document.querySelectorAll('#videos .video-card').length === 1")
    assert list_titles(page) == ["Harbour at dawn"]
    page.click('.category-row[data-category="Nature"] h2 button')  # again: all categories
    page.wait_for_function("() => document.querySelectorAll('#videos .video-card').length === 3")

    # The search box narrows the list (the API searches: every word as a prefix).
    with page.expect_response(lambda r: r.url.startswith(f"{api_base}/api/video/?") and "q=harb" in r.url) as found:
        page.fill("#search", "harb")
    assert found.value.headers["x-total-count"] == "2"
    page.wait_for_function("() => document.querySelectorAll('#videos .video-card').length === 2")
    assert sorted(list_titles(page)) == ["Harbour at dawn", "Harbour lights"]
    page.fill("#search", "harbour light")
    page.wait_for_function("() => document.querySelectorAll('#videos .video-card').length === 1")
    assert list_titles(page) == ["Harbour lights"]
    assert page.text_content("#list-heading") == "Results for “harbour light”"
    page.fill("#search", "nothing-like-it")
    page.wait_for_selector("#empty:not([hidden])")
    assert list_titles(page) == [] and page.text_content("#empty") == "Nothing matches."

    # One video per page: the next pages come from the Link header as the list's end shows.
    page.goto(f"{player_origin}/?api={api_base}&page=1")
    page.wait_for_function("() => document.querySelectorAll('#videos .video-card').length === 3")
    pages = [url for url in logged_in.requests if url.startswith(f"{api_base}/api/video/?limit=1")]
    assert pages == [f"{api_base}/api/video/?limit=1", f"{api_base}/api/video/?limit=1&offset=1",
                     f"{api_base}/api/video/?limit=1&offset=2"], pages
    assert len(set(list_titles(page))) == 3


def test_progress_is_saved_on_pause_and_continue_watching_resumes_there(logged_in, api_base, ready_video):
    page, video_id = logged_in.page, ready_video["id"]
    assert page.is_hidden("#continue-row")
    page.click(f'#videos .video-card[data-video-id="{video_id}"]')
    page.wait_for_function("() => document.getElementById('video').currentTime > 2.5", timeout=30_000)
    # The pause beacon saves the watch position (one request: no PUT /progress/ beside it).
    beacon_url = f"{api_base}/api/video/{video_id}/playback/"
    paused = lambda r: r.url == beacon_url and json.loads(r.request.post_data)["event"] == "pause"  # noqa: E731
    with page.expect_response(paused) as saved:
        page.evaluate("() => document.getElementById('video').pause()")
    assert saved.value.status == 200, logged_in.diagnostics()
    body = saved.value.json()
    position = body["position"]
    assert 2.5 < position < 7.6 and body["completed"] is False and body["video_id"] == video_id
    # The row appears with the video, at that position.
    card = page.wait_for_selector(f'#continue .video-card[data-video-id="{video_id}"]')
    assert float(card.get_attribute("data-position")) == position

    # Later (a new visit): the row is there, and its card resumes at the saved position.
    page.reload()
    card = page.wait_for_selector(f'#continue .video-card[data-video-id="{video_id}"]')
    assert page.is_visible("#continue-row")
    card.click()
    page.wait_for_function("() => { const v = document.getElementById('video'); "
                           "return !v.paused && v.readyState >= 3; }", timeout=30_000)
    started = page.evaluate("() => window.videoflixPlayer.hls.startPosition")
    assert started == position
    now = page.evaluate("() => document.getElementById('video').currentTime")
    assert position - 0.5 <= now < position + 3, (position, now, logged_in.diagnostics())
    # The extension hook for extras.js: the hls instance and the <video> element.
    assert page.evaluate("() => window.videoflixPlayer.video === document.getElementById('video')")

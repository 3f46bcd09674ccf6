"""The player's browser tests share these: our player (player/) served from its own origin, the real
API served by werkzeug in a thread (its app allows that origin), a ready video made by a real
transcode, and a Chromium page logged in to the player.
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

from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, require_tool
from tests.fixtures.clips import FFMPEG
from videoflix.extensions import db
from videoflix.videos.media.transcode import transcode
from videoflix.videos.models import READY, Video

EMAIL, PASSWORD = "viewer@example.com", "correct-horse-battery"


PLAYER_DIR = Path(__file__).resolve().parents[3] / "player"


HLS_JS = PLAYER_DIR / "node_modules" / "hls.js" / "dist" / "hls.min.js"


TIMEOUT_MS = 15_000


CLIP_SECONDS = 30  # long_clip: five 6 s segments per rendition


def _ffmpeg():
    return FFMPEG


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


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory):
    """30 s of 1280x720 H.264 + AAC (two renditions of five segments each)."""
    path = tmp_path_factory.mktemp("growing-clip") / "source.mp4"
    subprocess.run(
        [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=size=1280x720:rate=10:duration={CLIP_SECONDS}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={CLIP_SECONDS}",
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

"""The back office's resumable upload page in Debian's Chromium: tus-js-client (from npm, served by
the app) uploads a clip in chunks under a throttled uplink, the page is reloaded mid-upload, the
same file chosen again continues the same upload from the server's offset, and the video ends up
queued. Nothing is mocked: a werkzeug server thread, a real browser, the admin's real CSP."""
import hashlib
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.browser import chromium_page, require_tool
from tests.fixtures.videos import row
from videoflix.admin.uploads import ResumableUploadView
from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage.keys import source_path
from videoflix.videos.uploads import tus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    # The reload aborts the browser's downloads mid-answer: werkzeug's test server then leaves a
    # static file's wrapper to the garbage collector (a test-server artefact, not the app's).
    pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"),
]

TUS_JS = Path(__file__).resolve().parents[3] / "videoflix" / "static" / "vendor" / "tus.min.js"
CHUNK = 64 * 1024
UPLINK = 96 * 1024  # bytes per second while throttled: a 430 KB clip takes seconds


@pytest.fixture
def app_config(app_config, tmp_path):
    """The queue is real (no worker), so the uploaded video stays queued."""
    app_config.update(HUEY_IMMEDIATE=False, HUEY_FILE=str(tmp_path / "huey.sqlite3"))
    return app_config


@pytest.fixture
def base_url(base_url, monkeypatch):
    require_tool(TUS_JS.is_file(), "tus-js-client (make player-deps)")
    monkeypatch.setattr(ResumableUploadView, "chunk_size", CHUNK)
    return base_url


def uploads_of(app):
    with app.app_context():
        return [(u.id, u.video_id, tus.current_offset(u.id))
                for u in db.session.execute(db.select(TusUpload)).scalars()]


def throttle(cdp, uplink):
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": uplink})


def test_upload_survives_a_reload_and_the_video_is_queued(app, base_url, make_user, clip_720p):
    make_user("staff@example.com", staff=True)
    data = clip_720p.read_bytes()
    with chromium_page(timeout=30_000) as page:
        page.goto(f"{base_url}/admin/login/")
        page.fill("input[name=email]", "staff@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base_url}/admin/videos/upload/")
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        throttle(cdp, UPLINK)

        page.set_input_files("#tus-file", str(clip_720p))
        page.fill("#tus-title", "Sent from the browser")
        page.fill("#tus-category", "Drama")
        page.click("#tus-start")
        # (selectors, not wait_for_function: the admin's CSP refuses the eval it needs)
        page.wait_for_selector("#tus-form[data-percent]:not([data-percent='0'])")
        assert "MB/s" in page.inner_text("#tus-status") and " left" in page.inner_text("#tus-status")
        upload_id = None
        for _ in range(300):
            found = uploads_of(app)
            if found and found[0][2] >= 2 * CHUNK:
                upload_id = found[0][0]
                break
            page.wait_for_timeout(50)
        assert upload_id, uploads_of(app)

        page.reload()
        throttle(cdp, -1)
        requests = []
        page.on("request", lambda r: requests.append((r.method, r.url.split("?")[0])))
        assert "Unfinished uploads: 720p" in page.inner_text("#tus-resumable-list")
        offset_at_resume = uploads_of(app)[0][2]
        page.set_input_files("#tus-file", str(clip_720p))
        page.wait_for_selector("#tus-start:text-is('Resume upload')")
        assert page.input_value("#tus-title") == "Sent from the browser"  # from tus-js-client's storage
        page.click("#tus-start")
        page.wait_for_selector("#tus-form[data-state=done]")
        video_id = int(page.get_attribute("#tus-form", "data-video-id"))
        assert "queued for transcoding" in page.inner_text("#tus-status")
        assert page.evaluate("window.__csp") == []

        upload_url = f"{base_url}/api/uploads/{upload_id}/"
        assert ("HEAD", upload_url) in requests and not any(m == "POST" for m, _ in requests)
        patches = [url for method, url in requests if method == "PATCH"]
        assert patches and set(patches) == {upload_url}
        assert 2 * CHUNK <= offset_at_resume < len(data)
        assert uploads_of(app) == [(upload_id, video_id, 0)]  # one upload, continued; scratch gone

        page.goto(f"{base_url}/admin/videos/")
        assert "queued" in page.inner_text("tr:has-text('Sent from the browser')")
    video = row(app, video_id)
    assert video["status"] == "pending" and video["queued_at"] is not None
    with app.app_context():
        stored = source_path(db.session.get(Video, video_id)).read_bytes()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()

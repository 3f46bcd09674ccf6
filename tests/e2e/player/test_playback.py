"""End to end: our player (player/) in Debian's Chromium against a real API server.

The API runs in a werkzeug server thread on a free port of 127.0.0.1, the player is served from
another port (another origin, the same site), and the video is a real transcode of a short
two-rendition clip. Nothing is mocked: cookies, CORS, hls.js, MSE and H.264/AAC decoding are real.
"""

import json

import pytest

from videoflix.extensions import db
from videoflix.videos.models import READY, Video

pytestmark = [pytest.mark.slow, pytest.mark.browser]


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

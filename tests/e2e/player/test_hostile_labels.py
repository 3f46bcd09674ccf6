"""End to end in Chromium (issue 18, finding 2): a subtitle label that would inject HLS tags never
makes our player (hls.js) ask anyone but our origins. The attacker's host is a real HTTP server on
another port, named in the labels; the player plays a real transcode with its tracks.

Two ways a hostile label arrives: offered through the back office (refused), and stored the way a
row from before the rules could hold it, with the master the old writer wrote (the operator's
repair, or the next change of a track, rewrites it).
"""
import contextlib
import http.server
import json

import pytest

from tests.e2e.player.conftest import serving
from tests.fixtures.subtitles import post_track, store_as_before_the_rules, stored_text
from tests.fixtures.videos import row, sign_in_staff

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SRT = "1\n00:00:00,500 --> 00:00:07,000\nHallo <i>Welt</i>\n"


@pytest.fixture
def evil():
    """The attacker's host: answers a steering manifest and playlists, and records every request."""
    seen = []

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = json.dumps({"VERSION": 1, "TTL": 300, "PATHWAY-PRIORITY": ["evil"]}).encode()
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}", seen


def hostile_labels(evil_origin):
    """Labels that pass the checks before issue 18 (under 100 characters, no C0 control)."""
    return {
        "en": f"English #EXT-X-CONTENT-STEERING:SERVER-URI={evil_origin}/steer.json?",
        "es": f"Español\x85#EXT-X-CONTENT-STEERING:SERVER-URI={evil_origin}/steer2.json?",
        "fr": "Français\u2028#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=bogus.0",
    }


def play(browser, video_id):
    """Start the video; the subtitle menu's entries and hls.js's levels once it plays."""
    page = browser.page
    page.click(f'.video-card[data-video-id="{video_id}"]')
    try:
        page.wait_for_function("() => document.getElementById('video').currentTime > 2.5", timeout=30_000)
    except Exception as error:
        pytest.fail(f"playback did not start: {error}{browser.diagnostics()}")
    menu = page.eval_on_selector_all("#subtitles option", "os => os.map(o => o.textContent)")
    levels = page.evaluate("() => window.videoflixPlayer.hls.levels.map(l => [l.height, l.codecSet])")
    return menu, levels


def assert_only_our_origins(browser, evil_requests, player_origin, api_base):
    foreign = [u for u in browser.requests if not u.startswith((player_origin + "/", api_base + "/", "blob:", "data:"))]
    assert foreign == [] and evil_requests == [], browser.diagnostics()


@contextlib.contextmanager
def staff_client(app, make_user):
    client = app.test_client()
    sign_in_staff(make_user, client)
    yield client


def test_hostile_labels_offered_through_the_admin_are_refused_and_never_reach_the_player(
        app, make_user, logged_in, player_origin, api_base, ready_video, evil):
    evil_origin, evil_requests = evil
    video_id = ready_video["id"]
    with staff_client(app, make_user) as staff:
        for language, label in hostile_labels(evil_origin).items():
            refused = post_track(staff, video_id, SRT.encode(), language=language, label=label)
            assert refused.status_code == 400
            assert b"A label holds letters, digits, spaces and punctuation, not " in refused.data
        assert post_track(staff, video_id, SRT.encode(), language="de", label="Deutsch").status_code == 302
    assert "evil" not in stored_text(app, row(app, video_id)["hls_dir"], "master.m3u8")

    menu, levels = play(logged_in, video_id)
    assert menu == ["Off", "Deutsch"] and [height for height, _ in levels] == [480, 720], levels
    assert_only_our_origins(logged_in, evil_requests, player_origin, api_base)


@pytest.mark.parametrize("rewrite", ["the operator's repair", "the next track added"])
def test_hostile_labels_stored_before_the_rules_never_reach_the_player(
        app, make_user, runner, logged_in, player_origin, api_base, ready_video, evil, rewrite):
    evil_origin, evil_requests = evil
    video_id = ready_video["id"]
    for language, label in hostile_labels(evil_origin).items():
        store_as_before_the_rules(app, video_id, language, label)
    assert "#EXT-X-CONTENT-STEERING" in stored_text(app, row(app, video_id)["hls_dir"], "master.m3u8")

    if rewrite == "the operator's repair":
        result = runner.invoke(args=["transcode", "--subtitles"])
        assert result.exit_code == 0, result.output
        expected = ["Off", "en", "es", "fr"]
    else:
        with staff_client(app, make_user) as staff:
            assert post_track(staff, video_id, SRT.encode(), language="de", label="Deutsch").status_code == 302
        expected = ["Off", "Deutsch", "en", "es", "fr"]
    text = stored_text(app, row(app, video_id)["hls_dir"], "master.m3u8")
    assert "evil" not in text and evil_origin not in text, text

    menu, levels = play(logged_in, video_id)
    assert menu == expected and [height for height, _ in levels] == [480, 720], (menu, levels)
    assert_only_our_origins(logged_in, evil_requests, player_origin, api_base)


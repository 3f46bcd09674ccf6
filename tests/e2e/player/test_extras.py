"""End to end in Chromium: the player's extras (player/extras.js) against the real API: hls.js
lists the subtitle track of the master playlist and shows its cues at the right time, and hovering
the seek bar shows the storyboard's preview tile (its sprite loaded with the viewer's cookie)."""
import pytest

from videoflix.extensions import db
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.models import Video

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SRT = "1\n00:00:00,500 --> 00:00:07,000\nHallo <i>Welt</i>\n"


@pytest.fixture
def subtitled_video(app, ready_video):
    with app.app_context():
        subtitle_tracks.add(db.session.get(Video, ready_video["id"]), SRT.encode(), language="de", label="Deutsch")
    return ready_video


def test_subtitle_menu_and_storyboard_preview(logged_in, api_base, subtitled_video):
    page, video_id = logged_in.page, subtitled_video["id"]
    page.click(f'.video-card[data-video-id="{video_id}"]')
    try:
        page.wait_for_function("() => document.getElementById('video').currentTime > 1", timeout=30_000)
    except Exception as error:
        pytest.fail(f"playback did not start: {error}{logged_in.diagnostics()}")

    # hls.js read the subtitle group of the master playlist: the menu lists the track.
    page.wait_for_function("() => document.querySelectorAll('#subtitles option').length === 2")
    options = page.eval_on_selector_all("#subtitles option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [["-1", "Off"], ["0", "Deutsch"]], options
    assert page.evaluate("() => window.videoflixPlayer.hls.subtitleTracks.map(t => [t.lang, t.name])") == [
        ["de", "Deutsch"]]

    # Choosing it loads the track through the authenticated routes and shows its cue at 0.5 s
    # (X-TIMESTAMP-MAP places WebVTT time 0 at the video's first frame).
    with page.expect_response(f"{api_base}/api/video/{video_id}/subtitles/de.vtt") as vtt:
        page.select_option("#subtitles", label="Deutsch")
    assert vtt.value.status == 200, logged_in.diagnostics()
    cue = page.wait_for_function("""() => {
        for (const track of document.getElementById('video').textTracks) {
            if (track.mode === 'showing' && track.cues && track.cues.length) {
                const c = track.cues[0];
                return [track.language, c.text, c.startTime, c.endTime];
            }
        }
        return null; }""").json_value()
    assert cue[0] == "de" and "Hallo" in cue[1], cue
    assert cue[2] == pytest.approx(0.5, abs=0.15) and cue[3] == pytest.approx(7.0, abs=0.15), cue

    # Hovering the seek bar at 55 % of 8 s shows the tile of the cue 4-5 s.
    page.query_selector("#seekbar").scroll_into_view_if_needed()
    box = page.query_selector("#seekbar").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2)
    page.wait_for_selector("#storyboard-preview:not([hidden])")
    style = page.eval_on_selector("#storyboard-preview", """p => [p.style.backgroundImage,
        p.style.backgroundPosition, p.style.width, p.style.height, p.dataset.cueStart]""")
    sprite = f"{api_base}/api/video/{video_id}/storyboard/000.jpg"
    assert style == [f'url("{sprite}")', "-640px 0px", "160px", "90px", "4"], style
    size = page.evaluate("""url => new Promise(done => { const i = new Image();
        i.onload = () => done([i.naturalWidth, i.naturalHeight]); i.onerror = () => done(null); i.src = url; })""",
                         sprite)
    assert size == [8 * 160, 90], f"the sprite did not load{logged_in.diagnostics()}"
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] - 200)
    page.wait_for_selector("#storyboard-preview", state="hidden")

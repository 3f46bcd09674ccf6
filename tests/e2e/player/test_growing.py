"""The player (player/) on a video that is still being transcoded: it plays from 0 while the media
playlists grow (EVENT, then VOD + ENDLIST), says that the video is still processing (with the
progress) until its detail says "ready", waits for a video not yet playable, and says when one fails.

The files grow by hand here: a real transcode's media playlists are rewritten as EVENT playlists
listing their first segments, then the rest and ENDLIST are appended while Chromium plays, and the
row moves as a chunked job moves it (growing, progress, ready; pending; failed). That is exactly what
the player sees of a growing video, timed by the test (test_growing_worker has a real worker).
"""
import os
import re
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.e2e.player.conftest import CLIP_SECONDS, EMAIL, PASSWORD
from videoflix.extensions import db
from videoflix.videos.media.transcode import transcode
from videoflix.videos.models import FAILED, PENDING, READY, Video

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SEGMENT_LINE = re.compile(r"#EXTINF:[^\n]*\n[^#\n][^\n]*\n")


class Growing:
    """A real transcode whose media playlists the test makes grow: `show(n)` lists the first n
    segments of every rendition as a growing (EVENT) playlist, `finish()` the finished (VOD) one."""

    def __init__(self, folder, labels):
        self.playlists = {label: Path(folder, label, "index.m3u8") for label in labels}
        self.finished = {label: path.read_text() for label, path in self.playlists.items()}
        counts = {len(SEGMENT_LINE.findall(text)) for text in self.finished.values()}
        assert len(counts) == 1, counts
        self.segments = counts.pop()

    def show(self, count):
        for label, path in self.playlists.items():
            text = self.finished[label]
            header = text[:SEGMENT_LINE.search(text).start()]
            header = re.sub(r"#EXT-X-PLAYLIST-TYPE:VOD\n", "", header)
            header = header.replace("#EXTM3U\n", "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-START:TIME-OFFSET=0\n", 1)
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in header and "ENDLIST" not in header, header
            self._write(path, header + "".join(SEGMENT_LINE.findall(text)[:count]))

    def finish(self):
        for label, path in self.playlists.items():
            assert "#EXT-X-PLAYLIST-TYPE:VOD" in self.finished[label] and "#EXT-X-ENDLIST" in self.finished[label]
            self._write(path, self.finished[label])

    @staticmethod
    def _write(path, text):
        # Whole or not at all, as a store publishes: never a half-written playlist.
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        temporary.write_text(text)
        os.replace(temporary, path)


@pytest.fixture
def growing_video(app, long_clip):
    """A first version being published as it grows (READY and `growing`: the detail says
    "processing" and playable), whose files are a real transcode with playlists that show only what
    the test lets them; `update(**columns)` moves the row."""
    with app.app_context():
        video = Video(title="Growing pattern", description="Still arriving.", category="Documentary")
        db.session.add(video)
        db.session.flush()
        hls_dir = f"{video.id}/{uuid.uuid4().hex[:12]}"
        folder = os.path.join(app.config["MEDIA_ROOT"], "hls", hls_dir)
        result = transcode(long_clip, folder)
        video.renditions = [asdict(r) for r in result.renditions]
        video.hls_dir = hls_dir
        video.thumbnail = f"{hls_dir}/{result.thumbnail}"
        video.duration = result.duration
        video.width, video.height = result.info.width, result.info.height
        video.status, video.growing, video.progress = READY, True, 20
        db.session.commit()
        growing = Growing(folder, [r["label"] for r in video.renditions])
        assert growing.segments == 5, growing.segments
        video_id = video.id

    def update(**columns):
        with app.app_context():
            row = db.session.get(Video, video_id)
            for name, value in columns.items():
                setattr(row, name, value)
            db.session.commit()

    return {"id": video_id, "files": growing, "update": update}


def player_state(page):
    return page.evaluate("""() => { const v = document.getElementById('video'); const h = window.videoflixPlayer.hls;
        const d = h && h.latestLevelDetails;
        return {time: v.currentTime, paused: v.paused, ended: v.ended, ready: v.readyState, duration: v.duration,
                played: v.played.length ? [v.played.start(0), v.played.end(v.played.length - 1)] : null,
                live: d ? d.live : null, type: d ? d.type : null, error: v.error && v.error.message,
                notice: document.getElementById('processing').textContent,
                message: document.getElementById('message').textContent}; }""")


def wait_for(browser, condition, what, timeout=30_000, arg=None):
    try:
        browser.page.wait_for_function(condition, arg=arg, timeout=timeout)
    except Exception as error:
        pytest.fail(f"{what}: {player_state(browser.page)}{browser.diagnostics()}\n{error}")


NOTICE = "#processing"


def log_in(page, player_origin, api_base, make_user, *, staff=False, query=""):
    """The player, polling a processing video's detail every second, logged in."""
    make_user(EMAIL, PASSWORD, staff=staff)
    page.goto(f"{player_origin}/?api={api_base}&poll=1{query}")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#catalogue-view[data-loaded]")


def test_a_growing_video_plays_from_0_to_the_end_and_says_it_is_processing(
        browser, player_origin, api_base, growing_video, make_user):
    page, video_id, files, update = browser.page, growing_video["id"], growing_video["files"], growing_video["update"]
    files.show(1)  # the first part: one segment of every rendition
    log_in(page, player_origin, api_base, make_user)
    page.click(f'#videos .video-card[data-video-id="{video_id}"]')

    # It plays, from 0 (hls.js sees a live playlist: nothing moved it to the live edge) ...
    wait_for(browser, "() => document.getElementById('video').currentTime > 1", "playback did not start")
    state = player_state(page)
    assert state["live"] is True and state["type"] == "EVENT", state
    assert state["played"][0] < 0.5, state
    assert page.evaluate("() => window.videoflixPlayer.hls.config.startPosition") == 0
    # ... and says the video is still processing, with the progress.
    assert page.is_visible(NOTICE)
    assert page.text_content(NOTICE) == ("Still processing (20 %): playing what is ready; "
                                         "the rest follows as it is transcoded.")
    assert page.get_attribute(NOTICE, "data-state") == "playing"

    # The playlists grow while it plays; the detail is asked again and the progress follows.
    files.show(3)
    update(progress=60)
    wait_for(browser, "() => document.getElementById('processing').dataset.progress === '60'", "progress not updated")
    wait_for(browser, "() => document.getElementById('video').currentTime > 7", "playback did not pass the first part")

    # The last part lands: VOD + ENDLIST; the detail says ready and the notice goes.
    files.finish()
    update(growing=False, progress=100)
    wait_for(browser, "() => document.getElementById('processing').hidden", "the notice stayed")
    assert page.text_content(NOTICE) == ""
    wait_for(browser, "() => document.getElementById('video').ended", "playback did not reach the end", timeout=40_000)
    state = player_state(page)
    assert state["live"] is False and state["type"] == "VOD", state
    assert abs(state["time"] - CLIP_SECONDS) < 0.6 and abs(state["duration"] - CLIP_SECONDS) < 0.6, state
    # Played from 0 to the end without a jump (a seek would have split the played ranges).
    assert page.evaluate("() => document.getElementById('video').played.length") == 1, state
    assert state["played"][0] < 0.5 and state["played"][1] > CLIP_SECONDS - 0.6, state
    assert page.text_content("#message") == "", state


def test_a_video_not_yet_playable_waits_then_plays(browser, player_origin, api_base, growing_video, make_user):
    page, video_id, files, update = browser.page, growing_video["id"], growing_video["files"], growing_video["update"]
    # Queued, nothing stored yet: not listed; staff (who see its detail) open it by its link.
    update(status=PENDING, growing=False, progress=5)
    files.show(1)
    log_in(page, player_origin, api_base, make_user, staff=True, query=f"&video={video_id}")
    page.wait_for_selector(f'{NOTICE}[data-state="waiting"]')
    assert page.text_content(NOTICE) == "Processing (5 %): this video plays as soon as its first part is ready."
    assert page.is_visible("#player-view") and page.text_content("#message") == ""
    page.wait_for_timeout(1500)  # a poll or two: still nothing is loaded
    assert not [url for url in browser.requests if url.endswith(".m3u8")], browser.requests
    assert page.evaluate("() => window.videoflixPlayer.hls") is None

    # Playable, all five segments listed but not yet ENDLIST: hls.js's live edge (three target
    # durations, 3 x 8 s, from the end) is at 6 s; the player starts at 0 all the same.
    files.show(5)
    update(status=READY, growing=True, progress=80)
    wait_for(browser, "() => document.getElementById('video').currentTime > 1", "playback did not start once playable")
    assert page.get_attribute(NOTICE, "data-state") == "playing"
    assert page.text_content(NOTICE).startswith("Still processing (80 %)")
    assert player_state(page)["played"][0] < 0.5, player_state(page)
    live_edge = "() => { const d = window.videoflixPlayer.hls.latestLevelDetails; " \
                "return d.edge - 3 * d.targetduration; }"
    assert page.evaluate(live_edge) >= 5.9

    # A part fails for good: the version is withdrawn (as jobs.state.fail leaves the row); staff
    # see why.
    update(status=FAILED, growing=False, hls_dir=None, thumbnail=None, error="Chunk 4 failed: ffmpeg exited with 1")
    page.wait_for_selector(f'{NOTICE}[data-state="failed"]')
    assert page.text_content(NOTICE) == "This video could not be processed (Chunk 4 failed: ffmpeg exited with 1)."
    assert page.evaluate("() => window.videoflixPlayer.hls") is None


def test_a_video_withdrawn_while_it_plays_is_said_to_be_gone(
        browser, player_origin, api_base, growing_video, make_user):
    page, video_id, files, update = browser.page, growing_video["id"], growing_video["files"], growing_video["update"]
    files.show(2)
    update(progress=40)
    log_in(page, player_origin, api_base, make_user)
    page.click(f'#videos .video-card[data-video-id="{video_id}"]')
    wait_for(browser, "() => document.getElementById('video').currentTime > 1", "playback did not start")

    # A part fails for good: the row says so, and the API no longer shows the video to viewers.
    update(status=FAILED, growing=False, hls_dir=None, thumbnail=None, error="Chunk 1 failed: ffmpeg exited with 1")
    page.wait_for_selector(f'{NOTICE}[data-state="failed"]')
    assert page.text_content(NOTICE) == "This video is no longer available: its processing failed or it was removed."
    assert page.evaluate("() => window.videoflixPlayer.hls") is None
    assert page.is_visible("#player-view")

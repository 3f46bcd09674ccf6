"""The player (player/) on a video that is still being transcoded: it plays from 0 while the media
playlists grow (EVENT, then VOD + ENDLIST), says that the video is still processing (with the
progress) until its detail says "ready", waits for a video not yet playable, and says when one fails.

The files grow by hand here: a real transcode's media playlists are rewritten as EVENT playlists
listing their first segments, then the rest and ENDLIST are appended while Chromium plays. That is
exactly what the player sees of a growing video (the worker's side is tested with the pipeline).
The detail's processing fields (status, progress, playable) are set by the test on the real answer.
"""
import json
import os
import re
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.e2e.player.conftest import CLIP_SECONDS, EMAIL, PASSWORD
from videoflix.extensions import db
from videoflix.videos.media.transcode import transcode
from videoflix.videos.models import FAILED, READY, Video

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
    """A video whose files are a real transcode, served (the row says READY, so today's delivery
    serves it), with playlists that show only what the test lets them; and `detail`, the processing
    fields the test puts on the real detail answer (see `processing_detail`)."""
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
        video.status, video.progress = READY, 100
        db.session.commit()
        growing = Growing(folder, [r["label"] for r in video.renditions])
        assert growing.segments == 5, growing.segments
        return {"id": video.id, "files": growing}


def processing_detail(page, api_base, video_id):
    """The video's detail as the API answers it, with `status`, `progress` and `playable` taken
    from the dict returned (while it holds any): a video still being transcoded."""
    fields = {}

    def answer(route):
        response = route.fetch()
        body = response.json()
        if fields:
            body.update(fields)
            if not fields.get("playable", True):
                body["master_url"] = None
        route.fulfill(response=response, body=json.dumps(body))

    page.route(f"{api_base}/api/video/{video_id}/", answer)
    return fields


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


def log_in(page, player_origin, api_base, make_user):
    """The player, polling a processing video's detail every second, logged in."""
    make_user(EMAIL, PASSWORD)
    page.goto(f"{player_origin}/?api={api_base}&poll=1")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#catalogue-view[data-loaded]")


def test_a_growing_video_plays_from_0_to_the_end_and_says_it_is_processing(
        browser, player_origin, api_base, growing_video, make_user):
    page, video_id, files = browser.page, growing_video["id"], growing_video["files"]
    files.show(1)  # the first part: one segment of every rendition
    detail = processing_detail(page, api_base, video_id)
    detail.update(status="processing", progress=20, playable=True)
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
    detail.update(progress=60)
    wait_for(browser, "() => document.getElementById('processing').dataset.progress === '60'", "progress not updated")
    wait_for(browser, "() => document.getElementById('video').currentTime > 7", "playback did not pass the first part")

    # The last part lands: VOD + ENDLIST; the detail says ready and the notice goes.
    files.finish()
    detail.update(status="ready", progress=100)
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
    page, video_id, files = browser.page, growing_video["id"], growing_video["files"]
    files.show(1)
    detail = processing_detail(page, api_base, video_id)
    log_in(page, player_origin, api_base, make_user)
    # From here on (say, from a link or "Continue watching") the video is not playable yet.
    detail.update(status="processing", progress=5, playable=False)
    page.click(f'#videos .video-card[data-video-id="{video_id}"]')
    page.wait_for_selector(f'{NOTICE}[data-state="waiting"]')
    assert page.text_content(NOTICE) == "Processing (5 %): this video plays as soon as its first part is ready."
    assert page.is_visible("#player-view") and page.text_content("#message") == ""
    page.wait_for_timeout(1500)  # a poll or two: still nothing is loaded
    assert not [url for url in browser.requests if url.endswith(".m3u8")], browser.requests
    assert page.evaluate("() => window.videoflixPlayer.hls") is None

    # Playable: four parts of five are stored, so hls.js's live edge (three target durations from
    # the end) is at 6 s; the player starts at 0 all the same.
    files.show(4)
    detail.update(progress=80, playable=True)
    wait_for(browser, "() => document.getElementById('video').currentTime > 1", "playback did not start once playable")
    assert page.get_attribute(NOTICE, "data-state") == "playing"
    assert player_state(page)["played"][0] < 0.5, player_state(page)
    assert page.evaluate("() => window.videoflixPlayer.hls.liveSyncPosition") >= 5.9

    # A part fails for good: the video is withdrawn and the player says so.
    detail.update(status="failed", progress=80, playable=False)
    page.wait_for_selector(f'{NOTICE}[data-state="failed"]')
    assert page.text_content(NOTICE).startswith("This video could not be processed")
    assert page.evaluate("() => window.videoflixPlayer.hls") is None


def test_a_video_withdrawn_while_it_plays_is_said_to_be_gone(
        app, browser, player_origin, api_base, growing_video, make_user):
    page, video_id, files = browser.page, growing_video["id"], growing_video["files"]
    files.show(2)
    detail = processing_detail(page, api_base, video_id)
    detail.update(status="processing", progress=40, playable=True)
    log_in(page, player_origin, api_base, make_user)
    page.click(f'#videos .video-card[data-video-id="{video_id}"]')
    wait_for(browser, "() => document.getElementById('video').currentTime > 1", "playback did not start")

    # A part fails for good: the row says so, and the API no longer shows the video to viewers.
    with app.app_context():
        video = db.session.get(Video, video_id)
        video.status, video.error = FAILED, "Chunk 1 failed: ffmpeg exited with 1"
        db.session.commit()
    detail.clear()
    page.wait_for_selector(f'{NOTICE}[data-state="failed"]')
    assert page.text_content(NOTICE) == "This video is no longer available: its processing failed or it was removed."
    assert page.evaluate("() => window.videoflixPlayer.hls") is None
    assert page.is_visible("#player-view")

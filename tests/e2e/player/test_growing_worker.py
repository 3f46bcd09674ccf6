"""The player on a video a real worker is still transcoding in chunks: Chromium plays it from 0
while the worker adds chunks, past the first chunk's end, and to the end once the ladder is
complete; meanwhile the page says the video is still processing.

A `flask worker` subprocess transcodes an upload with TRANSCODE_CHUNK_SECONDS=6 (one 6 s segment
per chunk) and one ffmpeg thread; its ffmpeg waits a moment before each run, so the 30 s clip is
still growing while it plays (a faster machine would otherwise finish before the page loads).
"""
import stat

import pytest

from tests.e2e.player.conftest import CLIP_SECONDS, EMAIL, PASSWORD
from tests.fixtures import workers
from tests.fixtures.clips import FFMPEG
from tests.fixtures.videos import row
from tests.fixtures.worker_app import worker_config
from videoflix.videos.tasks import request_transcode
from videoflix.videos.uploads.service import accept

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHUNK_SECONDS = 6
FFMPEG_DELAY = 2.5  # seconds before each ffmpeg run of the worker


@pytest.fixture
def app_config(app_config, tmp_path):
    """Shared with the worker: the database (a SQLite file, or the test's PostgreSQL), the file
    queue, the media folder; the job is queued for the worker, not run inline."""
    app_config.update(worker_config(app_config["SQLALCHEMY_DATABASE_URI"], str(tmp_path / "queue.sqlite3"),
                                    str(tmp_path / "media"), app_config.get("REDIS_URL"),
                                    app_config["REDIS_PREFIX"]))
    app_config["HUEY_IMMEDIATE"] = False
    return app_config


@pytest.fixture
def slow_ffmpeg(tmp_path):
    path = tmp_path / "slow-ffmpeg"
    path.write_text(f'#!/bin/sh\nsleep {FFMPEG_DELAY}\nexec "{FFMPEG}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def worker(app, tmp_path, slow_ffmpeg):
    proc = workers.start_worker(app, tmp_path, "worker", FFMPEG_BINARY=slow_ffmpeg, FFMPEG_THREADS="1",
                                TRANSCODE_CHUNK_SECONDS=str(CHUNK_SECONDS), PUBLISH="playable")
    try:
        yield proc
    finally:
        workers.kill_group(proc)


def state(page):
    return page.evaluate("""() => { const v = document.getElementById('video'); const h = window.videoflixPlayer.hls;
        const d = h && h.latestLevelDetails;
        return {time: v.currentTime, ended: v.ended, duration: v.duration, ready: v.readyState,
                played: v.played.length ? [v.played.start(0), v.played.end(v.played.length - 1)] : null,
                ranges: v.played.length, live: d ? d.live : null, type: d ? d.type : null,
                notice: document.getElementById('processing').textContent,
                message: document.getElementById('message').textContent}; }""")


def test_chromium_plays_a_video_from_0_while_a_worker_transcodes_it_in_chunks(
        app, browser, player_origin, api_base, make_user, long_clip, worker):
    page = browser.page

    def wait(condition, what, timeout=60_000):
        try:
            page.wait_for_function(condition, timeout=timeout)
        except Exception as error:
            pytest.fail(f"{what}: {state(page)}\nworker log:\n{worker.log_path.read_text()[-4000:]}"
                        f"{browser.diagnostics()}\n{error}")

    make_user(EMAIL, PASSWORD)
    with app.app_context(), open(long_clip, "rb") as stream:
        video = accept(stream, filename="growing.mp4", title="Growing for real", description="", category="Drama")
        video_id = video.id
        request_transcode(video)

    page.goto(f"{player_origin}/?api={api_base}&poll=1")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#session:not([hidden])")
    # The catalogue lists the video once it is playable (its first chunk stored), long before the end.
    card = f'#videos .video-card[data-video-id="{video_id}"]'
    for _ in range(120):
        page.goto(f"{player_origin}/?api={api_base}&poll=1")
        page.wait_for_selector("#catalogue-view[data-loaded]")
        if page.query_selector(card):
            break
        page.wait_for_timeout(500)
    else:
        pytest.fail(f"never listed: {row(app, video_id)}\n{worker.log_path.read_text()[-4000:]}")
    listed = row(app, video_id)
    assert listed["growing"] and listed["claimed_by"], listed  # still being transcoded
    page.click(card)

    # It plays from 0 while the worker goes on, and says the video is still processing.
    wait("() => document.getElementById('video').currentTime > 1", "playback did not start")
    playing = state(page)
    assert playing["played"][0] < 0.5 and playing["live"] is True and playing["type"] == "EVENT", playing
    assert page.get_attribute("#processing", "data-state") == "playing", playing
    assert playing["notice"].startswith("Still processing ("), playing

    # Past the first chunk's end (more chunks were added to the playlists meanwhile) ...
    wait(f"() => document.getElementById('video').currentTime > {CHUNK_SECONDS + 0.5}",
         "playback did not pass the first chunk")
    # ... and to the end once the ladder is complete, the notice gone.
    wait("() => document.getElementById('video').ended", "playback did not reach the end", timeout=120_000)
    ended = state(page)
    assert ended["live"] is False and ended["type"] == "VOD", ended
    assert abs(ended["time"] - CLIP_SECONDS) < 0.6 and ended["ranges"] == 1 and ended["played"][0] < 0.5, ended
    assert page.is_hidden("#processing") and ended["message"] == "", ended
    finished = row(app, video_id)
    assert finished["status"] == "ready" and not finished["growing"] and finished["claimed_by"] is None, finished

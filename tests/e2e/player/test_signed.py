"""The player (player/) in Chromium with MEDIA_DELIVERY=signed: the API serves the playlists, the
segments come straight from the bucket (a real SeaweedFS) by presigned URL, cross-origin."""
import os
import tempfile
import uuid
from dataclasses import asdict

import pytest

from tests.fixtures.browser import CHROMIUM
from tests.e2e.player.conftest import EMAIL, PASSWORD
from videoflix.extensions import db
from videoflix.videos.media.transcode import transcode
from videoflix.videos.models import READY, Video
from videoflix.videos.storage.keys import media_store, publish

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.media_store]


@pytest.fixture
def app_config(app_config, tmp_path, player_origin, s3_settings):
    app_config.update(s3_settings)
    app_config.update(CORS_ORIGINS=[player_origin], MEDIA_DELIVERY="signed")
    if app_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app_config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    return app_config


@pytest.fixture
def signed_video(app, source_clip, player_origin):
    """A READY video transcoded for real and published in the bucket; the bucket allows the
    player's origin (as `flask storage init` sets it)."""
    with app.app_context():
        store = media_store()
        store.client.put_bucket_cors(Bucket=store.bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": [player_origin], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]}]})
        video = Video(title="Signed pattern", description="", category="Documentary")
        db.session.add(video)
        db.session.flush()
        hls_dir = f"{video.id}/{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory() as folder:
            result = transcode(source_clip, os.path.join(folder, "out"))
            publish(os.path.join(folder, "out"), video.id, hls_dir.split("/")[1])
        video.renditions = [asdict(r) for r in result.renditions]
        video.hls_dir, video.thumbnail = hls_dir, f"{hls_dir}/{result.thumbnail}"
        video.duration, video.status, video.progress = result.duration, READY, 100
        db.session.commit()
        return video.id


def test_the_player_plays_segments_from_presigned_urls(browser, player_origin, api_base, make_user,
                                                         signed_video, app):
    page = browser.page
    make_user(EMAIL, PASSWORD)
    page.goto(f"{player_origin}/?api={api_base}")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#catalogue-view[data-loaded]")  # every row in place: nothing moves
    page.click(f'.video-card[data-video-id="{signed_video}"]')
    try:
        page.wait_for_function("() => document.getElementById('video').currentTime > 2", timeout=30_000)
    except Exception as error:
        pytest.fail(f"playback did not pass 2 s{browser.diagnostics()}\n{error}")
    bucket = [u for u in browser.requests if u.startswith(app.config["S3_ENDPOINT_URL"])]
    assert bucket and all("X-Amz-Signature=" in u and ".ts" in u for u in bucket), browser.diagnostics()
    api_segments = [u for u in browser.requests if u.startswith(api_base) and ".ts" in u]
    assert api_segments == [], browser.diagnostics()
    assert f"{api_base}/api/video/{signed_video}/master.m3u8" in browser.requests
    assert os.path.exists(CHROMIUM)

"""Subtitle tracks and storyboards with MEDIA_STORAGE=s3, against the real SeaweedFS of
tests.fixtures.object_store whatever TEST_MEDIA_STORAGE says: the track files and the master playlist are
objects of the version, the routes stream them from the bucket, the worker's publish keeps the
tracks, the storyboard backfill reads the segments from the bucket, and nothing stays on disk."""
import os
from urllib.parse import urljoin

import m3u8
import pytest

from tests.fixtures.object_store import keys, scratch_files
from tests.fixtures.subtitles import SRT, add
from tests.fixtures.videos import add_clip, queue, row
from videoflix.extensions import db
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.models import Subtitle
from videoflix.videos.storage.keys import media_store

pytestmark = pytest.mark.media_store


@pytest.fixture
def app_config(app_config, s3_settings):
    app_config.update(s3_settings)
    return app_config


def read(app, key):
    with app.app_context():
        return media_store().read(key).decode("utf-8")


def test_tracks_are_objects_of_the_version_and_survive_a_retranscode(app, runner, client, auth, clip_720p,
                                                                     tmp_path):
    video_id = add_clip(app, clip_720p)
    first = row(app, video_id)["hls_dir"]
    assert {f"hls/{first}/storyboard.vtt", f"hls/{first}/storyboard/000.jpg"} <= set(keys(app, "hls/"))

    assert add(runner, tmp_path, video_id, SRT).exit_code == 0
    assert {f"hls/{first}/subtitles/de.vtt", f"hls/{first}/subtitles/de.m3u8"} <= set(keys(app, "hls/"))
    assert read(app, f"hls/{first}/subtitles/de.vtt").startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:")
    assert [m.language for m in m3u8.loads(read(app, f"hls/{first}/master.m3u8")).media] == ["de"]
    served = client.get(f"/api/video/{video_id}/subtitles/de.vtt")
    assert served.status_code == 200 and served.mimetype == "text/vtt"
    assert served.get_data(as_text=True) == read(app, f"hls/{first}/subtitles/de.vtt")

    queue(app, video_id)  # the worker publishes a new version into the bucket, with the track
    second = row(app, video_id)["hls_dir"]
    assert second != first and row(app, video_id)["status"] == "ready"
    assert [k for k in keys(app, f"hls/{second}/subtitles/")] == [
        f"hls/{second}/subtitles/de.m3u8", f"hls/{second}/subtitles/de.vtt"]
    assert keys(app, f"hls/{first}/") == []
    # the cached entry still names the first version: its vanished object is retried on the row
    assert "Ärger über Öl" in client.get(f"/api/video/{video_id}/subtitles/de.vtt").get_data(as_text=True)
    assert client.get(f"/api/video/{video_id}/master.m3u8").status_code == 200
    queue(app, video_id)
    assert row(app, video_id)["hls_dir"] not in (first, second)
    master = client.get(f"/api/video/{video_id}/master.m3u8")
    assert master.status_code == 200 and [m.language for m in m3u8.loads(master.get_data(as_text=True)).media] == [
        "de"]
    second = row(app, video_id)["hls_dir"]

    with app.app_context():
        subtitle_tracks.remove(db.session.execute(db.select(Subtitle)).scalar_one())
    assert keys(app, f"hls/{second}/subtitles/") == []
    assert "SUBTITLES" not in read(app, f"hls/{second}/master.m3u8")
    assert client.get(f"/api/video/{video_id}/subtitles/de.vtt").status_code == 404
    assert scratch_files(app) == [] and not os.path.exists(app.config["MEDIA_ROOT"])


def test_the_storyboard_backfill_reads_and_writes_the_bucket(app, runner, client, auth, make_video):
    video_id = make_video()
    hls_dir = row(app, video_id)["hls_dir"]
    segments = {k: read_bytes(app, k) for k in keys(app, f"hls/{hls_dir}/") if k.endswith(".ts")}
    stale = f"hls/{hls_dir}/storyboard/007.jpg"  # a sprite of an older storyboard: replaced, so removed
    with app.app_context():
        source = app.config["MEDIA_SCRATCH"] + "-stale.jpg"
        with open(source, "wb") as file:
            file.write(b"\xff\xd8old")
        media_store().put_file(stale, source, move=True)

    result = runner.invoke(args=["transcode", "--storyboards", str(video_id)])
    assert result.exit_code == 0, result.output
    stored = keys(app, f"hls/{hls_dir}/")
    assert f"hls/{hls_dir}/storyboard.vtt" in stored and f"hls/{hls_dir}/storyboard/000.jpg" in stored
    assert stale not in stored
    url = client.get(f"/api/video/{video_id}/").json["storyboard_url"]
    index = client.get(url)
    assert index.status_code == 200 and index.get_data(as_text=True) == read(app, f"hls/{hls_dir}/storyboard.vtt")
    sprite = client.get(urljoin(url, "storyboard/000.jpg"))
    assert sprite.status_code == 200 and sprite.mimetype == "image/jpeg" and sprite.data[:2] == b"\xff\xd8"
    assert {k: read_bytes(app, k) for k in segments} == segments
    assert scratch_files(app) == [] and not os.path.exists(app.config["MEDIA_ROOT"])


def read_bytes(app, key):
    with app.app_context():
        return media_store().read(key)

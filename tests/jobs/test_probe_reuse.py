"""Issue 9 point 4: the upload's probe is stored on the row and the worker reuses it (the file is
demuxed once, in the request); rows without it (older uploads) are probed by the worker. The
worker keeps its heartbeat while it probes."""
import pytest

from tests.fixtures.videos import add_clip, queue, row
from videoflix.extensions import db
from videoflix.videos.jobs import transcoding as job
from videoflix.videos.media import transcode as tc
from videoflix.videos.media.probe import probe
from videoflix.videos.models import Video

pytestmark = pytest.mark.slow


def test_the_upload_stores_its_probe_and_the_worker_does_not_probe_again(app, clip_720p, monkeypatch):
    video_id = add_clip(app, clip_720p, enqueue=False)
    stored = row(app, video_id)["source_info"]
    assert stored["container_format"] == "mov" and stored["video_codec"] == "h264"
    assert stored["keyframe_times"] == probe(clip_720p).keyframe_times and "path" not in stored

    def no_probe(*args, **kwargs):
        raise AssertionError("the worker probed the file again")

    monkeypatch.setattr(tc, "probe", no_probe)
    monkeypatch.setattr(job, "probe", no_probe)
    queue(app, video_id)
    video = row(app, video_id)
    assert video["status"] == "ready" and video["renditions"][-1]["copy"] is True


def test_a_row_without_a_stored_probe_is_probed_by_the_worker(app, clip_360p):

    video_id = add_clip(app, clip_360p, enqueue=False)
    with app.app_context():
        db.session.get(Video, video_id).source_info = None
        db.session.commit()
    queue(app, video_id)
    assert row(app, video_id)["status"] == "ready"


def test_transcode_beats_while_probing(tmp_path, clip_720p):
    beats = []
    result = tc.transcode(clip_720p, tmp_path / "out", heartbeat=lambda: beats.append("beat"))
    assert beats and beats[0] == "beat"  # the probe's first packet
    assert result.renditions[-1].copy is True

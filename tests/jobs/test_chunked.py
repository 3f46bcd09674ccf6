"""Chunked, progressive transcoding (issue 19) with real ffmpeg and tiny parts: any order of parts
publishes a growing first version (EVENT playlists from 0, listed, shown as processing) and the
same finished one (VOD); a part failing for good withdraws it; PUBLISH=complete waits; a
re-transcode keeps serving the old version. Huey runs inline; the parts are run by hand here, in
the order each test chooses (the workers take them in queue order)."""
import re

import m3u8
import pytest

from tests.fixtures.clips import _make
from tests.fixtures.videos import add_clip, files_below, mark_queued, media, row
from videoflix.extensions import db
from videoflix.videos import tasks
from videoflix.videos.jobs import part_state, transcoding
from videoflix.videos.media.errors import MediaError
from videoflix.videos.models import TranscodeChunk, Video
from videoflix.videos.tasks import request_transcode

pytestmark = [pytest.mark.slow, pytest.mark.media_store]

SECONDS = 26


@pytest.fixture(scope="session")
def clip_tone(clips_dir):
    """854x480 H.264 (copy-eligible: the 480p rung is a stream copy) + AAC 48 kHz, 26 s @10 fps, a
    keyframe every 2 s, a continuous 1 kHz tone."""
    return _make(clips_dir, "tone480.mp4", [
        "-f", "lavfi", "-i", f"testsrc2=s=854x480:r=10:d={SECONDS}",
        "-f", "lavfi", "-i", f"sine=f=1000:sample_rate=48000:d={SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "600k", "-maxrate", "800k",
        "-bufsize", "1600k", "-g", "20", "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-shortest"])


@pytest.fixture
def planned(app, clip_tone, monkeypatch):
    """plan(clip) -> (video id, job, part numbers): queued and planned, no part run yet."""
    app.config["TRANSCODE_CHUNK_SECONDS"] = 6
    monkeypatch.setattr(tasks, "_put_part_on_queue", lambda *args, **kwargs: None)

    def plan(clip=clip_tone):
        video_id = add_clip(app, clip, enqueue=False)
        mark_queued(app, video_id)
        with app.app_context():
            job, numbers = transcoding.run_transcode(video_id)
        return video_id, job, numbers

    return plan


def run(app, video_id, job, number):
    with app.app_context():
        return transcoding.run_part(video_id, job, number)


def listed(client):
    return {item["id"] for item in client.get("/api/video/").get_json()}


def playlist(client, video_id, label="480p"):
    response = client.get(f"/api/video/{video_id}/{label}/index.m3u8")
    assert response.status_code == 200, response.data
    return response


def segment_names(text):
    return [s.uri.partition("?")[0] for s in m3u8.loads(text).segments]


def test_parts_in_any_order_grow_a_playable_version_then_finish_it(app, client, auth, planned):
    video_id, job, numbers = planned()
    assert numbers == [0, 1, 2, 3]  # 0-6, 6-12, 12-18, 18-26 s

    assert run(app, video_id, job, 2) == "done"  # a later part first: nothing to show yet
    assert client.get(f"/api/video/{video_id}/").status_code == 404  # viewers see playable videos only
    assert video_id not in listed(client)
    assert client.get(f"/api/video/{video_id}/master.m3u8").status_code == 404

    assert run(app, video_id, job, 0) == "done"  # the first part: playable from 0
    detail = client.get(f"/api/video/{video_id}/").get_json()
    assert detail["status"] == "processing" and detail["playable"] is True
    assert detail["master_url"] == f"http://localhost/api/video/{video_id}/master.m3u8"
    assert 0 < detail["progress"] < 100 and detail["resolutions"] == ["480p"]
    assert video_id in listed(client)
    assert client.get(f"/api/video/{video_id}/thumbnail.jpg").status_code == 200
    master = client.get(f"/api/video/{video_id}/master.m3u8").get_data(as_text=True)
    assert "BANDWIDTH=" in master and "AVERAGE-BANDWIDTH" not in master  # an upper bound while growing
    growing = playlist(client, video_id)
    max_age = int(re.search(r"max-age=(\d+)", growing.headers["Cache-Control"]).group(1))
    assert max_age <= 6  # never cached longer than a segment lasts
    parsed = m3u8.loads(growing.get_data(as_text=True))
    assert parsed.playlist_type == "event" and not parsed.is_endlist
    assert "#EXT-X-START:TIME-OFFSET=0" in growing.get_data(as_text=True)
    first = segment_names(growing.get_data(as_text=True))
    assert first and sum(s.duration for s in parsed.segments) == pytest.approx(6, abs=0.2)  # part 0 only
    for name in first:
        assert client.get(f"/api/video/{video_id}/480p/{name}").status_code == 200

    assert run(app, video_id, job, 1) == "done"  # 0, 1 and 2 are contiguous now
    parsed = m3u8.loads(playlist(client, video_id).get_data(as_text=True))
    assert parsed.playlist_type == "event" and segment_names(parsed.dumps())[:len(first)] == first
    assert sum(s.duration for s in parsed.segments) == pytest.approx(18, abs=0.2)

    assert run(app, video_id, job, 3) == "done"
    finished = playlist(client, video_id)
    parsed = m3u8.loads(finished.get_data(as_text=True))
    assert parsed.playlist_type == "vod" and parsed.is_endlist and "#EXT-X-START" not in finished.get_data(as_text=True)
    assert finished.headers["Cache-Control"] == "private, no-cache"
    assert sum(s.duration for s in parsed.segments) == pytest.approx(SECONDS, abs=0.2)
    names = segment_names(finished.get_data(as_text=True))
    assert len(names) == len(set(names)) and names == sorted(names, key=lambda n: int(n[3:-3]))
    detail = client.get(f"/api/video/{video_id}/").get_json()
    assert detail["status"] == "ready" and detail["progress"] == 100 and detail["playable"] is True
    assert "AVERAGE-BANDWIDTH=" in client.get(f"/api/video/{video_id}/master.m3u8").get_data(as_text=True)
    video = row(app, video_id)
    assert video["growing"] is False and video["job_plan"] is None and video["claimed_by"] is None
    with app.app_context():
        assert db.session.query(TranscodeChunk).count() == 0
    assert not media(app, "jobs", str(video_id)).exists() or files_below(media(app, "jobs", str(video_id))) == []

    in_order = _transcode_again_in_order(app, client, video_id)
    assert _without_version(finished.get_data(as_text=True)) == _without_version(in_order)


def _transcode_again_in_order(app, client, video_id):
    """A re-transcode, its parts in order; the finished 480p playlist's text."""
    job, numbers = _retranscode(app, video_id)
    for number in numbers:
        assert run(app, video_id, job, number) == "done"
    return playlist(client, video_id).get_data(as_text=True)


def _retranscode(app, video_id):
    """Queue a re-transcode (planned inline; its parts' tasks are not run): (job, part numbers)."""
    with app.app_context():
        request_transcode(db.session.get(Video, video_id), force=True)
        job = db.session.get(Video, video_id).job_plan["job"]
        return job, [r.number for r in part_state.part_rows(video_id, job)]


def _without_version(text):
    return re.sub(r"\?v=[A-Za-z0-9_-]+", "", text)


def test_a_part_failing_for_good_withdraws_the_growing_video(app, client, auth, planned, monkeypatch):
    video_id, job, _ = planned()
    assert run(app, video_id, job, 0) == "done"
    assert video_id in listed(client) and row(app, video_id)["growing"] is True
    hls_dir = row(app, video_id)["hls_dir"]

    def broken(*args, **kwargs):
        raise MediaError("Invalid data found when processing input", transient=False)

    monkeypatch.setattr(transcoding.parts, "encode_part", broken)
    assert run(app, video_id, job, 2) == "failed"

    video = row(app, video_id)
    assert video["status"] == "failed" and video["hls_dir"] is None and video["growing"] is False
    assert video["error"] == "Invalid data found when processing input" and video["claimed_by"] is None
    assert video_id not in listed(client)
    assert client.get(f"/api/video/{video_id}/master.m3u8").status_code == 404
    assert client.get(f"/api/video/{video_id}/480p/index.m3u8").status_code == 404
    assert client.get(f"/api/video/{video_id}/").status_code == 404
    assert not media(app, "hls", hls_dir).exists()
    with app.app_context():
        assert db.session.query(TranscodeChunk).filter_by(video_id=video_id).count() == 0
    assert run(app, video_id, job, 1) is None  # the job is over: a part still queued does nothing


def test_publish_complete_lists_the_video_only_once_every_part_is_stored(app, client, auth, planned):
    app.config["PUBLISH"] = "complete"
    video_id, job, numbers = planned()
    for number in numbers[:-1]:
        assert run(app, video_id, job, number) == "done"
        assert client.get(f"/api/video/{video_id}/").status_code == 404
        assert row(app, video_id)["status"] == "processing" and video_id not in listed(client)
    assert run(app, video_id, job, numbers[-1]) == "done"
    assert client.get(f"/api/video/{video_id}/").get_json()["status"] == "ready" and video_id in listed(client)


def test_a_retranscode_serves_the_old_version_until_the_new_one_is_complete(app, client, auth, planned):
    video_id, job, numbers = planned()
    for number in numbers:
        run(app, video_id, job, number)
    old = row(app, video_id)["hls_dir"]
    new_job, numbers = _retranscode(app, video_id)
    for number in numbers[:-1]:
        run(app, video_id, new_job, number)
        video = row(app, video_id)
        assert video["hls_dir"] == old and video["status"] == "ready" and video["growing"] is False
        assert m3u8.loads(playlist(client, video_id).get_data(as_text=True)).is_endlist
    run(app, video_id, new_job, numbers[-1])
    assert row(app, video_id)["hls_dir"] == f"{video_id}/{new_job}" and not media(app, "hls", old).exists()


def test_parts_are_planned_at_keyframes_or_on_the_grid(app, planned, clip_mpeg4):
    video_id, job, numbers = planned()
    with app.app_context():
        rows = part_state.part_rows(video_id, job)
        assert [(r.number, r.start, r.end) for r in rows] == [(0, 0, 6), (1, 6, 12), (2, 12, 18), (3, 18, None)]
    mpeg4_id, mpeg4_job, mpeg4_numbers = planned(clip_mpeg4)  # 2 s: one part, and its audio encoded once
    assert mpeg4_numbers == [-1, 0]

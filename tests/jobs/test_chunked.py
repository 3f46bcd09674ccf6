"""Chunked, progressive transcoding (issue 19) with real ffmpeg and tiny parts: any order of parts
publishes a growing first version (EVENT playlists from 0, listed, shown as processing) and the
same finished one (VOD); a part failing for good withdraws it; PUBLISH=complete waits; a
re-transcode keeps serving the old version. Huey runs inline; the parts are run by hand here, in
the order each test chooses (the workers take them in queue order)."""
import os
import re

import m3u8
import pytest

from tests.fixtures.clips import TONE_SECONDS as SECONDS
from tests.fixtures.videos import add_clip, files_below, mark_queued, media, row
from videoflix.extensions import db
from videoflix.videos import tasks
from videoflix.videos.jobs import part_state, transcoding
from videoflix.videos.jobs import parts as part_jobs
from videoflix.videos.media import ffmpeg as ffmpeg_module
from videoflix.videos.media.errors import MediaError
from videoflix.videos.models import TranscodeChunk, Video
from videoflix.videos.storage.backends import StorageUnavailable
from videoflix.videos.tasks import request_transcode

pytestmark = [pytest.mark.slow, pytest.mark.media_store]



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
        return part_jobs.run_part(video_id, job, number)


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

    monkeypatch.setattr(part_jobs.parts, "encode_part", broken)
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


def test_a_publish_meeting_the_store_away_keeps_the_parts_and_publishes_later(app, client, auth, planned,
                                                                              monkeypatch):
    """The last part's publish finds the store away: its parts stay done and stored (nothing is
    encoded again); publish_job is scheduled, and once the store is back it finishes the video."""
    video_id, job, numbers = planned()
    for number in numbers[:-1]:
        assert run(app, video_id, job, number) == "done"
    scheduled = []
    monkeypatch.setattr(tasks, "_put_publish_on_queue", lambda *args, **kwargs: scheduled.append((args, kwargs)))
    real_write = part_jobs.publishing._write

    def store_away(hls_dir, files):
        raise StorageUnavailable("The media store could not be reached.")

    monkeypatch.setattr(part_jobs.publishing, "_write", store_away)
    with app.app_context():
        tasks.transcode_part.call_local(video_id, job, numbers[-1])
    assert scheduled == [((video_id, job), {"later": 1})]  # publish_job, after STORAGE_RETRY_DELAY
    video = row(app, video_id)
    assert video["status"] == "ready" and video["growing"] is True  # still the growing version, still listed
    assert video["claimed_by"] == f"parts:0:{job}"
    assert video["error"] == "The media store could not be reached; the video is published once it is back."
    with app.app_context():
        rows = part_state.part_rows(video_id, job)
        assert [r.status for r in rows] == ["done"] * len(numbers) and {r.attempts for r in rows} == {1}
        assert part_state.unpublished_jobs() == [(video_id, job)]  # the recovery loop would publish it too

    with app.app_context():  # still away at the next attempt: scheduled again, later
        tasks.publish_job.call_local(video_id, job, later=1)
    assert scheduled[-1] == ((video_id, job), {"later": 2})

    monkeypatch.setattr(part_jobs.publishing, "_write", real_write)  # the store is back
    with app.app_context():
        tasks.publish_job.call_local(video_id, job, later=2)
    detail = client.get(f"/api/video/{video_id}/").get_json()
    assert detail["status"] == "ready" and detail["playable"] is True
    assert m3u8.loads(playlist(client, video_id).get_data(as_text=True)).is_endlist
    with app.app_context():
        assert db.session.query(TranscodeChunk).filter_by(video_id=video_id).count() == 0
    assert len(scheduled) == 2


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


def test_a_part_encodes_the_audio_first_when_nobody_does(app, client, auth, planned, clip_mpeg4):
    """MP3 audio is encoded once, by its own task; a part that finds it not taken (its task behind
    this one on the queue, or queued again after its worker died) encodes it first instead of
    waiting for it: the parts of a film never all wait for an audio nobody does."""
    video_id, job, numbers = planned(clip_mpeg4)
    assert numbers == [-1, 0]
    assert run(app, video_id, job, 0) == "done"  # the audio's task never ran
    video = row(app, video_id)
    assert video["status"] == "ready" and video["error"] is None
    assert run(app, video_id, job, -1) is None  # its own task, later: nothing left to do
    assert "mp4a.40.2" in client.get(f"/api/video/{video_id}/master.m3u8").get_data(as_text=True)


@pytest.mark.parametrize("delivery", ["app", "accel", "signed"])
def test_every_delivery_mode_serves_a_growing_video_and_never_keeps_its_playlist(app, client, auth, planned,
                                                                               delivery):
    """app: the bytes; accel: X-Accel-Redirect with the app's short Cache-Control; signed (a bucket
    only): presigned segment URLs in a playlist read again on every request (a finished playlist
    is kept in memory, a growing one never), EVENT while it grows and VOD once done."""
    if delivery == "signed" and media_store_is_local(app):
        pytest.skip("presigned URLs need a bucket")
    app.config["MEDIA_DELIVERY"] = delivery
    if delivery == "accel":
        app.config["MEDIA_ACCEL_REDIRECT"] = "/protected-media/"
    video_id, job, numbers = planned()
    run(app, video_id, job, 0)
    first = client.get(f"/api/video/{video_id}/480p/index.m3u8")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, max-age=1"
    if delivery == "accel":
        assert f"/hls/{video_id}/{job}/480p/index.m3u8" in first.headers["X-Accel-Redirect"]
        assert first.data == b""
        return
    for number in numbers[1:]:
        run(app, video_id, job, number)
    growing = m3u8.loads(first.get_data(as_text=True))
    finished = m3u8.loads(client.get(f"/api/video/{video_id}/480p/index.m3u8").get_data(as_text=True))
    assert growing.playlist_type == "event" and finished.is_endlist
    assert len(finished.segments) > len(growing.segments)
    if delivery == "signed":
        uris = [s.uri for s in growing.segments + finished.segments]
        assert all(uri.startswith("http") and "X-Amz-Signature=" in uri for uri in uris)


def media_store_is_local(app):
    from videoflix.videos.storage.keys import media_store

    with app.app_context():
        return media_store().local


def test_later_parts_yield_the_cpu_to_a_first_part(app, planned, monkeypatch):
    """Every part's ffmpeg but the first's runs at a higher niceness: a worker busy with a film's
    later parts lets the first part of a new upload (what makes it playable) go first."""
    real_lower, lowered = ffmpeg_module._lower_priority, []

    def lower(pid, niceness):
        real_lower(pid, niceness)
        try:
            lowered.append(os.getpriority(os.PRIO_PROCESS, pid) - os.getpriority(os.PRIO_PROCESS, 0))
        except ProcessLookupError:  # it ended already
            lowered.append(niceness)

    monkeypatch.setattr(ffmpeg_module, "_lower_priority", lower)
    video_id, job, numbers = planned()
    assert run(app, video_id, job, 0) == "done"
    assert lowered == []  # the first part at the worker's own priority
    for number in numbers[1:]:
        assert run(app, video_id, job, number) == "done"
    assert lowered == [10, 10, 10]
    assert row(app, video_id)["status"] == "ready"

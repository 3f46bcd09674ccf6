"""The transcode job and its state machine, with real ffmpeg on tiny clips (Huey runs inline)."""
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.object_store import local_files_only
from tests.fixtures.videos import (
    Transitions,
    add_clip,
    dead_pid,
    files_below,
    mark_queued,
    media,
    own_pid,
    queue,
    row,
    strand,
)
from videoflix.extensions import db
from videoflix.videos.jobs import state, transcoding
from videoflix.videos.models import Video
from videoflix.videos.storage.keys import source_path
from videoflix.videos.tasks import recover_on_worker_start, request_transcode

pytestmark = [pytest.mark.slow, pytest.mark.media_store]


@local_files_only
def test_upload_is_transcoded_to_ready_through_pending_and_processing(app, clip_720p):
    with Transitions(app) as seen:
        video_id = add_clip(app, clip_720p)

    assert seen.statuses == ["pending", "processing", "ready"]
    progress = [p for _, p in seen]
    assert progress == sorted(progress[:-1]) + [100] and progress[-1] == 100
    video = row(app, video_id)
    assert video["progress"] == 100 and video["error"] is None and video["attempts"] == 1
    assert video["claimed_by"] is None and video["queued_at"] is None
    assert [r["label"] for r in video["renditions"]] == ["480p", "720p"]
    assert video["renditions"][1]["width"] == 1280 and video["renditions"][1]["segments"] >= 1
    assert video["duration"] == pytest.approx(3.0, abs=0.3)
    assert video["source_size"] == clip_720p.stat().st_size
    hls = media(app, "hls", video["hls_dir"])
    assert video["thumbnail"] == f"{video['hls_dir']}/thumbnail.jpg"
    assert (hls / "thumbnail.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert {"master.m3u8", "480p/index.m3u8", "720p/index.m3u8"} <= set(files_below(hls))
    assert files_below(media(app, "work")) == []
    assert files_below(media(app, "uploads")) == [video["source_file"]]


def _corrupt_source(app, video_id, clip_corrupt):
    with app.app_context():
        path = source_path(db.session.get(Video, video_id))
    shutil.copyfile(clip_corrupt, path)


@local_files_only
def test_corrupt_source_fails_with_a_readable_error_and_is_not_retried(app, clip_360p, clip_corrupt):
    video_id = add_clip(app, clip_360p, enqueue=False)
    _corrupt_source(app, video_id, clip_corrupt)  # the stored original went bad after the upload

    with Transitions(app) as seen:
        queue(app, video_id)

    video = row(app, video_id)
    assert seen.statuses == ["pending", "processing", "failed"]
    assert video["status"] == "failed" and video["attempts"] == 1  # TRANSCODE_RETRIES is 2: not used
    assert "corrupt" in video["error"] or "not a video" in video["error"]
    assert video["hls_dir"] is None and video["queued_at"] is None and video["claimed_by"] is None
    assert files_below(media(app, "hls")) == [] and files_below(media(app, "work")) == []


def test_transient_failure_is_retried_a_bounded_number_of_times(app, clip_360p, monkeypatch):
    """The part that failed is retried (TRANSCODE_RETRIES), not the whole job: the video was
    claimed and planned once."""
    app.config["FFMPEG_BINARY"] = "/nonexistent/ffmpeg"  # starting ffmpeg fails: a transient error
    runs = []
    real = transcoding.parts.encode_part
    monkeypatch.setattr(transcoding.parts, "encode_part", lambda *a, **k: runs.append(a[3].number) or real(*a, **k))
    with Transitions(app) as seen:
        video_id = add_clip(app, clip_360p)

    video = row(app, video_id)
    assert runs == [0] * (1 + app.config["TRANSCODE_RETRIES"]) == [0, 0, 0]
    assert video["attempts"] == 1
    assert seen.statuses == ["pending", "processing", "failed"]
    assert video["status"] == "failed" and video["error"].startswith("Could not start ffmpeg")
    assert files_below(media(app, "work")) == []


def test_failed_retranscode_keeps_the_old_version_playable(app, client, auth, clip_720p):
    video_id = add_clip(app, clip_720p)
    first = row(app, video_id)
    old_files = files_below(media(app, "hls", first["hls_dir"]))

    app.config.update(FFMPEG_BINARY="/nonexistent/ffmpeg", TRANSCODE_RETRIES=0)
    with Transitions(app) as seen:
        queue(app, video_id)

    assert seen.statuses == ["ready"]  # viewers never see the video leave "ready"
    video = row(app, video_id)
    assert video["hls_dir"] == first["hls_dir"] and video["renditions"] == first["renditions"]
    assert video["progress"] == 100 and video["error"].startswith("Could not start ffmpeg")
    assert video["queued_at"] is None and video["attempts"] == 2
    assert files_below(media(app, "hls", first["hls_dir"])) == old_files
    with client.get(f"/api/video/{video_id}/480p/index.m3u8") as playlist:
        assert playlist.status_code == 200 and b"#EXTINF" in playlist.data


@local_files_only
def test_successful_retranscode_switches_version_and_deletes_the_old_folder(app, clip_720p):
    video_id = add_clip(app, clip_720p)
    first = row(app, video_id)

    with Transitions(app) as seen:
        queue(app, video_id)

    assert seen.statuses == ["ready"]
    video = row(app, video_id)
    assert video["hls_dir"] != first["hls_dir"] and video["hls_dir"].startswith(f"{video_id}/")
    assert not media(app, "hls", first["hls_dir"]).exists()
    assert "master.m3u8" in files_below(media(app, "hls", video["hls_dir"]))
    assert [p.name for p in media(app, "hls", str(video_id)).iterdir()] == [video["hls_dir"].split("/")[1]]
    assert video["thumbnail"].startswith(video["hls_dir"]) and video["attempts"] == 2


def test_a_claim_is_exclusive_and_a_stale_worker_changes_nothing(app, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    mark_queued(app, video_id)
    with app.app_context():
        first = state.claim(video_id)
    with app.app_context():  # a second worker, its own session
        assert state.claim(video_id) is None
    assert row(app, video_id)["claimed_by"] == first and row(app, video_id)["status"] == "processing"

    with app.app_context():  # the claim is dropped (as for a dead worker) and someone else takes it
        video = db.session.get(Video, video_id)
        request_transcode(video, force=True)
    assert row(app, video_id)["status"] == "ready"
    with app.app_context():
        with pytest.raises(state.ClaimLost):
            state.progress(video_id, first, 50)
        with pytest.raises(state.ClaimLost):
            state.succeed(video_id, first, "1/bogus", renditions=[], thumbnail=None, duration=1, width=2, height=2)
        state.fail(video_id, first, "stale worker")
    video = row(app, video_id)
    assert video["status"] == "ready" and video["error"] is None and video["hls_dir"] != "1/bogus"


@local_files_only
def test_worker_start_recovers_a_video_left_by_a_dead_worker(app, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    work = strand(app, video_id, pid=dead_pid())
    assert row(app, video_id)["status"] == "processing"

    recover_on_worker_start(app)

    video = row(app, video_id)
    assert video["status"] == "ready" and video["claimed_by"] is None and video["hls_dir"]
    assert not work.exists()


@local_files_only
def test_worker_start_leaves_live_claims_but_takes_over_expired_ones(app, clip_360p):
    live = add_clip(app, clip_360p, enqueue=False)
    expired = add_clip(app, clip_360p, enqueue=False)
    strand(app, live, pid=own_pid(), job="a" * 16)
    old = datetime.now(UTC) - timedelta(seconds=app.config["TRANSCODE_TIMEOUT"]) - timedelta(hours=1)
    strand(app, expired, pid=own_pid(), job="b" * 16, claimed_at=old, host="another-host")

    recover_on_worker_start(app)

    assert row(app, live)["status"] == "processing" and row(app, live)["claimed_by"]
    assert media(app, "work", "a" * 16).exists()
    assert row(app, expired)["status"] == "ready" and not media(app, "work", "b" * 16).exists()


@local_files_only
def test_deleting_a_video_deletes_its_files_only_when_committed(app, clip_360p):
    video_id = add_clip(app, clip_360p)
    video = row(app, video_id)
    source = media(app, "uploads", video["source_file"])
    assert source.exists() and media(app, "hls", video["hls_dir"]).exists()

    with app.app_context():
        db.session.delete(db.session.get(Video, video_id))
        db.session.flush()
        db.session.rollback()
    assert source.exists() and row(app, video_id) is not None

    with app.app_context():
        db.session.delete(db.session.get(Video, video_id))
        db.session.commit()
    assert row(app, video_id) is None
    assert not source.exists() and not media(app, "hls", str(video_id)).exists()

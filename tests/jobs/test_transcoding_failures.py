"""Failures around a transcode job: whatever breaks (the disk while publishing, the database, an
interrupt, a timeout, a deleted row), the claim is released or the job failed, no work folder
remains and only the version the row points at stays in hls/<id>/. Huey runs inline."""
import errno
import sqlite3
from datetime import UTC, datetime

import m3u8
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from tests.fixtures.object_store import local_files_only
from tests.fixtures.videos import Transitions, add_clip, files_below, media, queue, row
from videoflix import tasks as queues
from videoflix.extensions import db
from videoflix.videos import tasks
from videoflix.videos.jobs import part_state, state
from videoflix.videos.jobs import parts as part_jobs
from videoflix.videos.media import storyboard
from videoflix.videos.models import Video

pytestmark = [pytest.mark.slow, pytest.mark.media_store]


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def queued_without_task(app, video_id, monkeypatch):
    """The row is queued (committed) but its task never reaches the queue."""
    with monkeypatch.context() as m:
        m.setattr(tasks, "_put_on_queue", lambda video_id: None)
        queue(app, video_id)


def versions(app, video_id):
    return sorted(p.name for p in media(app, "hls", str(video_id)).iterdir())


def run_queued(app, video_id):
    """Run the video's transcode now (the retry a full disk scheduled for later)."""
    with app.app_context():
        return part_jobs.run_all_here(video_id)


@local_files_only
def test_a_full_disk_while_publishing_keeps_the_old_version_and_queues_the_video_again(app, clip_360p,
                                                                                      monkeypatch):
    video_id = add_clip(app, clip_360p)
    first = row(app, video_id)
    old_files = files_below(media(app, "hls", first["hls_dir"]))
    app.config["TRANSCODE_RETRIES"] = 0  # a full disk is not counted against the retries
    monkeypatch.setattr(part_jobs, "put_version_files", no_space)

    queue(app, video_id)

    video = row(app, video_id)
    assert state.is_chunked(video["claimed_by"]) and video["queued_at"] is not None  # the part waits, not failed
    assert video["status"] == "ready" and video["hls_dir"] == first["hls_dir"]
    with app.app_context():
        (part,) = part_state.part_rows(video_id, video["job_plan"]["job"])
        assert part.status == "queued" and part.claimed_by is None
        assert part.error == "No space left on the media disk; the transcode will run again."
    assert files_below(media(app, "hls", first["hls_dir"])) == old_files
    assert files_below(media(app, "work")) == []
    job = video["job_plan"]["job"]
    with app.app_context():
        scheduled = queues.huey.scheduled()
    assert [(t.args, t.kwargs) for t in scheduled] == [((video_id, job, 0), {"store_away": 1})]

    monkeypatch.undo()
    with app.app_context():  # the disk has room again: the scheduled run
        assert part_jobs.run_part(video_id, job, 0) == "done"
    video = row(app, video_id)
    assert video["status"] == "ready" and video["error"] is None and video["hls_dir"] != first["hls_dir"]
    assert versions(app, video_id) == [video["hls_dir"].split("/")[1]]


@local_files_only
def test_a_full_disk_on_the_first_transcode_leaves_its_part_waiting_whatever_the_retries(app, clip_360p,
                                                                                          monkeypatch):
    video_id = add_clip(app, clip_360p, enqueue=False)
    real_publish, calls = part_jobs.put_version_files, []

    def full_once(*args):
        calls.append(args)
        return no_space() if len(calls) == 1 else real_publish(*args)

    app.config["TRANSCODE_RETRIES"] = 0
    monkeypatch.setattr(part_jobs, "put_version_files", full_once)
    with Transitions(app) as seen:
        queue(app, video_id)
    assert seen.statuses == ["pending", "processing"]  # the part waits for room; the video is not failed
    job = row(app, video_id)["job_plan"]["job"]
    with app.app_context():
        (part,) = part_state.part_rows(video_id, job)
        assert part.status == "queued"
        assert part.error == "No space left on the media disk; the transcode will run again."
        assert part_jobs.run_part(video_id, job, 0) == "done"  # the scheduled retry
    video = row(app, video_id)
    assert video["status"] == "ready" and video["attempts"] == 1 and video["claimed_by"] is None
    assert video["error"] is None and len(calls) == 2
    assert versions(app, video_id) == [video["hls_dir"].split("/")[1]]
    assert files_below(media(app, "work")) == []


def test_a_database_on_a_full_disk_reads_as_a_full_disk_not_sql(app, clip_360p, monkeypatch):
    """SQLite on the full media disk fails the switch's UPDATE: staff read a sentence, no SQL."""
    video_id = add_clip(app, clip_360p, enqueue=False)

    def full(*args, **kwargs):
        raise OperationalError("UPDATE video SET status=?", {}, sqlite3.OperationalError(
            "database or disk is full"))

    app.config["TRANSCODE_RETRIES"] = 0
    monkeypatch.setattr(state, "succeed", full)
    queue(app, video_id)
    video = row(app, video_id)  # the part stays stored: only the publish waits for room
    assert video["status"] == "processing" and video["claimed_by"] == f"parts:0:{video['job_plan']['job']}"
    assert video["error"] == "No space left on the media disk; the video is published once there is room."

    monkeypatch.undo()
    with app.app_context():
        tasks.publish_job.call_local(video_id, video["job_plan"]["job"], later=1)  # the scheduled publish
    video = row(app, video_id)
    assert video["status"] == "ready" and video["error"] is None and video["attempts"] == 1


@local_files_only
def test_a_failed_switch_removes_the_new_version(app, clip_360p, monkeypatch):
    video_id = add_clip(app, clip_360p)
    first = row(app, video_id)
    app.config["TRANSCODE_RETRIES"] = 0

    def broken(*args, **kwargs):
        raise ValueError("a bug while switching")

    monkeypatch.setattr(state, "succeed", broken)
    queue(app, video_id)

    video = row(app, video_id)
    assert video["claimed_by"] is None and video["hls_dir"] == first["hls_dir"]
    assert video["error"] == "Transcoding failed: a bug while switching"
    assert versions(app, video_id) == [first["hls_dir"].split("/")[1]]
    assert files_below(media(app, "work")) == []


@local_files_only
def test_an_interrupt_while_publishing_releases_the_claim(app, clip_360p, monkeypatch):
    video_id = add_clip(app, clip_360p)
    first = row(app, video_id)
    queued_without_task(app, video_id, monkeypatch)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(state, "succeed", interrupted)
    with app.app_context(), pytest.raises(KeyboardInterrupt):
        part_jobs.run_all_here(video_id)

    video = row(app, video_id)
    assert video["claimed_by"] is None and video["queued_at"] is not None  # waiting for the re-queued task
    assert video["hls_dir"] == first["hls_dir"] and versions(app, video_id) == [first["hls_dir"].split("/")[1]]
    assert files_below(media(app, "work")) == []


def test_a_database_error_is_rolled_back_and_retried(app, clip_360p, monkeypatch):
    """A lost connection while a part reports its progress: rolled back, that part retried."""
    video_id = add_clip(app, clip_360p, enqueue=False)
    real_progress, failures = part_state.part_progress, []

    def connection_drops_once(row_id, token, seconds, video_id=None):
        if not failures:
            failures.append(seconds)
            try:  # leaves a PostgreSQL transaction unusable until it is rolled back
                db.session.execute(text("SELECT * FROM no_such_table"))
            except Exception:
                pass
            raise OperationalError("UPDATE transcode_chunk", {}, Exception("server closed the connection"))
        return real_progress(row_id, token, seconds, video_id)

    monkeypatch.setattr(part_state, "part_progress", connection_drops_once)
    monkeypatch.setattr(part_jobs.parts, "encode_part", _reporting_progress(part_jobs.parts.encode_part))
    with Transitions(app) as seen:
        queue(app, video_id)

    assert failures == [1.0]
    assert seen.statuses == ["pending", "processing", "ready"]
    video = row(app, video_id)
    assert video["status"] == "ready" and video["attempts"] == 1 and video["error"] is None


def _reporting_progress(encode_part):
    def encode(*args, progress_cb, **kwargs):
        progress_cb(1.0)
        return encode_part(*args, progress_cb=progress_cb, **kwargs)

    return encode


def test_a_video_of_an_extreme_shape_is_transcoded_at_the_first_try(app, clip_tall):
    """16x4096 (issue 18): the storyboard once asked JPEG for a 160x40960 tile, a failure taken
    for a transient one, retried, then failed."""
    app.config["TRANSCODE_RETRIES"] = 2
    with Transitions(app) as seen:
        video_id = add_clip(app, clip_tall)

    assert seen.statuses == ["pending", "processing", "ready"]
    video = row(app, video_id)
    assert video["attempts"] == 1 and video["error"] is None and video["storyboard"]
    assert [(r["width"], r["height"]) for r in video["renditions"]] == [(16, 4096)]


def test_an_encoder_refusing_its_settings_fails_the_job_without_retries(app, clip_360p, monkeypatch):
    """The storyboard planned as it was before issue 18 for a 16x4096 video (160x40960 tiles in
    two rows): JPEG refuses the sprite, which no retry changes."""
    monkeypatch.setattr(storyboard, "plan", lambda duration, width, height: storyboard.Plan(1, 12, 160, 40960, 10, 2))
    app.config["TRANSCODE_RETRIES"] = 2
    with Transitions(app) as seen:
        video_id = add_clip(app, clip_360p)

    assert seen.statuses == ["pending", "processing", "failed"]
    video = row(app, video_id)
    # ffmpeg 5 ends with JPEG's own sentence, ffmpeg 9 (the imageio-ffmpeg wheel) with the encoder's
    assert video["attempts"] == 1 and ("JPEG does not support resolutions above 65500x65500" in video["error"]
                                       or "Error while opening encoder" in video["error"])
    assert files_below(media(app, "work")) == []


def test_a_transcode_that_times_out_fails_without_retries(app, clip_360p):
    app.config["TRANSCODE_TIMEOUT"] = 0  # ffmpeg is killed at once
    with Transitions(app) as seen:
        video_id = add_clip(app, clip_360p)

    assert seen.statuses == ["pending", "processing", "failed"]
    video = row(app, video_id)
    assert video["status"] == "failed" and video["attempts"] == 1 and "timed out" in video["error"]
    assert files_below(media(app, "work")) == []


@local_files_only
def test_versions_left_by_crashed_workers_are_removed_by_the_next_success(app, clip_360p):
    video_id = add_clip(app, clip_360p)
    first = row(app, video_id)
    # a crash between publishing and the switch, and one between the switch and deleting the old
    for leftover in ("0123456789ab", "ba9876543210"):
        media(app, "hls", str(video_id), leftover).mkdir()
        (media(app, "hls", str(video_id), leftover) / "master.m3u8").write_text("#EXTM3U\n")

    queue(app, video_id)

    video = row(app, video_id)
    assert video["hls_dir"] != first["hls_dir"]
    assert versions(app, video_id) == [video["hls_dir"].split("/")[1]]


def test_a_video_deleted_while_publishing_leaves_no_folder(app, clip_360p, monkeypatch):
    video_id = add_clip(app, clip_360p, enqueue=False)
    real_publish = part_jobs.put_version_files

    def delete_then_publish(*args):
        with app.app_context():  # an admin deletes the video (its files go on commit)
            db.session.delete(db.session.get(Video, video_id))
            db.session.commit()
        return real_publish(*args)

    monkeypatch.setattr(part_jobs, "put_version_files", delete_then_publish)
    queue(app, video_id)

    assert row(app, video_id) is None
    assert not media(app, "hls", str(video_id)).exists() and files_below(media(app, "work")) == []


@local_files_only
def test_published_playlists_version_their_segment_urls(app, clip_720p):
    video_id = add_clip(app, clip_720p)
    video = row(app, video_id)
    folder = media(app, "hls", video["hls_dir"])
    version = folder.name

    for rendition in video["renditions"]:
        playlist = m3u8.load(str(folder / rendition["label"] / "index.m3u8"))
        uris = [s.uri for s in playlist.segments]
        assert len(uris) == rendition["segments"] >= 1 and playlist.is_endlist
        for uri in uris:
            name, _, query = uri.partition("?")
            assert query == f"v={version}" and (folder / rendition["label"] / name).stat().st_size > 0
    master = m3u8.load(str(folder / "master.m3u8"))
    assert [p.uri for p in master.playlists] == ["480p/index.m3u8", "720p/index.m3u8"]


def test_a_transition_is_one_update_and_reads_nothing_back(app, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    with app.app_context():
        db.session.get(Video, video_id).queued_at = datetime.now(UTC)
        db.session.commit()
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            token = state.claim(video_id)
            state.progress(video_id, token, 10)
            state.heartbeat(video_id, token)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    assert statements == ["UPDATE", "UPDATE", "UPDATE"]
    video = row(app, video_id)
    assert (video["status"], video["progress"], video["claimed_by"]) == ("processing", 10, token)

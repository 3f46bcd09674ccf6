"""`flask add-video` and `flask transcode` (Huey runs inline; real ffmpeg on tiny clips)."""
import pytest

from tests.fixtures.videos import add_clip, dead_pid, files_below, media, own_pid, row, strand
from videoflix.extensions import db
from videoflix.videos.models import Video

pytestmark = pytest.mark.slow


def add_video(runner, clip, *extra):
    return runner.invoke(args=["add-video", str(clip), "--title", "Sintel", "--description", "Open movie",
                               "--category", "Fantasy", *extra])


def test_add_video_wait_ends_ready_with_exit_code_0(app, runner, clip_720p):
    result = add_video(runner, clip_720p, "--wait")

    assert result.exit_code == 0, result.output
    assert "Video 1 stored" in result.output and "Video 1: ready." in result.output
    video = row(app, 1)
    assert (video["title"], video["description"], video["category"]) == ("Sintel", "Open movie", "Fantasy")
    assert video["status"] == "ready" and video["progress"] == 100


def test_add_video_refuses_a_file_that_is_not_a_video(app, runner, clip_audio_only):
    result = add_video(runner, clip_audio_only)

    assert result.exit_code == 1
    assert "The file contains only audio; a video is required." in result.output
    assert row(app, 1) is None and files_below(media(app, "uploads")) == []


def test_add_video_wait_exits_1_when_transcoding_fails(app, runner, clip_360p):
    app.config.update(FFMPEG_BINARY="/nonexistent/ffmpeg", TRANSCODE_RETRIES=0)

    result = add_video(runner, clip_360p, "--wait")

    assert result.exit_code == 1
    assert "Video 1 failed: Could not start ffmpeg" in result.output
    assert row(app, 1)["status"] == "failed"


def test_transcode_pending_and_failed(app, runner, clip_360p):
    waiting = [add_clip(app, clip_360p, enqueue=False) for _ in range(2)]
    app.config.update(FFMPEG_BINARY="/nonexistent/ffmpeg", TRANSCODE_RETRIES=0)
    broken = add_clip(app, clip_360p)
    assert row(app, broken)["status"] == "failed"
    app.config["FFMPEG_BINARY"] = None

    result = runner.invoke(args=["transcode", "--pending", "--wait"])
    assert result.exit_code == 0, result.output
    assert [row(app, i)["status"] for i in waiting] == ["ready", "ready"]
    assert row(app, broken)["status"] == "failed"  # --pending leaves failed videos alone

    result = runner.invoke(args=["transcode", "--failed"])
    assert result.exit_code == 0 and f"Video {broken} queued." in result.output
    assert row(app, broken)["status"] == "ready" and row(app, broken)["error"] is None

    result = runner.invoke(args=["transcode", "--failed", "--pending"])
    assert result.exit_code == 0 and "No video to transcode." in result.output


def test_transcode_finishes_a_video_whose_worker_was_killed(app, runner, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    work = strand(app, video_id, pid=dead_pid())

    result = runner.invoke(args=["transcode", str(video_id), "--wait"])

    assert result.exit_code == 0, result.output
    assert row(app, video_id)["status"] == "ready" and not work.exists()


def test_transcode_leaves_a_live_job_alone_unless_forced(app, runner, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    strand(app, video_id, pid=own_pid())

    result = runner.invoke(args=["transcode", str(video_id)])
    assert result.exit_code == 1 and "is being transcoded right now" in result.output
    assert row(app, video_id)["status"] == "processing"

    result = runner.invoke(args=["transcode", str(video_id), "--force"])
    assert result.exit_code == 0 and row(app, video_id)["status"] == "ready"


def test_transcode_needs_a_target_and_known_ids(app, runner):
    result = runner.invoke(args=["transcode"])
    assert result.exit_code == 2 and "Give video IDs, --pending or --failed." in result.output
    result = runner.invoke(args=["transcode", "42"])
    assert result.exit_code == 1 and "Video 42 does not exist." in result.output
    with app.app_context():
        assert db.session.execute(db.select(Video)).first() is None

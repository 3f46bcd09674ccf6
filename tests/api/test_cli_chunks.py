"""`flask transcode --wait` prints a chunked job's chunks done of all, and which worker holds each
running chunk, whenever that changes, from the TranscodeChunk rows its workers leave."""
import pytest

from tests.fixtures.chunk_rows import AUDIO, DONE, QUEUED, RUNNING, WEB1, WEB2, set_chunks
from tests.fixtures.videos import add_clip
from videoflix.extensions import db
from videoflix.videos.api import cli
from videoflix.videos.models import READY, TranscodeChunk, Video

pytestmark = pytest.mark.slow


@pytest.fixture
def app_config(app_config, tmp_path):
    """The job is queued, not run inline: the test plays the workers (between the command's polls)."""
    app_config.update(HUEY_IMMEDIATE=False, HUEY_FILE=str(tmp_path / "queue.sqlite3"))
    return app_config


def test_transcode_wait_prints_chunks_done_and_their_workers(app, runner, clip_360p, monkeypatch):
    video_id = add_clip(app, clip_360p, enqueue=False)

    def finish():
        with app.app_context():
            video = db.session.get(Video, video_id)
            db.session.query(TranscodeChunk).filter_by(video_id=video_id).delete()
            video.claimed_by = video.claimed_at = video.queued_at = video.job_plan = None
            video.status, video.progress, video.hls_dir = READY, 100, f"{video_id}/c0ffee00c0ffee00"
            video.renditions = [{"label": "360p"}]
            db.session.commit()

    steps = [
        lambda: None,  # still queued: no chunk yet, nothing printed
        lambda: set_chunks(app, video_id, [(AUDIO, RUNNING, WEB1), (0, RUNNING, WEB2), (1, QUEUED, None),
                                           (2, QUEUED, None)]),
        lambda: None,  # nothing changed: nothing printed again
        lambda: set_chunks(app, video_id, [(AUDIO, DONE, None), (0, DONE, None), (1, RUNNING, WEB1),
                                           (2, RUNNING, WEB2)]),
        lambda: set_chunks(app, video_id, [(AUDIO, DONE, None), (0, DONE, None), (1, DONE, None),
                                           (2, RUNNING, WEB2)]),
        finish,
    ]
    monkeypatch.setattr(cli.time, "sleep", lambda seconds: steps.pop(0)())

    result = runner.invoke(args=["transcode", str(video_id), "--wait"])

    assert result.exit_code == 0, result.output
    assert steps == []
    lines = [line for line in result.output.splitlines() if line.startswith(f"Video {video_id}")]
    assert lines == [
        f"Video {video_id} queued.",
        f"Video {video_id}: 0/4 chunks done; running: audio on web1~4026531836:4242, chunk 0 on web2~4026531836:77",
        f"Video {video_id}: 2/4 chunks done; running: chunk 1 on web1~4026531836:4242, chunk 2 on web2~4026531836:77",
        f"Video {video_id}: 3/4 chunks done; running: chunk 2 on web2~4026531836:77",
        f"Video {video_id}: ready.",
    ], result.output

"""A single-request upload is durable before its row commits (issue 13: "nothing is ever lost or
half-written"): the local store fsyncs the stored file and its directory entry first."""
import os

from tests.object_store import local_files_only
from videoflix.extensions import db
from videoflix.videos import uploads


@local_files_only
def test_the_stored_file_and_its_folder_are_fsynced_before_the_row_commits(app, clip_360p, monkeypatch):
    events = []
    real_fsync, real_commit = os.fsync, db.session.commit

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def commit():
        events.append(("commit", None))
        real_commit()

    monkeypatch.setattr(os, "fsync", fsync)
    with app.app_context(), open(clip_360p, "rb") as stream:
        monkeypatch.setattr(db.session, "commit", commit)
        video = uploads.accept(stream, filename="a.mp4", title="T", category="Drama")
        stored = os.path.realpath(os.path.join(app.config["MEDIA_ROOT"], "uploads", video.source_file))
    first_commit = events.index(("commit", None))
    synced = [path for kind, path in events[:first_commit] if kind == "fsync"]
    assert stored in synced and os.path.dirname(stored) in synced
    with open(stored, "rb") as kept:
        assert kept.read() == clip_360p.read_bytes()

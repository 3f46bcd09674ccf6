"""An upload is durable before its row commits (issue 13: "nothing is ever lost or half-written"):
the local store fsyncs the stored file and its directory entry first, whether it received the
file from a stream (a single request) or kept a finished local file (a tus upload's scratch file)."""
import os
import shutil

import pytest

from tests.object_store import local_files_only
from videoflix.extensions import db
from videoflix.videos import uploads


def recording(monkeypatch):
    """[(event, path)] of every fsync and session commit from now on."""
    events = []
    real_fsync, real_commit = os.fsync, db.session.commit

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def commit():
        events.append(("commit", None))
        real_commit()

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(db.session, "commit", commit)
    return events


@local_files_only
@pytest.mark.parametrize("given", ["stream", "path"])
def test_the_stored_file_and_its_folder_are_fsynced_before_the_row_commits(app, clip_360p, tmp_path, monkeypatch,
                                                                           given):
    local = tmp_path / "media" / "tus" / "finished"  # on the store's filesystem, as tus scratch files are
    local.parent.mkdir(parents=True)
    shutil.copyfile(clip_360p, local)
    with app.app_context(), open(local, "rb") as stream:
        events = recording(monkeypatch)
        source = {"stream": stream} if given == "stream" else {"path": local}
        video = uploads.accept(**source, filename="a.mp4", title="T", category="Drama")
        stored = os.path.realpath(os.path.join(app.config["MEDIA_ROOT"], "uploads", video.source_file))
    first_commit = events.index(("commit", None))
    synced = [path for kind, path in events[:first_commit] if kind == "fsync"]
    assert stored in synced and os.path.dirname(stored) in synced
    with open(stored, "rb") as kept:
        assert kept.read() == clip_360p.read_bytes()
    assert local.exists()  # the caller's file stays: it removes it once the row is committed
    assert (os.stat(stored).st_ino == local.stat().st_ino) == (given == "path")

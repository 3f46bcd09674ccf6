"""A finished tus upload becomes a video without a second copy of its bytes (locally the scratch
file itself is kept, under a second name), and a crash at any point of the completion leaves
either the unfinished upload or the video: never both, never neither, never a stray file."""
import errno
import io
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.live_server import file_database
from tests.fixtures.object_store import local_files_only
from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, metadata, upload_row
from tests.fixtures.videos import fsyncs_before, row
from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage import local
from videoflix.videos.storage.keys import uploads_dir
from videoflix.videos.uploads import chunks, tus
from videoflix.videos.uploads.service import accept

pytestmark = local_files_only


@pytest.fixture
def app_config(app_config, tmp_path):
    """SQLite becomes a file, so a forked process (the one that crashes) writes the same rows."""
    return file_database(app_config, tmp_path / "tus.sqlite3")


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


def start(client, staff, body):
    """An upload of `body` with all but its last byte received; its Location."""
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": str(len(body)),
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    assert patch(client, staff, location, 0, body[:-1]).status_code == 204
    return location


def patch(client, staff, location, offset, body):
    return client.patch(location, data=body, headers={**TUS, **staff, "Upload-Offset": str(offset),
                                                      "Content-Type": STREAM})


def paths(app, upload_id):
    """(the upload's scratch file, the stored file named after it)."""
    with app.app_context():
        return chunks.tus_root() / upload_id / "data", uploads_dir() / upload_id


def videos(app):
    with app.app_context():
        return db.session.execute(db.select(Video.id)).scalars().all()


def crash_at(app, upload_id, target, name, last_byte, before=False):
    """Send the last byte in a child process that dies (os._exit, like kill -9 or a power cut:
    nothing is cleaned up) as soon as `target.name` returns (or, `before`, when it is called)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        try:
            with app.app_context():
                db.engine.dispose(close=False)  # the parent's connections stay the parent's
                real = getattr(target, name)

                def then_die(*args, **kwargs):
                    if not before:
                        real(*args, **kwargs)
                    os._exit(0)

                setattr(target, name, then_die)
                upload = db.session.get(TusUpload, upload_id)
                tus.write(upload, io.BytesIO(last_byte), upload.length - 1)
        finally:
            os._exit(1)  # never reached the crash point
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child did not reach the crash point"


def lapse_lock(app, upload_id):
    """Time passes: the dead process's lock lapses."""
    with app.app_context():
        db.session.get(TusUpload, upload_id).locked_at = datetime.now(UTC) - timedelta(hours=2)
        db.session.commit()


def test_the_scratch_file_becomes_the_stored_file(client, app, staff, clip_720p):
    body = clip_720p.read_bytes()
    location = start(client, staff, body)
    scratch, _ = paths(app, id_of(location))
    inode = scratch.stat().st_ino
    done = patch(client, staff, location, len(body) - 1, body[-1:])
    assert done.status_code == 204, done.get_json()
    video = row(app, int(done.headers["Video-Id"]))
    with app.app_context():
        stored = uploads_dir() / video["source_file"]
    assert video["source_file"] == id_of(location)
    assert stored.stat().st_ino == inode and stored.stat().st_nlink == 1  # the same file, no copy
    assert stored.read_bytes() == body and not scratch.parent.exists()


def test_the_kept_file_and_its_folder_are_fsynced_before_the_row_commits(app, clip_360p, tmp_path, monkeypatch):
    """As for a file received from a stream (tests/uploads/test_durability.py): a file kept by a link
    is on the disk, and so is its new name, before the row names it."""
    finished = tmp_path / "media" / "tus" / "finished"  # on the store's filesystem, as scratch files are
    finished.parent.mkdir(parents=True)
    shutil.copyfile(clip_360p, finished)
    synced = fsyncs_before(monkeypatch, db.session, "commit")
    with app.app_context():
        video = accept(path=finished, filename="a.mp4", title="T", category="Drama")
        stored = os.path.realpath(uploads_dir() / video.source_file)
    assert stored in synced() and os.path.dirname(stored) in synced()
    assert os.stat(stored).st_ino == finished.stat().st_ino  # kept, not copied
    assert finished.exists()  # the caller's name stays: it removes it once the row is committed


def test_another_filesystem_gets_a_copy(client, app, staff, clip_360p, monkeypatch):
    def cross_device(source, dest):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(local.os, "link", cross_device)
    body = clip_360p.read_bytes()
    location = start(client, staff, body)
    done = patch(client, staff, location, len(body) - 1, body[-1:])
    assert done.status_code == 204, done.get_json()
    scratch, stored = paths(app, id_of(location))
    assert stored.read_bytes() == body and not scratch.parent.exists()


def test_a_refused_file_leaves_nothing(client, app, staff, clip_text):
    body = clip_text.read_bytes()
    location = start(client, staff, body)
    assert patch(client, staff, location, len(body) - 1, body[-1:]).status_code == 422
    scratch, stored = paths(app, id_of(location))
    assert not scratch.parent.exists() and not stored.exists() and upload_row(app, id_of(location)) is None


def test_a_crash_after_storing_leaves_the_upload_which_a_retry_completes(client, app, staff, clip_360p):
    body = clip_360p.read_bytes()
    location = start(client, staff, body)
    upload_id = id_of(location)
    crash_at(app, upload_id, local.LocalStore, "link_file", body[-1:])

    scratch, stored = paths(app, upload_id)
    assert upload_row(app, upload_id)["status"] == "uploading" and videos(app) == []
    assert scratch.read_bytes() == body and stored.stat().st_ino == scratch.stat().st_ino
    locked = patch(client, staff, location, len(body), b"")
    assert locked.status_code == 423  # the dead process's lock, held for the completion
    lapse_lock(app, upload_id)
    head = client.head(location, headers={**TUS, **staff})
    assert head.headers["Upload-Offset"] == str(len(body))

    done = patch(client, staff, location, len(body), b"")
    assert done.status_code == 204, done.get_json()
    assert videos(app) == [int(done.headers["Video-Id"])]
    assert row(app, int(done.headers["Video-Id"]))["source_file"] == upload_id
    assert stored.read_bytes() == body and not scratch.parent.exists()
    assert sorted(p.name for p in stored.parent.iterdir()) == [upload_id]


def test_a_crash_after_storing_then_expiry_leaves_nothing(client, app, staff, clip_360p):
    body = clip_360p.read_bytes()
    upload_id = id_of(start(client, staff, body))
    crash_at(app, upload_id, local.LocalStore, "link_file", body[-1:])
    with app.app_context():
        assert tus.sweep_expired(datetime.now(UTC) + timedelta(days=2)) == [upload_id]
    scratch, stored = paths(app, upload_id)
    assert not scratch.parent.exists() and not stored.exists() and videos(app) == []


def test_a_crash_after_the_commit_leaves_the_video_and_a_retry_gets_it(client, app, staff, clip_360p):
    body = clip_360p.read_bytes()
    location = start(client, staff, body)
    upload_id = id_of(location)
    # The row and the upload's `done` committed; the scratch name was not yet removed.
    crash_at(app, upload_id, chunks.ScratchChunks, "delete", body[-1:], before=True)
    scratch, stored = paths(app, upload_id)
    [video_id] = videos(app)
    assert upload_row(app, upload_id)["status"] == "done" and upload_row(app, upload_id)["video_id"] == video_id

    lapse_lock(app, upload_id)
    again = patch(client, staff, location, len(body), b"")
    assert again.status_code == 204 and again.headers["Video-Id"] == str(video_id)
    assert videos(app) == [video_id]
    with app.app_context():
        assert tus.sweep_expired(datetime.now(UTC) + timedelta(days=2)) == [upload_id]
    assert not scratch.parent.exists() and stored.read_bytes() == body  # the video's file stays

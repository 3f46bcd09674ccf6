"""What unfinished tus uploads may hold (issue 18, finding 8): the sweep never deletes an upload a
request is completing (the suspected race, proven on the old code: the sweep deleted the row and
the new video's original mid-completion), a creation must fit the free space of the disk that
will hold its bytes (507), and a staff member has at most TUS_MAX_UNFINISHED unfinished uploads
(429)."""
import hashlib
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.live_server import file_database, serve
from tests.fixtures.object_store import local_files_only
from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, kept, metadata, upload_row
from tests.fixtures.videos import row
from videoflix.extensions import db
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage.keys import Sources, sources
from videoflix.videos.uploads import tus

pytestmark = pytest.mark.media_store


@pytest.fixture
def app_config(app_config, tmp_path):
    """SQLite becomes a file, so the sweep (its own session) and the request write the same rows
    over their own connections, as a worker and a web process do; no upload size limit but the disk."""
    app_config["MAX_UPLOAD_MB"] = 10 ** 9
    return file_database(app_config, tmp_path / "tus.sqlite3")


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


def create(client, headers, length):
    return client.post("/api/uploads/", headers={**TUS, **headers, "Upload-Length": str(length),
                                                 "Upload-Metadata": metadata()})


def patch(client, headers, location, offset, body):
    return client.patch(location, data=body, headers={**TUS, **headers, "Upload-Offset": str(offset),
                                                      "Content-Type": STREAM})


def uploads(app):
    with app.app_context():
        return db.session.execute(db.select(TusUpload.id)).scalars().all()


def expire(app, upload_id, when=None):
    with app.app_context():
        db.session.get(TusUpload, upload_id).expires_at = when or datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()


# ------------------------------------------------------------------------------------ the sweep

def test_a_sweep_while_the_last_patch_completes_leaves_it_alone(client, app, staff, clip_360p, monkeypatch):
    body = clip_360p.read_bytes()
    location = create(client, staff, len(body)).headers["Location"]
    upload_id = id_of(location)
    assert patch(client, staff, location, 0, body[:-1]).status_code == 204
    real_keep, swept = Sources._keep, []

    def keep_then_sweep(self, *args, **kwargs):
        """The original is stored under the upload's id; the upload expires meanwhile (a long
        probe) and the worker's sweep runs, before the completion commits."""
        name = real_keep(self, *args, **kwargs)
        with app.app_context():
            expire(app, upload_id)
            swept.append(tus.sweep_expired())
        return name

    monkeypatch.setattr(Sources, "_keep", keep_then_sweep)
    done = patch(client, staff, location, len(body) - 1, body[-1:])
    monkeypatch.undo()

    assert done.status_code == 204, done.get_json()
    assert swept == [[]]  # the completion held the upload's lock: nothing swept
    video = row(app, int(done.headers["Video-Id"]))
    assert video["source_file"] == upload_id and video["status"] == "ready"
    with app.app_context(), sources().open(upload_id) as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == hashlib.sha256(body).hexdigest()
    assert upload_row(app, upload_id)["status"] == "done"

    with app.app_context():  # the next sweep deletes the finished upload, never the video's original
        assert tus.sweep_expired() == [upload_id]
        assert sources().exists(upload_id)
    assert upload_row(app, upload_id) is None and not kept(app, upload_id)


def test_a_sweep_leaves_an_upload_a_request_is_writing_to(client, app, staff):
    location = create(client, staff, 10).headers["Location"]
    upload_id = id_of(location)
    patch(client, staff, location, 0, b"abcd")
    expire(app, upload_id)
    with app.app_context():
        lock = tus.locked(upload_id).__enter__()  # a PATCH under way (it found the upload unexpired)
        assert tus.sweep_expired() == []
        assert upload_row(app, upload_id) is not None and kept(app, upload_id)
        lock.__exit__(None, None, None)
        assert tus.sweep_expired() == [upload_id]
    assert upload_row(app, upload_id) is None and not kept(app, upload_id)


def test_a_sweep_takes_over_the_lock_of_a_dead_request(client, app, staff):
    location = create(client, staff, 10).headers["Location"]
    upload_id = id_of(location)
    expire(app, upload_id)
    with app.app_context():
        tus.locked(upload_id).__enter__()  # its process died holding it
        later = datetime.now(UTC) + timedelta(seconds=app.config["TUS_LOCK_SECONDS"] + 1)
        assert tus.sweep_expired(later) == [upload_id]
    assert upload_row(app, upload_id) is None and not kept(app, upload_id)


# ------------------------------------------------------------------------------------ free space

def free_bytes(app):
    with app.app_context():
        return tus.chunks().free_bytes()


def test_an_upload_larger_than_the_free_space_is_507(client, app, staff):
    response = create(client, staff, 2 * free_bytes(app) + 10 ** 9)
    assert response.status_code == 507
    assert response.get_json()["detail"].startswith("Not enough free space for an upload of ")
    assert "Location" not in response.headers and uploads(app) == []


@local_files_only  # with the bucket, parts wait there: only the completion's local copy counts
def test_unfinished_uploads_keep_the_room_they_still_need(client, app, staff):
    share = free_bytes(app) * 6 // 10
    first = create(client, staff, share)
    assert first.status_code == 201
    second = create(client, staff, share)  # fits the disk, but not beside the first one's bytes to come
    assert second.status_code == 507
    assert "besides what unfinished uploads still need" in second.get_json()["detail"]
    assert client.delete(first.headers["Location"], headers={**TUS, **staff}).status_code == 204
    assert create(client, staff, share).status_code == 201


# ------------------------------------------------------------------------------------ per staff member

def test_unfinished_uploads_per_staff_member_are_capped(client, app, staff, make_user):
    app.config["TUS_MAX_UNFINISHED"] = 2
    first, second = (create(client, staff, 4).headers["Location"] for _ in range(2))
    refused = create(client, staff, 4)
    assert refused.status_code == 429
    assert refused.get_json() == {"detail": "You have 2 unfinished uploads, the most allowed (TUS_MAX_UNFINISHED): "
                                            "finish or delete one before starting another."}
    assert len(uploads(app)) == 2

    make_user("other@example.com", staff=True)  # the cap is each staff member's own
    assert create(client, bearer(client, "other@example.com"), 4).status_code == 201

    assert client.delete(first, headers={**TUS, **staff}).status_code == 204
    third = create(client, staff, 4)
    assert third.status_code == 201
    expire(app, id_of(second))  # an expired upload no longer counts (the sweep deletes it)
    with app.app_context():  # nor does a finished one (it became a video)
        db.session.get(TusUpload, id_of(third.headers["Location"])).status = "done"
        db.session.commit()
    assert [create(client, staff, 4).status_code for _ in range(3)] == [201, 201, 429]


def test_no_cap_when_tus_max_unfinished_is_0(client, app, staff):
    app.config["TUS_MAX_UNFINISHED"] = 0
    assert {create(client, staff, 4).status_code for _ in range(25)} == {201}


def test_creations_at_once_never_pass_the_cap(app, staff):
    """Four creations of one staff member at the same moment, one place left: one gets it."""
    app.config["TUS_MAX_UNFINISHED"] = 1
    start = threading.Barrier(4)

    def create_over_http(base):
        request = urllib.request.Request(f"{base}/api/uploads/", method="POST", headers={
            **TUS, **staff, "Upload-Length": "4", "Upload-Metadata": metadata()})
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    with serve(app) as base, ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: create_over_http(base), range(4)))
    assert sorted(statuses) == [201, 429, 429, 429]
    assert len(uploads(app)) == 1

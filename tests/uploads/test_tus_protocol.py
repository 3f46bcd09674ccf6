"""tus 1.0.0 at /api/uploads/, request by request (Flask's test client): headers, refusals, the
upload's row and its scratch file. tests/e2e/test_tus_clients.py runs real clients against a server."""
import hashlib
from base64 import b64encode
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.object_store import local_files_only
from tests.fixtures.tus_uploads import FIELDS, STREAM, TUS, bearer, id_of, kept, metadata, received, upload_row
from tests.fixtures.videos import row
from videoflix.extensions import db
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.uploads import chunks, tus
from videoflix.videos.uploads.headers import UploadLocked

pytestmark = pytest.mark.media_store

ORIGIN = "http://127.0.0.1:5500"


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


def create(client, headers, length, fields=None, **kwargs):
    return client.post("/api/uploads/", headers={**TUS, **headers, "Upload-Length": str(length),
                                                 "Upload-Metadata": metadata(fields)}, **kwargs)


def patch(client, headers, location, offset, body, **extra):
    return client.patch(location, data=body, headers={**TUS, **headers, "Upload-Offset": str(offset),
                                                      "Content-Type": STREAM, **extra})


def test_options_announces_the_server(client, app):
    response = client.options("/api/uploads/", headers={"Origin": ORIGIN})
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Extension"] == "creation,creation-with-upload,termination,expiration,checksum"
    assert response.headers["Tus-Max-Size"] == str(app.config["MAX_UPLOAD_MB"] * 1024 * 1024)
    assert response.headers["Tus-Checksum-Algorithm"] == "sha1"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Upload-Offset", "Location", "Upload-Expires", "Upload-Length", "Video-Id", "Tus-Resumable"} <= exposed


def test_create_head_patch_and_the_bytes_on_disk(client, app, staff):
    created = create(client, staff, 10)
    assert created.status_code == 201, created.get_json()
    location = created.headers["Location"]
    upload_id = id_of(location)
    assert len(upload_id) == 32 and created.headers["Tus-Resumable"] == "1.0.0"
    stored = upload_row(app, upload_id)
    assert stored["length"] == 10 and stored["upload_metadata"] == FIELDS and stored["status"] == "uploading"
    assert stored["expires_at"] - datetime.now(UTC) > timedelta(hours=23)
    assert created.headers["Upload-Expires"].endswith("GMT")

    with app.app_context():  # expiry slides with every write
        db.session.get(TusUpload, upload_id).expires_at = datetime.now(UTC) + timedelta(minutes=1)
        db.session.commit()
    patched = patch(client, staff, location, 0, b"abcd")
    assert patched.headers["Upload-Offset"] == "4" and patched.headers["Upload-Expires"].endswith("GMT")
    assert upload_row(app, upload_id)["expires_at"] - datetime.now(UTC) > timedelta(hours=23)
    head = client.head(location, headers={**TUS, **staff})
    assert head.status_code == 200
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("4", "10")
    assert head.headers["Cache-Control"] == "no-store" and "Upload-Expires" in head.headers
    assert received(app, upload_id) == b"abcd"


def test_wrong_offset_is_409_and_nothing_is_written(client, app, staff):
    location = create(client, staff, 10).headers["Location"]
    patch(client, staff, location, 0, b"abcd")
    response = patch(client, staff, location, 2, b"xx")
    assert response.status_code == 409
    assert "does not match the 4 bytes" in response.get_json()["detail"]
    assert received(app, id_of(location)) == b"abcd"


def test_past_the_length_is_413_and_nothing_is_kept(client, app, staff):
    location = create(client, staff, 6).headers["Location"]
    patch(client, staff, location, 0, b"abcd")
    response = patch(client, staff, location, 4, b"efgh")
    assert response.status_code == 413 and response.get_json()["detail"]
    assert received(app, id_of(location)) == b"abcd"


def test_past_tus_max_size_is_413_at_creation(client, app, staff):
    response = create(client, staff, app.config["MAX_UPLOAD_MB"] * 1024 * 1024 + 1)
    assert response.status_code == 413
    assert "larger than the limit" in response.get_json()["detail"]
    with app.app_context():
        assert db.session.execute(db.select(TusUpload)).first() is None


def test_checksum_mismatch_is_460_and_a_match_is_kept(client, app, staff):
    location = create(client, staff, 8).headers["Location"]
    wrong = "sha1 " + b64encode(hashlib.sha1(b"other").digest()).decode()
    response = patch(client, staff, location, 0, b"abcd", **{"Upload-Checksum": wrong})
    assert response.status_code == 460
    assert received(app, id_of(location)) == b""
    right = "sha1 " + b64encode(hashlib.sha1(b"abcd").digest()).decode()
    assert patch(client, staff, location, 0, b"abcd", **{"Upload-Checksum": right}).status_code == 204
    assert received(app, id_of(location)) == b"abcd"


def test_wrong_content_type_is_415_and_missing_version_412(client, staff):
    location = create(client, staff, 4).headers["Location"]
    response = client.patch(location, data=b"ab", headers={**TUS, **staff, "Upload-Offset": "0",
                                                           "Content-Type": "application/octet-stream"})
    assert response.status_code == 415 and response.get_json()["detail"]
    response = client.head(location, headers=staff)
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"
    response = client.patch(location, data=b"ab", headers={**staff, "Tus-Resumable": "0.2.2",
                                                           "Upload-Offset": "0", "Content-Type": STREAM})
    assert response.status_code == 412 and response.get_json()["detail"] == "Tus-Resumable 1.0.0 is required."


def test_metadata_is_checked_like_every_upload(client, app, staff):
    response = create(client, staff, 4, {"filename": "a.mp4", "category": "Drama"})
    assert response.status_code == 400
    assert response.get_json() == {"title": ["A title of 1 to 200 characters is required."]}
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "4",
                                                     "Upload-Metadata": "title !!!"})
    assert response.status_code == 400 and "base64" in response.get_json()["detail"]
    with app.app_context():
        assert db.session.execute(db.select(TusUpload)).first() is None
    assert not list((tus_root(app)).glob("*")) if tus_root(app).exists() else True


def tus_root(app):
    with app.app_context():
        return chunks.tus_root()


def test_anonymous_is_401_and_non_staff_403(client, app, make_user, staff):
    location = create(client, staff, 4).headers["Location"]
    make_user("viewer@example.com")
    viewer = bearer(client, "viewer@example.com")
    for method in ("post", "head", "patch", "delete"):
        url = "/api/uploads/" if method == "post" else location
        anonymous = getattr(client, method)(url, headers={**TUS, "Upload-Length": "4", "Upload-Offset": "0",
                                                          "Content-Type": STREAM})
        assert anonymous.status_code == 401, method
        forbidden = getattr(client, method)(url, headers={**TUS, **viewer, "Upload-Length": "4",
                                                          "Upload-Offset": "0", "Content-Type": STREAM})
        assert forbidden.status_code == 403, method
        if method != "head":
            assert anonymous.get_json() == {"detail": "Authentication credentials were not provided."}
            assert forbidden.get_json() == {"detail": "You do not have permission to perform this action."}
    assert upload_row(app, id_of(location))["status"] == "uploading"


def test_another_staff_members_upload_is_404(client, make_user, staff):
    location = create(client, staff, 4).headers["Location"]
    make_user("other@example.com", staff=True)
    other = bearer(client, "other@example.com")
    assert client.head(location, headers={**TUS, **other}).status_code == 404
    assert patch(client, other, location, 0, b"ab").status_code == 404


def test_cookie_authenticated_writes_from_a_foreign_origin_are_refused(client, app, make_user, staff):
    location = create(client, staff, 4).headers["Location"]
    client.post("/api/login/", json={"email": "staff@example.com", "password": "correct-horse-battery"})
    for method in ("patch", "delete"):
        response = getattr(client, method)(location, data=b"ab", headers={
            **TUS, "Upload-Offset": "0", "Content-Type": STREAM, "Origin": "https://evil.example"})
        assert response.status_code == 403
        assert response.get_json() == {"detail": "Cross-site request refused: origin not allowed."}
    assert received(app, id_of(location)) == b""
    allowed = client.patch(location, data=b"ab", headers={**TUS, "Upload-Offset": "0", "Content-Type": STREAM,
                                                           "Origin": ORIGIN})
    assert allowed.status_code == 204 and allowed.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_delete_terminates(client, app, staff):
    location = create(client, staff, 4).headers["Location"]
    patch(client, staff, location, 0, b"ab")
    assert client.delete(location, headers={**TUS, **staff}).status_code == 204
    assert upload_row(app, id_of(location)) is None and not kept(app, id_of(location))
    assert client.head(location, headers={**TUS, **staff}).status_code == 404


def test_a_locked_upload_refuses_a_second_writer(client, app, staff):
    """The lock is the row's: a holder elsewhere (another process) makes a PATCH 423, until its
    lock lapses after TUS_LOCK_SECONDS without a refresh (its holder died)."""
    location = create(client, staff, 4).headers["Location"]
    upload_id = id_of(location)
    with app.app_context():
        held = tus.locked(upload_id).__enter__()
        assert tus.locked(upload_id)._claim(TusUpload.locked_by.is_(None)) is None
    response = patch(client, staff, location, 0, b"ab")
    assert response.status_code == 423 and "Another request" in response.get_json()["detail"]
    with app.app_context():
        db.session.get(TusUpload, upload_id).locked_at = datetime.now(UTC) - timedelta(minutes=5)
        db.session.commit()
    assert patch(client, staff, location, 0, b"ab").status_code == 204
    assert upload_row(app, upload_id)["locked_by"] is None and held.token


class TakenOverWhileWaiting:
    """A request body whose second chunk arrives only after the lock lapsed and another request
    took it over (its client's retry: the connection looked dead)."""

    def __init__(self, app, upload_id):
        self.app, self.upload_id, self.reads = app, upload_id, 0

    def read(self, size=-1):
        self.reads += 1
        if self.reads == 2:
            db.session.execute(db.update(TusUpload).where(TusUpload.id == self.upload_id)
                               .values(locked_by="another request", locked_at=datetime.now(UTC)))
            db.session.commit()
        return (b"A" if self.reads == 1 else b"B") * min(size, chunks.CHUNK)


def test_a_request_that_lost_its_lock_writes_nothing_more(client, app, staff, monkeypatch):
    upload_id = id_of(create(client, staff, 4 * chunks.CHUNK).headers["Location"])
    monkeypatch.setattr(tus, "LOCK_REFRESH_SECONDS", 0)  # every chunk checks the lock in the database
    with app.app_context(), pytest.raises(UploadLocked):
        tus.write(db.session.get(TusUpload, upload_id), TakenOverWhileWaiting(app, upload_id), 0)
    kept_bytes = received(app, upload_id)
    assert b"B" not in kept_bytes and len(kept_bytes) <= chunks.CHUNK
    assert upload_row(app, upload_id)["locked_by"] == "another request"  # the new holder's, untouched


def test_expired_upload_is_410_then_swept(client, app, staff):
    location = create(client, staff, 4).headers["Location"]
    upload_id = id_of(location)
    patch(client, staff, location, 0, b"ab")
    with app.app_context():
        db.session.get(TusUpload, upload_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    gone = client.head(location, headers={**TUS, **staff})
    assert gone.status_code == 410
    assert patch(client, staff, location, 2, b"cd").status_code == 410
    assert kept(app, upload_id)
    with app.app_context():
        assert tus.sweep_expired() == [upload_id]
    assert upload_row(app, upload_id) is None and not kept(app, upload_id)
    assert client.head(location, headers={**TUS, **staff}).status_code == 404


@local_files_only  # the s3 twin: tests/uploads/test_tus_s3.py
def test_sweep_removes_orphan_scratch_folders_only_when_old(app):
    import os

    with app.app_context():
        young, old = chunks.tus_root() / ("a" * 32), chunks.tus_root() / ("b" * 32)
        young.mkdir(parents=True)
        old.mkdir()
        past = (datetime.now(UTC) - timedelta(days=2)).timestamp()
        os.utime(old, (past, past))
        assert tus.sweep_expired() == []
        assert young.exists() and not old.exists()


def test_refused_file_is_422_and_nothing_is_kept(client, app, staff, clip_text):
    body = clip_text.read_bytes()
    location = create(client, staff, len(body)).headers["Location"]
    response = patch(client, staff, location, 0, body)
    assert response.status_code == 422
    assert response.get_json()["detail"]
    assert upload_row(app, id_of(location)) is None and not kept(app, id_of(location))
    with app.app_context():
        from videoflix.videos.models import Video

        assert db.session.execute(db.select(Video)).first() is None


def test_creation_with_upload_completes_a_video(client, app, staff, clip_720p):
    body = clip_720p.read_bytes()
    response = create(client, staff, len(body), data=body, content_type=STREAM)
    assert response.status_code == 201, response.get_json()
    assert response.headers["Upload-Offset"] == str(len(body))
    video_id = int(response.headers["Video-Id"])
    video = row(app, video_id)
    assert (video["title"], video["category"], video["original_filename"]) == ("Resumed", "Drama", "clip.mp4")
    assert video["status"] == "ready" and video["source_size"] == len(body)  # HUEY_IMMEDIATE: transcoded inline
    upload_id = id_of(response.headers["Location"])
    assert upload_row(app, upload_id)["video_id"] == video_id and not kept(app, upload_id)
    again = patch(client, staff, response.headers["Location"], len(body), b"")
    assert again.status_code == 204 and again.headers["Video-Id"] == str(video_id)


def test_the_worker_sweeps_at_start_and_every_15_minutes_and_so_does_the_cli(client, app, staff, runner):
    from videoflix.tasks import _worker_start_hooks, queue_of

    locations = [create(client, staff, 4).headers["Location"] for _ in range(3)]
    with app.app_context():
        for upload in db.session.execute(db.select(TusUpload)).scalars():
            upload.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
        due = {t.name for t in queue_of(app).read_periodic(datetime(2026, 11, 30, 17, 15))}
        assert any(name.endswith("sweep_expired_uploads") for name in due)
        assert not queue_of(app).read_periodic(datetime(2026, 11, 30, 17, 16))
    assert tus.sweep_on_worker_start in _worker_start_hooks
    task = tus.sweep_expired_uploads.bound(app).s()
    queue_of(app).execute(task)  # as the worker runs it: no app context around it
    assert all(upload_row(app, id_of(location)) is None for location in locations)
    location = create(client, staff, 4).headers["Location"]
    with app.app_context():
        db.session.get(TusUpload, id_of(location)).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    result = runner.invoke(args=["tus", "sweep"])
    assert result.output == "1 expired upload(s) deleted.\n"
    assert not kept(app, id_of(location))


def test_the_lock_holds_while_the_finished_file_is_probed(client, app, staff, clip_720p, monkeypatch):
    """Completion (copy into the store, probe) may outlast TUS_LOCK_SECONDS: a retried last PATCH
    meanwhile must get 423, never make a second video."""
    app.config["TUS_LOCK_SECONDS"] = 0  # any lock not held ahead lapses at once
    body = clip_720p.read_bytes()
    location = create(client, staff, len(body)).headers["Location"]
    accept, seen = tus.accept, []

    def accept_while_another_request_tries(*args, **kwargs):
        with pytest.raises(UploadLocked):
            tus.locked(id_of(location)).__enter__()
        seen.append(True)
        return accept(*args, **kwargs)

    monkeypatch.setattr(tus, "accept", accept_while_another_request_tries)
    response = patch(client, staff, location, 0, body)
    assert response.status_code == 204 and seen == [True]
    assert upload_row(app, id_of(location))["locked_by"] is None


def test_a_cross_origin_patch_is_preflighted(client, staff):
    location = create(client, staff, 4).headers["Location"]
    preflight = client.options(location, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "tus-resumable,upload-offset,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"tus-resumable", "upload-offset", "content-type"} <= allowed

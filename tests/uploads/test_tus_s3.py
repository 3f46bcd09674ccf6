"""tus with MEDIA_STORAGE=s3 (issue 13): the chunks wait in the bucket as parts tus/<id>/<offset>,
so any web process continues any upload; against a real SeaweedFS (tests.fixtures.object_store)."""
import io
import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, metadata, upload_row
from tests.fixtures.videos import row
from videoflix import create_app
from videoflix.extensions import REDIS_EXTENSION, db
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage.keys import media_store
from videoflix.videos.uploads import tus

pytestmark = pytest.mark.media_store


@pytest.fixture
def app_config(app_config, s3_settings, tmp_path):
    app_config.update(s3_settings)
    if app_config["SQLALCHEMY_DATABASE_URI"] == "sqlite://":  # a second app must see the same rows
        app_config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/shared.sqlite3"
    return app_config


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


def keys(app, prefix):
    with app.app_context():
        return media_store().list(prefix)


def create(client, headers, length):
    response = client.post("/api/uploads/", headers={**TUS, **headers, "Upload-Length": str(length),
                                                     "Upload-Metadata": metadata()})
    assert response.status_code == 201, response.get_json()
    return response.headers["Location"]


def patch(client, headers, location, offset, body):
    return client.patch(location, data=body, headers={**TUS, **headers, "Upload-Offset": str(offset),
                                                      "Content-Type": STREAM})


def offset_of(client, headers, location):
    head = client.head(location, headers={**TUS, **headers})
    assert head.status_code == 200
    return int(head.headers["Upload-Offset"])


def test_each_patch_becomes_a_part_and_the_last_one_a_video_in_the_bucket(app, client, staff, clip_360p):
    body = clip_360p.read_bytes()
    location = create(client, staff, len(body))
    upload_id = id_of(location)
    cuts = [0, 10_000, 50_000, len(body)]
    for start, end in zip(cuts[:-2], cuts[1:-1], strict=True):
        answer = patch(client, staff, location, start, body[start:end])
        assert answer.status_code == 204 and answer.headers["Upload-Offset"] == str(end)
        assert offset_of(client, staff, location) == end
    assert keys(app, f"tus/{upload_id}") == [f"tus/{upload_id}/{0:020d}", f"tus/{upload_id}/{10_000:020d}"]
    with app.app_context():
        assert media_store().read(f"tus/{upload_id}/{10_000:020d}") == body[10_000:50_000]
    assert patch(client, staff, location, 0, b"x").status_code == 409  # the offset is the parts' end

    done = patch(client, staff, location, 50_000, body[50_000:])
    assert done.status_code == 204, done.get_json()
    video = row(app, int(done.headers["Video-Id"]))
    assert video["source_size"] == len(body) and video["original_filename"] == "clip.mp4"
    assert video["source_file"] == upload_id  # a retry after a crash would replace it, not add one
    with app.app_context():
        assert media_store().read(f"uploads/{video['source_file']}") == body
    assert keys(app, f"tus/{upload_id}") == [] and upload_row(app, upload_id)["status"] == "done"
    assert not os.path.exists(os.path.join(app.config["MEDIA_ROOT"], "tus"))  # no local scratch


def test_a_second_web_process_continues_the_upload(app, app_config, client, staff, clip_360p, tmp_path):
    body = clip_360p.read_bytes()
    location = create(client, staff, len(body))
    assert patch(client, staff, location, 0, body[:30_000]).status_code == 204
    other = create_app({**app_config, "MEDIA_ROOT": str(tmp_path / "other-media"),
                        "MEDIA_SCRATCH": str(tmp_path / "other-scratch")})
    with other.test_client() as second:
        assert offset_of(second, staff, location) == 30_000
        done = patch(second, staff, location, 30_000, body[30_000:])
    assert done.status_code == 204, done.get_json()
    video = row(app, int(done.headers["Video-Id"]))
    with app.app_context():
        assert media_store().read(f"uploads/{video['source_file']}") == body
    with other.app_context():
        db.engine.dispose()
    client = other.extensions.get(REDIS_EXTENSION)
    if client is not None:  # the second app's Redis pool (with TEST_REDIS_URL)
        client.connection_pool.disconnect()


class CutShort(io.RawIOBase):
    """A request body whose client goes away after `data`."""

    def __init__(self, data):
        self.data = data

    def read(self, size=-1):
        if not self.data:
            raise OSError("connection reset")
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def test_a_patch_cut_short_keeps_what_arrived_as_its_own_part(app, client, staff):
    upload_id = id_of(create(client, staff, 100))
    with app.app_context(), pytest.raises(OSError):
        tus.write(db.session.get(TusUpload, upload_id), CutShort(b"a" * 30), 0)
    assert keys(app, f"tus/{upload_id}") == [f"tus/{upload_id}/{0:020d}"]
    with app.app_context():
        assert tus.current_offset(upload_id) == 30
        assert upload_row(app, upload_id)["locked_by"] is None


def test_the_sweep_deletes_the_parts_of_expired_and_orphaned_uploads(app, client, staff):
    location = create(client, staff, 100)
    upload_id = id_of(location)
    patch(client, staff, location, 0, b"ab")
    live = id_of(create(client, staff, 100))
    patch(client, staff, f"/api/uploads/{live}", 0, b"cd")
    with app.app_context():
        db.session.get(TusUpload, upload_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
        orphan = "c" * 32  # parts whose row is gone (a creation or deletion that crashed)
        media_store().put_file(f"tus/{orphan}/{0:020d}", __file__)
        assert tus.sweep_expired() == [upload_id]
    assert keys(app, f"tus/{upload_id}") == [] and upload_row(app, upload_id) is None
    assert keys(app, f"tus/{orphan}") and keys(app, f"tus/{live}")  # young orphans may still be written
    with app.app_context():
        assert tus.sweep_expired(datetime.now(UTC) + timedelta(days=2)) == [live]
    assert keys(app, "tus") == []

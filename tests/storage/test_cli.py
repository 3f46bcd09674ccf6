"""`flask storage init|check|migrate` against a real SeaweedFS (tests.fixtures.object_store);
migrate across filesystems (tests.fixtures.filesystems), with unfinished tus uploads."""
import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, metadata
from tests.fixtures.videos import add_clip, media, row
from videoflix.extensions import db
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage.keys import STORE_KEY, media_store, read_hls
from videoflix.videos.storage.s3 import S3Store

pytestmark = pytest.mark.media_store


@pytest.fixture
def app_config(app_config, s3_settings):
    """Local media (MEDIA_STORAGE=local) with the S3_* settings of a fresh bucket prefix."""
    app_config.update({**s3_settings, "MEDIA_STORAGE": "local", "CORS_ORIGINS": ["http://127.0.0.1:5500"]})
    return app_config


def bucket(app):
    with app.app_context():
        return S3Store.from_config(app.config)


def test_init_creates_the_bucket_sets_cors_and_checks_anonymous_reads(app, runner, seaweedfs):
    app.config["S3_BUCKET"] = "vf-init-" + app.config["S3_PREFIX"][2:]
    result = runner.invoke(args=["storage", "init"])
    assert result.exit_code == 0, result.output
    assert f"Bucket {app.config['S3_BUCKET']} created." in result.output
    assert "Anonymous reads are refused (403)." in result.output
    cors = seaweedfs.client().get_bucket_cors(Bucket=app.config["S3_BUCKET"])["CORSRules"]
    assert cors[0]["AllowedOrigins"] == ["http://127.0.0.1:5500"] and "GET" in cors[0]["AllowedMethods"]
    again = runner.invoke(args=["storage", "init"])
    assert again.exit_code == 0 and "exists" in again.output


def test_check_fails_with_a_sentence_when_the_store_is_away(app, runner):
    app.config.update(MEDIA_STORAGE="s3", S3_ENDPOINT_URL="http://127.0.0.1:9")
    result = runner.invoke(args=["storage", "check"])
    assert result.exit_code == 1 and "Storage check failed" in result.output


def test_migrate_to_s3_copies_and_verifies_and_resumes_then_back(app, runner, clip_360p, tmp_path):
    video_id = add_clip(app, clip_360p)
    video = row(app, video_id)
    folder = media(app, "hls", video["hls_dir"])
    local_files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    first = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert first.exit_code == 0, first.output
    store = bucket(app)
    assert store.list(f"hls/{video['hls_dir']}") == [f"hls/{video['hls_dir']}/{f}" for f in local_files]
    assert store.read(f"uploads/{video['source_file']}") == clip_360p.read_bytes()
    assert f"{len(local_files) + 1} files copied and verified, 0 already there" in first.output

    store.delete(f"hls/{video['hls_dir']}/master.m3u8")  # an interrupted run: only the rest is copied
    resumed = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert f"1 files copied and verified, {len(local_files)} already there" in resumed.output

    # The app now reads the bucket; the rows did not change (same keys in both stores).
    app.config["MEDIA_STORAGE"] = "s3"
    app.extensions.pop(STORE_KEY)
    with app.app_context():
        assert read_hls(f"{video['hls_dir']}/master.m3u8").startswith(b"#EXTM3U")

    app.config["MEDIA_ROOT"] = str(tmp_path / "back")
    back = runner.invoke(args=["storage", "migrate", "--from", "s3"])
    assert back.exit_code == 0, back.output
    assert (tmp_path / "back" / "uploads" / video["source_file"]).read_bytes() == clip_360p.read_bytes()
    assert (tmp_path / "back" / "hls" / video["hls_dir"] / "master.m3u8").is_file()


def test_migrate_needs_one_direction(runner):
    assert runner.invoke(args=["storage", "migrate"]).exit_code == 2


def stored_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_migrate_from_s3_into_a_media_root_on_another_filesystem(app, runner, clip_360p, tmp_path,
                                                                other_filesystem):
    """The compose case: the scratch folder (TMPDIR) and MEDIA_ROOT are two filesystems, so the
    fetched copy cannot be renamed into place (EXDEV, "Invalid cross-device link")."""
    video_id = add_clip(app, clip_360p)
    video = row(app, video_id)
    folder = media(app, "hls", video["hls_dir"])
    local_files = stored_files(folder)
    assert runner.invoke(args=["storage", "migrate", "--to", "s3"]).exit_code == 0

    root = other_filesystem.path / "media"
    app.config["MEDIA_ROOT"] = str(root)
    back = runner.invoke(args=["storage", "migrate", "--from", "s3"])
    assert back.exit_code == 0, (other_filesystem.how, back.output, back.exception)
    assert f"{len(local_files) + 1} files copied and verified, 0 already there" in back.output
    assert (root / "uploads" / video["source_file"]).read_bytes() == clip_360p.read_bytes()
    assert stored_files(root / "hls" / video["hls_dir"]) == local_files  # nothing half-written left (.part)
    for name in local_files:
        assert (root / "hls" / video["hls_dir"] / name).read_bytes() == (folder / name).read_bytes()
    again = runner.invoke(args=["storage", "migrate", "--from", "s3"])
    assert f"0 files copied and verified, {len(local_files) + 1} already there" in again.output


def switch(app, storage):
    """MEDIA_STORAGE changed and the app restarted (its store made again)."""
    app.config["MEDIA_STORAGE"] = storage
    app.extensions.pop(STORE_KEY, None)


def staff_bearer(app, client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


def start_upload(client, headers, body, cuts):
    """A tus upload of `body` with the pieces up to each of `cuts` sent; its URL."""
    created = client.post("/api/uploads/", headers={**TUS, **headers, "Upload-Length": str(len(body)),
                                                      "Upload-Metadata": metadata()})
    assert created.status_code == 201, created.get_json()
    location, offset = created.headers["Location"], 0
    for cut in cuts:
        sent = patch(client, headers, location, offset, body[offset:cut])
        assert sent.status_code == 204 and int(sent.headers["Upload-Offset"]) == cut
        offset = cut
    return location


def patch(client, headers, location, offset, data):
    return client.patch(location, data=data, headers={**TUS, **headers, "Upload-Offset": str(offset),
                                                      "Content-Type": STREAM})


def offset_of(client, headers, location):
    head = client.head(location, headers={**TUS, **headers})
    assert head.status_code == 200
    return int(head.headers["Upload-Offset"])


def original_checksum(app, video_id):
    with app.app_context():
        return media_store().checksum(f"uploads/{row(app, video_id)['source_file']}")


def test_an_unfinished_upload_follows_the_switch_to_s3_and_resumes_where_it_was(app, runner, client, make_user,
                                                                               clip_360p):
    headers, body = staff_bearer(app, client, make_user), clip_360p.read_bytes()
    location = start_upload(client, headers, body, [20_000, 45_000])
    upload_id = id_of(location)

    first = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert first.exit_code == 0, first.output
    assert "Unfinished uploads: 1 copied and verified, 0 already there." in first.output
    assert "Now set MEDIA_STORAGE=s3, restart, and run this once more." in first.output
    assert (media(app, "tus", upload_id) / "data").stat().st_size == 45_000  # the live store keeps its copy
    assert [key.rsplit("/", 1)[1] for key in bucket(app).list(f"tus/{upload_id}")] == ["0" * 20]

    switch(app, "s3")
    assert offset_of(client, headers, location) == 45_000
    second = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert second.exit_code == 0, second.output
    assert "Unfinished uploads: 0 copied and verified, 1 already there." in second.output
    assert "The old store's unfinished uploads were removed" in second.output
    assert not media(app, "tus", upload_id).exists()

    done = patch(client, headers, location, 45_000, body[45_000:])
    assert done.status_code == 204, done.get_json()
    video_id = int(done.headers["Video-Id"])
    assert original_checksum(app, video_id) == hashlib.sha256(body).hexdigest()
    assert bucket(app).list(f"tus/{upload_id}") == []


def test_an_unfinished_upload_follows_the_switch_back_to_a_media_root_on_another_filesystem(
        app, runner, client, make_user, clip_360p, other_filesystem):
    switch(app, "s3")
    headers, body = staff_bearer(app, client, make_user), clip_360p.read_bytes()
    location = start_upload(client, headers, body, [10_000, 30_000])  # two parts in the bucket
    upload_id = id_of(location)
    app.config["MEDIA_ROOT"] = str(other_filesystem.path / "media")

    first = runner.invoke(args=["storage", "migrate", "--from", "s3"])
    assert first.exit_code == 0, (other_filesystem.how, first.output, first.exception)
    assert "Unfinished uploads: 1 copied and verified, 0 already there." in first.output
    assert (other_filesystem.path / "media" / "tus" / upload_id / "data").read_bytes() == body[:30_000]
    switch(app, "local")
    assert offset_of(client, headers, location) == 30_000
    second = runner.invoke(args=["storage", "migrate", "--from", "s3"])
    assert "The old store's unfinished uploads were removed" in second.output
    assert bucket(app).list(f"tus/{upload_id}") == []

    done = patch(client, headers, location, 30_000, body[30_000:])
    assert done.status_code == 204, done.get_json()
    assert original_checksum(app, int(done.headers["Video-Id"])) == hashlib.sha256(body).hexdigest()


def test_an_upload_being_written_is_left_for_the_next_run(app, runner, client, make_user, clip_360p):
    headers, body = staff_bearer(app, client, make_user), clip_360p.read_bytes()
    upload_id = id_of(start_upload(client, headers, body, [20_000]))
    with app.app_context():  # a PATCH holds the upload's lock right now
        db.session.execute(update(TusUpload).where(TusUpload.id == upload_id)
                           .values(locked_by="a-live-request", locked_at=datetime.now(UTC)))
        db.session.commit()
    switch(app, "s3")
    busy = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert busy.exit_code == 0, busy.output
    assert "Unfinished uploads: 0 copied and verified, 0 already there." in busy.output
    assert f"1 being written to right now ({upload_id}): run this again." in busy.output
    assert "were removed" not in busy.output and media(app, "tus", upload_id).exists()
    assert bucket(app).list(f"tus/{upload_id}") == []

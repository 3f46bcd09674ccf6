"""`flask storage init|check|migrate` against a real SeaweedFS (tests.fixtures.object_store)."""

import pytest

from tests.fixtures.videos import add_clip, media, row
from videoflix.videos.storage.backends import S3Store
from videoflix.videos.storage.keys import STORE_KEY, read_hls

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

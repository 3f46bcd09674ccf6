"""Media in an S3-compatible bucket (API.md, "Object storage"), against a real SeaweedFS
(tests.fixtures.object_store): uploads, the stateless worker, the three delivery modes, and deletes."""
import io
import os
import time
import urllib.error
import urllib.request

import m3u8
import pytest

from tests.fixtures.object_store import free_ports, keys, scratch_files
from tests.fixtures.videos import add_clip, queue, row
from videoflix import health
from videoflix.extensions import db
from videoflix.videos.delivery.index import media_index
from videoflix.videos.models import Video
from videoflix.videos.storage.keys import media_store, scratch_root
from videoflix.videos.tasks import recover_on_process_start
from videoflix.videos.uploads.service import UploadRefused, accept

pytestmark = pytest.mark.media_store


@pytest.fixture
def app_config(app_config, s3_settings):
    app_config.update(s3_settings)
    return app_config


def get(url):
    """(status, body) of an anonymous GET (no credentials, no SDK)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_an_upload_is_streamed_into_the_bucket_and_nothing_is_left_on_disk(app, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    video = row(app, video_id)
    assert keys(app) == [f"uploads/{video['source_file']}"]
    with app.app_context():
        assert media_store().read(f"uploads/{video['source_file']}") == clip_360p.read_bytes()
    assert scratch_files(app) == [] and not os.path.exists(app.config["MEDIA_ROOT"])


def test_a_finished_local_file_is_copied_into_the_bucket_and_stays(app, clip_360p, tmp_path):
    """accept(path=...) keeps a local file by a hard link in a local store; a bucket gets a copy."""
    local = tmp_path / "finished"
    local.write_bytes(clip_360p.read_bytes())
    with app.app_context():
        video = accept(path=local, filename="a.mp4", title="T", category="Drama", name="a" * 32)
        assert video.source_file == "a" * 32
        assert media_store().read(f"uploads/{'a' * 32}") == clip_360p.read_bytes()
    assert local.read_bytes() == clip_360p.read_bytes()  # the caller's, to remove


def test_a_refused_upload_leaves_no_object_and_no_row(app):
    with app.app_context(), pytest.raises(UploadRefused):
        accept(io.BytesIO(b"not a video at all" * 1000), filename="x.mp4", title="T", category="Drama")
    with app.app_context():
        assert db.session.execute(db.select(Video)).first() is None
    assert keys(app) == [] and scratch_files(app) == []


def test_a_failed_commit_removes_the_uploaded_object(app, clip_360p, monkeypatch):
    def fail():
        raise RuntimeError("database gone")

    with app.app_context(), open(clip_360p, "rb") as stream:
        monkeypatch.setattr(db.session, "commit", fail)
        with pytest.raises(RuntimeError):
            accept(stream, filename="a.mp4", title="T", category="Drama")
    assert keys(app) == []


def test_the_worker_transcodes_from_the_bucket_into_versioned_keys(app, clip_360p):
    video_id = add_clip(app, clip_360p)
    first = row(app, video_id)
    assert first["status"] == "ready"
    published = keys(app, "hls/")
    assert f"hls/{first['hls_dir']}/master.m3u8" in published
    assert f"hls/{first['hls_dir']}/480p/index.m3u8" in published and f"hls/{first['thumbnail']}" in published
    assert all(k.startswith(f"hls/{first['hls_dir']}/") for k in published)
    assert scratch_files(app) == []  # the fetched source and the output are gone

    queue(app, video_id)  # a re-transcode: the old version's objects go after the switch
    second = row(app, video_id)
    assert second["hls_dir"] != first["hls_dir"]
    assert keys(app, "hls/") and all(k.startswith(f"hls/{second['hls_dir']}/") for k in keys(app, "hls/"))
    assert scratch_files(app) == []


@pytest.mark.parametrize("delivery", ["app", "signed"])
def test_playlists_asked_while_a_stale_entry_is_cached_come_from_the_new_version(app, client, auth, clip_360p,
                                                                                 delivery):
    """Another web process re-published the video: this one still caches the old version for up to
    MEDIA_CACHE_TTL, whose objects are gone. A playlist asked for then is the new version's, not a
    404 (objects are not looked at before they are sent: the 404 from the bucket sends it back to
    the row)."""
    app.config["MEDIA_DELIVERY"] = delivery
    video_id = add_clip(app, clip_360p)
    with app.app_context():
        stale = media_index().get(video_id)
    queue(app, video_id)  # the re-transcode: the old version's objects are removed after the switch
    new_version = row(app, video_id)["hls_dir"].split("/")[1]
    assert new_version != stale.version
    for path in ("master.m3u8", "480p/index.m3u8"):
        with app.app_context():
            media_index()._entries[video_id] = (time.monotonic() + 60, stale)  # as the other process left it
        answer = client.get(f"/api/video/{video_id}/{path}")
        assert answer.status_code == 200, (path, answer.status_code, answer.data)
        assert "#EXTM3U" in answer.text
        if path != "master.m3u8":
            assert new_version in answer.text and stale.version not in answer.text


def test_deleting_a_video_deletes_its_objects(app, clip_360p):
    video_id = add_clip(app, clip_360p)
    assert keys(app)
    with app.app_context():
        db.session.delete(db.session.get(Video, video_id))
        db.session.commit()
    assert keys(app) == []


def test_a_killed_workers_scratch_is_removed_when_a_worker_process_starts(app, monkeypatch):
    with app.app_context():
        root = scratch_root()
    dead, alive = root / "999999999-deadbeef", root / f"{os.getpid()}-cafecafe"
    for folder in (dead, alive):
        (folder / "out").mkdir(parents=True)
        (folder / "source").write_bytes(b"x" * 100)
    recover_on_process_start(app)  # RECOVERY_INTERVAL is 0 in tests: no thread starts
    assert not dead.exists() and (alive / "source").exists()


def watch(client, video_id):
    """GET master, every media playlist and every segment the way a player does; the segment bodies."""
    master = client.get(f"/api/video/{video_id}/master.m3u8")
    assert master.status_code == 200
    bodies = []
    for uri in [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")]:
        playlist = client.get(f"/api/video/{video_id}/{uri}")
        assert playlist.status_code == 200 and playlist.mimetype == "application/vnd.apple.mpegurl"
        label = uri.split("/")[0]
        for line in [ln for ln in playlist.text.splitlines() if ln and not ln.startswith("#")]:
            if line.startswith("http"):
                status, body = get(line)
                assert status == 200
            else:
                answer = client.get(f"/api/video/{video_id}/{label}/{line}")
                assert answer.status_code == 200 and answer.mimetype == "video/MP2T"
                body = answer.data
            bodies.append(body)
    return bodies


def test_app_mode_streams_objects_with_ranges_and_etags(app, client, auth, make_video):
    video_id = make_video()
    bodies = watch(client, video_id)
    assert len(bodies) == 6 and all(b[:1] == b"G" for b in bodies)  # MPEG-TS sync byte
    whole = client.get(f"/api/video/{video_id}/480p/seg001.ts")
    etag = whole.headers["ETag"]
    part = client.get(f"/api/video/{video_id}/480p/seg001.ts", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == whole.data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(whole.data)}"
    again = client.get(f"/api/video/{video_id}/480p/seg001.ts", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    beyond = client.get(f"/api/video/{video_id}/480p/seg001.ts", headers={"Range": "bytes=99999999-"})
    assert beyond.status_code == 416
    thumb = client.get(f"/api/video/{video_id}/thumbnail.jpg")
    assert thumb.status_code == 200 and thumb.data[:2] == b"\xff\xd8"
    assert client.get(f"/api/video/{video_id}/480p/seg099.ts").status_code == 404


def test_an_anonymous_get_of_any_object_is_refused(app, make_video, seaweedfs, s3_bucket):
    video_id = make_video()
    hls_dir = row(app, video_id)["hls_dir"]
    prefix = app.config["S3_PREFIX"]
    for key in (f"hls/{hls_dir}/480p/seg000.ts", f"hls/{hls_dir}/master.m3u8"):
        status, _ = get(f"{seaweedfs.endpoint}/{s3_bucket}/{prefix}/{key}")
        assert status == 403
    status, _ = get(f"{seaweedfs.endpoint}/{s3_bucket}/")  # nor a listing
    assert status == 403


def test_signed_mode_names_presigned_segment_urls_that_work(app_config, app, client, auth, make_video):
    app.config["MEDIA_DELIVERY"] = "signed"
    video_id = make_video()
    playlist = client.get(f"/api/video/{video_id}/480p/index.m3u8")
    urls = [ln for ln in playlist.text.splitlines() if ln and not ln.startswith("#")]
    assert len(urls) == 3 and all(u.startswith(app.config["S3_ENDPOINT_URL"]) and "X-Amz-Signature=" in u
                                  for u in urls)
    assert "X-Amz-Expires=" in urls[0]
    bodies = watch(client, video_id)
    segment = client.get(f"/api/video/{video_id}/480p/seg000.ts")  # the route still answers the bytes
    assert segment.status_code == 200 and segment.data in bodies


def test_signed_playlists_need_a_user_and_the_master_stays_relative(app, client, make_user, login, make_video):
    app.config["MEDIA_DELIVERY"] = "signed"
    video_id = make_video()
    for path in (f"/api/video/{video_id}/master.m3u8", f"/api/video/{video_id}/480p/index.m3u8"):
        refused = client.get(path)
        assert refused.status_code == 401
        assert refused.json == {"detail": "Authentication credentials were not provided."}
    make_user()
    login()
    master = client.get(f"/api/video/{video_id}/master.m3u8")
    assert master.status_code == 200
    # The master names the media playlists relatively, so they go through the API (which checks the
    # user and signs their segments); only media playlists carry presigned URLs.
    variants = m3u8.loads(master.text).playlists
    assert [p.uri for p in variants] == ["480p/index.m3u8", "720p/index.m3u8"]
    assert "http" not in master.text and "X-Amz-" not in master.text
    media = client.get(f"/api/video/{video_id}/480p/index.m3u8").text
    assert all(line.startswith("http") and "X-Amz-Signature=" in line
               for line in media.splitlines() if line and not line.startswith("#"))


def test_a_presigned_url_of_another_video_is_not_derivable(app, client, auth, make_video):
    app.config["MEDIA_DELIVERY"] = "signed"
    mine, other = make_video(), make_video()
    url = next(ln for ln in client.get(f"/api/video/{mine}/480p/index.m3u8").text.splitlines()
               if ln.startswith("http"))
    assert get(url)[0] == 200
    mine_dir, other_dir = row(app, mine)["hls_dir"], row(app, other)["hls_dir"]
    forged = url.replace(mine_dir, other_dir)
    assert forged != url and get(forged)[0] == 403
    renamed = url.replace("seg000.ts", "seg001.ts")  # nor another segment of the same video
    assert get(renamed)[0] == 403


def test_accel_mode_redirects_to_the_internal_location_with_a_presigned_path(app, client, auth, make_video):
    app.config["MEDIA_ACCEL_REDIRECT"] = "/protected-s3/"
    video_id = make_video()
    answer = client.get(f"/api/video/{video_id}/480p/seg000.ts")
    target = answer.headers["X-Accel-Redirect"]
    hls_dir = row(app, video_id)["hls_dir"]
    assert answer.status_code == 200 and answer.data == b""
    assert target.startswith(f"/protected-s3/{app.config['S3_BUCKET']}/{app.config['S3_PREFIX']}/hls/{hls_dir}/")
    assert "X-Amz-Signature=" in target
    status, body = get(app.config["S3_ENDPOINT_URL"] + target[len("/protected-s3"):])  # what nginx fetches
    assert status == 200 and body[:1] == b"G"


def test_list_and_detail_routes_make_no_store_request(app, client, auth, make_video, monkeypatch):
    video_id = make_video()
    with app.app_context():
        store = media_store()
    calls = []
    store.client.meta.events.register("before-call.s3", lambda **kwargs: calls.append(kwargs["model"].name))
    assert client.get("/api/video/").status_code == 200
    assert client.get(f"/api/video/{video_id}/").status_code == 200
    assert calls == []
    client.get(f"/api/video/{video_id}/480p/seg000.ts")
    assert calls == ["GetObject"]


def test_health_and_the_check_command_do_a_round_trip(app, client, runner):
    body = client.get("/api/health/").get_json()
    assert body["checks"]["storage"]["status"] == "ok"
    result = runner.invoke(args=["storage", "check"])
    assert result.exit_code == 0, result.output
    assert "round trip ok" in result.output
    assert keys(app) == []


def test_health_does_one_round_trip_per_interval(app, client, monkeypatch):
    round_trips = []

    def counted(store):
        round_trips.append(store)
        return real_round_trip(store)

    real_round_trip = health.round_trip
    monkeypatch.setattr(health, "round_trip", counted)
    for _ in range(3):
        assert client.get("/api/health/").get_json()["checks"]["storage"]["status"] == "ok"
    assert len(round_trips) == 1
    monkeypatch.setattr(health, "STORAGE_CACHE_SECONDS", 0.0)  # the interval is over
    client.get("/api/health/")
    assert len(round_trips) == 2
    assert keys(app) == []


def test_health_reports_an_unreachable_store(app_config, request):
    app_config["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_ports(1)[0]}"
    client = request.getfixturevalue("client")
    answer = client.get("/api/health/")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["storage"] == {"status": "error", "ms": answer.get_json()["checks"][
        "storage"]["ms"], "error": "StorageUnavailable"}

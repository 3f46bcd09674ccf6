"""A bucket outage, against a SeaweedFS of this module's own that the tests hang (SIGSTOP) and
resume, or kill and start again (issue 22).

While the bucket is away nothing answers 500 and nothing hangs: a route that needs it answers 503
with Retry-After and a JSON {"detail"} (the list and the details need no bucket: 200); in accel
mode the app answers without the bucket (nginx's hop is deploy/nginx's); in signed mode a media
playlist read once is signed without it. Uploads answer 503 and keep nothing half-written (the tus
offset stays what was stored, so the client's retry continues), `flask add-video` prints one line
and exits 1; a transcode that meets the outage is queued again, never failed, and finishes once
the bucket is back. Everything works again without a restart.

The bound on each request (BOUND) only tells a hang from an answer; the timing target (about a
second) is measured by .ci/bucket-outage.sh, which prints each answer's time.
"""
import io
import statistics
import threading
import time
import uuid

import pytest

from tests.fixtures.object_store import SeaweedFS, keys, scratch_files
from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, metadata
from tests.fixtures.videos import add_clip, csrf, row, sign_in_staff
from videoflix import tasks as queues
from videoflix.extensions import db
from videoflix.videos.jobs import part_state, state, transcoding
from videoflix.videos.jobs.transcoding import STORE_AWAY
from videoflix.videos.models import Video
from videoflix.videos.storage.keys import media_store, source_key
from videoflix.videos.tasks import request_transcode
from videoflix.videos.uploads import tus

pytestmark = [pytest.mark.slow, pytest.mark.s3]
BOUND = 10.0  # seconds: a request slower than this is a hang (not a timing assertion)
RECOVERY_SECONDS = 90
UNAVAILABLE = "The media store is unavailable. Please try again later."
TIMES = []  # (phase, route, seconds) of every answer during an outage, printed at the end


@pytest.fixture(scope="module")
def own_bucket(tmp_path_factory):
    """A SeaweedFS of this module's own (its own ports: TEST_PORT_RANGE when set) and a bucket."""
    server = SeaweedFS(tmp_path_factory.mktemp("bucket-outage")).start()
    bucket = f"vfoutage-{uuid.uuid4().hex[:10]}"
    server.client().create_bucket(Bucket=bucket)
    server.bucket = bucket
    yield server
    server.stop()
    for phase, kind in sorted({(p, _kind(name)) for p, name, _ in TIMES}):
        took = [s for p, name, s in TIMES if p == phase and _kind(name) == kind]
        print(f"\nbucket {phase}, {kind}: {len(took)} answers, median {statistics.median(took) * 1000:.0f} ms, "
              f"max {max(took) * 1000:.0f} ms")


def _kind(name):
    uploads = ("add-video", "tus patch", "transcode", "admin upload", "worker start")
    return "uploads and workers" if name in uploads else "viewer routes"


@pytest.fixture
def app_config(app_config, own_bucket, tmp_path):
    """The app on the module's own bucket (a prefix of this test's own); a failed bucket is asked
    again after 1 s."""
    app_config.update(own_bucket.settings(own_bucket.bucket, prefix=f"t-{uuid.uuid4().hex[:10]}"))
    app_config.update(MEDIA_SCRATCH=str(tmp_path / "scratch"), S3_RETRY_AFTER=1)
    return app_config


def timed(phase, name, call):
    started = time.monotonic()
    response = call()
    took = time.monotonic() - started
    if phase:
        TIMES.append((phase, name, took))
    assert took < BOUND, f"{name} took {took:.1f} s: a hang"
    return response


def media_routes(video_id):
    return {
        "master": f"/api/video/{video_id}/master.m3u8",
        "playlist": f"/api/video/{video_id}/480p/index.m3u8",
        "segment": f"/api/video/{video_id}/480p/seg000.ts",
        "thumbnail": f"/api/video/{video_id}/thumbnail.jpg",
    }


def answers(client, video_id, phase=None):
    routes = {"list": "/api/video/", "detail": f"/api/video/{video_id}/", **media_routes(video_id)}
    return {name: timed(phase, name, lambda path=path: client.get(path)) for name, path in routes.items()}


def assert_unavailable(response):
    assert response.status_code == 503, response.data[:300]
    assert response.get_json() == {"detail": UNAVAILABLE}
    assert int(response.headers["Retry-After"]) >= 1


def wait_for(predicate, what):
    deadline = time.monotonic() + RECOVERY_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def back(client, video_id):
    """Every route answers 200 again (no restart of the app)."""
    wait_for(lambda: client.get(media_routes(video_id)["master"]).status_code == 200, "the bucket to answer")
    assert {name: r.status_code for name, r in answers(client, video_id).items()} == dict.fromkeys(
        ["list", "detail", "master", "playlist", "segment", "thumbnail"], 200)


def test_viewer_routes_answer_503_while_the_bucket_hangs_or_is_down_and_200_once_it_is_back(
        client, auth, make_video, own_bucket):
    video_id = make_video()
    assert {r.status_code for r in answers(client, video_id).values()} == {200}

    for phase, away, again in (("hung", own_bucket.hang, own_bucket.resume),
                               ("down", own_bucket.kill, own_bucket.restart)):
        away()
        try:
            for _ in range(3):  # the first asks the bucket; then its circuit answers at once
                got = answers(client, video_id, phase)
                assert got["list"].status_code == 200 and got["detail"].status_code == 200
                for name in media_routes(video_id):
                    assert_unavailable(got[name])
        finally:
            again()
        back(client, video_id)


def test_accel_and_signed_modes_while_the_bucket_hangs(app_config, request, own_bucket):
    """accel: the app signs the X-Accel-Redirect without the bucket (nginx's hop answers for it);
    signed: a media playlist read once is signed again without the bucket."""
    app_config.update(MEDIA_DELIVERY="signed")
    client, make_video = request.getfixturevalue("client"), request.getfixturevalue("make_video")
    request.getfixturevalue("auth")
    video_id = make_video()
    playlist = media_routes(video_id)["playlist"]
    before = client.get(playlist)
    assert before.status_code == 200 and "X-Amz-Signature=" in before.text

    own_bucket.hang()
    try:
        again = timed("hung", "signed playlist", lambda: client.get(playlist))
        assert again.status_code == 200 and again.text.count("X-Amz-Signature=") == before.text.count(
            "X-Amz-Signature=")
        assert_unavailable(timed("hung", "signed master", lambda: client.get(media_routes(video_id)["master"])))

        client.application.config.update(MEDIA_DELIVERY="accel", MEDIA_ACCEL_REDIRECT="/protected-s3/")
        for name, path in media_routes(video_id).items():
            answer = timed("hung", f"accel {name}", lambda path=path: client.get(path))
            assert answer.status_code == 200 and answer.headers["X-Accel-Redirect"].startswith("/protected-s3/")
    finally:
        own_bucket.resume()


def test_a_viewer_playing_through_a_hang_gets_200_or_503_and_plays_on(app, auth, make_video, own_bucket):
    """A player's loop (playlist, segments) from its own thread while the bucket hangs and comes
    back: every answer is 200 or 503, within the bound; it plays again afterwards."""
    video_id = make_video()
    cookie = app.test_client()
    cookie.post("/api/login/", json={"email": "user@example.com", "password": "correct-horse-battery"})
    seen, stop = [], threading.Event()

    def play():
        viewer = app.test_client()
        viewer.set_cookie("access_token", cookie.get_cookie("access_token").value)
        routes = list(media_routes(video_id).values())
        while not stop.is_set():
            for path in routes:
                started = time.monotonic()
                response = viewer.get(path)
                seen.append((time.monotonic(), response.status_code, time.monotonic() - started))
                response.close()

    viewer = threading.Thread(target=play)
    viewer.start()
    try:
        time.sleep(0.5)
        own_bucket.hang()
        hung_at = time.monotonic()
        time.sleep(2)
        own_bucket.resume()
        resumed_at = time.monotonic()
        wait_for(lambda: any(t > resumed_at and status == 200 for t, status, _ in seen), "a 200 after the hang")
        time.sleep(0.5)
    finally:
        own_bucket.resume()
        stop.set()
        viewer.join(BOUND * 2)
    assert not viewer.is_alive()
    assert {status for _, status, _ in seen} == {200, 503}
    assert max(took for _, _, took in seen) < BOUND
    assert any(hung_at < t < resumed_at and status == 503 for t, status, _ in seen)
    TIMES.extend(("hung", "viewer", took) for t, status, took in seen if hung_at < t < resumed_at)


def test_add_video_while_the_bucket_is_away_prints_one_line_and_leaves_nothing(app, runner, clip_360p,
                                                                                own_bucket):
    own_bucket.hang()
    try:
        result = timed("hung", "add-video", lambda: runner.invoke(
            args=["add-video", str(clip_360p), "--title", "Clip", "--category", "Drama"]))
    finally:
        own_bucket.resume()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {clip_360p}: {UNAVAILABLE}"]
    assert "Traceback" not in result.output
    with app.app_context():
        assert db.session.execute(db.select(Video)).scalars().all() == []
    wait_for(lambda: _lists(app), "the bucket to answer")
    assert keys(app) == [] and scratch_files(app) == []


def test_the_admin_upload_form_during_an_outage_says_so_and_keeps_nothing(app, client, make_user, clip_360p,
                                                                          own_bucket):
    sign_in_staff(make_user, client)
    data = {"csrf_token": csrf(client, "/admin/videos/new/"), "title": "Uploaded", "category": "Drama",
            "file": (io.BytesIO(clip_360p.read_bytes()), clip_360p.name)}
    own_bucket.hang()
    try:
        response = timed("hung", "admin upload", lambda: client.post(
            "/admin/videos/new/", data=data, content_type="multipart/form-data"))
    finally:
        own_bucket.resume()
    assert response.status_code == 503
    assert f"The upload was not stored: {UNAVAILABLE}".encode() in response.data
    with app.app_context():
        assert db.session.execute(db.select(Video)).scalars().all() == []
    wait_for(lambda: _lists(app), "the bucket to answer")
    assert keys(app) == [] and scratch_files(app) == []


def _lists(app):
    try:
        keys(app)
        return True
    except Exception:  # noqa: BLE001 - not back yet
        return False


def test_a_tus_patch_during_an_outage_answers_503_and_the_upload_continues_after_it(
        app, client, make_user, clip_360p, own_bucket):
    make_user("staff@example.com", staff=True)
    staff = bearer(client, "staff@example.com")
    data = clip_360p.read_bytes()
    half = len(data) // 2
    created = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": str(len(data)),
                                                    "Upload-Metadata": metadata()})
    assert created.status_code == 201
    location = created.headers["Location"]

    def patch(offset, body):
        return client.patch(location, data=body, headers={**TUS, **staff, "Upload-Offset": str(offset),
                                                          "Content-Type": STREAM})

    assert patch(0, data[:half]).status_code == 204
    own_bucket.hang()
    try:
        refused = timed("hung", "tus patch", lambda: patch(half, data[half:]))
    finally:
        own_bucket.resume()
    assert_unavailable(refused)
    wait_for(lambda: client.head(location, headers={**TUS, **staff}).status_code == 200, "the bucket")
    assert client.head(location, headers={**TUS, **staff}).headers["Upload-Offset"] == str(half)

    done = patch(half, data[half:])
    assert done.status_code == 204, done.data
    video = row(app, int(done.headers["Video-Id"]))
    assert video["status"] == "ready" and video["source_size"] == len(data)
    assert not [k for k in keys(app) if k.startswith(f"tus/{id_of(location)}")]


def test_a_transcode_meeting_a_hung_bucket_is_queued_again_and_finishes_after_it(app, clip_360p, own_bucket,
                                                                                 monkeypatch):
    """The bucket hangs while ffmpeg runs: storing the part fails, the part is queued again (never
    failed, whatever the retries), and the next run finishes it; no other version remains."""
    video_id = add_clip(app, clip_360p, enqueue=False)
    app.config["TRANSCODE_RETRIES"] = 0
    real_encode = transcoding.parts.encode_part

    def hang_while_transcoding(*args, **kwargs):
        result = real_encode(*args, **kwargs)
        own_bucket.hang()
        return result

    monkeypatch.setattr(transcoding.parts, "encode_part", hang_while_transcoding)
    _queue(app, video_id)
    try:
        with app.app_context():
            assert timed("hung", "transcode", lambda: transcoding.run_all_here(video_id)) == STORE_AWAY
    finally:
        own_bucket.resume()
    monkeypatch.undo()
    _assert_waiting(app, video_id)
    _finishes(app, video_id)


def test_a_transcode_meeting_a_dead_bucket_is_retried_with_back_off_and_finishes_after_it(
        app, clip_360p, own_bucket, monkeypatch):
    """The bucket is killed while ffmpeg runs; the task puts the part on the queue again, later."""
    video_id = add_clip(app, clip_360p, enqueue=False)
    real_encode = transcoding.parts.encode_part

    def kill_while_transcoding(*args, **kwargs):
        result = real_encode(*args, **kwargs)
        own_bucket.kill()
        return result

    monkeypatch.setattr(transcoding.parts, "encode_part", kill_while_transcoding)
    try:
        timed("down", "transcode", lambda: _queue(app, video_id, run=True))
    finally:
        own_bucket.restart()
    monkeypatch.undo()
    job = _assert_waiting(app, video_id)
    with app.app_context():
        [retry] = queues.huey.scheduled()
    assert retry.args == (video_id, job, 0) and retry.kwargs == {"store_away": 1}
    assert retry.eta is not None  # later: STORAGE_RETRY_DELAY
    _finishes(app, video_id)


def test_a_missing_source_object_stays_a_permanent_failure(app, clip_360p):
    video_id = add_clip(app, clip_360p, enqueue=False)
    with app.app_context():
        media_store().delete(source_key(row(app, video_id)["source_file"]))
    _queue(app, video_id)
    with app.app_context():
        assert transcoding.run_all_here(video_id, retries_left=2) == "failed"
    assert row(app, video_id)["status"] == "failed"


def _queue(app, video_id, run=False):
    """Mark the video queued; with `run`, its task runs inline (HUEY_IMMEDIATE)."""
    with app.app_context():
        video = db.session.get(Video, video_id)
        if run:
            request_transcode(video)
        else:
            state.queue(video)


def _assert_waiting(app, video_id):
    """The video still belongs to its job, whose part waits for the bucket; the job's id."""
    video = row(app, video_id)
    assert video["status"] == "processing" and state.is_chunked(video["claimed_by"])
    job = video["job_plan"]["job"]
    with app.app_context():
        (part,) = part_state.part_rows(video_id, job)
        assert part.status == "queued" and part.claimed_by is None
        assert part.error == "The media store could not be reached; the transcode will run again once it is back."
    assert scratch_files(app) == []
    return job


def _finishes(app, video_id):
    """The retry, once the bucket answers (in a worker: STORAGE_RETRY_DELAY later) finishes it."""
    wait_for(lambda: _lists(app), "the bucket to answer")
    job = row(app, video_id)["job_plan"]["job"]
    with app.app_context():
        assert transcoding.run_part(video_id, job, 0) == "done"
    video = row(app, video_id)
    assert video["status"] == "ready" and video["error"] is None
    versions = {k.split("/")[2] for k in keys(app, f"hls/{video_id}/")}
    assert versions == {video["hls_dir"].split("/")[1]}  # nothing else left


def test_a_worker_starts_while_the_bucket_hangs(app, own_bucket, caplog):
    """The sweep of expired uploads at a worker's start waits for its next round instead of
    keeping the worker from starting."""
    own_bucket.hang()
    try:
        timed("hung", "worker start", lambda: tus.sweep_on_worker_start(app))
    finally:
        own_bucket.resume()
    assert "Expired uploads not swept now" in caplog.text

"""The back office at /admin/: staff only, sign-in with the API's cookies, users, video uploads."""
import io
import re
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token

from tests.conftest import PASSWORD
from tests.fixtures.object_store import local_files_only
from tests.fixtures.videos import STAFF, add_clip, admin_sign_in, csrf, files_below, media, row, sign_in_staff
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.videos.models import Video

pytestmark = pytest.mark.media_store


@pytest.fixture
def staff(make_user, client):
    return sign_in_staff(make_user, client)


def upload(client, clip, **fields):
    data = {"csrf_token": csrf(client, "/admin/videos/new/"), "title": "Uploaded", "description": "Via the admin",
            "category": "Drama", **fields}
    if clip is not None:
        data["file"] = (io.BytesIO(clip.read_bytes()), clip.name)
    return client.post("/admin/videos/new/", data=data, content_type="multipart/form-data")


def video_count(app):
    with app.app_context():
        return db.session.execute(db.select(db.func.count(Video.id))).scalar()


def test_anonymous_visitors_are_sent_to_sign_in_and_cannot_upload(app, client, clip_360p):
    for path in ("/admin/", "/admin/videos/", "/admin/users/", "/admin/videos/new/"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login/?next=" in response.headers["Location"], path
    response = client.post("/admin/videos/new/", data={"title": "x", "category": "y",
                                                       "file": (io.BytesIO(clip_360p.read_bytes()), "a.mp4")})
    assert response.status_code == 302 and video_count(app) == 0
    assert files_below(media(app, "uploads")) == []


def test_signed_in_non_staff_get_403_and_cannot_sign_in_to_the_admin(app, client, make_user, login):
    make_user("viewer@example.com")
    login("viewer@example.com")
    response = client.get("/admin/videos/")
    assert response.status_code == 403 and response.get_json() == {
        "detail": "You do not have permission to perform this action."}

    client.delete_cookie("access_token")
    client.delete_cookie("refresh_token")
    response = admin_sign_in(client, "viewer@example.com")
    assert response.status_code == 403 and b"no access to the back office" in response.data
    assert client.get_cookie("access_token") is None


def test_wrong_password_and_missing_csrf_token_are_refused(client, make_user):
    make_user(STAFF, staff=True)
    response = admin_sign_in(client, password="not-the-password")
    assert response.status_code == 400 and b"check your e-mail and password" in response.data
    response = client.post("/admin/login/", data={"email": STAFF, "password": PASSWORD})
    assert response.status_code == 400 and client.get_cookie("access_token") is None


def test_staff_signs_in_with_api_cookies_and_signs_out(app, client, staff):
    assert client.get_cookie("access_token") and client.get_cookie("refresh_token")
    page = client.get("/admin/videos/")
    assert page.status_code == 200 and STAFF.encode() in page.data

    token = csrf(client, "/admin/videos/")
    response = client.post("/admin/logout/", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/login/")
    assert client.get_cookie("access_token") is None and client.get_cookie("refresh_token") is None
    assert client.get("/admin/videos/").status_code == 302


def test_an_expired_access_token_is_renewed_from_the_refresh_cookie(app, client, staff):
    old_refresh = client.get_cookie("refresh_token").value
    with app.app_context():
        expired = create_access_token(identity=str(staff), expires_delta=timedelta(seconds=-60))
    client.set_cookie("access_token", expired)

    page = client.get("/admin/videos/")

    assert page.status_code == 200
    assert client.get_cookie("access_token").value != expired
    assert client.get_cookie("refresh_token").value != old_refresh
    client.set_cookie("refresh_token", old_refresh)  # the rotated-away token no longer works
    assert client.post("/api/token/refresh/").status_code == 401


@local_files_only
def test_staff_uploads_through_the_form_and_sees_status_and_thumbnail(app, client, staff, clip_720p):
    response = upload(client, clip_720p, title="Big Buck", category="Animation")

    assert response.status_code == 302
    with app.app_context():
        video = db.session.execute(db.select(Video)).scalar_one()
        video_id, source = video.id, video.source_file
    video = row(app, video_id)
    assert video["title"] == "Big Buck" and video["category"] == "Animation" and video["status"] == "ready"
    assert video["original_filename"] == clip_720p.name
    assert re.fullmatch(r"[0-9a-f]{32}", source)  # a neutral name: no client extension
    assert files_below(media(app, "uploads")) == [source]

    page = client.get("/admin/videos/").data.decode()
    assert "Big Buck" in page and "ready" in page and "480p, 720p" in page and "0:00:03" in page
    thumb = re.search(r'<img src="([^"]+)"', page).group(1)
    with client.get(thumb) as image:
        assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data[:2] == b"\xff\xd8"


@local_files_only
def test_the_thumbnail_preview_follows_the_same_rule_as_the_api(app, client, staff, clip_360p):
    """A symlink planted in the media tree is refused by the admin preview as by the API."""
    video_id = add_clip(app, clip_360p)
    thumbnail = media(app, "hls", row(app, video_id)["thumbnail"])
    with client.get(f"/admin/videos/thumbnail/{video_id}") as before:
        assert before.status_code == 200 and before.data[:2] == b"\xff\xd8"
    moved = thumbnail.with_name("elsewhere.jpg")
    thumbnail.rename(moved)
    thumbnail.symlink_to(moved)  # still inside hls/, but a link
    with client.get(f"/admin/videos/thumbnail/{video_id}") as after:
        assert after.status_code == 404


def test_a_file_that_is_not_a_video_is_refused_and_nothing_is_stored(app, client, staff, clip_text):
    response = upload(client, clip_text)
    assert response.status_code == 400
    assert b"The upload was refused: The file is not a video that can be decoded." in response.data
    assert video_count(app) == 0 and files_below(media(app, "uploads")) == []


def test_an_upload_without_csrf_token_or_file_stores_nothing(app, client, staff, clip_360p):
    response = client.post("/admin/videos/new/", data={"title": "x", "category": "Drama",
                                                       "file": (io.BytesIO(clip_360p.read_bytes()), "a.mp4")})
    assert response.status_code == 200 and b"Failed to create record." in response.data
    response = upload(client, None)
    assert b"Choose a video file to upload." in response.data
    assert video_count(app) == 0 and files_below(media(app, "uploads")) == []


def test_an_upload_over_the_size_limit_gets_413_json(app, client, staff, clip_360p):
    app.config["MAX_UPLOAD_MB"] = 0
    response = upload(client, clip_360p)
    assert response.status_code == 413 and response.get_json() == {"detail": "The uploaded file is too large."}
    assert video_count(app) == 0 and files_below(media(app, "uploads")) == []


def test_retranscode_and_delete_actions(app, client, staff, clip_360p):
    video_id = add_clip(app, clip_360p)
    first = row(app, video_id)
    token = csrf(client, "/admin/videos/")

    response = client.post("/admin/videos/action/",
                           data={"csrf_token": token, "action": "retranscode", "rowid": [str(video_id)]})
    assert response.status_code == 302
    video = row(app, video_id)
    assert video["status"] == "ready" and video["hls_dir"] != first["hls_dir"] and video["attempts"] == 2
    assert not media(app, "hls", first["hls_dir"]).exists()

    response = client.post("/admin/videos/action/",
                           data={"csrf_token": token, "action": "delete", "rowid": [str(video_id)]})
    assert response.status_code == 302 and row(app, video_id) is None
    assert files_below(media(app, "uploads")) == [] and files_below(media(app, "hls")) == []


def test_deactivating_a_user_ends_their_sessions(app, client, staff, make_user):
    viewer_id = make_user("viewer@example.com")
    viewer = app.test_client()
    assert viewer.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 200
    assert viewer.get("/api/video/").status_code == 200

    page = client.get("/admin/users/?search=viewer")
    assert b"viewer@example.com" in page.data and page.data.count(STAFF.encode()) == 1  # the navbar only
    token = csrf(client, "/admin/users/")
    response = client.post("/admin/users/action/",
                           data={"csrf_token": token, "action": "deactivate", "rowid": [str(viewer_id)]})

    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, viewer_id).is_active is False
    assert viewer.get("/api/video/").status_code == 401
    assert viewer.post("/api/token/refresh/").status_code == 401


def test_staff_cannot_lock_themselves_out(app, client, staff):
    token = csrf(client, "/admin/users/")
    client.post("/admin/users/action/", data={"csrf_token": token, "action": "remove_staff", "rowid": [str(staff)]})
    with app.app_context():
        assert db.session.get(User, staff).is_staff is True
    assert client.get("/admin/videos/").status_code == 200


def test_a_second_app_gets_its_own_admin(app, app_config):
    from videoflix import create_app

    other = create_app(dict(app_config))
    assert other.extensions["videoflix_admin"] is not app.extensions["videoflix_admin"]
    assert "admin_videos.index_view" in other.view_functions


def test_the_upload_form_token_outlives_a_long_upload(app, client, staff, clip_360p, monkeypatch):
    from wtforms.csrf.session import SessionCSRF

    page = client.get("/admin/videos/new/").data
    token = re.findall(rb'name="csrf_token" type="hidden" value="([^"]+)"', page)[-1].decode()  # the form's own
    opened = SessionCSRF.now(None)
    data = {"csrf_token": token, "title": "Slow upload", "category": "Drama"}

    monkeypatch.setattr(SessionCSRF, "now", lambda self: opened + timedelta(hours=13))
    response = client.post("/admin/videos/new/", content_type="multipart/form-data",
                           data={**data, "file": (io.BytesIO(clip_360p.read_bytes()), "a.mp4")})
    assert response.status_code == 200 and b"Failed to create record." in response.data
    assert video_count(app) == 0

    monkeypatch.setattr(SessionCSRF, "now", lambda self: opened + timedelta(hours=3))  # a 4 GB upload
    response = client.post("/admin/videos/new/", content_type="multipart/form-data",
                           data={**data, "file": (io.BytesIO(clip_360p.read_bytes()), "a.mp4")})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.execute(db.select(Video.title)).scalar_one() == "Slow upload"


@local_files_only
def test_an_upload_whose_transcode_cannot_be_queued_is_kept(app, client, staff, clip_360p, monkeypatch):
    from videoflix.videos import tasks

    def queue_down(video_id):
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(tasks, "_put_on_queue", queue_down)
    response = upload(client, clip_360p, title="Kept")

    assert response.status_code == 302
    with app.app_context():
        video = db.session.execute(db.select(Video)).scalar_one()
        video_id, source = video.id, video.source_file
    assert row(app, video_id)["status"] == "pending" and row(app, video_id)["queued_at"] is not None
    assert files_below(media(app, "uploads")) == [source]
    page = client.get(response.headers["Location"]).data.decode()
    assert (f"Video {video_id} was stored, but its transcode could not be queued (Error 111 connecting to "
            f"redis:6379. Connection refused.). Use Re-transcode (or flask transcode {video_id}) once the queue "
            "is reachable again.") in page

    monkeypatch.undo()
    tasks.recover_on_worker_start(app)  # a worker starting later picks it up
    assert row(app, video_id)["status"] == "ready"

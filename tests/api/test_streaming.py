"""The videos API: catalogue, details, master and media playlists, segments, thumbnails, auth.

Videos are real (tests/fixtures/streaming.py: `make_video` copies a tiny HLS folder made by ffmpeg).
"""
import os
import time
from datetime import UTC, datetime, timedelta

import m3u8
import pytest
from flask_jwt_extended import create_access_token, create_refresh_token

from tests.fixtures.object_store import local_files_only
from tests.fixtures.videos import media, row
from videoflix.auth.sessions import _claims
from videoflix.extensions import db
from videoflix.videos.models import FAILED, PROCESSING, READY, Video

pytestmark = pytest.mark.media_store

VIDEO_FIELDS = {"id", "created_at", "title", "description", "thumbnail_url", "category"}

# --- the catalogue --------------------------------------------------------------------------------

def test_list_needs_a_token(client):
    response = client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Authentication credentials were not provided."}
    client.set_cookie("access_token", "not-a-jwt")
    response = client.get("/api/video/")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Given token not valid for any token type"}


def test_list_is_empty_json_array(client, auth):
    response = client.get("/api/video/")
    assert response.status_code == 200
    assert response.get_json() == []
    assert response.headers["Cache-Control"] == "no-store"


def test_list_ready_videos_newest_first_with_six_fields(client, auth, make_video, app):
    now = datetime.now(UTC)
    old = make_video("Old", created_at=now - timedelta(days=2))
    new = make_video("New", created_at=now - timedelta(hours=1), thumbnail=False)
    make_video("Busy", status=PROCESSING, files=False, created_at=now)
    make_video("Broken", status=FAILED, files=False, created_at=now)

    response = client.get("/api/video/")
    assert response.status_code == 200
    items = response.get_json()
    assert [item["id"] for item in items] == [new, old]
    assert all(set(item) == VIDEO_FIELDS for item in items)
    newest, oldest = items
    assert newest["title"] == "New" and newest["category"] == "Drama" and newest["description"] == "A film."
    assert newest["thumbnail_url"] is None
    created = datetime.fromisoformat(oldest["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert abs(created - (now - timedelta(days=2))) < timedelta(seconds=1)
    version = row(app, old)["hls_dir"].split("/")[1]
    assert oldest["thumbnail_url"] == f"http://localhost/api/video/{old}/thumbnail.jpg?v={version}"
    # The URL in the list is loadable as is (by the browser, with the cookie).
    image = client.get(oldest["thumbnail_url"])
    assert image.status_code == 200 and image.data[:2] == b"\xff\xd8"


@pytest.mark.parametrize("count", [1, 50])
def test_list_runs_a_constant_number_of_queries(client, auth, make_video, count_queries, app, count):
    with app.app_context():
        db.session.add_all(
            Video(title=f"V{i}", category="Drama", status=READY, hls_dir=f"{i}/v", renditions=[],
                  thumbnail=f"{i}/v/thumbnail.jpg")
            for i in range(count)
        )
        db.session.commit()
    with count_queries() as statements:
        response = client.get("/api/video/")
    assert len(response.get_json()) == count
    video_selects = [s for s in statements if "FROM video" in s]
    assert len(video_selects) == 1
    # The video SELECT and the token's revocation lookup (unless Redis holds it); no user row.
    assert len(statements) == (1 if app.config["REDIS_URL"] else 2)


# --- details --------------------------------------------------------------------------------------

def test_detail_of_a_ready_video(client, auth, make_video, app):
    video_id = make_video("Detail")
    response = client.get(f"/api/video/{video_id}/")
    assert response.status_code == 200
    body = response.get_json()
    version = row(app, video_id)["hls_dir"].split("/")[1]
    assert body == {
        "id": video_id, "title": "Detail", "description": "A film.", "category": "Drama",
        "created_at": body["created_at"], "status": "ready", "progress": 100, "playable": True, "duration": 3.0,
        "resolutions": ["480p", "720p"],
        "thumbnail_url": f"http://localhost/api/video/{video_id}/thumbnail.jpg?v={version}",
        "master_url": f"http://localhost/api/video/{video_id}/master.m3u8",
        "storyboard_url": None,  # the template version has none (see test_storyboard.py)
    }
    assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)


def test_detail_hides_unready_videos_from_users_but_not_staff(client, make_user, login, make_video):
    failed = make_video("Bad", status=FAILED, files=False, error="ffmpeg exploded")
    make_user()
    login()
    response = client.get(f"/api/video/{failed}/")
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Video not found."}
    assert client.get("/api/video/999/").get_json() == {"detail": "Video not found."}

    make_user("staff@example.com", staff=True)
    login("staff@example.com")
    body = client.get(f"/api/video/{failed}/").get_json()
    assert body["status"] == "failed" and body["error"] == "ffmpeg exploded"
    assert body["master_url"] is None and body["thumbnail_url"] is None


# --- playlists and segments -----------------------------------------------------------------------

@local_files_only
def test_master_playlist_is_the_transcoders_file_with_resolvable_uris(client, auth, make_video, app):
    video_id = make_video(labels=("480p", "720p"))
    hls_dir = row(app, video_id)["hls_dir"]
    response = client.get(f"/api/video/{video_id}/master.m3u8")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.apple.mpegurl"
    with open(media(app, "hls", hls_dir, "master.m3u8"), "rb") as f:
        assert response.data == f.read()  # the file as written, not rebuilt from the row
    master = m3u8.loads(response.get_data(as_text=True))
    assert master.is_variant
    assert [p.uri for p in master.playlists] == ["480p/index.m3u8", "720p/index.m3u8"]
    assert [p.stream_info.resolution for p in master.playlists] == [(160, 90), (320, 180)]
    assert [p.stream_info.bandwidth for p in master.playlists] == [200_000, 400_000]
    assert [p.stream_info.frame_rate for p in master.playlists] == [10.0, 10.0]
    for playlist in master.playlists:
        answer = client.get(f"/api/video/{video_id}/{playlist.uri}")
        assert answer.status_code == 200 and answer.mimetype == "application/vnd.apple.mpegurl"
    # A version without its master (never published that way) is a 404, like any missing file.
    os.remove(media(app, "hls", hls_dir, "master.m3u8"))
    missing = client.get(f"/api/video/{video_id}/master.m3u8")
    assert missing.status_code == 404 and missing.get_json() == {"detail": "Not found."}


@local_files_only
def test_media_playlist_and_segments_with_and_without_slash(client, auth, make_video, app):
    video_id = make_video()
    hls_dir = row(app, video_id)["hls_dir"]
    response = client.get(f"/api/video/{video_id}/720p/index.m3u8")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    with open(media(app, "hls", hls_dir, "720p", "index.m3u8"), "rb") as f:
        assert response.data == f.read()
    playlist = m3u8.loads(response.get_data(as_text=True))
    uris = [s.uri for s in playlist.segments]
    assert uris == ["seg000.ts", "seg001.ts", "seg002.ts"]
    for uri in uris:
        with open(media(app, "hls", hls_dir, "720p", uri), "rb") as f:
            expected = f.read()
        for url in (f"/api/video/{video_id}/720p/{uri}", f"/api/video/{video_id}/720p/{uri}/"):
            segment = client.get(url)
            assert segment.status_code == 200, url
            assert segment.headers["Content-Type"] == "video/MP2T"
            assert segment.data == expected and expected[0] == 0x47  # an MPEG-TS sync byte


@pytest.mark.parametrize("path", [
    "999/480p/index.m3u8", "999/480p/seg000.ts/", "999/master.m3u8", "999/thumbnail.jpg",
    "{id}/1080p/index.m3u8", "{id}/1080p/seg000.ts", "{id}/360p/index.m3u8", "{id}/480p/seg999.ts/",
    "{id}/480p/segment.ts", "{id}/480p/index.m3u8/", "{id}/480p/", "{busy}/480p/index.m3u8",
    "{busy}/480p/seg000.ts", "{busy}/master.m3u8", "{busy}/thumbnail.jpg",
])
def test_media_404s_are_json(client, auth, make_video, app, path):
    video_id = make_video()
    busy = make_video("Busy")
    with app.app_context():
        db.session.get(Video, busy).status = PROCESSING
        db.session.commit()
    response = client.get("/api/video/" + path.format(id=video_id, busy=busy))
    assert response.status_code == 404
    assert response.is_json and set(response.get_json()) == {"detail"}


@pytest.mark.parametrize("path", ["{id}/720p/index.m3u8", "{id}/720p/seg000.ts/", "{id}/720p/seg000.ts",
                                  "{id}/master.m3u8", "{id}/thumbnail.jpg", "{id}/"])
def test_every_media_route_needs_a_token(app, make_video, path):
    video_id = make_video()
    response = app.test_client().get("/api/video/" + path.format(id=video_id))
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Authentication credentials were not provided."}


def test_bearer_header_works_and_expired_or_revoked_tokens_stop_the_stream(client, make_user, login,
                                                                          make_video, app):
    video_id = make_video()
    user_id = make_user()
    login()
    url = f"/api/video/{video_id}/480p/seg001.ts"
    assert client.get(url).status_code == 200
    with app.app_context():
        bearer = create_access_token(identity=str(user_id), additional_claims=_claims())
        expired = create_access_token(identity=str(user_id), additional_claims=_claims(),
                                      expires_delta=timedelta(seconds=-5))
    other = app.test_client()
    assert other.get(url, headers={"Authorization": f"Bearer {bearer}"}).status_code == 200
    response = other.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.get_json() == {"detail": "Token is expired."}

    assert client.post("/api/logout/").status_code == 200  # revokes the cookie's access token too
    access = [c for c in login().headers.getlist("Set-Cookie") if c.startswith("access_token=")][0]
    client.post("/api/logout/")
    client.set_cookie("access_token", access.split(";")[0].split("=", 1)[1])
    response = client.get(url)
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Token has been revoked."}


# --- thumbnails -----------------------------------------------------------------------------------

@local_files_only
def test_thumbnail_is_a_cacheable_same_site_jpeg(client, auth, make_video, app):
    video_id = make_video()
    hls_dir = row(app, video_id)["hls_dir"]
    url = client.get(f"/api/video/{video_id}/").get_json()["thumbnail_url"]
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert {"Cookie", "Authorization"} <= set(response.vary)
    with open(media(app, "hls", hls_dir, "thumbnail.jpg"), "rb") as f:
        assert response.data == f.read()
    # Without (or with an old) version the same bytes come back, but must be revalidated.
    stale = client.get(f"/api/video/{video_id}/thumbnail.jpg?v=old")
    assert stale.data == response.data and stale.headers["Cache-Control"] == "private, no-cache"


def test_ids_beyond_the_column_range_are_404_not_500(client, auth):
    # Found by schemathesis: a 19-digit id overflowed the database driver.
    for path in ["/api/video/9999999999999999999/", "/api/video/2147483648/thumbnail.jpg",
                 "/api/video/99999999999999999999999/480p/index.m3u8", "/api/video/9999999999/480p/seg000.ts"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json() == {"detail": "Not found."}


def test_a_cached_token_is_still_refused_once_revoked_or_expired(client, make_user, make_video, app, monkeypatch):
    """The media routes' check (auth.credentials) caches decoded tokens; revocation and expiry are
    checked every time."""
    import videoflix.auth.credentials as credentials
    from videoflix.auth.revocation import revoke_all_for_user

    video_id = make_video()
    user_id = make_user()
    url = f"/api/video/{video_id}/480p/seg001.ts"
    with app.app_context():
        token = create_access_token(identity=str(user_id), additional_claims=_claims(),
                                    expires_delta=timedelta(minutes=30))
        refresh = create_refresh_token(identity=str(user_id), additional_claims=_claims())
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(url, headers=bearer).status_code == 200
    assert token in app.extensions[credentials.CACHE_KEY]

    with monkeypatch.context() as later:  # half an hour on, for the token checks only
        later.setattr(credentials, "now", lambda: time.time() + 31 * 60)
        late = client.get(url, headers=bearer)
    assert late.status_code == 401 and late.get_json() == {"detail": "Token is expired."}

    with app.app_context():
        revoke_all_for_user(user_id)  # what a password reset or a deactivation does
    revoked = client.get(url, headers=bearer)
    assert revoked.status_code == 401 and revoked.get_json() == {"detail": "Token has been revoked."}

    wrong_type = client.get(url, headers={"Authorization": f"Bearer {refresh}"})
    assert wrong_type.status_code == 401
    assert wrong_type.get_json() == {"detail": "Given token not valid for any token type"}

"""The back office's subtitle tracks: staff add (CSRF-protected multipart form) and delete a track;
a refused file is a 400 with the reason and stores nothing; the page keeps the strict CSP."""
import io
import re

import m3u8
import pytest

from tests.fixtures.subtitles import SRT, stored_files, stored_text
from tests.fixtures.videos import csrf, row, sign_in_staff
from videoflix.extensions import db
from videoflix.videos.models import Subtitle

pytestmark = pytest.mark.media_store


@pytest.fixture
def staff(make_user, client):
    return sign_in_staff(make_user, client)


def post_track(client, video_id, data, language="de", label="Deutsch", token=True):
    form = {"video_id": str(video_id), "language": language, "label": label,
            "file": (io.BytesIO(data), "track.srt")}
    if token:
        form["csrf_token"] = csrf(client, "/admin/subtitles/new/")
    return client.post("/admin/subtitles/new/", data=form, content_type="multipart/form-data")


def tracks(app):
    with app.app_context():
        return [(s.video_id, s.language, s.label) for s in db.session.execute(db.select(Subtitle)).scalars()]


def master_languages(app, video_id):
    return [m.language for m in m3u8.loads(stored_text(app, row(app, video_id)["hls_dir"], "master.m3u8")).media]


def test_staff_add_and_delete_a_track(app, client, staff, make_video):
    video_id = make_video("Sintel")
    response = post_track(client, video_id, SRT.encode())
    assert response.status_code == 302, response.data[:2000]
    assert tracks(app) == [(video_id, "de", "Deutsch")]
    assert master_languages(app, video_id) == ["de"]

    page = client.get("/admin/subtitles/")
    assert page.status_code == 200 and b"Sintel" in page.data and b"Deutsch" in page.data
    with app.app_context():
        track_id = db.session.execute(db.select(Subtitle.id)).scalar_one()
    token = csrf(client, "/admin/subtitles/")
    response = client.post("/admin/subtitles/delete/", data={"csrf_token": token, "id": str(track_id)})
    assert response.status_code == 302
    assert tracks(app) == [] and master_languages(app, video_id) == []
    assert stored_files(app, row(app, video_id)["hls_dir"], "subtitles") == []


@pytest.mark.parametrize("data, language, message", [
    (SRT.encode("latin-1"), "de", b"not UTF-8 text"),
    (b"not subtitles at all", "de", b"neither valid WebVTT nor SRT"),
    (SRT.encode(), "deutsch", b"BCP 47"),
])
def test_a_refused_track_is_a_400_with_the_reason_and_nothing_is_stored(app, client, staff, make_video,
                                                                       data, language, message):
    video_id = make_video()
    before = stored_files(app, row(app, video_id)["hls_dir"])
    assert "master.m3u8" in before
    response = post_track(client, video_id, data, language=language)
    assert response.status_code == 400 and b"The subtitle track was refused: " in response.data
    assert message in response.data
    assert tracks(app) == [] and stored_files(app, row(app, video_id)["hls_dir"]) == before


def test_no_track_without_the_csrf_token_or_for_an_unknown_video(app, client, staff, make_video):
    video_id = make_video()
    assert post_track(client, video_id, SRT.encode(), token=False).status_code == 200  # the form again
    response = post_track(client, video_id + 1, SRT.encode())
    assert response.status_code == 400 and f"There is no video {video_id + 1}.".encode() in response.data
    assert tracks(app) == []


def test_the_subtitle_pages_keep_the_strict_policy(client, staff):
    for path in ("/admin/subtitles/", "/admin/subtitles/new/"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        scripts = re.findall(rb"<script(?![^>]*\bsrc=)([^>]*)>", response.data)
        assert all(f'nonce="{nonce}"'.encode() in attrs for attrs in scripts), scripts

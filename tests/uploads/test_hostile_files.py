"""Hostile uploads (issue 10 items 1, 9, 10): files that make a demuxer open other files, truncated
files, and files past the size/duration limits are refused by the admin (400) and `flask add-video`
(exit 1), and nothing is stored: no row, no file. A row stored by older code under a playlist
name is refused by the worker too, and nothing of the file it points at is published."""
import io
import re

import pytest

from tests.fixtures.clips import _AAC, _AUDIO, _H264, _make, _video
from tests.fixtures.videos import csrf, files_below, media, row, sign_in_staff
from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.tasks import request_transcode

pytestmark = pytest.mark.slow
EXTENSIONS = [".m3u8", ".mp4", ".mkv", ".ts", ""]
PLAYLIST_REFUSAL = "Playlists, manifests and file lists (HLS, DASH, concat) are not accepted"


@pytest.fixture
def staff(make_user, client):
    return sign_in_staff(make_user, client)


@pytest.fixture(scope="session")
def clip_ts(clips_dir):
    """640x360 H.264 + AAC in MPEG-TS, 2 s."""
    return _make(clips_dir, "plain.ts", [*_video("640x360", 2), *_AUDIO, *_H264, "-g", "10", *_AAC])


@pytest.fixture(scope="session")
def secret_media(clips_dir):
    """Another media file on the host (8 s, so a transcode of it is recognisable)."""
    return _make(clips_dir, "secret.ts", [*_video("854x480", 8), *_AUDIO, *_H264, "-g", "10", *_AAC])


def _hls(target):
    return (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:8.0,\n{target}\n#EXT-X-ENDLIST\n").encode()


def _dash(target):
    return (f'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            f'mediaPresentationDuration="PT8S" minBufferTime="PT2S" '
            f'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">'
            f'<Period><AdaptationSet mimeType="video/mp2t"><Representation id="1" bandwidth="800000">'
            f'<BaseURL>file://{target}</BaseURL></Representation></AdaptationSet></Period></MPD>\n').encode()


@pytest.fixture(scope="session")
def hostile(clips_dir, clip_ts, secret_media):
    """name -> bytes of each hostile file, each pointing at secret_media by its absolute path."""
    return {
        "polyglot": _hls(secret_media) + clip_ts.read_bytes(),
        "playlist": _hls(secret_media),
        "concat": f"ffconcat version 1.0\nfile '{secret_media}'\n".encode(),
        "concat-bare": f"file '{secret_media}'\n".encode(),
        "dash": _dash(secret_media),
    }


CASES = [(kind, ext) for kind in ["polyglot", "playlist", "concat", "concat-bare", "dash"] for ext in EXTENSIONS]


def nothing_stored(app):
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Video.id))).scalar() == 0
    assert files_below(media(app, "uploads")) == [] and files_below(media(app, "hls")) == []


def admin_upload(client, name, data):
    form = {"csrf_token": csrf(client, "/admin/videos/new/"), "title": "Hostile", "description": "",
            "category": "Drama", "file": (io.BytesIO(data), name)}
    return client.post("/admin/videos/new/", data=form, content_type="multipart/form-data")


def flashed(response):
    match = re.search(rb"The upload was refused: ([^<]+)", response.data)
    return match.group(1).decode().strip() if match else None


@pytest.mark.parametrize("kind,ext", CASES)
def test_the_admin_refuses_files_that_open_other_files(app, client, staff, hostile, kind, ext):
    response = admin_upload(client, f"{kind}{ext}", hostile[kind])

    assert response.status_code == 400
    message = flashed(response)
    assert message is not None and (PLAYLIST_REFUSAL in message or "not a video" in message), message
    nothing_stored(app)


@pytest.mark.parametrize("kind,ext", CASES)
def test_add_video_refuses_files_that_open_other_files(app, runner, hostile, tmp_path, kind, ext):
    path = tmp_path / f"{kind}{ext}"
    path.write_bytes(hostile[kind])

    result = runner.invoke(args=["add-video", str(path), "--title", "Hostile", "--category", "Drama"])

    assert result.exit_code == 1, result.output
    assert PLAYLIST_REFUSAL in result.output or "not a video" in result.output, result.output
    nothing_stored(app)


def test_the_worker_refuses_a_playlist_stored_by_older_code(app, hostile, secret_media):
    """A polyglot kept as uploads/<uuid>.m3u8 (as before the fix) never becomes a video."""
    name = "0123456789abcdef0123456789abcdef.m3u8"
    media(app, "uploads").mkdir(parents=True, exist_ok=True)
    media(app, "uploads", name).write_bytes(hostile["polyglot"])
    with app.app_context():
        video = Video(title="Old", description="", category="Drama", source_file=name)
        db.session.add(video)
        db.session.commit()
        video_id = video.id
        request_transcode(video)

    video = row(app, video_id)
    assert video["status"] == "failed" and video["hls_dir"] is None
    assert PLAYLIST_REFUSAL in video["error"]
    assert files_below(media(app, "hls")) == []


# ------------------------------------------------------------------ truncated (item 9)

@pytest.fixture(scope="session")
def clip_long_faststart(clips_dir):
    return _make(clips_dir, "long-faststart.mp4", [
        *_video("640x360", 8), "-f", "lavfi", "-i", "sine=f=440:sample_rate=44100:d=8", *_H264, "-g", "10",
        *_AAC, "-movflags", "+faststart"])


@pytest.fixture(scope="session")
def clip_long_mkv(clips_dir):
    return _make(clips_dir, "long.mkv", [
        *_video("640x360", 8), "-f", "lavfi", "-i", "sine=f=440:sample_rate=44100:d=8", *_H264, "-g", "10",
        *_AAC])


@pytest.mark.parametrize("clip,fraction", [("clip_long_faststart", 0.4), ("clip_long_mkv", 0.5)])
def test_truncated_uploads_are_refused(app, client, staff, runner, request, tmp_path, clip, fraction):
    data = request.getfixturevalue(clip).read_bytes()
    cut = tmp_path / f"cut{request.getfixturevalue(clip).suffix}"
    cut.write_bytes(data[: int(len(data) * fraction)])

    result = runner.invoke(args=["add-video", str(cut), "--title", "Cut", "--category", "Drama"])
    assert result.exit_code == 1 and "The video file is truncated or incomplete" in result.output, result.output
    response = admin_upload(client, cut.name, cut.read_bytes())
    assert response.status_code == 400 and "truncated or incomplete" in (flashed(response) or "")
    nothing_stored(app)


def test_the_whole_files_are_accepted(app, runner, clip_long_faststart, clip_long_mkv):
    for clip in (clip_long_faststart, clip_long_mkv):
        result = runner.invoke(args=["add-video", str(clip), "--title", "Whole", "--category", "Drama"])
        assert result.exit_code == 0, result.output
    assert [row(app, i)["status"] for i in (1, 2)] == ["ready", "ready"]
    assert [round(row(app, i)["duration"]) for i in (1, 2)] == [8, 8]


# ------------------------------------------------------------------ limits (item 10)

def test_a_picture_over_the_pixel_limit_is_refused(app, runner, clip_360p):
    app.config["MAX_UPLOAD_PIXELS"] = 640 * 360 - 1
    result = runner.invoke(args=["add-video", str(clip_360p), "--title", "Big", "--category", "Drama"])
    assert result.exit_code == 1
    assert "The video's picture (640x360) is larger than the limit of 230399 pixels." in result.output
    nothing_stored(app)


def test_a_video_over_the_duration_limit_is_refused(app, client, staff, clip_360p):
    app.config["MAX_UPLOAD_SECONDS"] = 1
    response = admin_upload(client, clip_360p.name, clip_360p.read_bytes())
    assert response.status_code == 400
    assert flashed(response) == "The video is longer than the limit of 1 seconds."
    nothing_stored(app)


def test_within_the_limits_it_is_accepted(app, runner, clip_360p):
    app.config["MAX_UPLOAD_PIXELS"], app.config["MAX_UPLOAD_SECONDS"] = 640 * 360, 3
    result = runner.invoke(args=["add-video", str(clip_360p), "--title", "Fits", "--category", "Drama"])
    assert result.exit_code == 0, result.output
    assert row(app, 1)["status"] == "ready" and row(app, 1)["source_info"]["container_format"] == "mov"


@pytest.mark.parametrize("ext", [".m3u8", ""])
def test_a_real_video_under_a_misleading_name_is_read_as_what_it_is(app, runner, clip_ts, tmp_path, ext):
    path = tmp_path / f"video{ext}"
    path.write_bytes(clip_ts.read_bytes())
    result = runner.invoke(args=["add-video", str(path), "--title", "TS", "--category", "Drama"])
    assert result.exit_code == 0, result.output
    video = row(app, 1)
    assert video["status"] == "ready" and video["source_info"]["container_format"] == "mpegts"
    assert video["original_filename"] == path.name and "." not in video["source_file"]

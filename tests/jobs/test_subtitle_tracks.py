"""Subtitle tracks: `flask add-subtitle`, SRT to WebVTT, strict validation (nothing stored when
refused), the routes, and the master playlist read by the m3u8 package."""
import codecs

import m3u8
import pytest

from tests.fixtures.subtitles import SRT, VTT, add, master, stored, stored_files
from tests.fixtures.videos import add_clip, queue, row
from videoflix.extensions import db
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.media import hls, webvtt
from videoflix.videos.models import Subtitle, Video

pytestmark = pytest.mark.media_store


def test_an_srt_track_is_converted_listed_served_and_named_by_the_master(app, runner, client, auth,
                                                                         make_video, tmp_path):
    video_id = make_video()
    result = add(runner, tmp_path, video_id, SRT, "DE", "Deutsch")
    assert result.exit_code == 0, result.output
    assert "subtitle track de (Deutsch) added" in result.output

    listed = client.get(f"/api/video/{video_id}/subtitles/")
    assert listed.status_code == 200
    assert listed.json == [{"language": "de", "label": "Deutsch",
                            "url": f"http://localhost/api/video/{video_id}/subtitles/de.vtt"}]

    vtt = client.get(f"/api/video/{video_id}/subtitles/de.vtt")
    assert vtt.status_code == 200 and vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
    text = vtt.get_data(as_text=True)
    lines = text.splitlines()
    assert lines[0] == "WEBVTT" and lines[1].startswith("X-TIMESTAMP-MAP=MPEGTS:")
    assert int(lines[1].split("MPEGTS:")[1].split(",")[0]) > 0  # ffmpeg's segments start at 1.4 s
    assert "00:00:00.500 --> 00:00:01.250\nHallo <i>Welt</i>" in text
    assert "00:00:01.500 --> 00:00:02.900\nÄrger über Öl\nzweite Zeile" in text

    parsed = master(client, video_id)
    [media] = parsed.media
    assert (media.type, media.group_id, media.language, media.name, media.uri) == (
        "SUBTITLES", "subs", "de", "Deutsch", "subtitles/de.m3u8")
    assert len(parsed.playlists) == 2
    assert all(p.stream_info.subtitles == "subs" for p in parsed.playlists)
    assert [p.uri for p in parsed.playlists] == ["480p/index.m3u8", "720p/index.m3u8"]

    playlist = client.get(f"/api/video/{video_id}/subtitles/de.m3u8")
    assert playlist.status_code == 200 and playlist.mimetype == "application/vnd.apple.mpegurl"
    media_playlist = m3u8.loads(playlist.get_data(as_text=True))
    assert media_playlist.is_endlist and [s.uri for s in media_playlist.segments] == ["de.vtt"]
    assert media_playlist.segments[0].duration == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("name, data", [
    ("vtt", VTT.encode()),
    ("srt with a UTF-8 BOM", codecs.BOM_UTF8 + SRT.encode()),
    ("srt with CRLF", SRT.replace("\n", "\r\n").encode()),
    ("srt in UTF-16 with a BOM", SRT.encode("utf-16")),
])
def test_each_kind_of_file_is_accepted(app, runner, client, auth, make_video, tmp_path, name, data):
    video_id = make_video()
    result = add(runner, tmp_path, video_id, data, "pt-br", "Português")
    assert result.exit_code == 0, result.output
    text = client.get(f"/api/video/{video_id}/subtitles/pt-BR.vtt").get_data(as_text=True)
    assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=") and "\ufeff" not in text and "\r" not in text
    assert ("Olá, mundo" in text and "Ça va?" in text) if name == "vtt" else "Ärger über Öl" in text
    assert stored(app, video_id) == [("pt-BR", "Português")]
    assert master(client, video_id).media[0].language == "pt-BR"


@pytest.mark.parametrize("data, message", [
    (SRT.encode("latin-1"), "not UTF-8 text"),
    (b"", "neither valid WebVTT nor SRT"),
    (b"just some words\nno cues here\n", "neither valid WebVTT nor SRT"),
    (b"WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nbackwards\n", "ends before it starts"),
    (b"1\n00:00:01,000 --> 00:00:01,000\nzero length\n", "ends before it starts"),
    (b"1\n00:00:04,000 --> 00:00:05,000\nafter the end\n", "beyond the end of the video"),
    (b"1\n00:00:01,000 --> 00:00:09,000\nfar past the end\n", "beyond the end of the video"),
    (b"1\n00:00:01,000 --> 00:00:02,000\nnul\x00byte\n", "not a text file"),
    (b"1\n" + b"00:00:01,000 --> 00:00:02,000\n" + b"x" * (webvtt.MAX_BYTES + 1), "larger than 1024 KB"),
])
def test_a_file_that_does_not_pass_is_refused_and_nothing_is_stored(app, runner, client, auth, make_video,
                                                                     tmp_path, data, message):
    video_id = make_video()
    files = stored_files(app, row(app, video_id)["hls_dir"])
    assert "master.m3u8" in files
    result = add(runner, tmp_path, video_id, data)
    assert result.exit_code == 1 and message in result.output
    assert stored(app, video_id) == []
    assert stored_files(app, row(app, video_id)["hls_dir"]) == files
    assert client.get(f"/api/video/{video_id}/subtitles/").json == []
    assert client.get(f"/api/video/{video_id}/subtitles/de.vtt").status_code == 404
    assert master(client, video_id).media == []


def test_language_and_label_are_checked_and_one_track_per_language(app, runner, make_video, tmp_path):
    video_id = make_video()
    assert "BCP 47" in add(runner, tmp_path, video_id, SRT, language="german").output
    assert "BCP 47" in add(runner, tmp_path, video_id, SRT, language="../de").output
    assert "label" in add(runner, tmp_path, video_id, SRT, label="  ").output
    assert add(runner, tmp_path, video_id, SRT, language="de").exit_code == 0
    again = add(runner, tmp_path, video_id, SRT, language="DE", label="Noch einmal")
    assert again.exit_code == 1 and "already has a de track" in again.output
    assert stored(app, video_id) == [("de", "Deutsch")]
    assert "does not exist" in add(runner, tmp_path, 999, SRT).output


def test_removing_a_track_removes_it_everywhere(app, runner, client, auth, make_video, tmp_path):
    video_id = make_video()
    assert add(runner, tmp_path, video_id, SRT, "de", "Deutsch").exit_code == 0
    assert add(runner, tmp_path, video_id, VTT, "fr", "Français").exit_code == 0
    assert [m.language for m in master(client, video_id).media] == ["de", "fr"]
    with app.app_context():
        subtitle_tracks.remove(db.session.execute(db.select(Subtitle).filter_by(language="de")).scalar_one())
    assert stored(app, video_id) == [("fr", "Français")]
    hls_dir = row(app, video_id)["hls_dir"]
    assert stored_files(app, hls_dir, "subtitles") == ["fr.m3u8", "fr.vtt"]
    assert client.get(f"/api/video/{video_id}/subtitles/de.vtt").status_code == 404
    assert [m.language for m in master(client, video_id).media] == ["fr"]
    with app.app_context():
        subtitle_tracks.remove(db.session.execute(db.select(Subtitle)).scalar_one())
    text = client.get(f"/api/video/{video_id}/master.m3u8").get_data(as_text=True)
    assert "SUBTITLES" not in text and master(client, video_id).media == []
    assert stored_files(app, hls_dir, "subtitles") == []


def test_deleting_the_video_deletes_its_tracks(app, runner, make_video, tmp_path):
    video_id = make_video()
    assert add(runner, tmp_path, video_id, SRT).exit_code == 0
    with app.app_context():
        db.session.delete(db.session.get(Video, video_id))
        db.session.commit()
        assert db.session.execute(db.select(Subtitle)).first() is None
    assert stored_files(app, str(video_id)) == []


def test_subtitle_routes_need_credentials_and_a_ready_video(app, runner, client, make_user, login,
                                                           make_video, tmp_path):
    video_id = make_video()
    assert add(runner, tmp_path, video_id, SRT).exit_code == 0
    for path in (f"/api/video/{video_id}/subtitles/", f"/api/video/{video_id}/subtitles/de.vtt",
                 f"/api/video/{video_id}/subtitles/de.m3u8"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json == {"detail": "Authentication credentials were not provided."}
    make_user()
    login()
    assert client.get("/api/video/999/subtitles/").status_code == 404
    for name in ("de.txt", "..%2Fmaster.m3u8", "de.vtt.tmp"):
        assert client.get(f"/api/video/{video_id}/subtitles/{name}").status_code == 404


def test_a_retranscoded_video_keeps_its_tracks_without_a_transcode_for_them(app, runner, client, auth,
                                                                            clip_720p, tmp_path):
    video_id = add_clip(app, clip_720p)
    first = row(app, video_id)["hls_dir"]
    assert add(runner, tmp_path, video_id, SRT).exit_code == 0
    assert row(app, video_id)["hls_dir"] == first  # adding a track transcodes nothing
    queue(app, video_id)
    second = row(app, video_id)["hls_dir"]
    assert second != first and row(app, video_id)["status"] == "ready"
    assert stored_files(app, second, "subtitles") == ["de.m3u8", "de.vtt"]
    assert stored_files(app, first) == []
    parsed = master(client, video_id)
    assert [m.language for m in parsed.media] == ["de"]
    assert all(p.stream_info.subtitles == "subs" for p in parsed.playlists)
    assert "Ärger über Öl" in client.get(f"/api/video/{video_id}/subtitles/de.vtt").get_data(as_text=True)


def test_rewriting_the_master_is_idempotent():
    plain = ('#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2,CODECS="avc1.42c00d"\n'
             "480p/index.m3u8\n")
    tracks = [hls.SubtitleEntry("de", 'Deutsch "DE"', "subtitles/de.m3u8")]
    once = hls.with_subtitles(plain, tracks)
    twice = hls.with_subtitles(once, tracks)
    assert once == twice and once.count('SUBTITLES="subs"') == 1 and once.count("TYPE=SUBTITLES") == 1
    assert m3u8.loads(once).media[0].name == "Deutsch 'DE'"  # a quoted-string holds no double quote
    assert hls.with_subtitles(twice, []) == plain

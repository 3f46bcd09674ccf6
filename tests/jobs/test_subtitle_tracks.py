"""Subtitle tracks: `flask add-subtitle`, SRT to WebVTT, strict validation (nothing stored when
refused), the routes, and the master playlist read by the m3u8 package."""
import codecs
import errno
import unicodedata
from urllib.parse import quote

import m3u8
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.properties import FEW, MANY
from tests.fixtures.subtitles import (
    HOSTILE_LABELS,
    SRT,
    VTT,
    add,
    master,
    store_as_before_the_rules,
    stored,
    stored_files,
    stored_text,
)
from tests.fixtures.videos import add_clip, queue, row
from videoflix.extensions import db
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.media import hls, webvtt
from videoflix.videos.models import Subtitle, Video
from videoflix.videos.storage.keys import media_store
from videoflix.videos.storage.versions import VersionFiles

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
    tracks = [hls.SubtitleEntry("de", "Deutsch (DE), für alle: 'OV'", "subtitles/de.m3u8")]
    once = hls.with_subtitles(plain, tracks)
    twice = hls.with_subtitles(once, tracks)
    assert once == twice and once.count('SUBTITLES="subs"') == 1 and once.count("TYPE=SUBTITLES") == 1
    assert m3u8.loads(once).media[0].name == "Deutsch (DE), für alle: 'OV'"
    assert hls.with_subtitles(twice, []) == plain


@pytest.mark.parametrize("code", ["ſv", "ıt", "İt", "\u212aa", "de-\u212a\u212a", "es-٤١٩", "en-ſcot", "ＤＥ"])
def test_a_language_code_with_other_than_ascii_letters_and_digits_is_refused(app, runner, client, auth,
                                                                           make_video, tmp_path, code):
    video_id = make_video()
    files = stored_files(app, row(app, video_id)["hls_dir"])
    result = add(runner, tmp_path, video_id, SRT, language=code)
    assert result.exit_code == 1 and 'Give a BCP 47 language code such as "de" or "pt-BR".' in result.output
    assert stored(app, video_id) == [] and stored_files(app, row(app, video_id)["hls_dir"]) == files


def test_one_track_per_language_whatever_its_spelling(app, runner, client, auth, make_video, tmp_path):
    video_id = make_video()
    assert add(runner, tmp_path, video_id, SRT, language="sv", label="Svenska").exit_code == 0
    for spelling in ("SV", "Sv", " sv ", "ſv", "ſV"):
        again = add(runner, tmp_path, video_id, SRT, language=spelling, label="Svenska igen")
        assert again.exit_code == 1, (spelling, again.output)
    assert stored(app, video_id) == [("sv", "Svenska")]
    assert stored_files(app, row(app, video_id)["hls_dir"], "subtitles") == ["sv.m3u8", "sv.vtt"]
    assert [(m.language, m.name) for m in master(client, video_id).media] == [("sv", "Svenska")]
    assert client.get(f"/api/video/{video_id}/subtitles/").json[0]["language"] == "sv"


@pytest.mark.parametrize("label", HOSTILE_LABELS.values(), ids=HOSTILE_LABELS.keys())
def test_a_label_with_anything_but_letters_digits_spaces_and_punctuation_is_refused(app, runner, client, auth,
                                                                                  make_video, tmp_path, label):
    video_id = make_video()
    hls_dir = row(app, video_id)["hls_dir"]
    files, text = stored_files(app, hls_dir), stored_text(app, hls_dir, "master.m3u8")
    result = add(runner, tmp_path, video_id, SRT, label=label)
    assert result.exit_code == 1
    assert "A label holds letters, digits, spaces and punctuation, not " in result.output
    assert stored(app, video_id) == []
    assert stored_files(app, hls_dir) == files and stored_text(app, hls_dir, "master.m3u8") == text


def test_labels_in_any_script_are_kept_as_given(app, runner, client, auth, make_video, tmp_path):
    video_id = make_video()
    labels = {"pt-BR": "Português (Brasil)", "zh-Hans": "中文（简体）", "fa": "فارسی", "hi": "हिन्दी",
              "de": "Deutsch, für Hörgeschädigte: 1/2 = [SDH] 'OV'"}
    for language, label in labels.items():
        result = add(runner, tmp_path, video_id, SRT, language=language, label=f"  {label} ")
        assert result.exit_code == 0, result.output
    assert sorted(stored(app, video_id)) == sorted(labels.items())
    assert {m.language: m.name for m in master(client, video_id).media} == labels
    # a label in decomposed form is stored composed (NFC): the one spelling the playlist carries
    assert add(runner, tmp_path, video_id, SRT, language="fr", label="Franc\u0327ais").exit_code == 0
    assert ("fr", "Français") in stored(app, video_id)


def master_text(app, video_id):
    return stored_text(app, row(app, video_id)["hls_dir"], "master.m3u8")


def test_a_track_whose_files_cannot_be_written_is_not_added(app, runner, client, auth, make_video, tmp_path):
    """All or nothing: the store lost the segment the X-TIMESTAMP-MAP is read from, so the add
    fails, and neither the row nor a file of it stays."""
    video_id = make_video()
    hls_dir = row(app, video_id)["hls_dir"]
    with app.app_context():
        media_store().delete(f"hls/{hls_dir}/480p/seg000.ts")
    files, text = stored_files(app, hls_dir), master_text(app, video_id)
    result = add(runner, tmp_path, video_id, SRT)
    assert result.exit_code == 1
    assert "The subtitle tracks could not be published (NotStored: " in result.output
    assert "nothing was changed. Try again." in result.output
    assert stored(app, video_id) == []
    assert stored_files(app, hls_dir) == files and master_text(app, video_id) == text


def fail_once(monkeypatch, name):
    """The store refuses the next write of version file `name` (a full disk), then recovers."""
    real_write, failed = VersionFiles.write, []

    def write(self, written, text):
        if written == name and not failed:
            failed.append(written)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, written, text)

    monkeypatch.setattr(VersionFiles, "write", write)
    return failed


def test_a_failure_while_publishing_leaves_neither_the_row_nor_its_files(app, runner, client, auth, make_video,
                                                                          tmp_path, monkeypatch):
    video_id = make_video()
    assert add(runner, tmp_path, video_id, SRT, "de", "Deutsch").exit_code == 0
    hls_dir = row(app, video_id)["hls_dir"]
    files, text = stored_files(app, hls_dir), master_text(app, video_id)
    failed = fail_once(monkeypatch, "master.m3u8")  # after fr.vtt and fr.m3u8 were written

    result = add(runner, tmp_path, video_id, VTT, "fr", "Français")
    assert failed and result.exit_code == 1 and "No space left on device" in result.output
    assert stored(app, video_id) == [("de", "Deutsch")]
    assert stored_files(app, hls_dir) == files and master_text(app, video_id) == text
    assert client.get(f"/api/video/{video_id}/subtitles/fr.vtt").status_code == 404

    assert add(runner, tmp_path, video_id, VTT, "fr", "Français").exit_code == 0  # the store is back
    assert [m.language for m in master(client, video_id).media] == ["de", "fr"]


def test_a_failure_while_removing_keeps_the_track_whole(app, runner, client, auth, make_video, tmp_path,
                                                        monkeypatch):
    video_id = make_video()
    assert add(runner, tmp_path, video_id, SRT, "de", "Deutsch").exit_code == 0
    hls_dir = row(app, video_id)["hls_dir"]
    files, text = stored_files(app, hls_dir), master_text(app, video_id)
    fail_once(monkeypatch, "master.m3u8")
    with app.app_context(), pytest.raises(subtitle_tracks.NotPublished):
        subtitle_tracks.remove(db.session.execute(db.select(Subtitle)).scalar_one())
    assert stored(app, video_id) == [("de", "Deutsch")]
    assert stored_files(app, hls_dir) == files and master_text(app, video_id) == text
    assert "Ärger über Öl" in client.get(f"/api/video/{video_id}/subtitles/de.vtt").get_data(as_text=True)


def test_a_track_stored_before_the_rules_neither_breaks_the_next_one_nor_reaches_the_playlist(
        app, runner, client, auth, make_video, tmp_path):
    video_id = make_video()
    hostile = HOSTILE_LABELS["U+2028"]
    store_as_before_the_rules(app, video_id, "en", hostile)
    store_as_before_the_rules(app, video_id, "ſv", "Svenska")
    assert "\u2028" in master_text(app, video_id)

    result = add(runner, tmp_path, video_id, SRT, "sv", "Svenska")
    assert result.exit_code == 0, result.output
    text = master_text(app, video_id)
    assert "evil" not in text and "\u2028" not in text and "ſv" not in text
    assert [(m.language, m.name) for m in master(client, video_id).media] == [("en", "en"), ("sv", "Svenska")]
    assert stored_files(app, row(app, video_id)["hls_dir"], "subtitles") == ["en.m3u8", "en.vtt", "sv.m3u8", "sv.vtt"]
    assert [(t["language"], t["label"]) for t in client.get(f"/api/video/{video_id}/subtitles/").json] == [
        ("en", "en"), ("sv", "Svenska")]

    # The operator's repair after the upgrade: the rows get what the playlists show.
    repaired = runner.invoke(args=["transcode", "--subtitles"])
    assert repaired.exit_code == 0, repaired.output
    assert f"Video {video_id}: track en: label {hostile!r} is now 'en'." in repaired.output
    assert f"Video {video_id}: track 'ſv' has no valid language code; it is left out" in repaired.output
    assert sorted(stored(app, video_id)) == [("en", "en"), ("sv", "Svenska"), ("ſv", "Svenska")]
    assert master_text(app, video_id) == text


def test_the_repair_rewrites_a_master_the_old_writer_left(app, runner, client, auth, make_video, tmp_path):
    video_id = make_video()
    store_as_before_the_rules(app, video_id, "en", HOSTILE_LABELS["content steering"])
    assert "#EXT-X-CONTENT-STEERING" in master_text(app, video_id)
    repaired = runner.invoke(args=["transcode", "--subtitles", str(video_id)])
    assert repaired.exit_code == 0 and f"Video {video_id}: subtitle tracks published." in repaired.output
    assert "CONTENT-STEERING" not in master_text(app, video_id) and "evil" not in master_text(app, video_id)
    assert [(m.language, m.name) for m in master(client, video_id).media] == [("en", "en")]
    assert runner.invoke(args=["transcode", "--subtitles", "999"]).output == "No video has subtitle tracks.\n"


LANGUAGE_TEXT = st.one_of(st.from_regex(r"[a-zA-Zſıİ\u212a]{2,3}(-[a-zA-Z0-9٣]{2,8}){0,3}", fullmatch=True),
                          st.text(max_size=40))


@MANY
@given(LANGUAGE_TEXT)
def test_any_language_code_is_refused_or_one_canonical_ascii_tag(code):
    try:
        language = subtitle_tracks.normalise_language(code)
    except subtitle_tracks.SubtitleRefused as refused:
        assert refused.field == "language" and refused.status == 400
        return
    assert language.isascii() and subtitle_tracks.FILE_RE.fullmatch(f"{language}.vtt")
    assert subtitle_tracks.normalise_language(language) == language  # one spelling per language
    assert language.lower() == code.strip().lower()
    assert subtitle_tracks.normalise_language(code.strip().swapcase()) == language


@MANY
@given(st.text(max_size=120))
def test_any_label_is_refused_or_kept_as_the_playlist_writes_it(label):
    try:
        kept = subtitle_tracks.check_label(label)
    except subtitle_tracks.SubtitleRefused as refused:
        assert refused.field == "label" and refused.message
        return
    assert kept == unicodedata.normalize("NFC", label).strip() and 0 < len(kept) <= subtitle_tracks.MAX_LABEL
    assert hls.quoted(kept) == f'"{kept}"' and subtitle_tracks.check_label(kept) == kept


@FEW
@given(st.one_of(st.sampled_from(["de.vtt", "de.m3u8", "DE.vtt", "ſv.vtt", "de.vtt\u2028", "..%2Fmaster.m3u8"]),
                 st.text(min_size=1, max_size=40)))
def test_any_track_name_in_a_url_is_served_or_a_json_404(app, runner, client, auth, make_video, tmp_path, name):
    video_id = make_video()
    assert add(runner, tmp_path, video_id, SRT).exit_code == 0
    response = client.get(f"/api/video/{video_id}/subtitles/{quote(name, safe='')}")
    if response.status_code == 200:
        assert name in ("de.vtt", "de.m3u8") and response.data
    else:
        assert response.status_code == 404 and response.json == {"detail": "Not found."}, response.data[:200]

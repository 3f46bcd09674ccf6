"""The back office's subtitle tracks: staff add (CSRF-protected multipart form) and delete a track;
a refused file is a 400 with the reason and stores nothing; the page keeps the strict CSP."""
import html
import re

import m3u8
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fixtures.properties import FEW
from tests.fixtures.subtitles import HOSTILE_LABELS, SRT, post_track, stored_files, stored_text
from tests.fixtures.videos import csrf, row, sign_in_staff
from videoflix.extensions import db
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.media import hls
from videoflix.videos.models import Subtitle
from videoflix.videos.storage.keys import media_store

ARROW_SRT = "1\n00:00:00,500 --> 00:00:01,250\nHallo\nA --> B\n"

pytestmark = pytest.mark.media_store


@pytest.fixture
def staff(make_user, client):
    return sign_in_staff(make_user, client)


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


def refusal(response):
    """The flashed reason of a refused form, as the staff member reads it."""
    return html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("data, language, label, message", [
    (ARROW_SRT.encode(), "de", "Deutsch",
     'Cue 1 (00:00:00.500 --> 00:00:01.250) has "-->" in its text, which WebVTT does not allow'),
    (SRT.encode(), "ſv", "Svenska", 'Give a BCP 47 language code such as "de" or "pt-BR".'),
    (SRT.encode(), "İt", "Italiano", 'Give a BCP 47 language code such as "de" or "pt-BR".'),
    (SRT.encode(), "en", HOSTILE_LABELS["content steering"],
     'A label holds letters, digits, spaces and punctuation, not a "#".'),
    (SRT.encode(), "en", HOSTILE_LABELS["U+2028"],
     "A label holds letters, digits, spaces and punctuation, not U+2028 LINE SEPARATOR."),
    (SRT.encode(), "en", "Eng\x85lish", "A label holds letters, digits, spaces and punctuation, not U+0085"),
])
def test_an_untrusted_track_is_a_400_with_a_sentence_not_a_500(app, client, staff, make_video, data, language,
                                                               label, message):
    video_id = make_video()
    before = stored_files(app, row(app, video_id)["hls_dir"])
    response = post_track(client, video_id, data, language=language, label=label)
    assert response.status_code == 400, response.data[:300]
    assert "The subtitle track was refused: " + message in refusal(response)
    assert tracks(app) == [] and stored_files(app, row(app, video_id)["hls_dir"]) == before


def test_a_track_the_store_cannot_take_is_not_added_and_says_so(app, client, staff, make_video):
    video_id = make_video()
    hls_dir = row(app, video_id)["hls_dir"]
    with app.app_context():
        media_store().delete(f"hls/{hls_dir}/480p/seg000.ts")
    before = stored_files(app, hls_dir)
    response = post_track(client, video_id, SRT.encode())
    assert response.status_code == 503
    assert "The subtitle track was not added: The subtitle tracks could not be published (NotStored" in refusal(
        response)
    assert tracks(app) == [] and stored_files(app, hls_dir) == before


LANGUAGES = st.one_of(st.sampled_from(["de", "pt-br", "ZH-hans-CN", "sgn-BE-FR", "ſv", "de-٤١٩", "-", ""]),
                      st.from_regex(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,4})?", fullmatch=True), st.text(max_size=12))
LABELS = st.one_of(st.sampled_from(["Deutsch", "中文（简体）", "  x  ", "#EXT-X-ENDLIST", "a\u2028b", '"']),
                   st.text(st.characters(categories=["L", "M", "N", "P", "Zs"]), min_size=1, max_size=40),
                   st.text(max_size=40))
FILES = st.one_of(st.sampled_from([SRT.encode(), b"WEBVTT\n\n00:01.000 --> 00:02.000\nHallo\n"]),
                  st.sampled_from([ARROW_SRT.encode(), SRT.encode("utf-16")]),
                  st.binary(max_size=200), st.text(max_size=200).map(str.encode))


@FEW
@given(language=LANGUAGES, label=LABELS, data=FILES)
def test_any_form_input_is_refused_with_a_sentence_or_stored_never_a_500(app, client, staff, make_video,
                                                                        language, label, data):
    video_id = make_video()
    response = post_track(client, video_id, data, language=language, label=label)
    assert response.status_code in (200, 302, 400), (response.status_code, response.data[:500])
    added = tracks(app)
    if response.status_code == 302:
        [(_, code, name)] = added
        event("stored")
        parsed = m3u8.loads(stored_text(app, row(app, video_id)["hls_dir"], "master.m3u8"))
        assert [(m.language, m.name) for m in parsed.media] == [(code, name)]
        assert code.isascii() and hls.unsafe_character(name) is None
        with app.app_context():
            subtitle_tracks.remove(db.session.execute(db.select(Subtitle)).scalar_one())
    else:
        event("form errors" if response.status_code == 200 else "refused")
        assert added == []

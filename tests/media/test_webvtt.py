"""Subtitle files are untrusted text: media.webvtt either refuses one with InvalidSubtitles (a
sentence for the uploader) or returns WebVTT that parses back to the cues it was given; no other
exception, whatever the bytes (property-based, hypothesis)."""
import codecs

import pytest
import webvtt as webvtt_py
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fixtures.properties import MANY
from videoflix.videos.media import webvtt

ARROW_SRT = "1\n00:00:00,500 --> 00:00:01,250\nHallo\nA --> B\n"


@pytest.mark.parametrize("data", [
    ARROW_SRT.encode(),
    b"1\n00:00:00,500 --> 00:00:01,250\n00:00:00,700 --> 00:00:01,250\n",  # a second timing line
    codecs.BOM_UTF8 + ARROW_SRT.replace("\n", "\r\n").encode(),
])
def test_an_srt_cue_with_an_arrow_in_its_text_is_refused_with_a_sentence(data):
    with pytest.raises(webvtt.InvalidSubtitles) as refused:
        webvtt.to_webvtt(data, 10.0)
    assert refused.value.message == (
        'Cue 1 (00:00:00.500 --> 00:00:01.250) has "-->" in its text, which WebVTT does not allow: '
        'write it as "--&gt;" or change it.')
    assert not refused.value.transient and not refused.value.too_large


# Lines a subtitle file is made of, and lines that tend to break parsers, mixed with any text.
LINES = st.sampled_from([
    "WEBVTT", "WEBVTT - a title", "", "1", "2", "00:00:00,500 --> 00:00:01,250", "00:00.500 --> 00:01.000",
    "00:00:01.000 --> 00:00:00.500", "00:00:00.000 --> 00:00:01.000 align:start line:0",
    "99:99:99.999 --> 100:00:00.000",
    "A --> B", "-->", "NOTE a note", "STYLE", "::cue { color: red }", "REGION", "id:x", "<b>bold</b>", "<v Ana>Olá",
    "&amp; &lt; &gt;", "\ufeff", "\u2028", "\x85", "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000",
])
TEXTS = st.lists(st.one_of(LINES, st.text(max_size=24)), max_size=14).map("\n".join)


def timestamp(ms, separator):
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{separator}{ms % 1000:03d}"


@st.composite
def subtitle_files(draw):
    """Well-formed SRT or WebVTT timings around any cue text (lines of any characters)."""
    srt = draw(st.booleans())
    blocks = [] if srt else ["WEBVTT"]
    for number in range(1, draw(st.integers(1, 4)) + 1):
        start = draw(st.integers(0, 60_000))
        end = start + draw(st.integers(-100, 5_000))
        text = draw(st.lists(st.one_of(LINES, st.text(min_size=1, max_size=30)), min_size=1, max_size=3))
        timing = f"{timestamp(start, ',' if srt else '.')} --> {timestamp(end, ',' if srt else '.')}"
        blocks.append("\n".join(([str(number)] if srt else []) + [timing] + text))
    return "\n\n".join(blocks) + "\n"
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])


def cues(text):
    return [(c.start, c.end, c.text) for c in webvtt_py.from_string(text).captions]


@MANY
@given(st.one_of(st.tuples(st.one_of(TEXTS, subtitle_files()), ENCODINGS).map(lambda t: t[0].encode(t[1], "replace")),
                 st.binary(max_size=300)))
def test_any_file_is_refused_with_a_sentence_or_becomes_webvtt_that_parses_back(data):
    try:
        text = webvtt.to_webvtt(data, 50.0)
    except webvtt.InvalidSubtitles as refused:
        assert refused.message and not refused.transient
        event("refused")
        return
    event("accepted")
    parsed = cues(text)
    assert parsed and cues(webvtt.with_timestamp_map(text, "X-TIMESTAMP-MAP=MPEGTS:900,LOCAL:00:00:00.000")) == parsed
    assert all("-->" not in body for _, _, body in parsed)
    assert webvtt.to_webvtt(text.encode(), 50.0) == text  # what we store is accepted as it is

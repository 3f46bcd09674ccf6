"""What we write into a playlist's attributes: hls.quoted refuses every character it cannot write
safely (never alters one), a subtitle entry written before that rule cannot survive a rewrite of
the master, and whatever we write parses back with the m3u8 package to the same attributes
(property-based, hypothesis)."""
import m3u8
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fixtures.properties import MANY
from tests.fixtures.subtitles import HOSTILE_LABELS, old_media_entry, with_old_entries
from videoflix.videos.media import hls

ENTRIES = [hls.MasterEntry("480p/index.m3u8", 900_000, 800_000, 854, 480, "avc1.64001f,mp4a.40.2", 25.0),
           hls.MasterEntry("720p/index.m3u8", 2_400_000, 2_000_000, 1280, 720, "avc1.64001f,mp4a.40.2", 25.0)]


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    return hls.write_master(tmp_path_factory.mktemp("master") / "master.m3u8", ENTRIES)


def variants(text):
    return [(p.uri, p.stream_info.bandwidth, p.stream_info.average_bandwidth, p.stream_info.resolution,
             p.stream_info.codecs, p.stream_info.frame_rate) for p in m3u8.loads(text).playlists]


def track(label, language="de"):
    return hls.SubtitleEntry(language, label, f"subtitles/{language}.m3u8")


@pytest.mark.parametrize("label", HOSTILE_LABELS.values(), ids=HOSTILE_LABELS.keys())
def test_a_label_that_cannot_be_written_safely_is_refused_not_altered(master, label):
    with pytest.raises(hls.UnsafeValue) as refused:
        hls.with_subtitles(master, [track(label)])
    assert refused.value.message.startswith("A playlist attribute may not contain ")
    assert hls.unsafe_character(label) in refused.value.message


@pytest.mark.parametrize("label", ["Deutsch", "Português (Brasil)", "中文（简体）", "English – SDH [CC]", "فارسی",
                                   "हिन्दी", "Deutsch, für Hörgeschädigte: 1/2; 'OV' = Originalfassung!",
                                   "a+b <c> [d] {e} (f) $g% &h* @i ^j _k `l |m ~n \\o ?!.",
                                   "n\u200cm", "Ελληνικά", "日本語\u3000字幕"])
def test_labels_in_any_script_are_written_and_read_back_exactly(master, label):
    text = hls.with_subtitles(master, [track(label)])
    [media] = m3u8.loads(text).media
    assert (media.type, media.group_id, media.language, media.name, media.uri) == (
        "SUBTITLES", "subs", "de", label, "subtitles/de.m3u8")
    assert variants(text) == variants(master)


def test_the_codecs_are_quoted_by_the_same_rule(tmp_path):
    text = hls.write_master(tmp_path / "master.m3u8", ENTRIES)
    assert [p.stream_info.codecs for p in m3u8.loads(text).playlists] == ["avc1.64001f,mp4a.40.2"] * 2
    bogus = hls.MasterEntry("480p/index.m3u8", 1, 1, 2, 2, 'avc1",URI="https://evil.example', 25.0)
    with pytest.raises(hls.UnsafeValue):
        hls.write_master(tmp_path / "other.m3u8", [bogus])
    assert not (tmp_path / "other.m3u8").exists()


@pytest.mark.parametrize("label", [HOSTILE_LABELS["content steering"], HOSTILE_LABELS["U+2028"],
                                   HOSTILE_LABELS["U+0085 (C1 NEL)"]])
def test_a_rewrite_drops_every_entry_and_fragment_the_old_writer_left(master, label):
    old = with_old_entries(master, old_media_entry(label))
    # What the old rewrite made of it: Python's splitlines() broke the entry at U+2028 / U+0085.
    split_by_old_rewrite = "\n".join(old.splitlines()) + "\n"
    for text in (old, split_by_old_rewrite):
        clean = hls.with_subtitles(text, [track("Deutsch")])
        assert "evil" not in clean and "#EXT-X-CONTENT-STEERING" not in clean
        assert clean.splitlines() == clean.split("\n")[:-1]  # no line breaks but ours
        assert [m.name for m in m3u8.loads(clean).media] == ["Deutsch"]
        assert variants(clean) == variants(master)
        assert hls.with_subtitles(text, []) == master
        assert hls.variant_uris(text) == ["480p/index.m3u8", "720p/index.m3u8"]


def every_hash_opens_a_line(text):
    """hls.js looks for its tags (#EXT-X-...) anywhere in a line: a "#" may only start one."""
    return all("#" not in line[1:] for line in text.split("\n"))


@MANY
@given(st.text(max_size=60), st.text(max_size=40))
def test_any_label_or_codecs_is_refused_or_parses_back_to_the_same_attributes(master, label, codecs):
    try:
        text = hls.with_subtitles(master, [track(label), track("English", "en")])
    except hls.UnsafeValue:
        assert hls.unsafe_character(label) is not None
        event("label refused")
    else:
        event("label written")
        assert hls.unsafe_character(label) is None
        parsed = m3u8.loads(text)
        assert [(m.language, m.name, m.uri) for m in parsed.media] == [
            ("de", label, "subtitles/de.m3u8"), ("en", "English", "subtitles/en.m3u8")]
        assert variants(text) == variants(master) and every_hash_opens_a_line(text)
        assert text.splitlines() == text.split("\n")[:-1]  # no line breaks but ours (Python's and JavaScript's)
        assert hls.with_subtitles(text, []) == master
    try:
        quoted = hls.quoted(codecs)
    except hls.UnsafeValue:
        assert hls.unsafe_character(codecs) is not None
    else:
        assert quoted == f'"{codecs}"'
        line = f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS={quoted}\n480p/index.m3u8\n"
        assert m3u8.loads(line).playlists[0].stream_info.codecs == codecs

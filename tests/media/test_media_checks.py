"""The checks of tests/fixtures/media_checks.py pass on today's single-pass output and fail on a
doctored one: silence at a join, a frame dropped, a segment that does not decode.

Every doctored output is a copy of an honest one with one segment re-muxed by ffmpeg, its
timestamps kept (``-copyts``), so only the one defect differs."""
from __future__ import annotations

import array
import math
import shutil
import subprocess

import av
import pytest

from tests.fixtures.media_checks import (
    FFMPEG,
    Audio,
    _dropouts,
    aac_frame_seconds,
    audio_seconds,
    client_playlist,
    frame_count,
    join_ssim,
    make_tone_clip,
    media_playlists,
    segment_files,
    source_frame_count,
    tone_dropouts,
    tone_seconds,
)
from videoflix.videos.media.transcode import transcode

SECONDS = 12
JOIN = 6.0  # the first segment's end (plan.SEGMENT_SECONDS): where the doctoring happens


@pytest.fixture(scope="module")
def clip_tone(clips_dir):
    """640x360 H.264 (copy-eligible: one rung, stream-copied) + AAC tone, 12 s @25."""
    return make_tone_clip(clips_dir / "tone-h264-aac-12s.mkv", SECONDS)


@pytest.fixture(scope="module")
def clip_tone_reencoded(clips_dir):
    """1280x720 MPEG-4 Part 2 + PCM tone, 12 s @25: two rungs, both re-encoded, AAC encoded."""
    return make_tone_clip(clips_dir / "tone-mpeg4-pcm-12s.mkv", SECONDS, width=1280, height=720,
                          video="mpeg4", audio="pcm")


@pytest.fixture(scope="module")
def honest(clip_tone, tmp_path_factory):
    """Today's single-pass transcode of clip_tone (never modified: doctor a copy)."""
    out = tmp_path_factory.mktemp("honest") / "v"
    transcode(clip_tone, out)
    return out


@pytest.fixture
def doctored(honest, tmp_path):
    out = tmp_path / "v"
    shutil.copytree(honest, out)
    return out


def _remux(segment, *args):
    """Rewrite `segment` through ffmpeg with `args` (codecs, filters), its timestamps kept."""
    tmp = segment.with_name("doctored.ts")
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y", "-copyts", "-i", str(segment),
                    "-map", "0", *args, "-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts", str(tmp)],
                   check=True, capture_output=True, timeout=120)
    tmp.replace(segment)


def _start(path):
    with av.open(str(path)) as c:
        return c.start_time / 1e6


# ------------------------------------------------------------------ honest outputs pass

def test_single_pass_output_passes_every_check(clip_tone, honest):
    playlists = media_playlists(honest)
    assert list(playlists) == ["480p"]
    frames = source_frame_count(clip_tone)
    assert frames == SECONDS * 25
    for pl in playlists.values():
        assert frame_count(pl).__dict__ == {"frames": frames, "errors": ""}
        assert tone_dropouts(pl) == []
        assert abs(tone_seconds(pl) - tone_seconds(clip_tone)) <= aac_frame_seconds(48_000)
        # Decoded end to end, an AAC stream carries its encoder's priming and padding: within
        # two frames of the source's, however it was made.
        assert abs(audio_seconds(pl) - audio_seconds(clip_tone)) <= 2 * aac_frame_seconds(48_000)
        assert join_ssim(pl, clip_tone, JOIN) > 0.999  # a stream copy: the source's pictures


def test_reencoded_output_passes_every_check(clip_tone_reencoded, tmp_path):
    out = tmp_path / "v"
    transcode(clip_tone_reencoded, out)
    playlists = media_playlists(out)
    assert list(playlists) == ["480p", "720p"]
    frames = source_frame_count(clip_tone_reencoded)
    source_tone = tone_seconds(clip_tone_reencoded)
    assert source_tone == pytest.approx(SECONDS, abs=0.002)
    for label, pl in playlists.items():
        assert frame_count(pl).__dict__ == {"frames": frames, "errors": ""}, label
        assert tone_dropouts(pl) == [], label
        assert abs(tone_seconds(pl) - source_tone) <= aac_frame_seconds(48_000), label
        assert join_ssim(pl, clip_tone_reencoded, JOIN) > 0.95, label


def test_query_strings_are_stripped(honest, tmp_path):
    """Published playlists name segments with ?v=<version>: the checks read the files anyway."""
    pl = honest / "480p" / "index.m3u8"
    versioned = tmp_path / "index.m3u8"
    versioned.write_text("".join(line + ("?v=3f2a\n" if line.endswith(".ts") else "\n")
                                 for line in pl.read_text().splitlines()))
    # The copy lives elsewhere: point its URIs back at the segments (relative names stay relative).
    versioned.write_text(versioned.read_text().replace("seg", str(honest / "480p" / "seg")))
    with client_playlist(versioned) as readable, open(readable) as f:
        assert "?v=" not in f.read()
    assert segment_files(versioned) == segment_files(pl)
    assert frame_count(versioned) == frame_count(pl)


# ------------------------------------------------------------------ doctored outputs fail

def test_silence_at_a_join_is_reported(doctored):
    """100 ms muted just after the join, the segment's audio encoded again (as a chunk's own AAC
    encode would be: its priming is silence too)."""
    pl = doctored / "480p" / "index.m3u8"
    first, second = segment_files(pl)
    origin, at = _start(first), _start(second)
    _remux(second, "-c:v", "copy", "-af", f"volume=0:enable='between(t,{at + 0.5},{at + 0.6})'",
           "-c:a", "aac", "-b:a", "128k")
    found = tone_dropouts(pl)
    assert found, "the muted 100 ms went unnoticed"
    join = at - origin
    assert all(join - 0.1 <= t <= join + 0.7 for t in found), found
    # 100 ms is about 20 windows of 5 ms, all near JOIN + 0.5 s.
    assert sum(1 for t in found if join + 0.45 <= t <= join + 0.65) >= 15, found
    assert frame_count(pl).frames == SECONDS * 25  # the pictures are untouched


def test_a_dropped_frame_is_reported(clip_tone, honest, doctored):
    """One frame left out of the first segment: one frame short, and every later frame is
    compared with the wrong source frame (SSIM falls far beyond the issue's 0.005)."""
    pl = doctored / "480p" / "index.m3u8"
    first = segment_files(pl)[0]
    _remux(first, "-vf", "select='not(eq(n,100))'", "-fps_mode", "passthrough",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", "150", "-c:a", "copy")
    decode = frame_count(pl)
    assert decode.errors == ""
    assert decode.frames == source_frame_count(clip_tone) - 1
    honest_ssim = join_ssim(honest / "480p" / "index.m3u8", clip_tone, JOIN)
    assert join_ssim(pl, clip_tone, JOIN) < honest_ssim - 0.05


def test_a_segment_that_does_not_decode_is_reported(doctored):
    pl = doctored / "480p" / "index.m3u8"
    second = segment_files(pl)[1]
    data = bytearray(second.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20_000] = bytes((i * 131 + 7) % 256 for i in range(20_000))
    second.write_bytes(bytes(data))
    assert frame_count(pl).errors != ""


# ------------------------------------------------------------------ the RMS rule itself

def _sine(seconds, rate=48_000, freq=1000):
    return array.array("f", (0.25 * math.sin(2 * math.pi * freq * i / rate) for i in range(int(seconds * rate))))


def test_dropouts_rule_on_synthetic_samples():
    tone = _sine(1.0)
    assert _dropouts(Audio(48_000, tone, ""), 1000, 0.005, 0.05) == []
    gapped = array.array("f", tone)
    gapped[24_000:24_000 + 480] = array.array("f", [0.0] * 480)  # 10 ms of silence at 0.5 s
    assert _dropouts(Audio(48_000, gapped, ""), 1000, 0.005, 0.05) == [0.5, 0.505]
    # The first and last 50 ms are not judged (a decoder's ramp-in, an encoder's padding).
    edges = array.array("f", tone)
    edges[:1200] = array.array("f", [0.0] * 1200)
    assert _dropouts(Audio(48_000, edges, ""), 1000, 0.005, 0.05) == []

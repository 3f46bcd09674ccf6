"""Invisible joins through the whole job (issue 19): a tone clip transcoded in tiny chunks (one
segment each) decodes, rendition by rendition, with ffmpeg as the client to exactly the source's
frames, its tone without a dropout and as long as the source's, and the pictures around every
join as close to the source as a one-chunk transcode's (Huey runs inline).

TRANSCODE_CHUNK_SECONDS=0 is one part: the single pass of before issue 19."""
import pytest

from tests.fixtures.media_checks import (
    aac_frame_seconds,
    frame_count,
    joins_ssim,
    make_tone_clip,
    media_playlists,
    segment_files,
    source_frame_count,
    tone_dropouts,
    tone_seconds,
)
from tests.fixtures.object_store import local_files_only
from tests.fixtures.videos import add_clip, media, row

pytestmark = [pytest.mark.slow, pytest.mark.media_store]

SECONDS = 20
TINY = 6  # plan.SEGMENT_SECONDS: a chunk of one segment, a join at every segment boundary
ONE_CHUNK = 0  # one part (media.chunks.plan_chunks: None); a huge value still cuts after the first segment


@pytest.fixture(scope="module")
def clip_tone_copy(clips_dir):
    """1280x720 H.264 High 1.5 Mbit/s, keyframes every 2 s, AAC tone, 20 s: 720p copied, audio copied."""
    return make_tone_clip(clips_dir / "tone-h264-aac-720p-20s.mp4", SECONDS, width=1280, height=720,
                          bitrate="1500k")


@pytest.fixture(scope="module")
def clip_tone_reencoded(clips_dir):
    """1280x720 MPEG-4 Part 2 + PCM tone, 20 s: every rung and the audio encoded."""
    return make_tone_clip(clips_dir / "tone-mpeg4-pcm-720p-20s.mkv", SECONDS, width=1280, height=720,
                          video="mpeg4", audio="pcm")


def _version(app, clip, chunk_seconds):
    app.config["TRANSCODE_CHUNK_SECONDS"] = chunk_seconds
    video = row(app, add_clip(app, clip))
    assert video["status"] == "ready", video["error"]
    return media(app, "hls", video["hls_dir"])


def _boundaries(playlist):
    total, out = 0.0, []
    for line in playlist.read_text().splitlines():
        if line.startswith("#EXTINF:"):
            total += float(line[8:].split(",", 1)[0])
            out.append(round(total, 3))
    return out[:-1]


@local_files_only
@pytest.mark.parametrize("name", ["clip_tone_copy", "clip_tone_reencoded"])
def test_tiny_chunks_leave_no_trace_at_the_joins(app, request, name):
    source = request.getfixturevalue(name)
    chunked = media_playlists(_version(app, source, TINY))
    single = media_playlists(_version(app, source, ONE_CHUNK))
    assert list(chunked) == list(single) == ["480p", "720p"]
    frames, tone = source_frame_count(source), tone_seconds(source)
    for label, playlist in chunked.items():
        assert len(segment_files(playlist)) >= 3, label
        assert frame_count(playlist).__dict__ == {"frames": frames, "errors": ""}, label
        assert tone_dropouts(playlist) == [], label
        assert abs(tone_seconds(playlist) - tone) <= aac_frame_seconds(48_000), label
        joins = _boundaries(playlist)  # every join is one (frames aligned by order in both)
        ours, theirs = joins_ssim(playlist, source, joins), joins_ssim(single[label], source, joins)
        assert all(ours[t] >= theirs[t] - 0.005 for t in joins), (label, ours, theirs)

"""HLS details without a full transcode: the peak bandwidth of a media playlist, versioned segment
URIs, and ffmpeg's progress callback as the caller's heartbeat."""
import math
import stat

import m3u8

from videoflix.videos.media import ffmpeg, hls


def test_progress_callback_keeps_coming_while_ffmpeg_makes_no_progress(tmp_path):
    """The caller's heartbeat: an ffmpeg that reports nothing still gets the callback called."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nsleep 1.2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    seen: list[int] = []
    ffmpeg.run_ffmpeg([str(fake)], duration=10, progress_cb=seen.append, deadline=None, keepalive=0.2)
    assert len(seen) >= 3 and set(seen) == {0}


def _playlist(folder, segments, version=None):
    """A media playlist of (EXTINF seconds, file bytes) segments with real files of those sizes."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:6", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i, (seconds, size) in enumerate(segments):
        (folder / f"seg{i:03d}.ts").write_bytes(b"\0" * size)
        lines += [f"#EXTINF:{seconds:.6f},", f"seg{i:03d}.ts" + (f"?v={version}" if version else "")]
    path = folder / "index.m3u8"
    path.write_text("\n".join(lines + ["#EXT-X-ENDLIST"]) + "\n")
    return path


def test_a_short_last_segment_does_not_inflate_the_peak(tmp_path):
    # 12.1 s: 6.0 s at 1.0 Mbit/s, 6.0 s at 0.96 Mbit/s, then 0.1 s at 1.6 Mbit/s (mostly overhead)
    stats = hls.measure_playlist(_playlist(tmp_path, [(6.0, 750_000), (6.0, 720_000), (0.1, 20_000)]))
    assert stats.peak_bandwidth == 1_000_000  # the first (full-length) segment, not the 1.6 M tail
    assert stats.segments == 3 and stats.bytes == 1_490_000 and stats.first_segment == "seg000.ts"
    assert stats.average_bandwidth == math.ceil(1_490_000 * 8 / 12.1)


def test_a_short_last_segment_still_counts_merged_with_the_one_before(tmp_path):
    # the tail is dense enough that 6.0 + 0.9 s together exceed every full-length segment
    stats = hls.measure_playlist(_playlist(tmp_path, [(6.0, 600_000), (6.0, 600_000), (0.9, 400_000)]))
    assert stats.peak_bandwidth == math.ceil(1_000_000 * 8 / 6.9)


def test_a_last_segment_of_normal_length_counts_as_is(tmp_path):
    stats = hls.measure_playlist(_playlist(tmp_path, [(6.0, 600_000), (2.0, 400_000)]))
    assert stats.peak_bandwidth == 1_600_000


def test_playlists_with_versioned_segment_uris_are_measured_and_rewritten(tmp_path):
    path = _playlist(tmp_path, [(6.0, 750_000), (1.5, 100_000)], version="abc123")
    stats = hls.measure_playlist(path)
    assert stats.peak_bandwidth == 1_000_000 and stats.first_segment == "seg000.ts"

    hls.version_segment_uris(path, "def456")  # a version replaces, never stacks, the query
    assert [s.uri for s in m3u8.load(str(path)).segments] == ["seg000.ts?v=def456", "seg001.ts?v=def456"]

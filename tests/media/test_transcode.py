"""Tests of probe/transcode/hls with real ffmpeg on tiny generated clips."""
from __future__ import annotations

import hashlib
import stat
import subprocess

import av
import m3u8
import pytest

from videoflix.videos.media import parts, plan
from videoflix.videos.media import transcode as tc
from videoflix.videos.media.errors import MediaError
from videoflix.videos.media.ffmpeg import default_threads, ffmpeg_available, ffmpeg_version
from videoflix.videos.media.plan import plan_renditions
from videoflix.videos.media.probe import InvalidMedia, SourceInfo, probe
from videoflix.videos.media.transcode import transcode


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Transcode each clip at most once per module; keyed by clip path."""
    cache: dict = {}

    def run(src, **kw):
        key = (str(src), tuple(sorted(kw.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp("hls") / "out"
            cache[key] = (out, transcode(src, out, **kw))
        return cache[key]

    return run


def _master(out):
    pl = m3u8.load(str(out / "master.m3u8"))
    assert pl.is_variant
    return pl


def _media(out, uri):
    return m3u8.load(str(out / uri))



def _labels(result):
    return {r.label: (r.width, r.height) for r in result.renditions}


def _frame_hashes(path, limit=None):
    """SHA1 of the visible Y plane of every decoded frame (padding stripped)."""
    hashes = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            plane = frame.planes[0]
            data = bytes(plane)
            rows = b"".join(data[i * plane.line_size: i * plane.line_size + plane.width]
                            for i in range(plane.height))
            hashes.append(hashlib.sha1(rows).hexdigest())
            if limit and len(hashes) >= limit:
                break
    return hashes


# ------------------------------------------------------------------ helpers / probe

def test_ffmpeg_helpers():
    assert ffmpeg_available()
    assert ffmpeg_version().startswith("ffmpeg version")
    assert ffmpeg_version("/nonexistent/ffmpeg") is None
    assert not ffmpeg_available("/nonexistent/ffmpeg")
    assert default_threads() >= 1


def test_probe_720p(clip_720p):
    info = probe(clip_720p)
    assert (info.width, info.height) == (1280, 720)
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.has_audio and info.audio_codec == "aac"
    assert info.fps == pytest.approx(10)
    assert info.duration == pytest.approx(3, abs=0.2)
    assert info.keyframe_times == pytest.approx([0, 0.7, 1.3, 2.2], abs=0.01)
    assert info.max_keyframe_gap == pytest.approx(0.9, abs=0.11)
    assert 0 < info.video_bitrate < 3_000_000
    assert info.profile and info.level


def test_probe_rotation(clip_rotated):
    info = probe(clip_rotated)
    assert (info.coded_width, info.coded_height) == (1280, 720)
    assert abs(info.rotation) == 90
    assert (info.width, info.height) == (720, 1280)


@pytest.mark.slow
def test_progress_follows_the_segments_written_with_a_storyboard(monkeypatch, tmp_path):
    """With the storyboard in the same run, ffmpeg's own out_time is not the encode's (5.1 says
    nothing until the end, 9.0 says 100 % at once): the percent reported while ffmpeg runs comes
    from the segments written, so it shows up in between and is never ahead of them."""
    from videoflix.videos.media.ffmpeg import ffmpeg_exe

    clip = tmp_path / "6s.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=10:duration=6",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", str(clip)], check=True)
    paced = tmp_path / "ffmpeg-paced"  # the real ffmpeg, reading its input at its own pace (-re)
    paced.write_text(f'#!/bin/sh\nexec "{ffmpeg_exe()}" -re "$@"\n')
    paced.chmod(0o755)
    monkeypatch.setattr(plan, "SEGMENT_SECONDS", 1)
    monkeypatch.setattr(parts, "PROGRESS_MIN_INTERVAL", 0.0)
    monkeypatch.setattr(parts, "PROGRESS_KEEPALIVE", 3600.0)
    out = tmp_path / "out"
    seen: list[tuple[int, float]] = []
    info = probe(clip)

    label = plan_renditions(info)[0].label

    def record(percent):  # with the seconds of complete segments (all but the newest file)
        segments = len(list(out.glob(f".part-*/{label}/seg*.ts")))  # the part's folder, until it is done
        seen.append((percent, max(0, segments - 1) * plan.SEGMENT_SECONDS))

    res = transcode(clip, out, info=info, progress_cb=record, threads=1, ffmpeg=str(paced))
    assert res.storyboard and (out / "storyboard").is_dir()
    between = [(pct, written) for pct, written in seen if 0 < pct < 100]
    assert len(between) >= 2, seen
    assert all(pct <= written * 100 / info.duration + 1 for pct, written in between), seen


@pytest.mark.parametrize("name", ["clip_corrupt", "clip_garbled", "clip_text", "clip_audio_only"])
def test_probe_rejects_non_video(name, request):
    path = request.getfixturevalue(name)
    with pytest.raises(InvalidMedia) as exc:
        probe(path)
    msg = str(exc.value)
    assert msg.endswith(".") and " " in msg and "Errno" not in msg
    assert exc.value.transient is False
    assert isinstance(exc.value, MediaError)  # the media library's one error type


def test_probe_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(InvalidMedia, match="empty"):
        probe(p)


# ------------------------------------------------------------------ planning

def _info(w, h, **kw):
    base = dict(path="x", width=w, height=h, coded_width=w, coded_height=h, rotation=0,
                duration=10, fps=30, has_audio=True, video_codec="h264", pix_fmt="yuv420p",
                profile="High", level=40, video_bitrate=2_000_000, peak_bitrate=2_500_000,
                max_keyframe_gap=2, keyframe_times=[0, 2, 4, 6, 8])
    base.update(kw)
    return SourceInfo(**base)


def test_plan_ladder_shapes():
    assert [(r.label, r.width, r.height) for r in plan_renditions(_info(1920, 1080))] == [
        ("480p", 854, 480), ("720p", 1280, 720), ("1080p", 1920, 1080)]
    assert [(r.label, r.width, r.height) for r in plan_renditions(_info(720, 1280))] == [
        ("480p", 480, 854), ("720p", 720, 1280)]
    assert [(r.label, r.width, r.height) for r in plan_renditions(_info(320, 240))] == [
        ("480p", 320, 240)]
    assert [(r.label, r.width, r.height) for r in plan_renditions(_info(1920, 800))] == [
        ("480p", 1152, 480), ("720p", 1728, 720)]
    for r in plan_renditions(_info(1918, 1078)):
        assert r.width % 2 == 0 and r.height % 2 == 0 and r.maxrate > 0 and r.audio_bitrate > 0


def test_plan_copy_rules():
    assert plan_renditions(_info(1920, 1080))[-1].copy
    assert not plan_renditions(_info(1920, 1080))[0].copy
    assert not plan_renditions(_info(1920, 1080, video_codec="vp9"))[-1].copy
    assert not plan_renditions(_info(1920, 1080, pix_fmt="yuv420p10le"))[-1].copy
    assert not plan_renditions(_info(1920, 1080, video_bitrate=9_000_000))[-1].copy
    assert not plan_renditions(_info(1920, 1080, max_keyframe_gap=15))[-1].copy
    assert not plan_renditions(_info(1920, 1080, level=51))[-1].copy
    assert plan_renditions(_info(1280, 720))[-1].copy  # own-size 720p top
    assert plan_renditions(_info(640, 360, video_bitrate=900_000))[-1].copy  # own-size "480p" of a small source
    assert not plan_renditions(_info(1920, 1040))[-1].copy  # top is a 720p downscale
    assert not plan_renditions(_info(2560, 1440))[-1].copy  # 1080p would be a downscale


# ------------------------------------------------------------------ transcoding

@pytest.mark.parametrize("name, expected", [
    ("clip_720p", {"480p": (854, 480), "720p": (1280, 720)}),
    ("clip_1080p", {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}),
    ("clip_portrait", {"480p": (480, 854), "720p": (720, 1280)}),
    ("clip_rotated", {"480p": (480, 854), "720p": (720, 1280)}),
    ("clip_360p", {"480p": (640, 360)}),
    ("clip_mpeg4", {"480p": (854, 480), "720p": (1280, 720)}),
])
def test_renditions_and_playlists(name, expected, request, outputs):
    out, res = outputs(request.getfixturevalue(name))
    assert _labels(res) == expected
    master = _master(out)
    assert master.data["is_independent_segments"]
    assert [p.uri for p in master.playlists] == [r.playlist for r in res.renditions]
    for p, r in zip(master.playlists, res.renditions):
        si = p.stream_info
        assert p.uri == f"{r.label}/index.m3u8"
        assert si.resolution == (r.width, r.height)
        assert si.bandwidth == r.bandwidth and si.average_bandwidth == r.average_bandwidth
        # BANDWIDTH bounds every full-length segment's own bitrate (the tail rule, and the exact
        # figures, are tests/media/test_hls.py's hand-computed cases).
        media = _media(out, p.uri)
        for s in media.segments[:-1]:
            assert (out / r.label / s.uri).stat().st_size * 8 / s.duration <= si.bandwidth
        assert si.average_bandwidth <= si.bandwidth
        assert si.codecs.startswith("avc1.") and si.codecs.endswith(",mp4a.40.2")
        assert si.frame_rate == pytest.approx(10)
        media = _media(out, p.uri)
        assert media.is_endlist and media.playlist_type == "vod"
        assert len(media.segments) == r.segments >= 1
        for s in media.segments:
            assert "/" not in s.uri and s.uri.startswith("seg") and s.uri.endswith(".ts")
            assert (out / r.label / s.uri).stat().st_size > 0
        with av.open(str(out / r.label / media.segments[0].uri)) as c:
            v = c.streams.video[0]
            assert (v.codec_context.width, v.codec_context.height) == (r.width, r.height)
            assert c.streams.audio
    bws = [p.stream_info.bandwidth for p in master.playlists]
    assert bws == sorted(bws)


def test_codecs_follow_actual_profile(outputs, clip_1080p):
    out, res = outputs(clip_1080p)
    by = {r.label: r for r in res.renditions}
    # x264 High profile for encoded ones; copied 1080p keeps the source's (ultrafast:
    # Constrained Baseline 0x42, constraint flags 0xc0).
    assert by["720p"].codecs.startswith("avc1.64")
    assert by["1080p"].copy and by["1080p"].codecs.startswith("avc1.42c0")


def test_no_audio_is_video_only_and_playable(outputs, clip_no_audio):
    out, res = outputs(clip_no_audio)
    assert _labels(res) == {"480p": (854, 480)}
    master = _master(out)
    assert master.playlists[0].stream_info.codecs.count(",") == 0
    seg_count = 0
    for seg in _media(out, "480p/index.m3u8").segments:
        with av.open(str(out / "480p" / seg.uri)) as c:
            assert not c.streams.audio
            seg_count += sum(1 for _ in c.decode(video=0))
    assert seg_count == 20  # 2 s @ 10 fps, every frame decodes


def test_thumbnail_is_jpeg(outputs, clip_1080p, clip_portrait):
    for clip, size in ((clip_1080p, (640, 360)), (clip_portrait, (640, 1138))):
        out, res = outputs(clip)
        thumb = out / res.thumbnail
        assert thumb.read_bytes()[:3] == b"\xff\xd8\xff"
        with av.open(str(thumb)) as c:
            frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == size


def test_segments_align_with_copy(monkeypatch, tmp_path, clip_720p):
    """Copied 720p cuts on source keyframes; the re-encoded 480p cuts on the same times."""
    monkeypatch.setattr(plan, "SEGMENT_SECONDS", 1)
    out = tmp_path / "out"
    res = transcode(clip_720p, out)
    by = {r.label: r for r in res.renditions}
    assert by["720p"].copy and not by["480p"].copy
    cmd = res.command
    assert cmd[cmd.index("-c:v:1") + 1] == "copy" and cmd[cmd.index("-c:v:0") + 1] == "libx264"
    d480 = [s.duration for s in _media(out, "480p/index.m3u8").segments]
    d720 = [s.duration for s in _media(out, "720p/index.m3u8").segments]
    # source keyframes at 0, 0.7, 1.3, 2.2; 1 s target -> cuts at 1.3 and 2.2
    assert d720 == pytest.approx([1.3, 0.9, 0.8], abs=0.05)
    assert d480 == pytest.approx(d720, abs=0.05)
    # The copied variant is the source bitstream: decoded frames are bit-identical.
    frames = []
    for seg in _media(out, "720p/index.m3u8").segments:
        frames += _frame_hashes(out / "720p" / seg.uri)
    assert frames == _frame_hashes(clip_720p)
    for seg in _media(out, "720p/index.m3u8").segments:  # every segment starts on a keyframe
        for name in ("480p", "720p"):
            with av.open(str(out / name / seg.uri)) as c:
                assert next(c.demux(video=0)).is_keyframe


def test_segments_align_reencode(monkeypatch, tmp_path, clip_mpeg4):
    monkeypatch.setattr(plan, "SEGMENT_SECONDS", 1)
    out = tmp_path / "out"
    res = transcode(clip_mpeg4, out)
    assert not any(r.copy for r in res.renditions)
    assert "copy" not in res.command[res.command.index("-c:v:1") + 1]
    durs = [[s.duration for s in _media(out, r.playlist).segments] for r in res.renditions]
    assert durs[0][:2] == pytest.approx([1, 1], abs=0.05)
    assert len(durs[0]) == len(durs[1]) and durs[1] == pytest.approx(durs[0], abs=0.05)


def test_no_copy_for_unsuitable_h264(outputs, clip_rotated):
    out, res = outputs(clip_rotated)
    assert not any(r.copy for r in res.renditions)
    assert res.command.count("copy") <= len(res.renditions)  # only audio may be copied
    assert not any(res.command[i - 1].startswith("-c:v") for i, a in enumerate(res.command)
                   if a == "copy")


def test_progress_increases_to_100(monkeypatch, tmp_path, clip_1080p):
    monkeypatch.setattr(parts, "PROGRESS_MIN_INTERVAL", 0.0)
    monkeypatch.setattr(parts, "PROGRESS_KEEPALIVE", 3600.0)  # only calls with a percent that grew
    seen: list[int] = []
    transcode(clip_1080p, tmp_path / "out", progress_cb=seen.append, threads=1)
    assert seen[0] == 0 and seen[-1] == 100 and len(seen) >= 2
    assert all(isinstance(x, int) and 0 <= x <= 100 for x in seen)
    assert all(a < b for a, b in zip(seen, seen[1:]))


@pytest.mark.parametrize("name", ["clip_corrupt", "clip_garbled", "clip_text", "clip_audio_only"])
def test_invalid_input_leaves_nothing(name, request, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InvalidMedia) as exc:
        transcode(request.getfixturevalue(name), out)
    assert len(str(exc.value)) < 200
    assert not out.exists()


def test_ffmpeg_input_error_is_permanent(tmp_path, clip_360p, clip_text):
    """ffmpeg itself rejects the input (stale info): readable, non-transient, cleaned up."""
    out = tmp_path / "out"
    info = probe(clip_360p)
    with pytest.raises(MediaError) as exc:
        transcode(clip_text, out, info=info)
    assert exc.value.transient is False
    assert "Invalid data" in str(exc.value) and len(str(exc.value)) <= 1000
    assert not out.exists()


def test_timeout_is_not_transient(tmp_path, clip_1080p):
    """A file that ran past the timeout would only do so again: retrying it burns hours."""
    out = tmp_path / "out"
    info = probe(clip_1080p)
    with pytest.raises(MediaError) as exc:
        transcode(clip_1080p, out, info=info, timeout=0.01)
    assert exc.value.transient is False and "timed out" in str(exc.value)
    assert not out.exists()


def test_killed_ffmpeg_is_transient(tmp_path, clip_360p):
    """An ffmpeg that dies from SIGKILL (simulated OOM kill)."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nkill -KILL $$\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "out"
    with pytest.raises(MediaError) as exc:
        transcode(clip_360p, out, ffmpeg=str(fake))
    assert exc.value.transient is True and "signal 9" in str(exc.value)
    assert not out.exists()


def test_out_dir_must_not_exist(tmp_path, clip_360p):
    with pytest.raises(FileExistsError):
        transcode(clip_360p, tmp_path)
    assert tmp_path.exists()


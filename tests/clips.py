"""Pytest fixtures: tiny real media clips generated with ffmpeg.

tests/conftest.py loads them as a plugin (``pytest_plugins``). Clips are generated once per
recipe and ffmpeg build, cached in ``$TMPDIR/videoflix-test-clips/`` across
sessions (the file name includes a hash of the ffmpeg command and of the
binary's version line, so changing a recipe or the ffmpeg in use regenerates it).
``ffmpeg_exe()`` honours ``FFMPEG_BINARY``, like the app.
"""
from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = [
    "clips_dir", "clip_720p", "clip_1080p", "clip_portrait", "clip_360p", "clip_no_audio",
    "clip_mpeg4", "clip_rotated", "clip_corrupt", "clip_garbled", "clip_text",
    "clip_audio_only",
]

_CACHE = Path(tempfile.gettempdir()) / "videoflix-test-clips"


def _ffmpeg() -> str:
    from videoflix.videos.media.ffmpeg import ffmpeg_exe

    return ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def _version_line() -> str:
    from videoflix.videos.media.ffmpeg import ffmpeg_version

    return ffmpeg_version(_ffmpeg()) or "unknown"


def _version() -> tuple[int, int]:
    """(major, minor) of the ffmpeg in use; (99, 0) for a git build without a release number."""
    match = re.search(r"version n?(\d+)\.(\d+)", _version_line())
    return (int(match.group(1)), int(match.group(2))) if match else (99, 0)


def _make(directory: Path, name: str, args: list[str]) -> Path:
    """Run ``ffmpeg <args> <out>`` once; cache the result by recipe and ffmpeg version."""
    digest = hashlib.sha1("\0".join([_version_line(), *args]).encode()).hexdigest()[:10]
    stem, ext = os.path.splitext(name)
    out = directory / f"{stem}-{digest}{ext}"
    if out.exists() and out.stat().st_size > 0:
        return out
    tmp = directory / f".{stem}-{digest}-{os.getpid()}{ext}"
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args, str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"clip generation failed: {' '.join(cmd)}\n{proc.stderr}")
    os.replace(tmp, out)
    return out


def _video(size: str, seconds: float, fps: int = 10) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds}"]


_AUDIO = ["-f", "lavfi", "-i", "sine=f=440:sample_rate=44100:d=3"]
_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-b:v", "800k", "-maxrate", "1M", "-bufsize", "2M"]
_AAC = ["-c:a", "aac", "-b:a", "64k", "-shortest"]


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    _CACHE.mkdir(parents=True, exist_ok=True)
    return _CACHE


@pytest.fixture(scope="session")
def clip_720p(clips_dir) -> Path:
    """1280x720 H.264 + AAC, 3 s @10 fps, keyframes at irregular times (copy-eligible)."""
    return _make(clips_dir, "720p.mp4", [
        *_video("1280x720", 3), *_AUDIO, *_H264, "-g", "100", "-sc_threshold", "0",
        "-force_key_frames", "0,0.7,1.3,2.2", *_AAC])


@pytest.fixture(scope="session")
def clip_1080p(clips_dir) -> Path:
    """1920x1080 H.264 + AAC, 2 s @10 fps."""
    return _make(clips_dir, "1080p.mp4", [
        *_video("1920x1080", 2), *_AUDIO, *_H264, "-g", "10", *_AAC])


@pytest.fixture(scope="session")
def clip_portrait(clips_dir) -> Path:
    """720x1280 (portrait) H.264 + AAC, 2 s."""
    return _make(clips_dir, "portrait.mp4", [
        *_video("720x1280", 2), *_AUDIO, *_H264, "-g", "10", *_AAC])


@pytest.fixture(scope="session")
def clip_360p(clips_dir) -> Path:
    """640x360 H.264 + AAC, 2 s (below 480p)."""
    return _make(clips_dir, "360p.mp4", [
        *_video("640x360", 2), *_AUDIO, *_H264, "-g", "10", *_AAC])


@pytest.fixture(scope="session")
def clip_no_audio(clips_dir) -> Path:
    """854x480 H.264 without any audio stream, 2 s."""
    return _make(clips_dir, "noaudio.mp4", [*_video("854x480", 2), *_H264, "-g", "10", "-an"])


@pytest.fixture(scope="session")
def clip_mpeg4(clips_dir) -> Path:
    """1280x720 MPEG-4 Part 2 + MP3 in AVI, 2 s: needs a full re-encode."""
    return _make(clips_dir, "mpeg4.avi", [
        *_video("1280x720", 2), *_AUDIO, "-c:v", "mpeg4", "-q:v", "5", "-g", "10",
        "-c:a", "libmp3lame", "-b:a", "64k", "-shortest"])


@pytest.fixture(scope="session")
def clip_rotated(clips_dir) -> Path:
    """H.264 stored as 1280x720 with a 90-degree display rotation (shows as 720x1280)."""
    plain = _make(clips_dir, "unrotated.mp4", [
        *_video("1280x720", 2), *_AUDIO, *_H264, "-g", "10", *_AAC])
    # A display matrix: ffmpeg >= 6.1 sets it with the input option -display_rotation (and ignores
    # the "rotate" tag on output); older ones write it from that tag on stream copy.
    if _version() >= (6, 1):
        args = ["-display_rotation", "90", "-i", str(plain), "-c", "copy"]
    else:
        args = ["-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90"]
    return _make(clips_dir, "rotated.mp4", args)


@pytest.fixture(scope="session")
def clip_corrupt(clips_dir) -> Path:
    """An MP4 truncated to 40% of its size (its moov atom at the end is lost)."""
    full = _make(clips_dir, "full_for_corrupt.mp4", [
        *_video("640x360", 2), *_AUDIO, *_H264, *_AAC])
    out = clips_dir / "corrupt.mp4"
    data = full.read_bytes()
    out.write_bytes(data[: int(len(data) * 0.4)])
    return out


@pytest.fixture(scope="session")
def clip_garbled(clips_dir) -> Path:
    """A faststart MP4 whose first 4 KiB (ftyp + moov) are overwritten with noise."""
    full = _make(clips_dir, "full_for_garbled.mp4", [
        *_video("640x360", 2), *_AUDIO, *_H264, *_AAC, "-movflags", "+faststart"])
    data = bytearray(full.read_bytes())
    rnd = random.Random(1234)
    data[:4096] = bytes(rnd.getrandbits(8) for _ in range(4096))
    out = clips_dir / "garbled.mp4"
    out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="session")
def clip_text(clips_dir) -> Path:
    """A plain text file renamed .mp4."""
    out = clips_dir / "notes.mp4"
    out.write_text("This is not a video.\n" * 50, encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def clip_audio_only(clips_dir) -> Path:
    """An AAC-only MP4 (no video stream), 2 s."""
    return _make(clips_dir, "audioonly.mp4", [
        "-f", "lavfi", "-i", "sine=f=440:d=2", "-c:a", "aac", "-b:a", "64k"])

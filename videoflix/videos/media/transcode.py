"""Transcoding core: plan renditions, build and run ONE ffmpeg for all of them.

Command lines are argument lists, never shell strings (the storyboard's own ffmpeg arguments
come from storyboard.py). The output folder is a version folder as layout.py describes it: the
master playlist (written by us, with measured bandwidths), each rendition's media playlist and
segments, the thumbnail and the storyboard.

Pure Python + PyAV + subprocess; no Flask, no app imports.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import storyboard as sb
from . import layout, plan
from .plan import Rendition, plan_renditions
from .errors import MediaError
from .ffmpeg import default_threads, ffmpeg_exe, fit, run_ffmpeg
from .hls import MasterEntry, measure_playlist, segment_codecs, write_master
from .probe import PROTOCOL_WHITELIST, InvalidMedia, SourceInfo, check_format, probe

log = logging.getLogger(__name__)

X264_PRESET = "veryfast"
X264_CRF = 21
THUMB_MAX_WIDTH = 640
THUMB_MAX_HEIGHT = 1280  # a 9:16 portrait's thumbnail is 640x1138; taller shapes are bounded too
PROGRESS_MIN_INTERVAL = 1.0  # seconds between progress callbacks with a percent that grew
PROGRESS_KEEPALIVE = 5.0  # seconds: a callback at least this often while ffmpeg runs


@dataclass
class RenditionResult:
    label: str
    width: int
    height: int
    bandwidth: int            # peak segment bitrate (bits/s), as in the master
    average_bandwidth: int
    codecs: str
    segments: int
    copy: bool
    playlist: str             # relative to out_dir, e.g. "720p/index.m3u8"
    bytes: int


@dataclass
class TranscodeResult:
    renditions: list[RenditionResult]
    duration: float
    thumbnail: str            # file name inside out_dir
    command: list[str]
    storyboard: str | None = None   # "storyboard.vtt" when made
    info: SourceInfo | None = field(default=None, repr=False)


def input_args(info: SourceInfo) -> list[str]:
    """How every ffmpeg run reads the source: local files only, and as the container the probe
    found (never guessed again from a name or from content: a playlist never gets opened as one).
    Raises InvalidMedia when that container is not an allowed one."""
    return ["-protocol_whitelist", PROTOCOL_WHITELIST, "-f", check_format(info.container_format),
            "-i", info.path]


def build_command(info: SourceInfo, out_dir: str, renditions: list[Rendition], *,
                  threads: int | None = None, ffmpeg: str | None = None,
                  storyboard: sb.Plan | None = None) -> list[str]:
    """One ffmpeg: decode once, split+scale, encode/copy every rendition, HLS out; with a
    `storyboard` plan, one more output of the same graph writes its sprites."""
    threads = threads or default_threads()
    cmd = [ffmpeg_exe(ffmpeg), "-hide_banner", "-nostdin", "-y", "-v", "error",
           "-progress", "pipe:1", "-nostats", "-threads", str(threads), *input_args(info)]
    cmd += _filter_args(info, [r for r in renditions if not r.copy], threads, storyboard)
    cmd += _map_args(info, renditions)
    cmd += _video_codec_args(info, renditions, threads)
    cmd += ["-fps_mode", "passthrough"]
    cmd += _audio_codec_args(info, renditions)
    cmd += _hls_args(info, out_dir, renditions)
    if storyboard is not None:
        cmd += sb.output_args(out_dir)
    return cmd


def _filter_args(info: SourceInfo, encoded: list[Rendition], threads: int,
                 storyboard: sb.Plan | None = None) -> list[str]:
    """Split the decoded video once per re-encoded rendition and scale each: [v0], [v1]...;
    and once more for the storyboard's sprites: [sb]."""
    branches = len(encoded) + (storyboard is not None)
    if not branches:
        return []
    chains = []
    src = "[0:v:0]"
    if branches > 1:
        chains.append(src + f"split={branches}" + "".join(f"[s{i}]" for i in range(branches)))
    for i, r in enumerate(encoded):
        inp = f"[s{i}]" if branches > 1 else src
        flt = f"scale={r.width}:{r.height}:flags=bicubic,setsar=1,format=yuv420p"
        if info.fps > plan.MAX_FPS:
            flt = f"fps={plan.MAX_FPS:g}," + flt
        chains.append(f"{inp}{flt}[v{i}]")
    if storyboard is not None:
        chains.append(sb.filter_chain(f"[s{branches - 1}]" if branches > 1 else src, storyboard))
    return ["-filter_complex_threads", str(threads), "-filter_complex", ";".join(chains)]


def _map_args(info: SourceInfo, renditions: list[Rendition]) -> list[str]:
    """Video streams in rendition order (v:i == renditions[i]), then one audio per rendition."""
    args, enc_idx = [], 0
    for r in renditions:
        if r.copy:
            args += ["-map", "0:v:0"]
        else:
            args += ["-map", f"[v{enc_idx}]"]
            enc_idx += 1
    if info.has_audio:
        args += ["-map", "0:a:0"] * len(renditions)
    return args


def _video_codec_args(info: SourceInfo, renditions: list[Rendition], threads: int) -> list[str]:
    """Copy, or x264 with keyframes where the copy (or the segment grid) cuts."""
    fps = min(info.fps, plan.MAX_FPS) if info.fps > 0 else 30.0
    if any(r.copy for r in renditions):
        gop = int(math.ceil((info.max_keyframe_gap + 1) * fps))
        keyframes = plan.forced_keyframes(info)
    else:
        gop = int(round(plan.SEGMENT_SECONDS * fps))
        keyframes = f"expr:gte(t,n_forced*{plan.SEGMENT_SECONDS})"
    args = []
    for i, r in enumerate(renditions):
        if r.copy:
            args += [f"-c:v:{i}", "copy"]
            continue
        args += [f"-c:v:{i}", "libx264", f"-preset:v:{i}", X264_PRESET,
                 f"-crf:v:{i}", str(X264_CRF), f"-maxrate:v:{i}", str(r.maxrate),
                 f"-bufsize:v:{i}", str(r.bufsize), f"-profile:v:{i}", "high",
                 f"-g:v:{i}", str(gop), f"-keyint_min:v:{i}", str(min(gop, int(fps) or 1)),
                 f"-sc_threshold:v:{i}", "0", f"-forced-idr:v:{i}", "1",
                 f"-force_key_frames:v:{i}", keyframes, f"-threads:v:{i}", str(threads)]
    return args


def _audio_codec_args(info: SourceInfo, renditions: list[Rendition]) -> list[str]:
    if not info.has_audio:
        return []
    acopy = plan.audio_copyable(info)
    args = []
    for i, r in enumerate(renditions):
        if acopy:
            args += [f"-c:a:{i}", "copy"]
        else:
            args += [f"-c:a:{i}", "aac", f"-b:a:{i}", str(r.audio_bitrate), f"-ac:a:{i}", "2"]
    return args


def _hls_args(info: SourceInfo, out_dir: str, renditions: list[Rendition]) -> list[str]:
    stream_map = " ".join(
        f"v:{i},a:{i},name:{r.label}" if info.has_audio else f"v:{i},name:{r.label}"
        for i, r in enumerate(renditions))
    return ["-f", "hls", "-hls_time", str(plan.SEGMENT_SECONDS), "-hls_playlist_type", "vod",
            "-hls_segment_type", "mpegts", "-hls_flags", "independent_segments",
            "-hls_segment_filename", os.path.join(out_dir, "%v", layout.SEGMENT_TEMPLATE),
            "-var_stream_map", stream_map, os.path.join(out_dir, "%v", layout.MEDIA_PLAYLIST)]


def thumbnail_command(info: SourceInfo, dest: str, *, ffmpeg: str | None = None) -> list[str]:
    """A cheap second ffmpeg: seek ~10% in, pick a representative frame, JPEG."""
    tw, th = fit(info.width, info.height, THUMB_MAX_WIDTH, THUMB_MAX_HEIGHT)
    n = max(1, min(24, int(info.fps or 24)))
    at = max(0.0, min(info.duration * 0.1, info.duration - (n / max(info.fps, 1.0)) - 0.1))
    return [ffmpeg_exe(ffmpeg), "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-ss", f"{at:.3f}", *input_args(info), "-map", "0:v:0", "-an", "-sn",
            "-vf", f"scale={tw}:{th}:flags=bicubic,setsar=1,thumbnail=n={n}",
            "-frames:v", "1", "-q:v", "3", "-f", "image2", "-update", "1", dest]


def transcode(src: str | os.PathLike, out_dir: str | os.PathLike, *,
              info: SourceInfo | None = None,
              progress_cb: Callable[[int], None] | None = None,
              heartbeat: Callable[[], None] | None = None,
              threads: int | None = None, timeout: float | None = None,
              ffmpeg: str | None = None, storyboard: bool = True) -> TranscodeResult:
    """Transcode ``src`` to an HLS ladder in ``out_dir`` (created; removed on failure).

    ``progress_cb(percent)`` gets 0 first and 100 last; in between see ``ffmpeg.run_ffmpeg``
    (a grown percent at most every PROGRESS_MIN_INTERVAL, a call at least every
    PROGRESS_KEEPALIVE). ``heartbeat()`` is called now and then while probing (without ``info``)
    and measuring, where no progress is reported. Raises MediaError, or InvalidMedia for a
    source that is no acceptable video. ``storyboard=False`` leaves out the seek previews.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    src, out_dir = os.fspath(src), os.fspath(out_dir)
    if os.path.lexists(out_dir):
        raise FileExistsError(f"output directory already exists: {out_dir}")
    if info is None:
        info = probe(src, tick=heartbeat)
    elif info.path != src:
        info = dataclasses.replace(info, path=src)
    renditions = plan_renditions(info)
    board = sb.plan(info.duration, info.width, info.height) if storyboard else None
    cmd = build_command(info, out_dir, renditions, threads=threads, ffmpeg=ffmpeg, storyboard=board)
    os.makedirs(out_dir)
    if board is not None:
        os.makedirs(os.path.join(out_dir, layout.STORYBOARD_DIR))
    try:
        if progress_cb is not None:
            progress_cb(0)
        _run(cmd, duration=info.duration, progress_cb=progress_cb, deadline=deadline,
             position=functools.partial(_written_seconds, out_dir, renditions[0].label))
        thumb = layout.THUMBNAIL
        _run(thumbnail_command(info, os.path.join(out_dir, thumb), ffmpeg=ffmpeg),
             duration=0, progress_cb=None, deadline=deadline, what="ffmpeg thumbnail")
        results = _finish(info, out_dir, renditions, tick=heartbeat)
        if board is not None:
            _write_storyboard(out_dir, board, info.duration)
        if progress_cb is not None:
            progress_cb(100)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    elapsed = time.monotonic() - started
    log.info("transcoded %s in %.1fs: %s", src, elapsed,
             ", ".join(f"{r.label}{'(copy)' if r.copy else ''}" for r in results))
    return TranscodeResult(renditions=results, duration=info.duration, thumbnail=thumb,
                           command=cmd, info=info, storyboard=layout.STORYBOARD_VTT if board else None)


def _write_storyboard(out_dir: str, board: sb.Plan, duration: float) -> None:
    try:
        sb.write_vtt(out_dir, board, duration)
    except ValueError as exc:
        raise MediaError(str(exc), transient=False) from exc


def _written_seconds(out_dir: str, label: str) -> float:
    """About how much of a rendition ffmpeg has written: every segment file but the newest (the
    one being written) is complete, and segments cut every SEGMENT_SECONDS. (The media playlists
    of a multi-variant run are only written at the end, so they cannot tell.)"""
    try:
        names = os.listdir(os.path.join(out_dir, label))
    except OSError:
        return 0.0
    done = sum(1 for name in names if layout.SEGMENT_RE.fullmatch(name)) - 1
    return max(0, done) * plan.SEGMENT_SECONDS


def _run(cmd: list[str], **kwargs) -> None:
    """ffmpeg.run_ffmpeg with this module's progress pacing; MediaError when it fails."""
    run_ffmpeg(cmd, min_interval=PROGRESS_MIN_INTERVAL, keepalive=PROGRESS_KEEPALIVE, **kwargs)


def _finish(info: SourceInfo, out_dir: str, renditions: list[Rendition],
            tick: Callable[[], None] | None = None) -> list[RenditionResult]:
    """Measure every media playlist (calling ``tick()`` before each), derive CODECS, write
    master.m3u8."""
    results, entries = [], []
    for r in renditions:
        if tick is not None:
            tick()
        rel = layout.media_playlist(r.label)
        path = os.path.join(out_dir, rel)
        if not os.path.exists(path):
            raise MediaError(f"ffmpeg produced no playlist for {r.label}", transient=False)
        stats = measure_playlist(path)
        if stats.segments == 0:
            raise MediaError(f"ffmpeg produced no segments for {r.label}", transient=False)
        first = os.path.join(out_dir, r.label, stats.first_segment)
        codecs = segment_codecs(first, info.has_audio)
        results.append(RenditionResult(r.label, r.width, r.height, stats.peak_bandwidth,
                                       stats.average_bandwidth, codecs, stats.segments,
                                       r.copy, rel, stats.bytes))
        entries.append(MasterEntry(rel, stats.peak_bandwidth, stats.average_bandwidth,
                                   r.width, r.height, codecs, min(info.fps, plan.MAX_FPS)))
    if not os.path.exists(os.path.join(out_dir, layout.THUMBNAIL)):
        raise MediaError("ffmpeg produced no thumbnail", transient=False)
    order = sorted(range(len(entries)), key=lambda i: entries[i].bandwidth)
    write_master(os.path.join(out_dir, layout.MASTER), [entries[i] for i in order])
    return [results[i] for i in order]


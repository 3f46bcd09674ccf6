"""Planning a transcode: which renditions of the ladder a source gets, at which sizes, whether the
top one can be a stream copy of the source, and where every rendition must cut its segments.

Pure Python; no Flask, no app imports.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import layout
from .ffmpeg import even, fit
from .probe import SourceInfo

SEGMENT_SECONDS = 6


MAX_FPS = 60.0


COPY_PROFILES = {"Baseline", "Constrained Baseline", "Main", "High"}


COPY_MAX_LEVEL = 42


COPY_MAX_KEYFRAME_GAP = 10.0


# The longest side a rendition may have: what hardware decoders take (H.264 level 5.1, 4096
# wide), and far inside x264's limit (16384). Only shapes beyond 1:3.8 at 1080p reach it.
MAX_SIDE = 4096


@dataclass
class Rendition:
    label: str
    width: int
    height: int
    maxrate: int
    bufsize: int
    audio_bitrate: int
    copy: bool = False


def plan_renditions(info: SourceInfo) -> list[Rendition]:
    """The rungs of layout.LADDER at or below the source's short side, smallest first, each
    within MAX_SIDE x MAX_SIDE (a rung that would come out as large as the one before is left
    out). A source smaller than the lowest rung gets one rendition at its own size."""
    short, long_ = min(info.width, info.height), max(info.width, info.height)
    out: list[Rendition] = []
    for rung in layout.LADDER:
        if rung.short_side > short:
            continue
        if rung.short_side == short:
            short_side, long_side = short - short % 2, long_ - long_ % 2
        else:
            short_side, long_side = rung.short_side, even(long_ * rung.short_side / short)
        w, h = fit(*((short_side, long_side) if info.portrait else (long_side, short_side)), MAX_SIDE, MAX_SIDE)
        if not out or (w, h) != (out[-1].width, out[-1].height):
            out.append(Rendition(rung.label, w, h, rung.maxrate, rung.bufsize, rung.audio_bitrate))
    if not out:  # smaller than the lowest rung: one rendition at its own size
        rung = layout.LADDER[0]
        w, h = fit(info.width, info.height, MAX_SIDE, MAX_SIDE)
        out.append(Rendition(rung.label, w, h, rung.maxrate, rung.bufsize, rung.audio_bitrate))
    top = out[-1]
    top.copy = copy_eligible(info, top)
    return out



def copy_eligible(info: SourceInfo, r: Rendition) -> bool:
    """Can the source video be stream-copied as rendition ``r``?"""
    return (
        info.video_codec == "h264"
        and info.pix_fmt in ("yuv420p", "yuvj420p")
        and (info.profile or "") in COPY_PROFILES
        and info.level is not None and info.level <= COPY_MAX_LEVEL
        and info.rotation == 0
        and (info.coded_width, info.coded_height) == (info.width, info.height)
        and (info.width, info.height) == (r.width, r.height)
        and 0 < info.fps <= MAX_FPS
        and 0 < info.video_bitrate <= r.maxrate
        and info.peak_bitrate <= 2 * r.maxrate
        and bool(info.keyframe_times) and info.keyframe_times[0] <= 0.05
        and info.max_keyframe_gap <= COPY_MAX_KEYFRAME_GAP
    )


def audio_copyable(info: SourceInfo) -> bool:
    return (info.audio_codec == "aac" and (info.audio_profile or "") == "LC"
            and 1 <= info.audio_channels <= 2 and 0 < info.audio_bitrate <= 256_000)


def forced_keyframes(info: SourceInfo, *, offset: float = 0.0, start: float = 0.0,
                     end: float | None = None) -> str:
    """Source keyframe times in [start, end) (plus `offset`: a part's timeline), so re-encoded
    variants cut where the copy does."""
    times = [max(0.0, t - 0.001) + offset for t in info.keyframe_times
             if t >= start - 1e-4 and (end is None or t < end - 1e-4)] or [offset + max(start, 0.0)]
    text = ",".join(f"{t:.3f}" for t in times)
    if len(text) > 100_000:  # stay far below the kernel's per-argument limit
        # keep only the keyframes the HLS muxer can cut on (first at/after k*6 s)
        kept, k = [], 1
        for t in info.keyframe_times:
            if t >= k * SEGMENT_SECONDS - 0.5:
                kept.append(max(0.0, t - 0.001) + offset)
                k = int(t // SEGMENT_SECONDS) + 1
        text = ",".join(f"{t:.3f}" for t in kept) or "0"
    return text

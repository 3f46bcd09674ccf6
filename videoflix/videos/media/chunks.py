"""Planning a chunked transcode: where the timeline is cut into parts that any worker can encode
on its own, and how the parts' segments, sprites and audio fit back together.

A plan cuts the source at times every rendition can cut:
- when the top rung is a stream copy, at source keyframes (the copy can only start there; the
  re-encoded rungs get keyframes forced at the same times, as the single pass does);
- otherwise on the segment grid (multiples of SEGMENT_SECONDS), where every encoder is told to
  place a keyframe.

The first part is short (FIRST_SECONDS: one segment) so the first publish is quick; the others
last about `chunk_seconds`, rounded to whole segments. Segment and sprite numbers are reserved per
part in advance (a part never writes more segments than its length allows), so parts encoded in
any order, on any host, never collide, and the finished playlists list them in number order.

The audio, when it must be re-encoded, is encoded once over the whole timeline (one AAC encoder:
no priming gap at any join) and cut into one piece per part at the parts' boundaries, by packet;
a part muxes its piece's packets as they are.

Pure Python; no Flask, no app imports.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field

from . import plan as ladder
from . import storyboard as sb
from .probe import SourceInfo

# The first part: one segment, so a viewer can start after about one segment's encode.
FIRST_SECONDS = ladder.SEGMENT_SECONDS
# A part shorter than this at the end is merged into the one before it.
MIN_TAIL_SECONDS = 2.0
# Every timestamp a part's ffmpeg sees is the source's, from the container start, plus this: no
# timestamp is negative (B-frame delays, AAC priming), so no muxer shifts one part differently.
TIMESTAMP_OFFSET = 1.0

AUDIO_NONE, AUDIO_COPY, AUDIO_ENCODE = "none", "copy", "encode"


@dataclass(frozen=True)
class Chunk:
    number: int
    start: float                # seconds from the container start; the first part starts at 0
    end: float | None           # exclusive; None for the last part (to the end of the source)
    first_segment: int          # the number its first segment gets (segNNN.ts)
    first_sprite: int           # the number its first storyboard sprite gets
    tiles: tuple[float, ...] = ()   # storyboard frame times it owns (its sprites, in order)

    @property
    def seconds_hint(self):
        return None if self.end is None else self.end - self.start


@dataclass
class ChunkPlan:
    chunks: list[Chunk]
    on_keyframes: bool            # cut at source keyframes (the top rung is a copy)
    audio: str                    # AUDIO_NONE | AUDIO_COPY | AUDIO_ENCODE
    audio_bitrates: list[int] = field(default_factory=list)   # AUDIO_ENCODE: one stream each
    storyboard: sb.Plan | None = None
    target_duration: int = ladder.SEGMENT_SECONDS             # EXT-X-TARGETDURATION

    def boundaries(self) -> list[float]:
        """The cut times between parts (len(chunks) - 1 of them)."""
        return [c.start for c in self.chunks[1:]]

    def chunk_of(self, seconds: float) -> int:
        """The number of the part a time (from the container start) falls in."""
        return bisect.bisect_right(self.boundaries(), seconds)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ChunkPlan:
        board = data.get("storyboard")
        return cls(chunks=[Chunk(**{**c, "tiles": tuple(c.get("tiles", ()))}) for c in data["chunks"]],
                   on_keyframes=data["on_keyframes"], audio=data["audio"],
                   audio_bitrates=list(data.get("audio_bitrates", [])),
                   storyboard=sb.Plan(**board) if board else None,
                   target_duration=data.get("target_duration", ladder.SEGMENT_SECONDS))


def audio_mode(info: SourceInfo) -> str:
    if not info.has_audio:
        return AUDIO_NONE
    return AUDIO_COPY if ladder.audio_copyable(info) else AUDIO_ENCODE


def plan_chunks(info: SourceInfo, renditions: list[ladder.Rendition], chunk_seconds: float | None, *,
                storyboard: bool = True) -> ChunkPlan:
    """The parts of a transcode of `info` into `renditions`. `chunk_seconds` None (or 0) plans one
    part: the whole video in one ffmpeg run. Otherwise a video longer than two segments gets a
    first part of one segment, then parts of `chunk_seconds` (a value longer than the video: the
    first part and one more)."""
    on_keyframes = renditions[-1].copy
    cuts = _cuts(info, on_keyframes, chunk_seconds)
    board = sb.plan(info.duration, info.width, info.height) if storyboard else None
    tiles = [i * board.interval for i in range(board.frames)] if board else []
    chunks, segment, sprite = [], 0, 0
    for number, start in enumerate([0.0, *cuts]):
        end = cuts[number] if number < len(cuts) else None
        length = (end if end is not None else max(info.duration, start)) - start
        owned = tuple(t for t in tiles if t >= start and (end is None or t < end))
        chunks.append(Chunk(number, start, end, segment, sprite, owned))
        # the muxer cuts at most once per SEGMENT_SECONDS, plus a short last segment
        segment += math.ceil(length / ladder.SEGMENT_SECONDS) + 1
        sprite += math.ceil(len(owned) / board.per_sprite) if board else 0
    bitrates = sorted({r.audio_bitrate for r in renditions})
    gap = info.max_keyframe_gap if on_keyframes else 0.0
    return ChunkPlan(chunks, on_keyframes, audio_mode(info),
                     bitrates if audio_mode(info) == AUDIO_ENCODE else [], board,
                     target_duration=math.ceil(ladder.SEGMENT_SECONDS + gap))


def _cuts(info: SourceInfo, on_keyframes: bool, chunk_seconds: float | None) -> list[float]:
    """The cut times, ascending: the first after FIRST_SECONDS, then every `chunk_seconds` (whole
    segments), at keyframes or on the grid; none that would leave less than MIN_TAIL_SECONDS."""
    duration = info.duration
    if not chunk_seconds or duration <= 2 * FIRST_SECONDS:
        return []
    step = max(1, round(chunk_seconds / ladder.SEGMENT_SECONDS)) * ladder.SEGMENT_SECONDS
    keyframes = sorted(info.keyframe_times)
    cuts, want = [], float(FIRST_SECONDS)
    while want < duration - MIN_TAIL_SECONDS:
        if on_keyframes:
            at = bisect.bisect_left(keyframes, want - 1e-6)
            if at >= len(keyframes):
                break
            cut = keyframes[at]
        else:
            cut = want
        if cut >= duration - MIN_TAIL_SECONDS:
            break
        if not cuts or cut > cuts[-1]:
            cuts.append(cut)
        want = cut + step
    return cuts

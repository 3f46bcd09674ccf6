"""Feeding ffmpeg one part of a source: the packets of a time range, demuxed with PyAV and written
as NUT into ffmpeg's stdin, with timestamps moved onto one timeline (from the container start,
plus chunks.TIMESTAMP_OFFSET) so every part's output continues the one before it.

Cutting packets here, not with ffmpeg's -ss/-to, is what makes the parts exact: a part starts at
a keyframe, ends before the next part's first keyframe (closed GOPs: nothing is decoded twice or
lost), and its audio packets are exactly those whose time falls in its range; the next part takes
the rest. The source is a local path or a seekable file object (a bucket object read by ranges),
so a worker reads only the bytes of its part.

Pure Python + PyAV; no Flask, no app imports.
"""
from __future__ import annotations

from dataclasses import dataclass

import av

from .chunks import TIMESTAMP_OFFSET
from .errors import MediaError
from .probe import SourceInfo, check_format, open_options

# Seconds of tolerance when comparing packet times with the probe's keyframe times (rounded to µs).
EPSILON = 1e-4
# Audio packets are interleaved with the video within about this much time in any sane file.
INTERLEAVE_SECONDS = 10.0


def open_source(info: SourceInfo, source) -> av.container.InputContainer:
    """The source (a path or a binary file object) opened as the container the probe found."""
    return av.open(source, mode="r", format=check_format(info.container_format), options=open_options())


@dataclass
class Range:
    """What a feed sends: video packets from a keyframe at or after `start` (or, with `trim`, the
    keyframe before it: the decoder needs it, ffmpeg's trim drops the frames before `start`) to
    the first keyframe at or after `end`; audio packets whose time is in [start, end). The first
    part (start 0) also takes what lies before the first keyframe, the last (end None) the rest."""

    start: float
    end: float | None
    trim: bool = False
    video: bool = True
    audio: bool = False
    margin: float = 1.0          # how far before `start` to seek (the longest keyframe gap, + 1 s)


@dataclass
class FeedResult:
    last_frame: float | None = None   # the time of the last video frame sent in [start, end)
    frames: int = 0                   # video packets sent in [start, end)


class _Shift:
    """Timestamps of one input stream moved onto the feed's timeline."""

    def __init__(self, stream, container_start):
        tb = stream.time_base
        self.tb = tb
        self.ticks = round((TIMESTAMP_OFFSET - container_start) / tb)
        self.start = container_start

    def seconds(self, packet):
        ts = packet.pts if packet.pts is not None else packet.dts
        return float(ts * self.tb) - self.start

    def apply(self, packet):
        if packet.pts is not None:
            packet.pts += self.ticks
        if packet.dts is not None:
            packet.dts += self.ticks


def feed(info: SourceInfo, source, part: Range, pipe) -> FeedResult:
    """Write the part's packets as NUT into `pipe` (closed by the caller)."""
    result = FeedResult()
    with open_source(info, source) as container:
        start_s = (container.start_time or 0) / 1e6
        vin = container.streams.video[0] if part.video else None
        ain = container.streams.audio[0] if part.audio and container.streams.audio else None
        inputs = [s for s in (vin, ain) if s is not None]
        with av.open(pipe, mode="w", format="nut") as out:
            outs = {s: out.add_stream_from_template(s) for s in inputs}
            shifts = {s: _Shift(s, start_s) for s in inputs}
            if part.start > 0:  # earlier than the part by its margin: every stream's first packet of it
                first = inputs[0]  # may lie in the file before the keyframe it starts at
                target = part.start - part.margin
                container.seek(max(0, round((target + start_s) / first.time_base)), stream=first, backward=True)
            _send(container, part, vin, ain, outs, shifts, result)
    return result


def _send(container, part, vin, ain, outs, shifts, result):
    started, video_done, audio_done = part.start <= 0, vin is None, ain is None
    for packet in container.demux(*outs):
        if packet.pts is None and packet.dts is None:
            continue  # a flush packet
        t = shifts[packet.stream].seconds(packet)
        if packet.stream is vin and not video_done:
            if not started:
                if not packet.is_keyframe or (not part.trim and t < part.start - EPSILON):
                    continue
                if part.trim and t > part.start + EPSILON:
                    raise MediaError(f"No keyframe before {part.start:.3f} s in the source", transient=False)
                started = True
            if part.end is not None and packet.is_keyframe and t >= part.end - EPSILON:
                video_done = True
                continue
            if t >= part.start - EPSILON or part.start <= 0:
                result.frames += 1
                result.last_frame = t if result.last_frame is None else max(result.last_frame, t)
        elif packet.stream is ain and not audio_done:
            if part.end is not None and t >= part.end:
                audio_done = True
                continue
            if part.start > 0 and t < part.start:
                continue
        else:
            if video_done and audio_done:
                break
            if part.end is not None and t > part.end + INTERLEAVE_SECONDS:
                break
            continue
        _write(packet, outs, shifts)


def _write(packet, outs, shifts):
    stream = packet.stream
    shifts[stream].apply(packet)
    packet.stream = outs[stream]
    outs[stream].container.mux(packet)

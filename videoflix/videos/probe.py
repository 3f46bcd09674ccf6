"""Media probing with PyAV (no ffprobe needed).

``probe(path)`` opens a file, checks that it really is a decodable video
(it decodes at least one frame) and collects what the transcoder needs to
plan renditions and decide on stream copy: display size, duration, frame
rate, codec details, bitrate and keyframe timestamps.

Pure Python + PyAV: no Flask, no app imports.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction

import av

log = logging.getLogger(__name__)

NOT_A_VIDEO = "The file is not a video that can be decoded."

# Limits that keep probing bounded on garbage input.
_MAX_PACKETS_BEFORE_FRAME = 600
_MAX_DECODE_ERRORS = 50


class TranscodeError(Exception):
    """A transcode failed. ``transient`` says whether retrying may help."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.message = message
        self.transient = transient

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class InvalidMedia(TranscodeError):
    """The input is not a decodable video. Never transient."""

    def __init__(self, message: str = NOT_A_VIDEO):
        super().__init__(message, transient=False)


@dataclass
class SourceInfo:
    path: str
    width: int                 # display width (after rotation / SAR)
    height: int                # display height (after rotation / SAR)
    coded_width: int           # stored frame size
    coded_height: int
    rotation: int              # degrees from the display matrix (0, 90, -90, 180)
    duration: float            # seconds
    fps: float
    has_audio: bool
    video_codec: str           # e.g. "h264"
    pix_fmt: str | None        # e.g. "yuv420p"
    profile: str | None        # e.g. "High"
    level: int | None          # e.g. 40 for 4.0 (H.264 level_idc)
    video_bitrate: int         # bits/s (container value or estimated from packets)
    peak_bitrate: int          # bits/s, max over ~6 s windows of packets
    max_keyframe_gap: float    # seconds, incl. the gap from last keyframe to the end
    keyframe_times: list[float] = field(default_factory=list)  # s, relative to the container start
    audio_codec: str | None = None
    audio_profile: str | None = None
    audio_channels: int = 0
    audio_bitrate: int = 0

    @property
    def portrait(self) -> bool:
        return self.height > self.width


def probe(path: str | os.PathLike) -> SourceInfo:
    """Inspect ``path``; raise :class:`InvalidMedia` unless it is a decodable video."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InvalidMedia(f"The file could not be read ({exc.strerror}).") from exc
    if size == 0:
        raise InvalidMedia("The file is empty.")
    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        log.info("probe: cannot open %s: %s", path, exc)
        raise InvalidMedia(NOT_A_VIDEO) from exc
    try:
        return _probe_container(container, path)
    except InvalidMedia:
        raise
    except (av.FFmpegError, ValueError, ZeroDivisionError, OverflowError) as exc:
        log.info("probe: error reading %s: %s", path, exc)
        raise InvalidMedia(NOT_A_VIDEO) from exc
    finally:
        container.close()


def _probe_container(container, path: str) -> SourceInfo:
    if not container.streams.video:
        if container.streams.audio:
            raise InvalidMedia("The file contains only audio; a video is required.")
        raise InvalidMedia(NOT_A_VIDEO)
    vstream = container.streams.video[0]
    cc = vstream.codec_context
    if not cc.name or cc.width <= 0 or cc.height <= 0:
        raise InvalidMedia(NOT_A_VIDEO)
    astream = container.streams.audio[0] if container.streams.audio else None
    tb = vstream.time_base or Fraction(1, 90000)
    start_time = (container.start_time or 0) / 1e6

    # One pass over the video packets: keyframes, sizes, and decode until
    # the first frame comes out.
    cc.thread_type = "SLICE"
    frame = None
    decode_errors = 0
    packets = 0
    kf_pts: list[int] = []
    pkt_info: list[tuple[int, int]] = []  # (pts, size)
    last_end = None
    demux_error = None
    try:
        for pkt in container.demux(vstream):
            if pkt.size == 0 and pkt.pts is None:
                if frame is None:  # flush packet: drain the decoder
                    try:
                        for f in vstream.decode(None):
                            frame = f
                            break
                    except av.FFmpegError:
                        pass
                continue
            packets += 1
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if ts is not None:
                pkt_info.append((ts, pkt.size))
                end = ts + (pkt.duration or 0)
                last_end = end if last_end is None else max(last_end, end)
                if pkt.is_keyframe:
                    kf_pts.append(ts)
            if frame is None:
                try:
                    for f in vstream.decode(pkt):
                        frame = f
                        break
                except av.FFmpegError:
                    decode_errors += 1
                if decode_errors > _MAX_DECODE_ERRORS or (
                    packets > _MAX_PACKETS_BEFORE_FRAME and frame is None
                ):
                    raise InvalidMedia(NOT_A_VIDEO)
    except av.FFmpegError as exc:
        demux_error = exc
    if frame is None:
        raise InvalidMedia(NOT_A_VIDEO)
    if packets < 2:
        raise InvalidMedia("The file is a still image, not a video.")

    rotation = int(getattr(frame, "rotation", 0) or 0)
    sar = cc.sample_aspect_ratio or vstream.sample_aspect_ratio
    w, h = frame.width, frame.height
    disp_w = w * float(sar) if sar and sar > 0 else float(w)
    disp_h = float(h)
    if abs(rotation) % 180 == 90:
        disp_w, disp_h = disp_h, disp_w

    # Duration: container, then stream, then packets.
    duration = 0.0
    if container.duration:
        duration = container.duration / 1e6
    elif vstream.duration:
        duration = float(vstream.duration * tb)
    first_pts = min(p for p, _ in pkt_info) if pkt_info else 0
    pkt_span = float((last_end - first_pts) * tb) if last_end is not None else 0.0
    if duration <= 0:
        duration = pkt_span
    if demux_error is not None and pkt_span < 0.9 * duration - 1.0:
        log.info("probe: %s truncated (%s)", path, demux_error)
        raise InvalidMedia("The video file is truncated or corrupt.")
    if duration <= 0:
        raise InvalidMedia(NOT_A_VIDEO)

    rate = vstream.average_rate or vstream.guessed_rate or cc.framerate
    fps = float(rate) if rate else 0.0
    if not (0 < fps <= 240):
        fps = (packets / pkt_span) if pkt_span > 0 else 25.0

    # Bitrate: container/stream header, else estimated from packet sizes.
    total_bytes = sum(s for _, s in pkt_info)
    span = pkt_span if pkt_span > 0 else duration
    est = int(total_bytes * 8 / span) if span > 0 else 0
    video_bitrate = int(vstream.bit_rate or cc.bit_rate or 0) or est
    peak = _peak_bitrate(pkt_info, tb, window=6.0) or video_bitrate

    st = float(start_time)
    kf_times = sorted({round(float(p * tb) - st, 6) for p in kf_pts})
    end_time = float(first_pts * tb) - st + (pkt_span or duration)
    gaps = [b - a for a, b in zip(kf_times, kf_times[1:])]
    max_gap = max(gaps + ([end_time - kf_times[-1]] if kf_times else [duration]))

    acodec = aprofile = None
    achannels = abitrate = 0
    if astream is not None:
        acc = astream.codec_context
        acodec = acc.name
        aprofile = acc.profile
        achannels = getattr(acc, "channels", 0) or 0
        abitrate = int(astream.bit_rate or acc.bit_rate or 0)

    info = SourceInfo(
        path=path,
        width=int(round(disp_w)),
        height=int(round(disp_h)),
        coded_width=w,
        coded_height=h,
        rotation=rotation,
        duration=duration,
        fps=fps,
        has_audio=astream is not None,
        video_codec=cc.name,
        pix_fmt=frame.format.name if frame.format else cc.pix_fmt,
        profile=cc.profile,
        level=cc.level if cc.level and cc.level > 0 else None,
        video_bitrate=video_bitrate,
        peak_bitrate=peak,
        max_keyframe_gap=max_gap,
        keyframe_times=kf_times,
        audio_codec=acodec,
        audio_profile=aprofile,
        audio_channels=achannels,
        audio_bitrate=abitrate,
    )
    log.debug("probe %s: %s", path, info)
    return info


def _peak_bitrate(pkt_info, tb, window: float) -> int:
    """Max bitrate over sliding windows of ``window`` seconds of packets."""
    if not pkt_info:
        return 0
    pts = sorted((float(p * tb), s) for p, s in pkt_info)
    peak = 0.0
    j = 0
    acc = 0
    for t, s in pts:
        acc += s
        while pts[j][0] < t - window:
            acc -= pts[j][1]
            j += 1
        if t - pts[0][0] >= window / 2:  # ignore the very first instants
            peak = max(peak, acc * 8 / window)
    if peak == 0:
        span = max(pts[-1][0] - pts[0][0], 1e-3)
        peak = sum(s for _, s in pts) * 8 / span
    return int(peak)

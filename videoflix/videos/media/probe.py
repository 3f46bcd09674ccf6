"""Media probing with PyAV (no ffprobe needed).

``probe(path)`` opens a file, checks that it really is a whole, decodable video in a container
that opens no other file (it reads every packet and decodes one frame) and collects what the
transcoder needs to plan renditions and decide on stream copy: display size, duration, frame
rate, codec details, bitrate and keyframe timestamps. ``SourceInfo.to_dict()`` is what the upload
stores on the row, so the worker reuses it instead of reading the file again.

One idea, one pass over the file, hence one module of ~400 lines: the checks (allowed container,
no playlist, limits, truncation) and the facts (sizes, rates, keyframes) come from the same scan of
every packet, and splitting them would read a multi-gigabyte file twice.

Pure Python + PyAV: no Flask, no app imports.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import av

from .errors import MediaError

log = logging.getLogger(__name__)

NOT_A_VIDEO = "The file is not a video that can be decoded."
PLAYLIST = ("Playlists, manifests and file lists (HLS, DASH, concat) are not accepted: "
            "upload the video file itself.")
TRUNCATED = "The video file is truncated or incomplete: it ends at {end:.1f} s of its {declared:.1f} s."

# Containers accepted, by the demuxer's first name: each reads only the file it is given
# (mov follows external data references only with enable_drefs, which stays off). Playlist-like
# demuxers (hls, dash, concat, image2 patterns, ...) are left out on purpose: they open other files.
ALLOWED_FORMATS = frozenset({
    "mov", "matroska", "avi", "mpegts", "mpeg", "flv", "asf", "ogg", "mxf", "m4v", "h264", "hevc",
    "mpegvideo", "nut", "rm", "dv",
})
# What every av.open() and ffmpeg run may touch: local files only (no http, no pipes, no data:).
PROTOCOL_WHITELIST = "file"
# Signatures of text that tells a demuxer to open other files, refused whatever it probes as.
_PLAYLIST_MARKS = (b"#EXTM3U", b"ffconcat", b"<MPD", b"<?xml", b"file ", b"file\t", b"[playlist]")

# Limits that keep probing bounded on garbage input.
_MAX_PACKETS_BEFORE_FRAME = 600
_MAX_DECODE_ERRORS = 50
_TICK_PACKETS = 2000  # call the caller's tick (its heartbeat) this often while reading packets
# The packets may end this much before the declared duration (rounding, a last frame's length).
_END_TOLERANCE_FRACTION, _END_TOLERANCE_SECONDS = 0.05, 0.25


class InvalidMedia(MediaError):
    """The input is not a whole, decodable video that may be accepted. Never transient."""

    def __init__(self, message: str = NOT_A_VIDEO):
        super().__init__(message, transient=False)


@dataclass(frozen=True)
class Limits:
    """What an upload may be at most (None: no limit)."""

    max_pixels: int | None = None      # coded width x height
    max_duration: float | None = None  # seconds


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
    container_format: str = ""  # the demuxer that read it (one of ALLOWED_FORMATS), e.g. "mov"

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    def to_dict(self) -> dict:
        """JSON-ready, without the path (the row knows where its file is)."""
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    @classmethod
    def from_dict(cls, data: dict, path: str | os.PathLike) -> SourceInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(path=os.fspath(path), **{k: v for k, v in data.items() if k in known and k != "path"})


def open_options() -> dict:
    """Options for every av.open() of a source: local files only."""
    return {"protocol_whitelist": PROTOCOL_WHITELIST}


def check_format(name: str | None) -> str:
    """The demuxer's short name when it is one of ALLOWED_FORMATS; InvalidMedia otherwise."""
    short = (name or "").split(",")[0]
    if short in ("hls", "applehttp", "dash", "concat", "ffconcat"):
        raise InvalidMedia(PLAYLIST)
    if short not in ALLOWED_FORMATS:
        raise InvalidMedia(NOT_A_VIDEO)
    return short


def looks_like_playlist(path: str) -> bool:
    """Whether the file starts like a playlist, manifest or file list (after a BOM/whitespace)."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(_PLAYLIST_MARKS)


def probe(path: str | os.PathLike, *, container_format: str | None = None, limits: Limits = Limits(),
          tick: Callable[[], None] | None = None) -> SourceInfo:
    """Inspect ``path``; raise :class:`InvalidMedia` unless it is a whole, decodable video within
    ``limits`` in an allowed container. ``container_format`` (a name from a previous probe) is
    used instead of guessing; ``tick()`` is called now and then while packets are read."""
    path = os.fspath(path)
    _check_file(path)
    try:
        container = av.open(path, mode="r", format=container_format, options=open_options(),
                            metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        log.info("probe: cannot open %s: %s", path, exc)
        raise InvalidMedia(NOT_A_VIDEO) from exc
    try:
        return _probe_container(container, path, limits, tick)
    except InvalidMedia:
        raise
    except (av.FFmpegError, ValueError, ZeroDivisionError, OverflowError) as exc:
        log.info("probe: error reading %s: %s", path, exc)
        raise InvalidMedia(NOT_A_VIDEO) from exc
    finally:
        container.close()


def _check_file(path: str) -> None:
    try:
        size = os.path.getsize(path)
        playlist = size > 0 and looks_like_playlist(path)
    except OSError as exc:
        raise InvalidMedia(f"The file could not be read ({exc.strerror}).") from exc
    if size == 0:
        raise InvalidMedia("The file is empty.")
    if playlist:
        raise InvalidMedia(PLAYLIST)


def _probe_container(container, path: str, limits: Limits, tick) -> SourceInfo:
    fmt = check_format(container.format.name)
    vstream, astream = _streams(container)
    _check_limits(container, vstream, limits)
    scan = _Scan(vstream, tick)
    scan.read(container)
    duration = _duration(container, vstream, scan, path)
    if limits.max_duration is not None and duration > limits.max_duration:
        raise InvalidMedia(_too_long(limits.max_duration))
    info = SourceInfo(
        path=path, **_picture(scan.frame, vstream), duration=duration, fps=_fps(vstream, scan),
        has_audio=astream is not None, **_video_rates(vstream, scan, duration),
        **_keyframes(container, scan, duration), **_audio(astream), container_format=fmt,
    )
    log.debug("probe %s: %s", path, info)
    return info


def _streams(container):
    """(first video stream, first audio stream or None); InvalidMedia without a usable video."""
    if not container.streams.video:
        if container.streams.audio:
            raise InvalidMedia("The file contains only audio; a video is required.")
        raise InvalidMedia(NOT_A_VIDEO)
    vstream = container.streams.video[0]
    cc = vstream.codec_context
    if not cc.name or cc.width <= 0 or cc.height <= 0:
        raise InvalidMedia(NOT_A_VIDEO)
    return vstream, (container.streams.audio[0] if container.streams.audio else None)


def _too_long(max_duration: float) -> str:
    return f"The video is longer than the limit of {max_duration:g} seconds."


def _check_limits(container, vstream, limits: Limits) -> None:
    """Refuse from the headers, before a frame is decoded: an 8192x8192 picture costs memory."""
    cc = vstream.codec_context
    if limits.max_pixels is not None and cc.width * cc.height > limits.max_pixels:
        raise InvalidMedia(f"The video's picture ({cc.width}x{cc.height}) is larger than the limit of "
                           f"{limits.max_pixels} pixels.")
    declared = (container.duration or 0) / 1e6
    if limits.max_duration is not None and declared > limits.max_duration:
        raise InvalidMedia(_too_long(limits.max_duration))


class _Scan:
    """One pass over every packet: the video's keyframes and sizes, the end of every stream, and
    decoding until the video's first frame comes out."""

    def __init__(self, vstream, tick):
        self.vstream, self.tick = vstream, tick
        self.frame = None
        self.decode_errors = self.packets = 0
        self.kf_pts: list[int] = []
        self.pkt_info: list[tuple[int, int]] = []  # (pts, size) of video packets
        self.last_end = None  # video, in its time base
        self.end_seconds = 0.0  # the latest end of a packet of any stream
        self.demux_error = None

    def read(self, container) -> None:
        self.vstream.codec_context.thread_type = "SLICE"
        seen = 0
        try:
            for pkt in container.demux():
                seen += 1
                if self.tick is not None and seen % _TICK_PACKETS == 1:  # the first, then every N
                    self.tick()
                self._note_end(pkt)
                if pkt.stream.index == self.vstream.index:
                    self._video_packet(pkt)
        except av.FFmpegError as exc:
            self.demux_error = exc
        if self.frame is None:
            raise InvalidMedia(NOT_A_VIDEO)
        if self.packets < 2:
            raise InvalidMedia("The file is a still image, not a video.")

    def _note_end(self, pkt) -> None:
        ts = pkt.pts if pkt.pts is not None else pkt.dts
        if ts is None or pkt.time_base is None or pkt.size == 0:
            return
        start = pkt.stream.start_time or 0
        end = float((ts - start + (pkt.duration or 0)) * pkt.time_base)
        self.end_seconds = max(self.end_seconds, end)

    def _video_packet(self, pkt) -> None:
        if pkt.size == 0 and pkt.pts is None:
            if self.frame is None:  # flush packet: drain the decoder
                self._decode(None)
            return
        self.packets += 1
        ts = pkt.pts if pkt.pts is not None else pkt.dts
        if ts is not None:
            self.pkt_info.append((ts, pkt.size))
            end = ts + (pkt.duration or 0)
            self.last_end = end if self.last_end is None else max(self.last_end, end)
            if pkt.is_keyframe:
                self.kf_pts.append(ts)
        if self.frame is None:
            if not self._decode(pkt):
                self.decode_errors += 1
            if self.decode_errors > _MAX_DECODE_ERRORS or (
                self.packets > _MAX_PACKETS_BEFORE_FRAME and self.frame is None
            ):
                raise InvalidMedia(NOT_A_VIDEO)

    def _decode(self, pkt) -> bool:
        try:
            for f in self.vstream.decode(pkt):
                self.frame = f
                break
        except av.FFmpegError:
            return False
        return True

    @property
    def time_base(self):
        return self.vstream.time_base or Fraction(1, 90000)

    @property
    def first_pts(self) -> int:
        return min(p for p, _ in self.pkt_info) if self.pkt_info else 0

    @property
    def span(self) -> float:
        """Seconds from the first video packet to the end of the last."""
        if self.last_end is None:
            return 0.0
        return float((self.last_end - self.first_pts) * self.time_base)


def _duration(container, vstream, scan: _Scan, path: str) -> float:
    """Declared duration (container, then stream), else the packets'; InvalidMedia when the packets
    end well before the declared duration: a truncated upload."""
    declared = 0.0
    if container.duration:
        declared = container.duration / 1e6
    elif vstream.duration:
        declared = float(vstream.duration * scan.time_base)
    end = max(scan.end_seconds, scan.span)
    if declared > 0 and end < declared * (1 - _END_TOLERANCE_FRACTION) - _END_TOLERANCE_SECONDS:
        log.info("probe: %s truncated: packets end at %.2fs of %.2fs (%s)", path, end, declared,
                 scan.demux_error)
        raise InvalidMedia(TRUNCATED.format(end=end, declared=declared))
    duration = declared if declared > 0 else scan.span
    if duration <= 0:
        raise InvalidMedia(NOT_A_VIDEO)
    return duration


def _picture(frame, vstream) -> dict:
    """Display and coded sizes, rotation and pixel format, from the first decoded frame."""
    cc = vstream.codec_context
    rotation = int(getattr(frame, "rotation", 0) or 0)
    sar = cc.sample_aspect_ratio or vstream.sample_aspect_ratio
    w, h = frame.width, frame.height
    disp_w = w * float(sar) if sar and sar > 0 else float(w)
    disp_h = float(h)
    if abs(rotation) % 180 == 90:
        disp_w, disp_h = disp_h, disp_w
    return dict(width=int(round(disp_w)), height=int(round(disp_h)), coded_width=w, coded_height=h,
                rotation=rotation, video_codec=cc.name,
                pix_fmt=frame.format.name if frame.format else cc.pix_fmt)


def _fps(vstream, scan: _Scan) -> float:
    cc = vstream.codec_context
    rate = vstream.average_rate or vstream.guessed_rate or cc.framerate
    fps = float(rate) if rate else 0.0
    if not (0 < fps <= 240):
        fps = (scan.packets / scan.span) if scan.span > 0 else 25.0
    return fps


def _video_rates(vstream, scan: _Scan, duration: float) -> dict:
    """Profile, level and bitrates: the header's, else estimated from packet sizes."""
    cc = vstream.codec_context
    total_bytes = sum(s for _, s in scan.pkt_info)
    span = scan.span if scan.span > 0 else duration
    est = int(total_bytes * 8 / span) if span > 0 else 0
    video_bitrate = int(vstream.bit_rate or cc.bit_rate or 0) or est
    peak = _peak_bitrate(scan.pkt_info, scan.time_base, window=6.0) or video_bitrate
    return dict(profile=cc.profile, level=cc.level if cc.level and cc.level > 0 else None,
                video_bitrate=video_bitrate, peak_bitrate=peak)


def _keyframes(container, scan: _Scan, duration: float) -> dict:
    """Keyframe times relative to the container start, and the longest gap (to the end too)."""
    tb, st = scan.time_base, (container.start_time or 0) / 1e6
    kf_times = sorted({round(float(p * tb) - st, 6) for p in scan.kf_pts})
    end_time = float(scan.first_pts * tb) - st + (scan.span or duration)
    gaps = [b - a for a, b in zip(kf_times, kf_times[1:])]
    max_gap = max(gaps + ([end_time - kf_times[-1]] if kf_times else [duration]))
    return dict(max_keyframe_gap=max_gap, keyframe_times=kf_times)


def _audio(astream) -> dict:
    if astream is None:
        return {}
    acc = astream.codec_context
    return dict(audio_codec=acc.name, audio_profile=acc.profile,
                audio_channels=getattr(acc, "channels", 0) or 0,
                audio_bitrate=int(astream.bit_rate or acc.bit_rate or 0))


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

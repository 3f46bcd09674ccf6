"""HLS helpers: measure finished media playlists and write the master playlist.

Pure Python + PyAV + m3u8; no Flask, no app imports.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import av
import m3u8

log = logging.getLogger(__name__)


# A last segment shorter than this (or than half the target duration) is a remainder, not a
# representative segment: fixed per-segment overhead (PAT/PMT, the opening keyframe) over a
# fraction of a second would inflate the peak and make players choose lower renditions.
SHORT_TAIL_SECONDS = 1.0


@dataclass
class PlaylistStats:
    segments: int
    bytes: int                 # all segment files together
    peak_bandwidth: int        # bits/s, max over segments of size*8/EXTINF (short tail merged)
    average_bandwidth: int     # bits/s, total bytes*8 / total duration
    first_segment: str         # file name of the first segment (no query string)


def segment_file(uri: str) -> str:
    """The file name a segment URI refers to: without the `?v=<version>` query string."""
    return uri.partition("?")[0]


def measure_playlist(playlist_path: str | os.PathLike) -> PlaylistStats:
    """Peak / average bitrate of a media playlist from its actual segment files.

    The peak is at least the bitrate of every full-length segment; a short last segment (see
    SHORT_TAIL_SECONDS) counts only merged with the one before it.
    """
    playlist_path = os.fspath(playlist_path)
    base = os.path.dirname(playlist_path)
    pl = m3u8.load(playlist_path)
    durations = [float(seg.duration or 0.0) for seg in pl.segments]
    sizes = [os.path.getsize(os.path.join(base, segment_file(seg.uri))) for seg in pl.segments]
    spans = list(zip(sizes, durations))
    tail_limit = SHORT_TAIL_SECONDS
    if pl.target_duration:
        tail_limit = min(tail_limit, pl.target_duration / 2)
    if len(spans) >= 2 and durations[-1] < tail_limit:
        size, dur = spans.pop()
        spans.append((spans[-1][0] + size, spans[-1][1] + dur))  # the segment before it stays too
    peak = max((size * 8 / dur for size, dur in spans if dur > 0), default=0.0)
    total = sum(durations)
    avg = sum(sizes) * 8 / total if total > 0 else 0.0
    return PlaylistStats(
        segments=len(sizes),
        bytes=sum(sizes),
        peak_bandwidth=int(math.ceil(peak)),
        average_bandwidth=int(math.ceil(avg)),
        first_segment=segment_file(pl.segments[0].uri) if pl.segments else "",
    )


def version_segment_uris(playlist_path: str | os.PathLike, version: str) -> None:
    """Rewrite a media playlist so each segment URI carries `?v=<version>`: a re-transcode gets
    new segment URLs, so a browser never mixes segments of two versions from its cache."""
    playlist_path = os.fspath(playlist_path)
    with open(playlist_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines = [f"{segment_file(ln)}?v={version}" if ln.strip() and not ln.startswith("#") else ln for ln in lines]
    tmp = playlist_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, playlist_path)


def _sps_codec_string(data: bytes) -> str | None:
    """``avc1.PPCCLL`` from the first H.264 SPS NAL found in Annex B bytes."""
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 6 >= n:
            return None
        nal = data[i + 3]
        if nal & 0x1F == 7:
            profile, constraints, level = data[i + 4], data[i + 5], data[i + 6]
            return f"avc1.{profile:02x}{constraints:02x}{level:02x}"
        i += 3


def segment_codecs(segment_path: str | os.PathLike, has_audio: bool) -> str:
    """RFC 6381 CODECS value for an MPEG-TS segment, read from its bitstream."""
    video = None
    audio = None
    with av.open(os.fspath(segment_path), format="mpegts", options={"protocol_whitelist": "file"}) as c:
        if has_audio and c.streams.audio:
            prof = (c.streams.audio[0].codec_context.profile or "LC").upper()
            # AAC object types: LC=2, HE-AAC (SBR)=5, HE-AACv2 (PS)=29
            audio = {"HE-AAC": "mp4a.40.5", "HE-AACV2": "mp4a.40.29"}.get(prof, "mp4a.40.2")
        vs = c.streams.video[0]
        for pkt in c.demux(vs):
            if pkt.size:
                video = _sps_codec_string(bytes(pkt))
                if video:
                    break
        if video is None:
            video = "avc1.64001f"
            log.warning("no SPS found in %s; assuming %s", segment_path, video)
    return ",".join(x for x in (video, audio) if x)


@dataclass
class MasterEntry:
    uri: str                   # e.g. "720p/index.m3u8"
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    codecs: str
    frame_rate: float


def write_master(path: str | os.PathLike, entries: list[MasterEntry]) -> str:
    """Write the master playlist (entries in the given order); returns its text."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for e in entries:
        attrs = [
            f"BANDWIDTH={e.bandwidth}",
            f"AVERAGE-BANDWIDTH={e.average_bandwidth}",
            f"RESOLUTION={e.width}x{e.height}",
            f'CODECS="{e.codecs}"',
        ]
        if e.frame_rate > 0:
            attrs.append(f"FRAME-RATE={e.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(e.uri)
    text = "\n".join(lines) + "\n"
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return text


# ---------------------------------------------------------------- subtitles

SUBTITLE_GROUP = "subs"
_SUBTITLE_MEDIA = "#EXT-X-MEDIA:TYPE=SUBTITLES,"
_SUBTITLE_ATTR = f',SUBTITLES="{SUBTITLE_GROUP}"'


@dataclass
class SubtitleEntry:
    language: str              # BCP 47, e.g. "pt-BR"
    label: str                 # e.g. "Português (Brasil)"
    uri: str                   # the subtitle media playlist, relative to the master


def _quoted(value: str) -> str:
    """An HLS quoted-string: no double quote, CR or LF may appear inside it."""
    return '"' + value.replace('"', "'").replace("\r", " ").replace("\n", " ") + '"'


def with_subtitles(master: str, tracks: list[SubtitleEntry]) -> str:
    """The master playlist text listing exactly `tracks` (none: no subtitle group at all).

    Earlier subtitle entries are dropped first, so calling it again after a track was added or
    removed rewrites the master without touching the variants' other attributes."""
    lines = [ln for ln in master.splitlines() if not ln.startswith(_SUBTITLE_MEDIA)]
    lines = [ln.replace(_SUBTITLE_ATTR, "") if ln.startswith("#EXT-X-STREAM-INF:") else ln for ln in lines]
    if tracks:
        lines = [ln + _SUBTITLE_ATTR if ln.startswith("#EXT-X-STREAM-INF:") else ln for ln in lines]
        media = [
            f'{_SUBTITLE_MEDIA}GROUP-ID="{SUBTITLE_GROUP}",LANGUAGE={_quoted(t.language)},'
            f"NAME={_quoted(t.label)},DEFAULT=NO,AUTOSELECT=YES,URI={_quoted(t.uri)}"
            for t in tracks
        ]
        first_variant = next((i for i, ln in enumerate(lines) if ln.startswith("#EXT-X-STREAM-INF:")), len(lines))
        lines[first_variant:first_variant] = media
    return "\n".join(lines) + "\n"


def subtitle_playlist(vtt_uri: str, duration: float) -> str:
    """A subtitle media playlist: the whole WebVTT file as one segment as long as the video."""
    duration = max(duration, 0.001)
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(duration)}",
        "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXTINF:{duration:.3f},", vtt_uri, "#EXT-X-ENDLIST",
    ]) + "\n"


def first_pts(segment_path: str | os.PathLike) -> int:
    """The first presentation time of an MPEG-TS segment in 90 kHz ticks (for X-TIMESTAMP-MAP:
    ffmpeg's segments start at 1.4 s, not 0, and hls.js places cues by this map)."""
    with av.open(os.fspath(segment_path), format="mpegts", options={"protocol_whitelist": "file"}) as c:
        start = c.start_time
    return 0 if start is None else int(round(start * 90_000 / av.time_base))

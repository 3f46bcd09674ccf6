"""HLS helpers: measure finished media playlists and write the master playlist.

Every quoted attribute value we write into a playlist goes through `quoted`, which refuses what
it cannot write safely (see `unsafe_character`).

Pure Python + PyAV + m3u8; no Flask, no app imports.
"""
from __future__ import annotations

import logging
import math
import os
import re
import string
import unicodedata
from dataclasses import dataclass

import av
import m3u8

from . import layout

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
    average_bandwidth: int | None
    width: int
    height: int
    codecs: str
    frame_rate: float


def master_text(entries: list[MasterEntry]) -> str:
    """The master playlist of `entries`, in the given order (AVERAGE-BANDWIDTH only where known)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for e in entries:
        attrs = [f"BANDWIDTH={e.bandwidth}"]
        if e.average_bandwidth is not None:
            attrs.append(f"AVERAGE-BANDWIDTH={e.average_bandwidth}")
        attrs += [f"RESOLUTION={e.width}x{e.height}", f"CODECS={quoted(e.codecs)}"]
        if e.frame_rate > 0:
            attrs.append(f"FRAME-RATE={e.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(e.uri)
    return "\n".join(lines) + "\n"


def write_text(path: str | os.PathLike, text: str) -> None:
    """Replace the file at `path` with `text` whole (a rename: readers see old or new)."""
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_master(path: str | os.PathLike, entries: list[MasterEntry]) -> str:
    """Write the master playlist (entries in the given order); returns its text."""
    text = master_text(entries)
    write_text(path, text)
    return text


# ---------------------------------------------------------------- quoted attribute values

class UnsafeValue(ValueError):
    """An attribute value `quoted` will not write: `message` says which character and why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# What a quoted-string may hold: letters, combining marks, digits and spaces of any script, and
# punctuation (ASCII's, string.punctuation, and Unicode's), except '"' (it would end the value)
# and '#' (hls.js finds its tags, #EXT-X-..., anywhere in a line). Everything else is refused:
# C0/C1 controls and line or paragraph separators (U+0085, U+2028 end a line for Python's m3u8
# and for JavaScript), format characters (bidi overrides), other symbols, unassigned code points.
# Zero-width (non-)joiners stay: Persian and Indic scripts need them.
_ALLOWED_CATEGORIES = ("L", "M", "N", "P", "Zs")
_ALLOWED = frozenset(string.punctuation + "\u200c\u200d") - set('"#')
_REFUSED = {'"': 'a double quote (")', "#": 'a "#"'}


def unsafe_character(value: str) -> str | None:
    """A sentence naming the first character of `value` that no playlist attribute may hold
    ('a "#"', "U+2028 LINE SEPARATOR"); None when every character may be written."""
    for char in value:
        if char in _REFUSED:
            return _REFUSED[char]
        if char not in _ALLOWED and not unicodedata.category(char).startswith(_ALLOWED_CATEGORIES):
            return f"U+{ord(char):04X} {unicodedata.name(char, 'a control or unassigned character')}"
    return None


def quoted(value: str) -> str:
    """`value` as an HLS quoted-string ("...") that every parser reads back as exactly `value`.
    UnsafeValue when it holds a character `unsafe_character` refuses: it is never altered."""
    problem = unsafe_character(value)
    if problem is not None:
        raise UnsafeValue(f"A playlist attribute may not contain {problem}.")
    return f'"{value}"'


# ---------------------------------------------------------------- subtitles

SUBTITLE_GROUP = "subs"
_SUBTITLE_MEDIA = "#EXT-X-MEDIA:TYPE=SUBTITLES,"
_SUBTITLE_ATTR = f',SUBTITLES="{SUBTITLE_GROUP}"'
_STREAM_INF = "#EXT-X-STREAM-INF:"
# The header lines write_master writes; then each variant's #EXT-X-STREAM-INF and its URI.
_MASTER_HEADER = ("#EXTM3U", "#EXT-X-VERSION:", "#EXT-X-INDEPENDENT-SEGMENTS")
_MEDIA_PLAYLIST_URI = re.compile(f"(?:{layout.LABEL_PATTERN})/{re.escape(layout.MEDIA_PLAYLIST)}")


@dataclass
class SubtitleEntry:
    language: str              # BCP 47, e.g. "pt-BR"
    label: str                 # e.g. "Português (Brasil)"
    uri: str                   # the subtitle media playlist, relative to the master


def _variant_lines(master: str) -> list[str]:
    """The master's header and variants as write_master wrote them, without subtitle entries.

    Lines are split at "\\n" only (the one line break we write), and every other line is dropped:
    an entry written before labels were checked may hold U+2028 or U+0085, and a parser that broke
    the line there may have kept its rest as lines of their own. A variant is kept only as a
    #EXT-X-STREAM-INF line directly followed by the URI of one of our media playlists."""
    lines = master.split("\n")
    kept: list[str] = [ln for ln in lines if ln.startswith(_MASTER_HEADER)]
    for inf, uri in zip(lines, lines[1:]):
        if inf.startswith(_STREAM_INF) and _MEDIA_PLAYLIST_URI.fullmatch(uri):
            kept += [inf, uri]
    return kept


def variant_uris(master: str) -> list[str]:
    """The URIs of the master's variants (our media playlists, "480p/index.m3u8"), in order."""
    return [ln for ln in _variant_lines(master) if not ln.startswith("#")]


def with_subtitles(master: str, tracks: list[SubtitleEntry]) -> str:
    """The master playlist text listing exactly `tracks` (none: no subtitle group at all).

    Earlier subtitle entries are dropped first, so calling it again after a track was added or
    removed rewrites the master without touching the variants' other attributes. UnsafeValue
    (nothing written) when a track's language, label or URI cannot be written safely."""
    media = [
        f"{_SUBTITLE_MEDIA}GROUP-ID={quoted(SUBTITLE_GROUP)},LANGUAGE={quoted(t.language)},"
        f"NAME={quoted(t.label)},DEFAULT=NO,AUTOSELECT=YES,URI={quoted(t.uri)}"
        for t in tracks
    ]
    lines = [ln.replace(_SUBTITLE_ATTR, "") if ln.startswith(_STREAM_INF) else ln for ln in _variant_lines(master)]
    if tracks:
        lines = [ln + _SUBTITLE_ATTR if ln.startswith(_STREAM_INF) else ln for ln in lines]
        first_variant = next((i for i, ln in enumerate(lines) if ln.startswith(_STREAM_INF)), len(lines))
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

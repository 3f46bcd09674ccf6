"""Putting the parts of a chunked transcode together: the media playlists, the master and the
storyboard index of the parts stored so far (from the first on, without a hole).

While parts are missing, a media playlist is an EVENT playlist that starts at 0 and has no
ENDLIST (players keep reloading it); once every part is there it is a VOD playlist with ENDLIST.
Everything is computed from the parts' results in part order, so the finished files are the same
whatever order the parts were encoded in.

Pure Python; no Flask, no app imports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import layout
from . import storyboard as sb
from .chunks import AUDIO_COPY, ChunkPlan, audio_mode
from .hls import SHORT_TAIL_SECONDS, MasterEntry, master_text
from .parts import PartResult
from .plan import MAX_FPS, Rendition
from .probe import SourceInfo


@dataclass
class Assembly:
    """The text files of a version for the parts given: {name inside the version: text}."""

    files: dict[str, str]
    complete: bool
    seconds: float          # how much of the video the playlists cover
    # what the row keeps of each rendition, in the master's order (lowest bandwidth first):
    # label, width, height, bandwidth, average_bandwidth, codecs, segments, copy, bytes
    renditions: list[dict]


def assemble(info: SourceInfo, cplan: ChunkPlan, renditions: list[Rendition],
             results: list[PartResult], version: str | None) -> Assembly:
    """The playlists, master and storyboard index for `results`: the results of parts 0..n-1."""
    complete = len(results) == len(cplan.chunks)
    files, seconds = {}, 0.0
    entries, rows = [], []
    for r in renditions:
        segments = [s for result in results for s in result.segments[r.label]]
        files[layout.media_playlist(r.label)] = media_playlist(segments, version, cplan.target_duration,
                                                               complete=complete)
        seconds = sum(s[1] for s in segments)
        peak, average = _bandwidths(segments) if complete else (_upper_bound(info, r), None)
        codecs = results[0].codecs[r.label]
        entries.append(MasterEntry(layout.media_playlist(r.label), peak, average, r.width, r.height,
                                   codecs, min(info.fps, MAX_FPS)))
        rows.append(dict(label=r.label, width=r.width, height=r.height, bandwidth=peak,
                         average_bandwidth=average, codecs=codecs, segments=len(segments), copy=r.copy,
                         bytes=sum(s[2] for s in segments)))
    order = sorted(range(len(entries)), key=lambda i: entries[i].bandwidth)
    files[layout.MASTER] = master_text([entries[i] for i in order])
    if cplan.storyboard is not None and any(result.tiles for result in results):
        files[layout.STORYBOARD_VTT] = storyboard_index(cplan, results, info.duration if complete else seconds)
    return Assembly(files, complete, seconds, [rows[i] for i in order])


def media_playlist(segments: list[list], version: str | None, target: int, *, complete: bool) -> str:
    """A media playlist of `segments` ([name, seconds, bytes] in order), their URIs carrying
    `?v=<version>`: EVENT from 0 while growing, VOD with ENDLIST once complete."""
    longest = max((round(s[1]) for s in segments), default=0)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{max(target, longest)}",
             "#EXT-X-MEDIA-SEQUENCE:0", f"#EXT-X-PLAYLIST-TYPE:{'VOD' if complete else 'EVENT'}",
             "#EXT-X-INDEPENDENT-SEGMENTS"]
    if not complete:
        lines.append("#EXT-X-START:TIME-OFFSET=0")
    query = f"?v={version}" if version else ""
    for name, seconds, _ in segments:
        lines += [f"#EXTINF:{seconds:.6f},", f"{name}{query}"]
    if complete:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _bandwidths(segments: list[list]) -> tuple[int, int]:
    """(peak, average) bits/s of the segments: the peak over full segments, a short last one
    counted only together with the one before it (hls.SHORT_TAIL_SECONDS)."""
    spans = [(s[2], s[1]) for s in segments]
    if len(spans) >= 2 and spans[-1][1] < SHORT_TAIL_SECONDS:
        size, seconds = spans.pop()
        spans.append((spans[-1][0] + size, spans[-1][1] + seconds))
    peak = max((size * 8 / seconds for size, seconds in spans if seconds > 0), default=0.0)
    total = sum(s[1] for s in segments)
    average = sum(s[2] for s in segments) * 8 / total if total > 0 else 0.0
    return int(math.ceil(peak)), int(math.ceil(average))


def _upper_bound(info: SourceInfo, r: Rendition) -> int:
    """A rendition's BANDWIDTH before it is measured: its video cap (the source's peak for a
    copy) plus its audio, and the container's overhead."""
    video = max(info.peak_bitrate, info.video_bitrate) if r.copy else r.maxrate
    audio = (info.audio_bitrate or r.audio_bitrate) if audio_mode(info) == AUDIO_COPY else r.audio_bitrate
    return int((video + (audio if info.has_audio else 0)) * 1.1)


def storyboard_index(cplan: ChunkPlan, results: list[PartResult], until: float) -> str:
    """The WebVTT index of the sprites the parts drew: one cue per tile, to the next tile (the
    last one to `until`)."""
    board = cplan.storyboard
    tiles = []
    for chunk, result in zip(cplan.chunks, results):
        for i, at in enumerate(result.tiles):
            sprite, cell = divmod(i, board.per_sprite)
            tiles.append((at, chunk.first_sprite + sprite, cell))
    cues = []
    for n, (at, sprite, cell) in enumerate(tiles):
        end = tiles[n + 1][0] if n + 1 < len(tiles) else until
        if end <= at:
            continue
        y, x = divmod(cell, board.columns)
        cues.append((at, end, f"{layout.STORYBOARD_DIR}/{layout.sprite_name(sprite)}#xywh="
                              f"{x * board.width},{y * board.height},{board.width},{board.height}"))
    return sb.cues_text(cues)

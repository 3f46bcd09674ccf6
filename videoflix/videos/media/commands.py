"""The command lines of a transcode's ffmpeg runs: one part of the ladder (decode once from the
feed, split+scale, encode or copy every rendition, HLS out, the storyboard's sprites), and the one
continuous audio encode. Argument lists, never shell strings.

Pure Python; no Flask, no app imports.
"""
from __future__ import annotations

import math
import os

from . import chunks, layout, plan
from . import storyboard as sb
from .ffmpeg import default_threads, ffmpeg_exe
from .plan import Rendition
from .probe import PROTOCOL_WHITELIST, SourceInfo, check_format

X264_PRESET = "veryfast"
X264_CRF = 21


def input_args(info: SourceInfo) -> list[str]:
    """How an ffmpeg run reads the source file itself: local files only, and as the container the
    probe found (never guessed again from a name or from content: a playlist never gets opened as
    one). Raises InvalidMedia when that container is not an allowed one."""
    return ["-protocol_whitelist", PROTOCOL_WHITELIST, "-f", check_format(info.container_format),
            "-i", info.path]


# A part's ffmpeg reads the NUT stream feed.py writes into its stdin, and nothing else but its
# audio piece (a local NUT file of ours).
PIPE_INPUT = ["-protocol_whitelist", "pipe", "-f", "nut", "-i", "pipe:0"]


def build_command(info: SourceInfo, cplan: chunks.ChunkPlan, chunk: chunks.Chunk, out_dir: str,
                  renditions: list[Rendition], *, threads: int | None = None, ffmpeg: str | None = None,
                  audio_piece: str | None = None) -> list[str]:
    """One ffmpeg for one part: decode it once (from stdin), split+scale, encode/copy every
    rendition, HLS out with the part's segment numbers; one more output of the same graph writes
    the sprites of the storyboard frames it owns. `audio_piece`: the part's packets of the one
    continuous audio encode (chunks.AUDIO_ENCODE), muxed as they are."""
    threads = threads or default_threads()
    cmd = [ffmpeg_exe(ffmpeg), "-hide_banner", "-nostdin", "-y", "-v", "error",
           "-progress", "pipe:1", "-nostats", "-threads", str(threads), "-copyts", *PIPE_INPUT]
    if audio_piece is not None:
        cmd += ["-protocol_whitelist", "file", "-f", "nut", "-i", audio_piece]
    board = cplan.storyboard if chunk.tiles else None
    cmd += _filter_args(info, [r for r in renditions if not r.copy], threads, cplan, chunk, board)
    cmd += _map_args(info, renditions, cplan)
    cmd += _video_codec_args(info, renditions, threads, cplan, chunk)
    cmd += ["-fps_mode", "passthrough"]
    cmd += _audio_codec_args(renditions, cplan)
    cmd += _hls_args(info, out_dir, renditions, chunk.first_segment)
    if board is not None:
        cmd += sb.output_args(out_dir, start_number=chunk.first_sprite)
    return cmd


def _trim(cplan: chunks.ChunkPlan, chunk: chunks.Chunk) -> str:
    """On the segment grid a part starts between keyframes of the source: its feed starts at the
    keyframe before, and this drops the frames before the part's start (and from its end on)."""
    if cplan.on_keyframes or (chunk.start <= 0 and chunk.end is None):
        return ""
    bounds = []
    if chunk.start > 0:
        bounds.append(f"start={chunk.start + chunks.TIMESTAMP_OFFSET:.6f}")
    if chunk.end is not None:
        bounds.append(f"end={chunk.end + chunks.TIMESTAMP_OFFSET:.6f}")
    return "trim=" + ":".join(bounds) + ","


def _filter_args(info: SourceInfo, encoded: list[Rendition], threads: int, cplan: chunks.ChunkPlan,
                 chunk: chunks.Chunk, storyboard: sb.Plan | None) -> list[str]:
    """Split the decoded video once per re-encoded rendition and scale each: [v0], [v1]...;
    and once more for the storyboard's sprites: [sb]."""
    branches = len(encoded) + (storyboard is not None)
    if not branches:
        return []
    chains = []
    trim = _trim(cplan, chunk)
    src = "[0:v:0]"
    if trim:
        chains.append(f"{src}{trim.rstrip(',')}[trimmed]")
        src = "[trimmed]"
    if branches > 1:
        chains.append(src + f"split={branches}" + "".join(f"[s{i}]" for i in range(branches)))
    for i, r in enumerate(encoded):
        inp = f"[s{i}]" if branches > 1 else src
        flt = f"scale={r.width}:{r.height}:flags=bicubic,setsar=1,format=yuv420p"
        if info.fps > plan.MAX_FPS:
            flt = f"fps={plan.MAX_FPS:g}," + flt
        chains.append(f"{inp}{flt}[v{i}]")
    if storyboard is not None:
        source = f"[s{branches - 1}]" if branches > 1 else src
        chains.append(sb.filter_chain(source, storyboard, first_tile=chunk.tiles[0],
                                      offset=chunks.TIMESTAMP_OFFSET))
    return ["-filter_complex_threads", str(threads), "-filter_complex", ";".join(chains)]


def _map_args(info: SourceInfo, renditions: list[Rendition], cplan: chunks.ChunkPlan) -> list[str]:
    """Video streams in rendition order (v:i == renditions[i]), then one audio per rendition: the
    source's (copied), or the continuous encode's stream of the rendition's bitrate (input 1)."""
    args, enc_idx = [], 0
    for r in renditions:
        if r.copy:
            args += ["-map", "0:v:0"]
        else:
            args += ["-map", f"[v{enc_idx}]"]
            enc_idx += 1
    if cplan.audio == chunks.AUDIO_COPY:
        args += ["-map", "0:a:0"] * len(renditions)
    elif cplan.audio == chunks.AUDIO_ENCODE:
        for r in renditions:
            args += ["-map", f"1:a:{cplan.audio_bitrates.index(r.audio_bitrate)}"]
    return args


def _video_codec_args(info: SourceInfo, renditions: list[Rendition], threads: int,
                      cplan: chunks.ChunkPlan, chunk: chunks.Chunk) -> list[str]:
    """Copy, or x264 with keyframes where the copy (or the segment grid, from the part's start)
    cuts."""
    fps = min(info.fps, plan.MAX_FPS) if info.fps > 0 else 30.0
    if cplan.on_keyframes:
        gop = int(math.ceil((info.max_keyframe_gap + 1) * fps))
        keyframes = plan.forced_keyframes(info, offset=chunks.TIMESTAMP_OFFSET, start=chunk.start, end=chunk.end)
    else:
        gop = int(round(plan.SEGMENT_SECONDS * fps))
        first = chunk.start + chunks.TIMESTAMP_OFFSET
        keyframes = f"expr:gte(t,{first:.6f}+n_forced*{plan.SEGMENT_SECONDS})"
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


def _audio_codec_args(renditions: list[Rendition], cplan: chunks.ChunkPlan) -> list[str]:
    """Every part's audio is copied: the source's, or the packets of the one continuous encode."""
    if cplan.audio == chunks.AUDIO_NONE:
        return []
    return [arg for i in range(len(renditions)) for arg in (f"-c:a:{i}", "copy")]


def audio_command(info: SourceInfo, bitrates: list[int], out: str, *, ffmpeg: str | None = None) -> list[str]:
    """The one AAC encode of the whole audio (from the feed on stdin), one stream per bitrate, as
    NUT into `out` ("pipe:N")."""
    cmd = [ffmpeg_exe(ffmpeg), "-hide_banner", "-nostdin", "-y", "-v", "error",
           "-progress", "pipe:1", "-nostats", "-threads", "1", "-copyts", *PIPE_INPUT]
    for i, bitrate in enumerate(bitrates):
        cmd += ["-map", "0:a:0", f"-c:a:{i}", "aac", f"-b:a:{i}", str(bitrate), f"-ac:a:{i}", "2"]
    return cmd + ["-vn", "-sn", "-dn", "-f", "nut", out]


def _hls_args(info: SourceInfo, out_dir: str, renditions: list[Rendition], first_segment: int) -> list[str]:
    stream_map = " ".join(
        f"v:{i},a:{i},name:{r.label}" if info.has_audio else f"v:{i},name:{r.label}"
        for i, r in enumerate(renditions))
    return ["-f", "hls", "-hls_time", str(plan.SEGMENT_SECONDS), "-hls_playlist_type", "vod",
            "-hls_segment_type", "mpegts", "-hls_flags", "independent_segments",
            "-start_number", str(first_segment),
            "-hls_segment_filename", os.path.join(out_dir, "%v", layout.SEGMENT_TEMPLATE),
            "-var_stream_map", stream_map, os.path.join(out_dir, "%v", layout.MEDIA_PLAYLIST)]

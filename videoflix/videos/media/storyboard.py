"""Seek previews: small frames every few seconds, tiled into JPEG sprites, and a WebVTT index whose
cues point into them (`storyboard/000.jpg#xywh=x,y,w,h`).

The transcode makes them as one more output of its single ffmpeg run (`filter_chain`,
`output_args`); `backfill_command` makes them for an older version from its top rendition's
segments (a decode, no encode). Layout inside a version folder::

    storyboard.vtt
    storyboard/000.jpg, 001.jpg ...   (COLUMNS x ROWS tiles each)

Pure Python; no Flask, no app imports.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .ffmpeg import fit
from .layout import SPRITE_TEMPLATE, STORYBOARD_DIR, STORYBOARD_VTT, sprite_name

TILE_WIDTH = 160
# A tile fits in TILE_WIDTH x MAX_TILE_HEIGHT (portrait 9:16 is 160x284), so a sprite is never
# larger than 1600x3200 whatever the video's shape (JPEG stops at 65500 pixels a side: a 16x4096
# video once asked for 160x40960 tiles).
MAX_TILE_HEIGHT = 2 * TILE_WIDTH
COLUMNS = ROWS = 10
MAX_INTERVAL = 10   # seconds between frames for long videos (a 2 h film: 720 frames, 8 sprites)
MIN_FRAMES = 60     # shorter videos get a frame every second, or every few


@dataclass(frozen=True)
class Plan:
    interval: int    # seconds between frames
    frames: int      # how many frames ffmpeg's fps filter emits for the duration
    width: int       # of one tile
    height: int
    columns: int
    rows: int

    @property
    def per_sprite(self):
        return self.columns * self.rows


def plan(duration: float, width: int, height: int) -> Plan:
    """The storyboard of a video of that duration and display size."""
    interval = max(1, min(MAX_INTERVAL, math.ceil(duration / MIN_FRAMES)))
    # Cues every interval, the last one at least half an interval long (ffmpeg's fps filter with
    # round=up emits a frame for every multiple of the interval the video reaches, so never fewer).
    frames = max(1, math.floor(duration / interval + 0.5))
    columns = min(COLUMNS, frames)
    rows = min(ROWS, math.ceil(frames / columns))
    tile_width, tile_height = fit(TILE_WIDTH, TILE_WIDTH * height / max(width, 1), TILE_WIDTH, MAX_TILE_HEIGHT)
    return Plan(interval, frames, tile_width, tile_height, columns, rows)


def filter_chain(source: str, p: Plan, label: str = "[sb]", *, first_tile: float | None = None,
                 offset: float = 0.0) -> str:
    """A filter-graph chain from `source` (a decoded video pad) to the sprite frames at `label`.

    Without `first_tile`: every interval of the whole decode (the backfill). With it (a part of a
    chunked transcode, whose frame times are the source's plus `offset`): the first frame at or
    after `first_tile`, then the first frame of each later interval, up to the plan's last tile."""
    if first_tile is None:
        # round=up: the frame for t = k * interval is the last one at or before it, so a tile
        # shows the start of its cue (round=near would pick one up to half an interval earlier).
        pick = f"fps=1/{p.interval}:round=up"
    else:
        tile = f"floor((t-{offset:g})/{p.interval})"
        prev = f"floor((prev_selected_t-{offset:g})/{p.interval})"
        pick = (f"select='lt({tile},{p.frames})*if(isnan(prev_selected_t),"
                f"gte(t,{first_tile + offset:.6f}),gte({tile},{prev}+1))'")
    return (f"{source}{pick},scale={p.width}:{p.height}:flags=bicubic,setsar=1,"
            f"tile={p.columns}x{p.rows}{label}")


def output_args(out_dir: str, label: str = "[sb]", *, start_number: int = 0) -> list[str]:
    """The ffmpeg output writing the sprites of `label` into out_dir/storyboard/ (created here if
    missing), numbered from `start_number`."""
    os.makedirs(os.path.join(out_dir, STORYBOARD_DIR), exist_ok=True)
    return ["-map", label, "-an", "-sn", "-c:v", "mjpeg", "-q:v", "5", "-f", "image2",
            "-start_number", str(start_number), os.path.join(out_dir, STORYBOARD_DIR, SPRITE_TEMPLATE)]


def cues(p: Plan, duration: float) -> list[tuple[float, float, str]]:
    """(start, end, "storyboard/NNN.jpg#xywh=x,y,w,h") for every frame; the last ends at duration."""
    out = []
    for i in range(p.frames):
        start = i * p.interval
        end = duration if i == p.frames - 1 else min(duration, (i + 1) * p.interval)
        if end <= start:
            break
        sprite, cell = divmod(i, p.per_sprite)
        y, x = divmod(cell, p.columns)
        out.append((start, end, f"{STORYBOARD_DIR}/{sprite_name(sprite)}#xywh={x * p.width},{y * p.height},"
                                f"{p.width},{p.height}"))
    return out


def _timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def vtt_text(p: Plan, duration: float) -> str:
    """The WebVTT index; its cue URLs are relative to the .vtt's own URL."""
    return cues_text(cues(p, duration))


def cues_text(cue_list: list[tuple[float, float, str]]) -> str:
    """A WebVTT index of (start, end, url) cues."""
    lines = ["WEBVTT", ""]
    for start, end, url in cue_list:
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}", url, ""]
    return "\n".join(lines)


def write_vtt(out_dir: str, p: Plan, duration: float) -> None:
    """Write out_dir/storyboard.vtt for the sprites ffmpeg wrote; ValueError when there are none."""
    if not os.path.isfile(os.path.join(out_dir, STORYBOARD_DIR, sprite_name(0))):
        raise ValueError("ffmpeg produced no storyboard sprite")
    tmp = os.path.join(out_dir, STORYBOARD_VTT + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(vtt_text(p, duration))
    os.replace(tmp, os.path.join(out_dir, STORYBOARD_VTT))


def backfill_command(ffmpeg: str, segments: list[str], out_dir: str, p: Plan) -> list[str]:
    """One ffmpeg decoding the given MPEG-TS segments in order (local files only) into sprites."""
    return [ffmpeg, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-protocol_whitelist", "file,concat", "-f", "mpegts", "-i", "concat:" + "|".join(segments),
            "-filter_complex", filter_chain("[0:v:0]", p), *output_args(out_dir)]

"""A whole transcode in this process: plan the renditions and the parts (chunks.py), encode the
audio once when it must be (parts.encode_audio), then every part, one ffmpeg each (parts.py,
commands.py), and write the version's playlists (assemble.py).

The output folder is a version folder as layout.py describes it: the master playlist (with
measured bandwidths), each rendition's media playlist and segments, the thumbnail and the
storyboard. The workers run the same parts, spread over hosts (videoflix.videos.jobs.transcoding).

Pure Python + PyAV + subprocess; no Flask, no app imports.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import chunks, layout, parts
from .assemble import assemble
from .hls import write_text
from .plan import plan_renditions
from .probe import SourceInfo, probe

log = logging.getLogger(__name__)



@dataclass
class RenditionResult:
    label: str
    width: int
    height: int
    bandwidth: int            # peak segment bitrate (bits/s), as in the master
    average_bandwidth: int
    codecs: str
    segments: int
    copy: bool
    playlist: str             # relative to out_dir, e.g. "720p/index.m3u8"
    bytes: int


@dataclass
class TranscodeResult:
    renditions: list[RenditionResult]
    duration: float
    thumbnail: str            # file name inside out_dir
    plan: chunks.ChunkPlan
    storyboard: str | None = None   # "storyboard.vtt" when made
    info: SourceInfo | None = field(default=None, repr=False)
    commands: list[list[str]] = field(default_factory=list, repr=False)   # each part's ffmpeg

    @property
    def command(self) -> list[str]:
        """The first part's ffmpeg command line."""
        return self.commands[0]


def transcode(src: str | os.PathLike, out_dir: str | os.PathLike, *,
              info: SourceInfo | None = None,
              progress_cb: Callable[[int], None] | None = None,
              heartbeat: Callable[[], None] | None = None,
              threads: int | None = None, timeout: float | None = None,
              ffmpeg: str | None = None, storyboard: bool = True,
              chunk_seconds: float | None = None, version: str | None = None) -> TranscodeResult:
    """Transcode ``src`` to an HLS ladder in ``out_dir`` (created; removed on failure), in this
    process: every part of the plan (``chunk_seconds``: see chunks.plan_chunks; None: one part)
    one after the other, then the playlists of all of them (segment URIs with ``?v=<version>``
    when given).

    ``progress_cb(percent)`` gets 0 first and 100 last; in between a grown percent at most every
    PROGRESS_MIN_INTERVAL, a call at least every PROGRESS_KEEPALIVE. ``heartbeat()`` is called
    now and then while probing (without ``info``). Raises MediaError, or InvalidMedia for a source
    that is no acceptable video. ``storyboard=False`` leaves out the seek previews.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    src, out_dir = os.fspath(src), os.fspath(out_dir)
    if os.path.lexists(out_dir):
        raise FileExistsError(f"output directory already exists: {out_dir}")
    if info is None:
        info = probe(src, tick=heartbeat)
    elif info.path != src:
        info = dataclasses.replace(info, path=src)
    renditions = plan_renditions(info)
    cplan = chunks.plan_chunks(info, renditions, chunk_seconds, storyboard=storyboard)
    os.makedirs(out_dir)
    try:
        assembly, results = _run_parts(info, cplan, renditions, out_dir, progress_cb=progress_cb, threads=threads,
                                       ffmpeg=ffmpeg, deadline=deadline, version=version)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    log.info("transcoded %s in %.1fs (%d parts): %s", src, time.monotonic() - started, len(cplan.chunks),
             ", ".join(f"{r.label}{'(copy)' if r.copy else ''}" for r in renditions))
    return TranscodeResult(renditions=[RenditionResult(**r, playlist=layout.media_playlist(r["label"]))
                                       for r in assembly.renditions],
                           duration=info.duration, thumbnail=layout.THUMBNAIL, plan=cplan, info=info,
                           storyboard=layout.STORYBOARD_VTT if layout.STORYBOARD_VTT in assembly.files else None,
                           commands=[r.command for r in results])


def _run_parts(info, cplan, renditions, out_dir, *, progress_cb, threads, ffmpeg, deadline, version):
    """Every part in order into `out_dir`, the thumbnail, then the version's text files."""
    if progress_cb is not None:
        progress_cb(0)
    pieces = os.path.join(out_dir, ".audio")
    if cplan.audio == chunks.AUDIO_ENCODE:
        parts.encode_audio(info, info.path, cplan, pieces, lambda number, path: None, ffmpeg=ffmpeg,
                           deadline=deadline)
    results, done = [], 0.0
    for chunk in cplan.chunks:
        folder = os.path.join(out_dir, f".part-{chunk.number}")
        piece = None
        if cplan.audio == chunks.AUDIO_ENCODE:
            piece = os.path.join(pieces, parts.audio_piece_name(chunk.number))
        report = None if progress_cb is None else _percent_of(progress_cb, info.duration, done)
        results.append(parts.encode_part(info, info.path, cplan, chunk, renditions, folder, audio_piece=piece,
                                         threads=threads, ffmpeg=ffmpeg, deadline=deadline, progress_cb=report))
        merge_folder(folder, out_dir)
        done += (chunk.end if chunk.end is not None else info.duration) - chunk.start
    shutil.rmtree(pieces, ignore_errors=True)
    parts.make_thumbnail(info, info.path, os.path.join(out_dir, layout.THUMBNAIL), ffmpeg=ffmpeg, deadline=deadline)
    assembly = assemble(info, cplan, renditions, results, version)
    for name, text in assembly.files.items():
        write_text(os.path.join(out_dir, name), text)
    if progress_cb is not None:
        progress_cb(100)
    return assembly, results


def _percent_of(progress_cb, duration, done):
    last = [0]

    def report(seconds):
        percent = min(99, int((done + seconds) * 100 / duration)) if duration > 0 else 0
        last[0] = max(last[0], percent)
        progress_cb(last[0])

    return report


def merge_folder(source: str, dest: str) -> None:
    """Move every file below `source` to the same place below `dest`, then remove `source`."""
    for folder, _, names in os.walk(source):
        target = os.path.join(dest, os.path.relpath(folder, source))
        os.makedirs(target, exist_ok=True)
        for name in names:
            os.replace(os.path.join(folder, name), os.path.join(target, name))
    shutil.rmtree(source, ignore_errors=True)

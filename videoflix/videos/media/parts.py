"""Running the work of a chunked transcode: one part (every rendition's segments for its range,
and its storyboard sprites), the one continuous audio encode (cut into a piece per part), the
thumbnail. Each runs anywhere, alone: a worker of any host takes any of them.

Pure Python + PyAV + subprocess; no Flask, no app imports.
"""
from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import m3u8

from . import chunks, feed, layout, plan
from .commands import audio_command, build_command
from .errors import MediaError
from .ffmpeg import ffmpeg_exe, fit, run_ffmpeg
from .hls import segment_codecs, segment_file
from .plan import Rendition
from .probe import SourceInfo

PROGRESS_MIN_INTERVAL = 1.0  # seconds between progress callbacks with a percent that grew
PROGRESS_KEEPALIVE = 5.0  # seconds: a callback at least this often while ffmpeg runs
THUMB_MAX_WIDTH = 640
THUMB_MAX_HEIGHT = 1280  # a 9:16 portrait's thumbnail is 640x1138; taller shapes are bounded too


@dataclass
class PartResult:
    """What one part wrote into its folder: per rendition, its segments in order as
    [file name, seconds, bytes]; the storyboard frame times it drew (into its sprites, in order);
    the CODECS of each rendition (read from its first segment)."""

    segments: dict[str, list[list]] = field(default_factory=dict)
    tiles: list[float] = field(default_factory=list)
    codecs: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    command: list[str] = field(default_factory=list, repr=False)   # not kept on the row

    def to_dict(self) -> dict:
        return {"segments": self.segments, "tiles": self.tiles, "codecs": self.codecs, "frames": self.frames}

    @classmethod
    def from_dict(cls, data: dict) -> PartResult:
        return cls(data.get("segments", {}), data.get("tiles", []), data.get("codecs", {}), data.get("frames", 0))


def part_range(info: SourceInfo, cplan: chunks.ChunkPlan, chunk: chunks.Chunk, *, video=True, audio=None) -> feed.Range:
    """What the feed of a part sends: its video (and the source's audio when it is copied)."""
    return feed.Range(chunk.start, chunk.end, trim=not cplan.on_keyframes, video=video,
                      audio=cplan.audio == chunks.AUDIO_COPY if audio is None else audio,
                      margin=info.max_keyframe_gap + 1.0)


def encode_part(info: SourceInfo, source, cplan: chunks.ChunkPlan, chunk: chunks.Chunk,
                renditions: list[Rendition], out_dir: str, *, audio_piece: str | None = None,
                threads: int | None = None, ffmpeg: str | None = None, deadline: float | None = None,
                progress_cb: Callable[[float], None] | None = None) -> PartResult:
    """Encode one part into `out_dir` (created): <label>/segNNN.ts numbered from the part's first
    segment, storyboard/NNN.jpg from its first sprite. `source`: a path or a seekable binary
    file object. `progress_cb(seconds)`: how much of the part is written, now and then (at least
    every PROGRESS_KEEPALIVE seconds: the caller's heartbeat). MediaError when it fails."""
    os.makedirs(out_dir, exist_ok=True)
    cmd = build_command(info, cplan, chunk, out_dir, renditions, threads=threads, ffmpeg=ffmpeg,
                        audio_piece=audio_piece)
    length = (chunk.end if chunk.end is not None else info.duration) - chunk.start
    fed = feed.FeedResult()

    def send(pipe):
        fed.__dict__.update(feed.feed(info, source, part_range(info, cplan, chunk), pipe).__dict__)

    seconds = functools.partial(written_seconds, out_dir, renditions[0].label)
    run_ffmpeg(cmd, duration=max(length, 0.001), deadline=deadline, feed=send, what="ffmpeg part",
               min_interval=PROGRESS_MIN_INTERVAL, keepalive=PROGRESS_KEEPALIVE, position=seconds,
               progress_cb=None if progress_cb is None else (lambda pct: progress_cb(pct * length / 100)))
    return _part_result(info, chunk, renditions, out_dir, fed, cmd)


def _part_result(info, chunk, renditions, out_dir, fed, cmd) -> PartResult:
    result = PartResult(frames=fed.frames, command=cmd)
    for r in renditions:
        path = os.path.join(out_dir, layout.media_playlist(r.label))
        if not os.path.exists(path):
            raise MediaError(f"ffmpeg produced no playlist for {r.label}", transient=False)
        playlist = m3u8.load(path)
        folder = os.path.join(out_dir, r.label)
        result.segments[r.label] = [
            [segment_file(s.uri), round(float(s.duration or 0), 6),
             os.path.getsize(os.path.join(folder, segment_file(s.uri)))] for s in playlist.segments]
        if not result.segments[r.label]:
            raise MediaError(f"ffmpeg produced no segments for {r.label}", transient=False)
        os.unlink(path)  # the version's playlists are ours (hls.event_playlist)
        if chunk.number == 0:
            first = os.path.join(folder, result.segments[r.label][0][0])
            result.codecs[r.label] = segment_codecs(first, info.has_audio)
    last = fed.last_frame
    result.tiles = [t for t in chunk.tiles if last is not None and t <= last + 1e-6]
    return result


def written_seconds(out_dir: str, label: str) -> float:
    """About how much of a rendition ffmpeg has written: every segment file but the newest (the
    one being written) is complete, and segments cut every SEGMENT_SECONDS. (The media playlists
    of a multi-variant run are only written at the end, so they cannot tell.)"""
    try:
        names = os.listdir(os.path.join(out_dir, label))
    except OSError:
        return 0.0
    done = sum(1 for name in names if layout.SEGMENT_RE.fullmatch(name)) - 1
    return max(0, done) * plan.SEGMENT_SECONDS


def audio_piece_name(number: int) -> str:
    return f"{number:05d}.nut"


def encode_audio(info: SourceInfo, source, cplan: chunks.ChunkPlan, out_dir: str,
                 on_piece: Callable[[int, str], None], *, ffmpeg: str | None = None,
                 deadline: float | None = None, progress_cb: Callable[[int], None] | None = None) -> None:
    """The one AAC encode of the whole audio (chunks.AUDIO_ENCODE), cut by packet into one piece
    per part (out_dir/NNNNN.nut); `on_piece(number, path)` is called, in order, as soon as each
    piece is complete (from another thread), so parts can start while the encode goes on."""
    os.makedirs(out_dir, exist_ok=True)
    read_fd, write_fd = os.pipe()
    cmd = _audio_cmd(info, cplan, write_fd, ffmpeg)
    splitter = _AudioSplitter(cplan, out_dir, on_piece, os.fdopen(read_fd, "rb"))
    splitter.start()

    def send(pipe):
        feed.feed(info, source, feed.Range(0.0, None, video=False, audio=True), pipe)

    try:
        run_ffmpeg(cmd, duration=max(info.duration, 0.001), deadline=deadline, feed=send,
                   what="ffmpeg audio", pass_fds=(write_fd,), progress_cb=progress_cb,
                   min_interval=PROGRESS_MIN_INTERVAL, keepalive=PROGRESS_KEEPALIVE)
    finally:
        os.close(write_fd)
        splitter.join()
    if splitter.error is not None:
        raise splitter.error if isinstance(splitter.error, MediaError) else MediaError(
            f"Splitting the audio failed: {splitter.error}", transient=True)


def _audio_cmd(info, cplan, write_fd, ffmpeg):
    return audio_command(info, cplan.audio_bitrates, f"pipe:{write_fd}", ffmpeg=ffmpeg)


class _AudioSplitter(threading.Thread):
    """Reads the encoder's NUT output and writes each packet into the piece of the part its time
    falls in; a piece is complete once every stream has passed the part's end."""

    def __init__(self, cplan, out_dir, on_piece, stream):
        super().__init__(name="videoflix-audio-split", daemon=True)
        self.cplan, self.out_dir, self.on_piece, self.stream = cplan, out_dir, on_piece, stream
        self.error: BaseException | None = None

    def run(self):
        try:
            self._split()
        except BaseException as error:  # noqa: BLE001 - reported by encode_audio
            self.error = error
        finally:
            self.stream.close()

    def _split(self):
        cuts = self.cplan.boundaries()
        with av.open(self.stream, mode="r", format="nut") as encoded:
            streams = list(encoded.streams.audio)
            pieces, done = {}, 0
            seen = dict.fromkeys(streams, -1e18)
            for packet in encoded.demux(*streams):
                if packet.pts is None:
                    continue
                t = float(packet.pts * packet.time_base) - chunks.TIMESTAMP_OFFSET
                seen[packet.stream] = t
                number = self.cplan.chunk_of(t)
                self._piece(pieces, number, streams).mux_packet(packet)
                while done < len(cuts) and min(seen.values()) >= cuts[done]:
                    done = self._close(pieces, done, streams)
            while done <= len(cuts):
                done = self._close(pieces, done, streams)

    def _piece(self, pieces, number, streams):
        if number not in pieces:
            pieces[number] = _Piece(os.path.join(self.out_dir, audio_piece_name(number)), streams)
        return pieces[number]

    def _close(self, pieces, number, streams):
        self._piece(pieces, number, streams).close()
        self.on_piece(number, pieces[number].path)
        return number + 1


class _Piece:
    def __init__(self, path, streams):
        self.path = path
        self.out = av.open(path + ".tmp", mode="w", format="nut")
        self.streams = {s: self.out.add_stream_from_template(s) for s in streams}

    def mux_packet(self, packet):
        source = packet.stream
        packet.stream = self.streams[source]
        self.out.mux(packet)
        packet.stream = source

    def close(self):
        if self.out is not None:
            self.out.close()
            self.out = None
            os.replace(self.path + ".tmp", self.path)


def thumbnail_size(info: SourceInfo) -> tuple[int, int]:
    """The thumbnail's size: the picture's, fitted (never upscaled) in THUMB_MAX_WIDTH x THUMB_MAX_HEIGHT."""
    return fit(info.width, info.height, THUMB_MAX_WIDTH, THUMB_MAX_HEIGHT)


def make_thumbnail(info: SourceInfo, source, dest: str, *, ffmpeg: str | None = None,
                   deadline: float | None = None) -> None:
    """A representative frame about 10% in, as a JPEG at `dest` (reads only that part of the
    source)."""
    tw, th = thumbnail_size(info)
    fps = max(info.fps, 1.0)
    n = max(1, min(24, int(info.fps or 24)))
    at = max(0.0, min(info.duration * 0.1, info.duration - (n / fps) - 0.1))
    pick = f"trim=start={at + chunks.TIMESTAMP_OFFSET:.6f}," if at > 0 else ""
    cmd = [ffmpeg_exe(ffmpeg), "-hide_banner", "-nostdin", "-y", "-v", "error", "-copyts",
           "-protocol_whitelist", "pipe", "-f", "nut", "-i", "pipe:0", "-map", "0:v:0", "-an", "-sn",
           "-vf", f"{pick}scale={tw}:{th}:flags=bicubic,setsar=1,thumbnail=n={n}",
           "-frames:v", "1", "-q:v", "3", "-f", "image2", "-update", "1", dest]
    part = feed.Range(at, at + (n + 2) / fps + 1.0, trim=True, margin=info.max_keyframe_gap + 1.0)
    run_ffmpeg(cmd, duration=0, progress_cb=None, deadline=deadline, what="ffmpeg thumbnail",
               feed=lambda pipe: feed.feed(info, source, part, pipe))
    if not os.path.exists(dest):
        raise MediaError("ffmpeg produced no thumbnail", transient=False)

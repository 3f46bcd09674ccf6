"""Storyboards for versions published before the transcode made them (`flask transcode
--storyboards`): one ffmpeg decodes the top rendition's segments (no encode, the source is not
read) into sprites; the index is written last, so a storyboard appears complete or not at all."""
import logging
import os

import m3u8
from flask import current_app

from videoflix.videos.jobs import state
from videoflix.videos.media import hls, layout, storyboard
from videoflix.videos.media.errors import MediaError
from videoflix.videos.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from videoflix.videos.storage.versions import VersionFiles

log = logging.getLogger(__name__)


class PreviewFailed(Exception):
    """The storyboard could not be made; the message says why."""


def has_storyboard(video):
    """Whether the row records a storyboard for its current version (no store request)."""
    return bool(video.hls_dir and video.storyboard)


def add_storyboard(video):
    """Give the ready video's current version a storyboard (replacing one it has). Raises
    PreviewFailed when it has no version or ffmpeg fails."""
    if not video.hls_dir or not video.renditions:
        raise PreviewFailed(f"Video {video.id} has no published version.")
    top = video.renditions[-1]
    files = VersionFiles(video.hls_dir)
    text = files.read(layout.media_playlist(top["label"]))
    playlist = m3u8.loads(text)
    segments = [f"{top['label']}/{hls.segment_file(s.uri)}" for s in playlist.segments]
    duration = layout.playlist_seconds(text)
    plan = storyboard.plan(duration, top["width"], top["height"])
    with files.local_files(segments) as local_segments, files.scratch() as work:
        sprites = os.path.join(work, layout.STORYBOARD_DIR)
        os.mkdir(sprites)
        try:
            binary = ffmpeg_exe(current_app.config["FFMPEG_BINARY"])
            run_ffmpeg(storyboard.backfill_command(binary, local_segments, work, plan), duration=duration,
                       progress_cb=None, deadline=None, what="ffmpeg storyboard")
        except MediaError as error:
            raise PreviewFailed(f"Video {video.id}: {error}") from error
        if not os.listdir(sprites):
            raise PreviewFailed(f"Video {video.id}: ffmpeg produced no storyboard sprite")
        files.put_folder(layout.STORYBOARD_DIR, sprites)
        files.write(layout.STORYBOARD_VTT, storyboard.vtt_text(plan, duration))
    if not state.set_storyboard(video.id, video.hls_dir, f"{video.hls_dir}/{layout.STORYBOARD_VTT}"):
        raise PreviewFailed(f"Video {video.id} was re-transcoded meanwhile; its new version has its own storyboard.")
    log.info("Video %s: storyboard added (%d frames)", video.id, plan.frames)

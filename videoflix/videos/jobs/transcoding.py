"""The transcoding job: claim the video, run ffmpeg into a work folder, publish, switch the row.

A job never leaves a half-written or mixed rendition set where viewers can see it: ffmpeg writes
into a work folder (MEDIA_ROOT/work/<job>, or with MEDIA_STORAGE=s3 the worker's own scratch
folder, next to its fetched copy of the source), which becomes hls/<id>/<version> only when
complete (a rename, or an upload under that new version's keys; its playlists name their segments
`segNNN.ts?v=<version>`, so cached segments of two versions never mix). The row switches to that
version in one commit before every other version is deleted; the scratch folder always goes (a
killed worker's at the next start of a worker process: clean_scratch).
"""
import dataclasses
import logging
import time

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from videoflix.extensions import db
from videoflix.videos.jobs import state, subtitle_tracks
from videoflix.videos.media import hls
from videoflix.videos.media.errors import MediaError
from videoflix.videos.media.probe import SourceInfo
from videoflix.videos.media.transcode import transcode
from videoflix.videos.models import Video
from videoflix.videos.storage.backends import storage_fault
from videoflix.videos.storage.keys import (
    new_version,
    publish,
    remove_other_versions,
    remove_version,
    remove_work,
    source_path,
    work_path,
)

log = logging.getLogger(__name__)
# run_transcode's answer when the media store was away (bucket unreachable, disk full): the video
# is queued again, its job not failed; the task puts it on the queue again later (tasks.py).
STORE_AWAY = "store-away"
STORE_AWAY_MESSAGES = {
    True: "No space left on the media disk; the transcode will run again.",
    False: "The media store could not be reached; the transcode will run again once it is back.",
}


class _ProgressWriter:
    """The progress callback of transcode() (which already limits how often it calls): writes a
    percent that grew, and otherwise refreshes the claim's heartbeat every heartbeat_interval();
    `heartbeat` is transcode()'s callback while it probes or measures."""

    def __init__(self, video_id, token):
        self.video_id, self.token = video_id, token
        self.last, self.at = 0, time.monotonic()
        self.interval = state.heartbeat_interval().total_seconds()

    def __call__(self, percent):
        if self.last < percent < 100:  # 100 is written by state.succeed, with the new version
            state.progress(self.video_id, self.token, percent)  # ClaimLost stops ffmpeg
            self.last = percent
            self.at = time.monotonic()
        else:
            self.heartbeat()

    def heartbeat(self):
        now = time.monotonic()
        if now - self.at >= self.interval:
            state.heartbeat(self.video_id, self.token)  # ClaimLost stops the job
            self.at = now


def ffmpeg_threads():
    """FFMPEG_THREADS, else None: transcode() then uses one thread per available core."""
    return current_app.config["FFMPEG_THREADS"] or None


def is_transient(error):
    """Whether a failure outside ffmpeg may pass on a retry: the disk, the media store or the
    database connection (a lost connection, a server restart), not a bug or a Huey timeout
    (which would recur). A missing object (storage's NotStored) is not transient."""
    if storage_fault(error) is not None:
        return True
    if isinstance(error, (OSError, OperationalError, InterfaceError)):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def run_transcode(video_id, *, retries_left=0):
    """Transcode one queued video in this process. Returns the final status, or None when there was
    nothing to do (not queued, or another worker holds it). Raises after a transient failure while
    `retries_left` (the row is then queued again for the retry). Returns STORE_AWAY when the media
    store was away (the bucket unreachable, the disk full): the row is queued again whatever
    `retries_left`, never failed for that, and the caller runs it again later.

    Whatever fails, the claim is released (transient) or the job failed, and the work folder is
    removed; a version folder that the row does not point at is removed too.
    """
    token = state.claim(video_id)
    if token is None:
        log.info("Video %s: not queued or already claimed; nothing to do.", video_id)
        return None
    video = db.session.get(Video, video_id)
    if video is None:  # deleted right after the claim
        return None
    job = state.parse_claim(token)[2]
    work = work_path(job)
    writer = _ProgressWriter(video_id, token)
    try:
        source = source_path(video, job)
        result = transcode(
            source, work, info=_stored_probe(video, source), progress_cb=writer, heartbeat=writer.heartbeat,
            threads=ffmpeg_threads(), timeout=current_app.config["TRANSCODE_TIMEOUT"],
            ffmpeg=current_app.config["FFMPEG_BINARY"],
        )
        return _publish(video_id, token, work, result)
    except state.ClaimLost:
        log.warning("Video %s: claim lost during the transcode; output discarded.", video_id)
        return None
    except Exception as error:
        if (fault := storage_fault(error)) is not None:
            remove_work(job)  # first: on a full disk, the release below needs the room
            return _store_away(video_id, token, fault, error)
        return _failed_unless_media(video_id, token, error, retries_left)
    except BaseException:  # the worker is stopping (SIGINT): free the video for the re-queued task
        db.session.rollback()
        state.release(video_id, token, "The worker stopped during the transcode; it will run again.")
        raise
    finally:
        remove_work(job)  # the scratch copy, and the output unless it was renamed into place


def _failed_unless_media(video_id, token, error, retries_left):
    """_failed for an error that is not the store's: a MediaError says itself whether it is
    transient (invalid input never is: failed at once); anything else (the database gone, Huey's
    timeout, a bug...) is judged by is_transient."""
    if isinstance(error, MediaError):
        return _failed(video_id, token, error.message, transient=error.transient, retries_left=retries_left,
                       error=error)
    log.error("Video %s: transcode failed", video_id, exc_info=error)
    return _failed(video_id, token, f"Transcoding failed: {error}", transient=is_transient(error),
                   retries_left=retries_left, error=error)


def _store_away(video_id, token, fault, error):
    """Queue the video again (not failed, whatever the retries left): the store was away. Staff
    read a sentence, never the SQL or the botocore error behind it (that goes to the log)."""
    log.warning("Video %s: media store away (%s: %s); queued again.", video_id, type(error).__name__,
                error.reason() if hasattr(error, "reason") else error)
    db.session.rollback()
    try:
        state.release(video_id, token, STORE_AWAY_MESSAGES[fault.full])
    except Exception:  # the database is on the full disk too: recovery re-queues the claim
        log.exception("Video %s: could not release its claim; the recovery loop will.", video_id)
        db.session.rollback()
    return STORE_AWAY


def _stored_probe(video, source):
    """The upload's probe from the row (transcode() then reads the file only with ffmpeg, as that
    container); None for an older row, which transcode() probes again (same allow-list)."""
    if not video.source_info:
        return None
    return SourceInfo.from_dict(video.source_info, source)


def _failed(video_id, token, message, *, transient, retries_left, error):
    db.session.rollback()  # a failed statement may have left the transaction unusable (PostgreSQL)
    if transient and retries_left > 0:
        log.warning("Video %s: transient failure, %d retries left: %s", video_id, retries_left, message)
        state.release(video_id, token, f"{message} (retrying)")
        raise error
    state.fail(video_id, token, message)
    return "failed"


def _publish(video_id, token, work, result):
    """Move the finished work folder into place and switch the row to it; then only that version
    remains in hls/<id>/. Raises ClaimLost (output discarded) when the claim was lost."""
    version = new_version()
    for rendition in result.renditions:
        hls.version_segment_uris(work / rendition.playlist, version)
    hls_dir = publish(work, video_id, version)
    try:
        subtitle_tracks.publish_tracks(video_id, hls_dir)  # a new version keeps the video's subtitle tracks
        state.succeed(
            video_id, token, hls_dir,
            renditions=[_rendition(r) for r in result.renditions],
            thumbnail=f"{hls_dir}/{result.thumbnail}", duration=result.duration,
            storyboard=f"{hls_dir}/{result.storyboard}" if result.storyboard else None,
            width=result.info.width if result.info else None, height=result.info.height if result.info else None,
        )
    except BaseException:
        _discard_unless_current(video_id, hls_dir)
        raise
    remove_other_versions(hls_dir)
    log.info("Video %s ready: %s (%s)", video_id, hls_dir, ", ".join(r.label for r in result.renditions))
    return "ready"


def _discard_unless_current(video_id, hls_dir):
    """Remove a published version the row does not point at (its switch did not commit). When the
    database cannot tell, keep it: the next successful transcode removes it if unused."""
    try:
        db.session.rollback()
        current = db.session.execute(select(Video.hls_dir).where(Video.id == video_id)).scalar_one_or_none()
    except SQLAlchemyError:
        log.warning("Video %s: could not check whether %s is in use; left in place.", video_id, hls_dir)
        return
    if current != hls_dir:
        remove_version(hls_dir)


def _rendition(result):
    entry = dataclasses.asdict(result)
    entry.pop("playlist", None)  # always "<label>/index.m3u8"
    return entry

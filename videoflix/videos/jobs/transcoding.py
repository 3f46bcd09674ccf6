"""The transcoding job, in parts any worker of any host takes.

1. `run_transcode` (the planner, here): claims the queued video, plans its renditions and parts
   (media.chunks; TRANSCODE_CHUNK_SECONDS), and hands the video over to the job (jobs.part_state):
   one row per part, plus one for the continuous audio encode when the audio must be encoded.
   The caller (tasks.py) then puts one task per row on the queue.
2. jobs.parts.run_part: one part (or the audio) in a worker of any host; its files go into the
   job's version folder hls/<id>/<job>/ (nobody sees them before the row names that version and
   a playlist lists them), and the part's row is done.
3. jobs.publishing then lists what is stored: the first version grows (PUBLISH=playable) and the
   last part switches the row to the finished version.

A crash mid-part leaves the part's row running with a dead claim: the recovery loop queues it
again (only that part). A permanent failure of any part fails the job (a growing version is
withdrawn); a transient one retries that part only.
"""
import logging

from flask import current_app
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from videoflix.extensions import db
from videoflix.videos.jobs import part_state, state
from videoflix.videos.media import chunks
from videoflix.videos.media.errors import MediaError
from videoflix.videos.media.plan import plan_renditions
from videoflix.videos.media.probe import SourceInfo, probe
from videoflix.videos.models import Video
from videoflix.videos.models.transcode_chunk import AUDIO
from videoflix.videos.storage.backends import storage_fault
from videoflix.videos.storage.keys import new_version, remove_work, source_path

log = logging.getLogger(__name__)
# run_transcode's and run_part's answer when the media store was away (bucket unreachable, disk
# full): the work is queued again, never failed for that; the task puts it on the queue again later.
STORE_AWAY = "store-away"
STORE_AWAY_MESSAGES = {
    True: "No space left on the media disk; the transcode will run again.",
    False: "The media store could not be reached; the transcode will run again once it is back.",
}
# run_part's (and jobs.parts.publish's) answer when publishing met the store away or a transient
# error: the parts stay stored and done; the caller puts a publish_job on the queue, later.
PUBLISH_LATER = "publish-later"
# What staff read meanwhile, when it was the store (a full disk or not).
PUBLISH_LATER_MESSAGES = {
    True: "No space left on the media disk; the video is published once there is room.",
    False: "The media store could not be reached; the video is published once it is back.",
}


def ffmpeg_threads():
    """FFMPEG_THREADS, else None: ffmpeg then uses one thread per available core."""
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


# ---------------------------------------------------------------- 1. planning


def run_transcode(video_id, *, retries_left=0):
    """Plan the transcode of one queued video and hand it to its parts. Returns the list of the
    rows' numbers to queue (the audio first), None when there was nothing to do (not queued, or
    another worker holds it), "failed", or STORE_AWAY. Raises after a transient failure while
    `retries_left` (the video is then queued again for the retry)."""
    token = state.claim(video_id)
    if token is None:
        log.info("Video %s: not queued or already claimed; nothing to do.", video_id)
        return None
    video = db.session.get(Video, video_id)
    if video is None:  # deleted right after the claim
        return None
    job = state.parse_claim(token)[2]
    try:
        info = _source_info(video, job)
        renditions = plan_renditions(info)
        config = current_app.config
        cplan = chunks.plan_chunks(info, renditions, config["TRANSCODE_CHUNK_SECONDS"] or None)
        version = new_version()
        job_plan = {"job": version, "plan": cplan.to_dict(), "info": info.to_dict(),
                    "renditions": [r.__dict__ for r in renditions],
                    "progressive": config["PUBLISH"] == "playable" and not video.hls_dir}
        rows = [(c.number, c.start, c.end) for c in cplan.chunks]
        if cplan.audio == chunks.AUDIO_ENCODE:
            rows.insert(0, (AUDIO, 0.0, None))
        part_state.start_parts(video_id, token, version, job_plan, rows)
        log.info("Video %s: %d parts planned (job %s, audio %s).", video_id, len(cplan.chunks), version, cplan.audio)
        return version, [number for number, _, _ in rows]
    except state.ClaimLost:
        return None
    except Exception as error:
        if (fault := storage_fault(error)) is not None:
            return store_away(lambda message: state.release(video_id, token, message), video_id, fault, error)
        return _failed_unless_media(video_id, token, error, retries_left)
    except BaseException:
        db.session.rollback()
        state.release(video_id, token, "The worker stopped during the transcode; it will run again.")
        raise
    finally:
        remove_work(job)


def _source_info(video, job):
    """The upload's probe from the row (the parts then read the source only as that container); a
    row older than it is probed again (the source fetched for it in s3 mode)."""
    if video.source_info:
        return SourceInfo.from_dict(video.source_info, video.source_file)
    source = source_path(video, job)
    info = probe(source)
    video.source_info = info.to_dict()
    db.session.commit()
    return info


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


def _failed(video_id, token, message, *, transient, retries_left, error):
    db.session.rollback()  # a failed statement may have left the transaction unusable (PostgreSQL)
    if transient and retries_left > 0:
        log.warning("Video %s: transient failure, %d retries left: %s", video_id, retries_left, message)
        state.release(video_id, token, f"{message} (retrying)")
        raise error
    state.fail(video_id, token, message)
    return "failed"


def store_away(release, video_id, fault, error):
    """Queue the work again (not failed, whatever the retries left): the store was away. Staff
    read a sentence, never the SQL or the botocore error behind it (that goes to the log)."""
    log.warning("Video %s: media store away (%s: %s); queued again.", video_id, type(error).__name__,
                error.reason() if hasattr(error, "reason") else error)
    db.session.rollback()
    try:
        release(STORE_AWAY_MESSAGES[fault.full])
    except Exception:  # the database is on the full disk too: recovery re-queues the claim
        log.exception("Video %s: could not release its claim; the recovery loop will.", video_id)
        db.session.rollback()
    return STORE_AWAY

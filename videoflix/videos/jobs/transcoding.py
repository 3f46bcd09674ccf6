"""The transcoding job, in parts any worker of any host takes.

1. `run_transcode` (the planner): claims the queued video, plans its renditions and parts
   (media.chunks; TRANSCODE_CHUNK_SECONDS), and hands the video over to the job (jobs.part_state):
   one row per part, plus one for the continuous audio encode when the audio must be encoded.
   The caller (tasks.py) then puts one task per row on the queue.
2. `run_part`: one part (or the audio) in this process. The part's ffmpeg reads only its range
   of the source (the stored file, or the bucket object by ranges) and writes into scratch
   space; its files then go into the job's version folder hls/<id>/<job>/ (nobody sees them
   before the row names that version and a playlist lists them), and the part's row is done.
3. jobs.publishing then lists what is stored: the first version grows (PUBLISH=playable) and the
   last part switches the row to the finished version.

A crash mid-part leaves the part's row running with a dead claim: the recovery loop queues it
again (only that part). A permanent failure of any part fails the job (a growing version is
withdrawn); a transient one retries that part only.
"""
import logging
import time

from flask import current_app
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from videoflix.extensions import db
from videoflix.videos.jobs import part_state, publishing, state
from videoflix.videos.media import chunks, parts
from videoflix.videos.media.errors import MediaError
from videoflix.videos.media.plan import Rendition, plan_renditions
from videoflix.videos.media.probe import SourceInfo, probe
from videoflix.videos.models import Video
from videoflix.videos.models.transcode_chunk import AUDIO
from videoflix.videos.storage.backends import NotStored, storage_fault
from videoflix.videos.storage.keys import (
    job_file,
    new_version,
    put_job_file,
    put_version_files,
    remove_job,
    remove_version,
    remove_work,
    source_file,
    source_path,
    work_path,
)

log = logging.getLogger(__name__)
# run_transcode's and run_part's answer when the media store was away (bucket unreachable, disk
# full): the work is queued again, never failed for that; the task puts it on the queue again later.
STORE_AWAY = "store-away"
STORE_AWAY_MESSAGES = {
    True: "No space left on the media disk; the transcode will run again.",
    False: "The media store could not be reached; the transcode will run again once it is back.",
}
# run_part's answer when the whole job was queued again (its publishing met the store away).
JOB_AWAY = "job-away"
# How often a part waiting for its piece of the audio looks again (seconds).
AUDIO_POLL = 0.2


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
            return _store_away(lambda message: state.release(video_id, token, message), video_id, fault, error)
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


def _store_away(release, video_id, fault, error):
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


# ---------------------------------------------------------------- 2. one part


class _PartProgress:
    """A part's progress callback (seconds of it written): a position that grew, else a heartbeat
    every heartbeat_interval(). ClaimLost stops ffmpeg."""

    def __init__(self, video_id, row_id, token):
        self.video_id, self.row_id, self.token = video_id, row_id, token
        self.last, self.at = 0.0, time.monotonic()
        self.interval = state.heartbeat_interval().total_seconds()

    def __call__(self, seconds):
        if seconds > self.last:
            part_state.part_progress(self.row_id, self.token, seconds, self.video_id)
            self.last, self.at = seconds, time.monotonic()
        else:
            self.heartbeat()

    def heartbeat(self):
        if time.monotonic() - self.at >= self.interval:
            part_state.part_heartbeat(self.row_id, self.token)
            self.at = time.monotonic()


def run_part(video_id, job, number, *, retries_left=0):
    """Do one part (or the audio, AUDIO) of the video's job in this process. Returns "done",
    None (nothing to do), "failed" (the job failed for good) or STORE_AWAY; raises after a
    transient failure while `retries_left`."""
    claimed = part_state.claim_part(video_id, job, number)
    if claimed is None:
        log.info("Video %s part %s of %s: not queued any more; nothing to do.", video_id, number, job)
        return None
    row_id, token = claimed
    video = db.session.get(Video, video_id)
    name = f"{job}-{number}-{token.rsplit(':', 2)[1]}"
    work = work_path(name)
    work.mkdir(parents=True, exist_ok=True)
    progress = _PartProgress(video_id, row_id, token)
    try:
        if number == AUDIO:
            _encode_audio(video, job, work, progress)
            result = {}
        else:
            result = _encode_part(video, job, number, work, progress)
        part_state.finish_part(row_id, token, result, video_id)
    except state.ClaimLost:
        log.warning("Video %s part %s: claim lost; its output discarded.", video_id, number)
        _discard_if_job_over(video_id, job)
        return None
    except Exception as error:
        remove_work(name)
        return _part_failed(video_id, job, row_id, token, error, retries_left)
    except BaseException:
        db.session.rollback()
        part_state.release_part(row_id, token, "The worker stopped during this part; it will run again.")
        raise
    finally:
        remove_work(name)
    return publish(video_id, job)


def publish(video_id, job):
    """publishing.publish_parts after a part is stored. If publishing fails, the job is over: the
    store away or a transient error queue the video again (JOB_AWAY: the caller puts its task on
    the queue, later), anything else fails it (a growing version withdrawn, an old one kept)."""
    token = state.chunked_token(job)
    try:
        publishing.publish_parts(video_id, job)
    except Exception as error:
        db.session.rollback()
        if (fault := storage_fault(error)) is not None:
            _store_away(lambda message: state.release(video_id, token, message), video_id, fault, error)
            return JOB_AWAY
        log.error("Video %s: publishing its parts failed", video_id, exc_info=error)
        if is_transient(error):
            state.release(video_id, token, f"Transcoding failed: {error} (retrying)")
            return JOB_AWAY
        state.fail(video_id, token, f"Transcoding failed: {error}")
        return "failed"
    except BaseException:
        db.session.rollback()
        state.release(video_id, token, "The worker stopped while publishing; the transcode will run again.")
        raise
    return "done"


def run_all_here(video_id, *, retries_left=0):
    """The whole job in this process: plan, then every part in order (what the workers do, one
    task each). The video's status at the end, STORE_AWAY / JOB_AWAY, or None (nothing to do)."""
    outcome = run_transcode(video_id, retries_left=retries_left)
    if not isinstance(outcome, tuple):
        return outcome
    job, numbers = outcome
    for number in numbers:
        done = run_part(video_id, job, number, retries_left=retries_left)
        if done in (STORE_AWAY, JOB_AWAY, "failed"):
            return done
    db.session.rollback()
    video = db.session.get(Video, video_id)
    return None if video is None else video.status


def _discard_if_job_over(video_id, job):
    """Remove the job's version folder when its job is over and the row does not name it (the
    video deleted, re-queued by force): a part stored after that leaves nothing behind."""
    db.session.rollback()
    video = db.session.get(Video, video_id)
    if video is None or (video.claimed_by != state.chunked_token(job) and video.hls_dir != f"{int(video_id)}/{job}"):
        remove_version(f"{int(video_id)}/{job}")
        remove_job(video_id, job)


def _plan_of(video, job):
    data = video.job_plan or {}
    if data.get("job") != job:
        raise state.ClaimLost(video.id)
    info = SourceInfo.from_dict(data["info"], video.source_file)
    return info, chunks.ChunkPlan.from_dict(data["plan"]), [Rendition(**r) for r in data["renditions"]]


def _encode_part(video, job, number, work, progress):
    info, cplan, renditions = _plan_of(video, job)
    chunk = cplan.chunks[number]
    piece = _audio_piece(video.id, job, cplan, chunk, work, progress) if cplan.audio == chunks.AUDIO_ENCODE else None
    out = work / "out"
    deadline = time.monotonic() + current_app.config["TRANSCODE_TIMEOUT"]
    result = parts.encode_part(info, source_file(video), cplan, chunk, renditions, str(out), audio_piece=piece,
                               threads=ffmpeg_threads(), ffmpeg=current_app.config["FFMPEG_BINARY"],
                               deadline=deadline, progress_cb=progress)
    if number == 0:
        parts.make_thumbnail(info, source_file(video), str(out / publishing.THUMBNAIL),
                             ffmpeg=current_app.config["FFMPEG_BINARY"], deadline=deadline)
    progress.heartbeat()
    put_version_files(f"{int(video.id)}/{job}", out)
    return result.to_dict()


def _audio_piece(video_id, job, cplan, chunk, work, progress):
    """The local path of the part's piece of the continuous audio encode, once it is stored (the
    audio runs ahead of the parts: its first piece is there within a second)."""
    name = f"audio/{parts.audio_piece_name(chunk.number)}"
    while True:
        audio = part_state.audio_row(video_id, job)
        if audio is None:
            raise state.ClaimLost(video_id)
        if audio.status == "done" or (chunk.end is not None and audio.position >= chunk.end):
            try:
                return job_file(video_id, job, name, work / "audio.nut")
            except NotStored:
                if audio.status == "done":
                    raise MediaError("The audio of this part is missing.", transient=True) from None
        db.session.rollback()  # see the audio's next commit
        progress.heartbeat()
        time.sleep(AUDIO_POLL)


def _encode_audio(video, job, work, progress):
    info, cplan, _ = _plan_of(video, job)
    app = current_app._get_current_object()
    audio = part_state.audio_row(video.id, job)

    def on_piece(number, path):  # from the splitter's thread: its own app context and session
        with app.app_context():
            put_job_file(video.id, job, f"audio/{parts.audio_piece_name(number)}", path)
            end = cplan.chunks[number].end
            part_state.part_progress(audio.id, progress.token, end if end is not None else info.duration + 1)

    parts.encode_audio(info, source_file(video), cplan, str(work / "audio"), on_piece,
                       ffmpeg=current_app.config["FFMPEG_BINARY"],
                       deadline=time.monotonic() + current_app.config["TRANSCODE_TIMEOUT"],
                       progress_cb=lambda percent: progress.heartbeat())


def _part_failed(video_id, job, row_id, token, error, retries_left):
    """A part failed: the store away (queued again later), a transient error with retries left
    (queued again, raised for Huey's retry), else the whole job fails."""
    db.session.rollback()
    if (fault := storage_fault(error)) is not None:
        return _store_away(lambda message: part_state.release_part(row_id, token, message), video_id, fault, error)
    if isinstance(error, MediaError):
        message, transient = error.message, error.transient
    else:
        log.error("Video %s: a part of its transcode failed", video_id, exc_info=error)
        message, transient = f"Transcoding failed: {error}", is_transient(error)
    if transient and retries_left > 0:
        log.warning("Video %s part: transient failure, %d retries left: %s", video_id, retries_left, message)
        part_state.release_part(row_id, token, f"{message} (retrying)")
        raise error
    state.fail(video_id, state.chunked_token(job), message)
    return "failed"

"""One part of a chunked transcode (or its continuous audio encode), in a worker of any host.

The part's ffmpeg reads only its range of the source (the stored file, or the bucket object by
ranges) and writes into scratch space; its files then go into the job's version folder
hls/<id>/<job>/, the part's row is done, and jobs.publishing lists what is stored. A crash
mid-part leaves the row running with a dead claim: the recovery loop queues it again (only that
part). A permanent failure fails the job (a growing version is withdrawn); a transient one
retries this part only. See jobs.transcoding for the planner.
"""
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app

from videoflix.extensions import db
from videoflix.videos.jobs import part_state, publishing, state
from videoflix.videos.jobs.transcoding import (
    PUBLISH_LATER,
    PUBLISH_LATER_MESSAGES,
    STORE_AWAY,
    ffmpeg_threads,
    is_transient,
    run_transcode,
    store_away,
)
from videoflix.videos.media import chunks, parts
from videoflix.videos.media.errors import MediaError
from videoflix.videos.media.plan import Rendition
from videoflix.videos.media.probe import SourceInfo
from videoflix.videos.models import Video
from videoflix.videos.models.transcode_chunk import AUDIO, QUEUED
from videoflix.videos.storage.backends import NotStored, storage_fault
from videoflix.videos.storage.keys import (
    job_file,
    put_job_file,
    put_version_files,
    remove_job,
    remove_version,
    remove_work,
    source_file,
    work_path,
)

log = logging.getLogger(__name__)
# How often a part waiting for its piece of the audio looks again (seconds).
AUDIO_POLL = 0.2
# The ffmpeg of every part but the first runs at this niceness: on a host busy with a film's later
# parts, the first part of a new video (what makes it playable) gets the CPU first.
LATER_PARTS_NICENESS = 10


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
        result["worker"] = state.worker_id()  # who did it, for staff
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
    return publish(video_id, job, retries_left=current_app.config["TRANSCODE_RETRIES"])


def publish(video_id, job, *, retries_left=0):
    """publishing.publish_parts after a part is stored. If publishing meets the store away, or a
    transient error while `retries_left`, the parts stay done and stored (nothing is encoded
    again): PUBLISH_LATER, and the caller puts a publish_job on the queue, later (the recovery
    loop also publishes a job whose parts are all done). Anything else fails the job (a growing
    version withdrawn, an old one kept)."""
    token = state.chunked_token(job)
    try:
        publishing.publish_parts(video_id, job)
    except Exception as error:
        db.session.rollback()
        fault = storage_fault(error)
        if fault is not None or (is_transient(error) and retries_left > 0):
            log.warning("Video %s: publishing job %s failed (%s: %s); its parts stay stored, published later.",
                        video_id, job, type(error).__name__, error)
            _note(video_id, token, PUBLISH_LATER_MESSAGES[fault.full] if fault is not None
                  else f"Publishing failed: {error} (retrying)")
            return PUBLISH_LATER
        log.error("Video %s: publishing its parts failed", video_id, exc_info=error)
        state.fail(video_id, token, f"Transcoding failed: {error}")
        return "failed"
    except BaseException:
        db.session.rollback()
        state.release(video_id, token, "The worker stopped while publishing; the transcode will run again.")
        raise
    return "done"


def _note(video_id, token, message):
    try:
        state.note(video_id, token, message)
    except Exception:  # the database is on the full disk too: the log says it
        log.exception("Video %s: could not note why its publishing waits", video_id)
        db.session.rollback()


def run_all_here(video_id, *, retries_left=0):
    """The whole job in this process: plan, then every part in order (what the workers do, one
    task each). The video's status at the end, STORE_AWAY / PUBLISH_LATER, or None (nothing to do)."""
    outcome = run_transcode(video_id, retries_left=retries_left)
    if not isinstance(outcome, tuple):
        return outcome
    job, numbers = outcome
    for number in numbers:
        done = run_part(video_id, job, number, retries_left=retries_left)
        if done in (STORE_AWAY, PUBLISH_LATER, "failed"):
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
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + current_app.config["TRANSCODE_TIMEOUT"]
    ffmpeg = current_app.config["FFMPEG_BINARY"]
    with ThreadPoolExecutor(max_workers=1) as beside:
        # the first part makes the thumbnail at the same time: the video is playable once both are stored
        thumbnail = beside.submit(parts.make_thumbnail, info, source_file(video), str(out / publishing.THUMBNAIL),
                                  ffmpeg=ffmpeg, deadline=deadline) if number == 0 else None
        result = parts.encode_part(info, source_file(video), cplan, chunk, renditions, str(out), audio_piece=piece,
                                   threads=ffmpeg_threads(), ffmpeg=ffmpeg, deadline=deadline, progress_cb=progress,
                                   niceness=0 if number == 0 else LATER_PARTS_NICENESS)
        if thumbnail is not None:
            thumbnail.result()
    progress.heartbeat()
    put_version_files(f"{int(video.id)}/{job}", out)
    return result.to_dict()


def _audio_piece(video_id, job, cplan, chunk, work, progress):
    """The local path of the part's piece of the continuous audio encode, once it is stored (the
    audio runs ahead of the parts: its first piece is there within a second). When nobody is
    encoding the audio (its task waits behind this one, or it was queued again after its worker
    died), this worker encodes it first: parts never all wait for an audio nobody does."""
    name = f"audio/{parts.audio_piece_name(chunk.number)}"
    while True:
        audio = part_state.audio_row(video_id, job)
        if audio is None:
            raise state.ClaimLost(video_id)
        if audio.status == QUEUED and audio.claimed_by is None:
            log.info("Video %s part %s: nobody encodes the audio; encoding it first.", video_id, chunk.number)
            run_part(video_id, job, AUDIO)
            progress.heartbeat()
            continue
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
        return store_away(lambda message: part_state.release_part(row_id, token, message), video_id, fault, error)
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

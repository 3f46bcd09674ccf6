"""The state of a chunked job's parts (TranscodeChunk rows), beside the video's (jobs.state):

    start_parts (the planner: the video's claim becomes the job's, one row per part)
        ──> claim_part ──> part_progress* ──> finish_part ──> (publish: jobs.publishing)
                     └─> release_part (transient error: queued again)
    recover_dead_parts: a part whose worker died is queued again (only that part).

Every transition on a part is a conditional UPDATE on its claim token; each commits. This module
only changes rows; videoflix.videos.tasks puts the parts' tasks on the queue.
"""
import logging
from datetime import UTC, datetime

from sqlalchemy import case, delete, func, literal, select, update

from videoflix.extensions import db
from videoflix.videos.jobs.state import CHUNKED_HOST, ClaimLost, _commit_if_one, chunked_token, claim_is_dead, worker_id
from videoflix.videos.models import TranscodeChunk, Video
from videoflix.videos.models.transcode_chunk import AUDIO, DONE, QUEUED, RUNNING

log = logging.getLogger(__name__)


def start_parts(video_id, token, job, job_plan, parts):
    """Hand the claimed video over to its chunked job: the video's claim names the job, and one
    queued row per part (`parts`: (number, start, end)) is added, in one commit. The job's token;
    ClaimLost when this worker no longer holds the video."""
    new_token = chunked_token(job)
    done = db.session.execute(
        update(Video).where(Video.id == video_id, Video.claimed_by == token)
        .values(claimed_by=new_token, claimed_at=datetime.now(UTC), job_plan=job_plan, progress=0)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        db.session.rollback()
        raise ClaimLost(video_id)
    db.session.execute(delete(TranscodeChunk).where(TranscodeChunk.video_id == video_id))
    db.session.add_all(TranscodeChunk(video_id=video_id, job=job, number=number, start=start, end=end,
                                      status=QUEUED, attempts=0, position=0.0)
                       for number, start, end in parts)
    db.session.commit()
    return new_token


def claim_part(video_id, job, number):
    """Take a queued part of the video's current job for this process: (its row id, its token), or
    None (done, taken, or the job is over)."""
    token = f"{worker_id()}:{job}-{number}"
    current = select(Video.id).where(Video.id == video_id, Video.claimed_by == chunked_token(job))
    done = db.session.execute(
        update(TranscodeChunk)
        .where(TranscodeChunk.video_id == video_id, TranscodeChunk.job == job, TranscodeChunk.number == number,
               TranscodeChunk.status == QUEUED, TranscodeChunk.claimed_by.is_(None), current.exists())
        .values(status=RUNNING, claimed_by=token, claimed_at=datetime.now(UTC), position=0.0,
                attempts=TranscodeChunk.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    if not _commit_if_one(done):
        return None
    row_id = db.session.execute(select(TranscodeChunk.id).where(TranscodeChunk.claimed_by == token)).scalar_one()
    return row_id, token


def _owned(row_id, token, **values):
    return db.session.execute(
        update(TranscodeChunk).where(TranscodeChunk.id == row_id, TranscodeChunk.claimed_by == token)
        .values(**values).execution_options(synchronize_session=False)).rowcount


def part_progress(row_id, token, seconds, video_id=None):
    """Record how much of the part is written (a heartbeat too), and the video's progress: the
    share of its parts' seconds written. ClaimLost when the part is no longer this worker's."""
    if not _commit_if_one(_owned(row_id, token, position=max(0.0, float(seconds)), claimed_at=datetime.now(UTC))):
        raise ClaimLost(row_id)
    if video_id is not None:
        update_video_progress(video_id)


def part_heartbeat(row_id, token):
    if not _commit_if_one(_owned(row_id, token, claimed_at=datetime.now(UTC))):
        raise ClaimLost(row_id)


def update_video_progress(video_id):
    """The video's progress: the seconds its parts have written (done parts whole) over its
    duration, at most 99 (100 comes with the finished version)."""
    video = db.session.execute(select(Video.duration, Video.claimed_by).where(Video.id == video_id)).first()
    if video is None or not video.duration:
        return
    rows = db.session.execute(select(TranscodeChunk.status, TranscodeChunk.start, TranscodeChunk.end,
                                     TranscodeChunk.position)
                              .where(TranscodeChunk.video_id == video_id, TranscodeChunk.number != AUDIO)).all()
    written = sum(max(0.0, (r.end if r.end is not None else video.duration) - r.start) if r.status == DONE
                  else r.position for r in rows)
    percent = max(0, min(99, int(written * 100 / video.duration)))
    db.session.execute(update(Video).where(Video.id == video_id, Video.claimed_by == video.claimed_by,
                                           Video.progress < percent)
                       .values(progress=percent).execution_options(synchronize_session=False))
    db.session.commit()


def finish_part(row_id, token, result, video_id):
    """The part is done and its files are stored: keep its result (and count it in the video's
    progress). ClaimLost (nothing changed) when it is no longer this worker's (recovered as dead,
    or the job is over)."""
    if not _commit_if_one(_owned(row_id, token, status=DONE, result=result, claimed_by=None,
                                 claimed_at=None, error=None)):
        raise ClaimLost(row_id)
    update_video_progress(video_id)


def release_part(row_id, token, message):
    """A transient failure: the part is queued again (its task retries it)."""
    _commit_if_one(_owned(row_id, token, status=QUEUED, claimed_by=None, claimed_at=None, position=0.0,
                          error=message))


def part_rows(video_id, job):
    """The job's rows in part order (the audio first)."""
    return db.session.execute(select(TranscodeChunk).where(TranscodeChunk.video_id == video_id,
                                                           TranscodeChunk.job == job)
                              .order_by(TranscodeChunk.number)).scalars().all()


def audio_row(video_id, job):
    return db.session.execute(select(TranscodeChunk).where(
        TranscodeChunk.video_id == video_id, TranscodeChunk.job == job,
        TranscodeChunk.number == AUDIO)).scalar_one_or_none()


def lock_video(video_id):
    """Take the video's row lock for this transaction (an UPDATE that changes nothing): whoever
    publishes a job's parts does so alone, on PostgreSQL and on SQLite."""
    db.session.execute(update(Video).where(Video.id == video_id).values(claimed_at=Video.claimed_at)
                       .execution_options(synchronize_session=False))


def recover_dead_parts():
    """Queue again the running parts whose worker is gone; their (video id, job, number)."""
    recovered = []
    rows = db.session.execute(select(TranscodeChunk).where(TranscodeChunk.status == RUNNING)).scalars().all()
    for row in rows:
        if not claim_is_dead(row):
            continue
        log.warning("Video %s part %s: worker %s is gone; it will be done again.", row.video_id, row.number,
                    row.claimed_by)
        if _commit_if_one(_owned(row.id, row.claimed_by, status=QUEUED, claimed_by=None, claimed_at=None,
                                 position=0.0, error="Its worker stopped; done again.")):
            recovered.append((row.video_id, row.job, row.number))
    return recovered


def queued_parts():
    """(video id, job, number) of every queued part of a current job (their tasks should be on the
    queue)."""
    rows = db.session.execute(
        select(TranscodeChunk.video_id, TranscodeChunk.job, TranscodeChunk.number)
        .join(Video, Video.id == TranscodeChunk.video_id)
        .where(TranscodeChunk.status == QUEUED, Video.claimed_by == literal(f"{CHUNKED_HOST}:0:") + TranscodeChunk.job)
        .order_by(TranscodeChunk.video_id, TranscodeChunk.number)).all()
    return [tuple(r) for r in rows]


def unpublished_jobs():
    """(video id, job) of the jobs whose parts are all done but whose video still names the job
    (the worker that should have published the last part died first)."""
    pending = (select(TranscodeChunk.video_id, TranscodeChunk.job)
               .group_by(TranscodeChunk.video_id, TranscodeChunk.job)
               .having(func.sum(case((TranscodeChunk.status == DONE, 0), else_=1)) == 0))
    found = []
    for video_id, job in db.session.execute(pending).all():
        if db.session.execute(select(Video.id).where(Video.id == video_id,
                                                     Video.claimed_by == chunked_token(job))).first():
            found.append((video_id, job))
    return found


def chunk_summary(video):
    """For staff: (parts done, parts in all, [(number, worker) of each running part]) of the
    video's running chunked job (the audio encode counts as a part), or None without one."""
    plan = video.job_plan or {}
    job = plan.get("job")
    if not job or video.claimed_by != chunked_token(job):
        return None
    rows = part_rows(video.id, job)
    running = [(r.number, r.claimed_by) for r in rows if r.status == RUNNING]
    return sum(r.status == DONE for r in rows), len(rows), running

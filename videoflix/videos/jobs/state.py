"""The one place that decides a video's state transitions.

    queue ──> claim ──> progress* ──> succeed   (status ready, new version published)
                 │                └─> fail      (failed; or still ready with the old version)
                 └─> release (transient error, Huey retries) ──> claim ...
    recover: a claim of a dead worker is dropped and the video queued again.

A worker proves it is alive by refreshing `claimed_at` (its heartbeat) at least every
heartbeat_interval() while it works; a claim whose heartbeat is older than stale_after()
(TRANSCODE_STALE_SECONDS) is dead wherever its worker ran (a dead pid on this host is recognised
at once).

This module only changes rows; it never enqueues. Who marks a video queued also puts its job on
the queue (videoflix.videos.tasks.request_transcode): tasks depend on state, never the reverse.

Every transition after `claim` is a conditional UPDATE on the claim token (`claimed_by`), so a
worker that lost its claim (recovered as dead, or the row deleted) changes nothing. Each
transition commits; the row is the only record of it.

A re-transcode of a published video keeps `status == "ready"` and its old `hls_dir` until the new
version is complete: viewers keep playing the old files; the job shows in queued_at/claimed_by/
progress, and a failed re-transcode leaves the old version and records `error`.

A transcode is done in parts (jobs.parts): once planned, the video's claim names the job itself
(`chunked_token`), not a process; each part has its own claim and heartbeat (jobs.part_state), so
a dead worker loses only its part. A first version may be published while its parts are still
being made (`growing`, PUBLISH=playable); a job that fails for good withdraws it.
"""
import functools
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, delete, or_, select, update

from videoflix.extensions import db
from videoflix.videos.models import FAILED, PENDING, PROCESSING, READY, TranscodeChunk, Video
from videoflix.videos.storage.keys import remove_job, remove_version, remove_work

log = logging.getLogger(__name__)
# A heartbeat this many times per stale period: a live worker is never mistaken for a dead one.
HEARTBEATS_PER_STALE = 9


def stale_after():
    """A claim whose heartbeat is older than this is dead on any host (TRANSCODE_STALE_SECONDS)."""
    return timedelta(seconds=current_app.config["TRANSCODE_STALE_SECONDS"])


def heartbeat_interval():
    """How often a working worker refreshes claimed_at (tasks._ProgressWriter)."""
    return stale_after() / HEARTBEATS_PER_STALE


class StateError(Exception):
    """A transition that is not possible now; the message is a sentence for a human."""


class ClaimLost(Exception):
    """This worker no longer holds the video (recovered as dead, re-queued by force, deleted)."""


@functools.cache
def host_id():
    """The host a claim names: the hostname and the pid namespace. Containers on the host network
    share the hostname but not their pids, so a pid is only looked up where it was taken."""
    try:
        namespace = format(os.stat("/proc/self/ns/pid").st_ino, "x")
    except OSError:  # no /proc: the hostname alone
        return socket.gethostname()[:60]
    return f"{socket.gethostname()[:48]}~{namespace}"


def worker_id():
    return f"{host_id()}:{os.getpid()}"


# The "host" of a video claim held by a chunked job rather than by one process: its parts carry
# the claims and heartbeats of the workers doing them.
CHUNKED_HOST = "parts"


def chunked_token(job):
    return f"{CHUNKED_HOST}:0:{job}"


def is_chunked(claimed_by):
    return bool(claimed_by) and claimed_by.startswith(CHUNKED_HOST + ":")


def parse_claim(claimed_by):
    """(host, pid, job) of a claim token; job names the work folder MEDIA_ROOT/work/<job>."""
    host, pid, job = claimed_by.rsplit(":", 2)
    return host, int(pid), job


def pid_alive(pid):
    """Whether a process of this host with that pid runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed worker not yet reaped by its parent is a zombie: dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def claim_is_dead(video, now=None):
    """True when the claim's worker is gone: its heartbeat (claimed_at) is older than
    stale_after(), wherever it ran, or its pid is dead on this host. False without a claim, and
    for a chunked job's claim (its parts' claims are checked one by one). Works on any row with
    claimed_by and claimed_at (a video, a part)."""
    if not video.claimed_by or is_chunked(video.claimed_by):
        return False
    now = now or datetime.now(UTC)
    if video.claimed_at is None or video.claimed_at < now - stale_after():
        return True
    try:
        host, pid, _ = parse_claim(video.claimed_by)
    except ValueError:
        return True
    return host == host_id() and not pid_alive(pid)


def _published():
    """A complete version is published (not one still growing)."""
    return and_(Video.hls_dir.isnot(None), Video.growing.is_(False))


def _withdrawn_unless_complete():
    """The columns that withdraw a growing version (a job that ended without finishing it)."""
    return dict(hls_dir=case((Video.growing.is_(True), None), else_=Video.hls_dir),
                thumbnail=case((Video.growing.is_(True), None), else_=Video.thumbnail),
                storyboard=case((Video.growing.is_(True), None), else_=Video.storyboard),
                growing=False, job_plan=None)


def _commit_if_one(rowcount):
    """Commit a conditional UPDATE that matched the one row it aimed at; else roll it back. True when
    committed."""
    if rowcount != 1:
        db.session.rollback()
        return False
    db.session.commit()
    return True


def queue(video, *, force=False):
    """Mark the video for (re)transcoding; the caller then enqueues its job (the row is committed
    first, so the task, inline in immediate mode, sees it queued).

    A running job is not disturbed: StateError unless its worker is dead (then its claim is
    dropped and its work folder removed) or `force` is set. Raises StateError without a source.
    """
    if not video.source_file:
        raise StateError(f"Video {video.id} has no source file to transcode.")
    old_claim, old_dir = video.claimed_by, video.hls_dir if video.growing else None
    if old_claim and not force and not claim_is_dead(video):
        raise StateError(f"Video {video.id} is being transcoded right now ({old_claim}).")
    video_id = video.id
    done = db.session.execute(
        update(Video)
        .where(Video.id == video_id, Video.claimed_by.is_(None) if old_claim is None else Video.claimed_by == old_claim)
        .values(
            queued_at=datetime.now(UTC), claimed_by=None, claimed_at=None, error=None, progress=0,
            status=case((_published(), READY), else_=PENDING), **_withdrawn_unless_complete(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if old_claim and is_chunked(old_claim):
        db.session.execute(delete(TranscodeChunk).where(TranscodeChunk.video_id == video_id))
    if not _commit_if_one(done):
        raise StateError(f"Video {video_id} changed meanwhile; try again.")
    if old_claim:
        _remove_job_files(video_id, parse_claim(old_claim)[2], old_dir)
    db.session.expire(video)


def _remove_job_files(video_id, job, growing_dir=None):
    """What an ended job leaves: its work folder, its shared files, its version folder unless the
    row names it (a growing version withdrawn is removed too)."""
    remove_work(job)
    remove_job(video_id, job)
    current = db.session.execute(select(Video.hls_dir).where(Video.id == video_id)).scalar_one_or_none()
    if current != f"{int(video_id)}/{job}":
        remove_version(f"{int(video_id)}/{job}")
    if growing_dir and growing_dir != current:
        remove_version(growing_dir)


def claim(video_id):
    """Take a queued, unclaimed video for this process; the claim token, or None when it is not
    queued (already done, deleted) or another worker holds it."""
    job = os.urandom(8).hex()
    token = f"{worker_id()}:{job}"
    done = db.session.execute(
        update(Video)
        .where(Video.id == video_id, Video.claimed_by.is_(None), Video.queued_at.isnot(None))
        .values(
            claimed_by=token, claimed_at=datetime.now(UTC), attempts=Video.attempts + 1, progress=0,
            status=case((_published(), READY), else_=PROCESSING),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return token if _commit_if_one(done) else None


def _owned(video_id, token, **values):
    """UPDATE the video if this claim still holds it (not committed); the number of rows changed."""
    return db.session.execute(
        update(Video).where(Video.id == video_id, Video.claimed_by == token).values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount


def progress(video_id, token, percent):
    """Record the job's progress (a heartbeat too); raises ClaimLost when this worker no longer
    holds the video."""
    done = _owned(video_id, token, progress=max(0, min(100, int(percent))), claimed_at=datetime.now(UTC))
    if not _commit_if_one(done):
        raise ClaimLost(video_id)


def heartbeat(video_id, token):
    """Show that this worker is alive and still transcoding; raises ClaimLost when it no longer
    holds the video."""
    if not _commit_if_one(_owned(video_id, token, claimed_at=datetime.now(UTC))):
        raise ClaimLost(video_id)


def note(video_id, token, message):
    """Tell staff why a job that goes on is waiting (the error column, cleared by the next
    publish); False when this claim no longer holds the video."""
    return _commit_if_one(_owned(video_id, token, error=message))


def release(video_id, token, message):
    """A transient failure that will be retried: back to queued, claim dropped, error noted (a
    chunked job's parts and files go: it starts again; a growing version is withdrawn)."""
    growing_dir = db.session.execute(
        select(Video.hls_dir).where(Video.id == video_id, Video.growing.is_(True))).scalar_one_or_none()
    done = _owned(
        video_id, token, claimed_by=None, claimed_at=None, error=message, progress=0,
        status=case((_published(), READY), else_=PENDING), **_withdrawn_unless_complete(),
    )
    if done and is_chunked(token):
        db.session.execute(delete(TranscodeChunk).where(TranscodeChunk.video_id == video_id))
    if _commit_if_one(done) and is_chunked(token):
        _remove_job_files(video_id, parse_claim(token)[2], growing_dir)


def fail(video_id, token, message):
    """The job is over and failed. A published video stays ready on its old version; a version
    still growing is withdrawn (failed, no longer listed, its files removed). True when this
    claim still held the video."""
    growing_dir = db.session.execute(
        select(Video.hls_dir).where(Video.id == video_id, Video.growing.is_(True))).scalar_one_or_none()
    done = _owned(
        video_id, token, claimed_by=None, claimed_at=None, queued_at=None, error=message,
        progress=case((_published(), 100), else_=Video.progress),
        status=case((_published(), READY), else_=FAILED), **_withdrawn_unless_complete(),
    )
    if done and is_chunked(token):
        db.session.execute(delete(TranscodeChunk).where(TranscodeChunk.video_id == video_id))
    if not _commit_if_one(done):
        return False
    if is_chunked(token):
        _remove_job_files(video_id, parse_claim(token)[2], growing_dir)
    return True


def publish_growing(video_id, token, hls_dir, *, renditions, thumbnail, duration, width, height, storyboard=None):
    """Name the first version while it is still being made (PUBLISH=playable): listed and served
    from now on (status ready, growing: shown as processing). Raises ClaimLost when the job no
    longer holds the video, or when it has another version published."""
    done = db.session.execute(
        update(Video).where(Video.id == video_id, Video.claimed_by == token,
                            or_(Video.hls_dir.is_(None), and_(Video.hls_dir == hls_dir, Video.growing.is_(True))))
        .values(status=READY, growing=True, hls_dir=hls_dir, renditions=renditions, thumbnail=thumbnail,
                storyboard=storyboard, duration=duration, width=width, height=height, error=None)
        .execution_options(synchronize_session=False)).rowcount
    if not _commit_if_one(done):
        raise ClaimLost(video_id)


def succeed(video_id, token, hls_dir, *, renditions, thumbnail, duration, width, height, storyboard=None):
    """Switch the row to the new version in one commit; returns the previous hls_dir (to delete
    now) or None. Raises ClaimLost (nothing changed) when this worker no longer holds the video."""
    old = db.session.execute(
        select(Video.hls_dir).where(Video.id == video_id, Video.claimed_by == token)
    ).one_or_none()
    if old is not None and is_chunked(token):
        db.session.execute(delete(TranscodeChunk).where(TranscodeChunk.video_id == video_id))
    if old is None or not _commit_if_one(_owned(
        video_id, token, status=READY, progress=100, error=None, hls_dir=hls_dir, renditions=renditions,
        thumbnail=thumbnail, storyboard=storyboard, duration=duration, width=width, height=height,
        claimed_by=None, claimed_at=None, queued_at=None, growing=False, job_plan=None,
    )):
        db.session.rollback()
        raise ClaimLost(video_id)
    return old.hls_dir


def set_storyboard(video_id, hls_dir, storyboard):
    """Record the storyboard made for version `hls_dir`; False (nothing changed) when the video has
    another version by now (the backfill then made it for nothing)."""
    done = db.session.execute(
        update(Video).where(Video.id == video_id, Video.hls_dir == hls_dir).values(storyboard=storyboard)
    ).rowcount
    return _commit_if_one(done)


def job_label(video):
    """A short human description of the video's transcode job, for the admin and the CLI."""
    if video.claimed_by:
        return f"transcoding {video.progress}%" + (", playable" if video.growing else "")
    if video.queued_at:
        return "queued"
    if video.error:
        return "failed"
    return ""


def job_over(row):
    """Whether no transcode job is wanted or running for the row (a Video, or a row of its columns)."""
    return row.queued_at is None and row.claimed_by is None


def job_failed(row):
    """Whether the row's last job failed: failed outright, or a re-transcode of a published video
    that failed (it stays ready on its old version, with the error)."""
    return row.status == FAILED or bool(row.error)


def last_job_failed():
    """The condition "no job wanted or running, and the last one failed" (see job_failed)."""
    return and_(Video.claimed_by.is_(None), Video.queued_at.is_(None),
                or_(Video.status == FAILED, Video.error.isnot(None)))


def pending():
    """The condition "waiting for a transcode that no worker has taken": queued, or never
    transcoded (an upload whose job could not be queued)."""
    return and_(Video.claimed_by.is_(None), or_(Video.queued_at.isnot(None), Video.status == PENDING))


def waiting_ids():
    """Ids of pending videos that are queued (their job should be on the queue), oldest first."""
    return list(db.session.execute(
        select(Video.id).where(pending(), Video.queued_at.isnot(None)).order_by(Video.queued_at)
    ).scalars())


def recover_dead_claims():
    """Drop the claims of dead workers and mark those videos queued again; their ids (the caller
    enqueues their jobs)."""
    recovered = []
    for video in db.session.execute(select(Video).where(Video.claimed_by.isnot(None))).scalars().all():
        if not claim_is_dead(video):
            continue
        log.warning("Video %s: worker %s is gone; transcoding it again.", video.id, video.claimed_by)
        try:
            queue(video)
        except StateError as error:  # a live worker took it meanwhile
            log.info("Video %s not recovered: %s", video.id, error)
            continue
        recovered.append(video.id)
    return recovered

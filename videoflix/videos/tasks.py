"""The Huey tasks of the videos domain, and the only way to put their jobs on the queue.

Huey names a queued task after the module that declares it (videoflix.videos.tasks.transcode_video),
so these declarations stay in this module: a job queued before a deploy still runs after it. The
work itself is in videoflix.videos.jobs; this module binds it to the queue and re-queues what dead
workers left.
"""
import logging
import os
import threading

from flask import current_app

from videoflix.extensions import db
from videoflix.tasks import huey, on_worker_process_start, on_worker_start, task
from videoflix.videos.jobs import part_state, state
from videoflix.videos.jobs.parts import publish, run_part
from videoflix.videos.jobs.transcoding import PUBLISH_LATER, STORE_AWAY, run_transcode
from videoflix.videos.storage.keys import clean_scratch

log = logging.getLogger(__name__)


def _task_options(store_away=0):
    """Huey's options for a transcode task: retries, and after `store_away` runs in a row that
    found the media store away, a delay (STORAGE_RETRY_DELAY doubled for each, at most
    STORAGE_RETRY_MAX_DELAY)."""
    config = current_app.config
    options = {"retries": config["TRANSCODE_RETRIES"], "retry_delay": config["TRANSCODE_RETRY_DELAY"],
               # Huey's own limit is a backstop: ffmpeg is already killed at TRANSCODE_TIMEOUT.
               "timeout": config["TRANSCODE_TIMEOUT"] + 120}
    if store_away:
        delay = config["STORAGE_RETRY_DELAY"] * 2 ** min(store_away - 1, 16)
        options["delay"] = min(delay, config["STORAGE_RETRY_MAX_DELAY"])
    return options


def _put_part_on_queue(video_id, job, number, *, store_away=0):
    """Put the task of one part of a chunked job on the queue (see _put_on_queue)."""
    options = _task_options(store_away)
    delay = options.pop("delay", None)
    if delay:
        transcode_part.schedule((video_id, job, number), {"store_away": store_away}, delay=delay, **options)
    else:
        transcode_part(video_id, job, number, **options)


def _put_on_queue(video_id, *, store_away=0):
    """Put a transcode job for the video on the queue (runs inline when HUEY_IMMEDIATE). Only for
    videos the row already says are queued: request_transcode, and the recovery below.

    `store_away`: how many runs in a row found the media store away; the job then waits
    STORAGE_RETRY_DELAY seconds, doubled for each, at most STORAGE_RETRY_MAX_DELAY (in immediate
    mode a delayed job never runs: `flask transcode --pending` queues it again)."""
    options = _task_options(store_away)
    delay = options.pop("delay", None)
    if delay:
        transcode_video.schedule((video_id,), {"store_away": store_away}, delay=delay, **options)
    else:
        transcode_video(video_id, **options)


def request_transcode(video, *, force=False):
    """Mark the video queued (state.queue: StateError when that is not possible now), then put its
    job on the queue. Every way to (re)transcode a video goes through here."""
    video_id = video.id
    state.queue(video, force=force)
    _put_on_queue(video_id)


def transcode_new_video(video):
    """Request the first transcode of a video that was just stored; None, or the error when the
    queue could not be reached. The stored upload is never lost for that: the video stays pending,
    and `flask transcode --pending` or the admin's Re-transcode queues it once the queue is back."""
    try:
        request_transcode(video)
    except Exception as error:  # noqa: BLE001 - the queue (Redis) is down; the caller says so
        log.exception("Video %s stored, but its transcode could not be queued", video.id)
        db.session.rollback()
        return error
    return None


@task(context=True)
def transcode_video(video_id, store_away=0, task=None):
    """The Huey task that plans a transcode and puts its parts on the queue. Raises (so Huey
    retries) only after a transient failure with retries left; when the media store was away,
    puts the job on the queue again, later (never failed for it)."""
    outcome = run_transcode(video_id, retries_left=task.retries if task is not None else 0)
    if outcome == STORE_AWAY:
        _put_on_queue(video_id, store_away=store_away + 1)
    elif isinstance(outcome, tuple):
        job, numbers = outcome
        for number in numbers:
            _put_part_on_queue(video_id, job, number)


@task(context=True)
def transcode_part(video_id, job, number, store_away=0, task=None):
    """The Huey task of one part (or the audio) of a chunked job; any worker takes it."""
    outcome = run_part(video_id, job, number, retries_left=task.retries if task is not None else 0)
    if outcome == STORE_AWAY:
        _put_part_on_queue(video_id, job, number, store_away=store_away + 1)
    elif outcome == PUBLISH_LATER:  # publishing met the store away: the parts stay done
        _put_publish_on_queue(video_id, job, later=1)


@task()
def publish_job(video_id, job, later=0):
    """Publish a job's stored parts: after `later` attempts in a row met the store away or a
    transient error, or when its parts are all done but its last part's worker died before it
    could publish. Nothing is encoded again; a transient error fails the job after
    TRANSCODE_RETRIES such attempts (the store away never does)."""
    retries_left = current_app.config["TRANSCODE_RETRIES"] - later
    if publish(video_id, job, retries_left=retries_left) == PUBLISH_LATER:
        _put_publish_on_queue(video_id, job, later=later + 1)


def _put_publish_on_queue(video_id, job, *, later):
    """publish_job after STORAGE_RETRY_DELAY seconds, doubled for each attempt that failed (in
    immediate mode a delayed task never runs: the recovery loop, or the next part, publishes)."""
    delay = _task_options(store_away=later)["delay"]
    publish_job.schedule((video_id, job), {"later": later}, delay=delay)


def _queued_task_video_ids():
    """Ids of the videos that have a transcode task waiting on the queue or scheduled (a retry)."""
    tasks = huey.pending() + huey.scheduled()
    return {t.args[0] for t in tasks if isinstance(t, transcode_video.task_class) and t.args}


def _queued_part_tasks():
    """(video id, job, number) of the part tasks waiting on the queue or scheduled."""
    tasks = huey.pending() + huey.scheduled()
    return {tuple(t.args[:3]) for t in tasks if isinstance(t, transcode_part.task_class) and len(t.args) >= 3}


@on_worker_start
def recover_on_worker_start(app):
    """When `flask worker` starts: videos whose worker died mid-job are queued again, and queued
    videos whose task was lost (enqueueing failed, the queue lost data) get a task again."""
    with app.app_context():
        recover_dead_claims()
        waiting = set(_queued_task_video_ids())
        lost = [video_id for video_id in state.waiting_ids() if video_id not in waiting]
        for video_id in lost:
            _put_on_queue(video_id)  # a duplicate is harmless: only one run can claim the video
        if lost:
            log.warning("Queued videos without a task, enqueued again: %s", lost)



class RecoveryLoop(threading.Thread):
    """In every worker process of `flask worker`: every RECOVERY_INTERVAL seconds, queue again the
    videos of dead workers, so a worker killed with SIGKILL holds its video for at most
    TRANSCODE_STALE_SECONDS + RECOVERY_INTERVAL (one RECOVERY_INTERVAL when it ran on this host:
    its pid is gone). A thread of the worker process, not of the consumer that forks them (no fork
    while it runs), beside the task that may keep that process busy for hours. Huey's periodic
    tasks tick once a minute at most, and wait behind a running transcode."""

    def __init__(self, app):
        super().__init__(name="videoflix-recovery", daemon=True)
        self.app = app
        self.stopped = threading.Event()

    def run(self):
        interval = self.app.config["RECOVERY_INTERVAL"]
        while not self.stopped.wait(interval):
            try:
                with self.app.app_context():
                    recover_dead_claims()
            except Exception:  # the database is away: try again next round
                log.exception("Recovery of dead workers' videos failed")


@on_worker_process_start
def recover_on_process_start(app):
    """In each worker process as it starts (also one the consumer restarts after a crash): videos
    whose worker died mid-job are queued again now, and then every RECOVERY_INTERVAL."""
    with app.app_context():
        clean_scratch(state.pid_alive)
        recover_dead_claims()
    interval = app.config["RECOVERY_INTERVAL"]
    if interval > 0:
        RecoveryLoop(app).start()
    log.info("Worker process %s ready; dead workers' videos recovered every %ss (0: only now).",
             os.getpid(), interval)


def recover_dead_claims():
    """Queue again the videos (and the parts of chunked jobs) whose worker died mid-job, and
    publish the jobs whose parts are all done but unpublished; the ids of the videos queued."""
    recovered = state.recover_dead_claims()
    for video_id in recovered:
        _put_on_queue(video_id)
    if recovered:
        log.warning("Re-queued videos left by dead workers: %s", recovered)
    for part in part_state.recover_dead_parts():
        _put_part_on_queue(*part)
    waiting_parts = _queued_part_tasks()
    lost_parts = [part for part in part_state.queued_parts() if part not in waiting_parts]
    for part in lost_parts:  # a planner that died before it put them on the queue; a lost queue
        _put_part_on_queue(*part)  # a duplicate is harmless: only one run can claim the part
    if lost_parts:
        log.warning("Queued parts without a task, enqueued again: %s", lost_parts)
    for video_id, job in part_state.unpublished_jobs():
        log.warning("Video %s: all parts of job %s done but not published; publishing.", video_id, job)
        publish_job(video_id, job)
    return recovered

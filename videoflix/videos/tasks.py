"""The transcoding job: claim the video, run ffmpeg into MEDIA_ROOT/work, publish, switch the row.

A job never leaves a half-written or mixed rendition set where viewers can see it: ffmpeg writes
into work/<job>, which is renamed into hls/<id>/<version> only when complete, and the row switches
to that version in one commit before the previous version folder is deleted.
"""
import dataclasses
import logging
import os
import time

from flask import current_app

from videoflix import cli
from videoflix.extensions import db
from videoflix.tasks import task
from videoflix.videos import state, storage
from videoflix.videos.models import Video
from videoflix.videos.transcode import TranscodeError, transcode

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 1.0  # seconds between progress writes to the row


def enqueue_transcode(video_id):
    """Put a transcode job for the video on the queue (runs inline when HUEY_IMMEDIATE)."""
    config = current_app.config
    transcode_video(
        video_id, retries=config["TRANSCODE_RETRIES"], retry_delay=config["TRANSCODE_RETRY_DELAY"],
        # Huey's own limit is a backstop: ffmpeg is already killed at TRANSCODE_TIMEOUT.
        timeout=config["TRANSCODE_TIMEOUT"] + 120,
    )


@task(context=True)
def transcode_video(video_id, task=None):
    """The Huey task. Raises (so Huey retries) only after a transient failure with retries left."""
    run_transcode(video_id, retries_left=task.retries if task is not None else 0)


class _ProgressWriter:
    """Writes progress to the row when it grew by at least 1% and a second has passed."""

    def __init__(self, video_id, token):
        self.video_id, self.token = video_id, token
        self.last, self.at = 0, time.monotonic()

    def __call__(self, percent):
        now = time.monotonic()
        if percent > self.last and (now - self.at >= PROGRESS_INTERVAL) and percent < 100:
            state.progress(self.video_id, self.token, percent)  # ClaimLost stops ffmpeg
            self.last, self.at = percent, now


def ffmpeg_threads():
    """FFMPEG_THREADS, else None: transcode() then uses one thread per available core."""
    return current_app.config["FFMPEG_THREADS"] or None


def run_transcode(video_id, *, retries_left=0):
    """Transcode one queued video in this process. Returns the final status, or None when there was
    nothing to do (not queued, or another worker holds it). Raises TranscodeError after a transient
    failure while `retries_left` (the row is then queued again for the retry)."""
    token = state.claim(video_id)
    if token is None:
        log.info("Video %s: not queued or already claimed; nothing to do.", video_id)
        return None
    video = db.session.get(Video, video_id)
    if video is None:  # deleted right after the claim
        return None
    job = state.parse_claim(token)[2]
    work = storage.work_path(job)
    try:
        result = transcode(
            storage.source_path(video), work, progress_cb=_ProgressWriter(video_id, token),
            threads=ffmpeg_threads(), timeout=current_app.config["TRANSCODE_TIMEOUT"],
            ffmpeg=current_app.config["FFMPEG_BINARY"],
        )
    except state.ClaimLost:
        log.warning("Video %s: claim lost during the transcode; output discarded.", video_id)
        return None
    except TranscodeError as error:
        return _failed(video_id, token, error.message, transient=error.transient, retries_left=retries_left,
                       error=error)
    except OSError as error:  # disk full, source unreadable...: may well pass on a retry
        log.exception("Video %s: transcode failed", video_id)
        return _failed(video_id, token, f"Transcoding failed: {error}", transient=True, retries_left=retries_left,
                       error=error)
    except Exception as error:
        log.exception("Video %s: transcode failed", video_id)
        return _failed(video_id, token, f"Transcoding failed: {error}", transient=False, retries_left=0, error=error)
    except BaseException:  # the worker is stopping (SIGINT): free the video for the re-queued task
        state.release(video_id, token, "The worker stopped during the transcode; it will run again.")
        raise
    finally:
        if not os.path.isfile(os.path.join(work, "master.m3u8")):
            storage.remove_work(job)  # transcode() cleans up after itself; this is belt and braces
    return _publish(video_id, token, work, result)


def _failed(video_id, token, message, *, transient, retries_left, error):
    if transient and retries_left > 0:
        log.warning("Video %s: transient failure, %d retries left: %s", video_id, retries_left, message)
        state.release(video_id, token, f"{message} (retrying)")
        raise error
    state.fail(video_id, token, message)
    return "failed"


def _publish(video_id, token, work, result):
    hls_dir = storage.publish(work, video_id)
    try:
        old = state.succeed(
            video_id, token, hls_dir,
            renditions=[_rendition(r) for r in result.renditions],
            thumbnail=f"{hls_dir}/{result.thumbnail}", duration=result.duration,
            width=result.info.width if result.info else None, height=result.info.height if result.info else None,
        )
    except state.ClaimLost:
        storage.remove_version(hls_dir)  # the row never pointed at it
        log.warning("Video %s: claim lost before publishing; output discarded.", video_id)
        return None
    except BaseException:
        storage.remove_version(hls_dir)
        raise
    if old and old != hls_dir:
        storage.remove_version(old)
    log.info("Video %s ready: %s (%s)", video_id, hls_dir, ", ".join(r.label for r in result.renditions))
    return "ready"


def _rendition(result):
    entry = dataclasses.asdict(result)
    entry.pop("playlist", None)  # always "<label>/index.m3u8"
    return entry


@cli.on_worker_start
def recover_on_worker_start(app):
    """Videos whose worker died mid-job are queued again when a worker starts."""
    with app.app_context():
        recovered = state.recover_dead_claims()
        if recovered:
            log.warning("Re-queued videos left by dead workers: %s", recovered)

"""`flask add-video`, `flask transcode` and `flask add-subtitle`: the same upload, subtitle and
state rules as the admin."""
import os
import sys
import time

import click
from flask.cli import with_appcontext
from sqlalchemy import or_, select

from videoflix.extensions import db
from videoflix.videos.jobs import state, storyboard_backfill, subtitle_tracks
from videoflix.videos.jobs.chunk_display import chunk_view
from videoflix.videos.media import webvtt
from videoflix.videos.models import READY, Subtitle, Video
from videoflix.videos.storage.backends import StorageUnavailable
from videoflix.videos.tasks import request_transcode
from videoflix.videos.uploads.service import UploadRefused, accept

POLL_SECONDS = 0.5


@click.command("add-video")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--title", required=True, help="Title shown to viewers.")
@click.option("--description", default="", help="Description shown to viewers.")
@click.option("--category", required=True, help='Display category, e.g. "Drama".')
@click.option("--wait", is_flag=True, help="Show progress until ready; exit 1 if transcoding fails.")
@with_appcontext
def add_video_command(file, title, description, category, wait):
    """Copy FILE into the media folder (it must be a decodable video) and queue its transcode."""
    with open(file, "rb") as stream:
        try:
            video = accept(
                stream, filename=os.path.basename(file), title=title, description=description, category=category
            )
        except (UploadRefused, StorageUnavailable) as error:  # nothing was kept
            raise click.ClickException(f"{file}: {error}") from None
    request_transcode(video)
    click.echo(f"Video {video.id} stored; transcode queued.")
    if wait:
        _wait_or_exit([video.id])


@click.command("transcode")
@click.argument("ids", nargs=-1, type=int)
@click.option("--pending", is_flag=True, help="Every video waiting for a transcode.")
@click.option("--failed", is_flag=True, help="Every video whose last transcode failed.")
@click.option("--force", is_flag=True, help="Even a video that a live worker is transcoding.")
@click.option("--wait", is_flag=True, help="Show progress until done; exit 1 if one fails.")
@click.option("--storyboards", is_flag=True,
              help="No transcode: give the ready videos IDS (default: all) that lack one a storyboard.")
@click.option("--subtitles", is_flag=True,
              help="No transcode: write the subtitle tracks of the videos IDS (default: all with tracks) "
                   "into their playlists again, under today's rules for labels and languages.")
@with_appcontext
def transcode_command(ids, pending, failed, force, wait, storyboards, subtitles):
    """(Re)transcode the videos IDS, or those --pending or --failed.

    A published video keeps playing its current version until the new one is complete. A video
    left half-done by a dead worker is taken over; one a live worker holds needs --force.
    """
    if storyboards:
        _add_storyboards(ids)
        return
    if subtitles:
        _republish_subtitles(ids)
        return
    if not (ids or pending or failed):
        raise click.UsageError("Give video IDs, --pending or --failed.")
    videos = [_get_or_fail(video_id) for video_id in ids] + _select(pending=pending, failed=failed)
    videos = list({v.id: v for v in videos}.values())
    if not videos:
        click.echo("No video to transcode.")
        return
    problems = 0
    for video in videos:
        video_id = video.id
        try:
            request_transcode(video, force=force)
        except state.StateError as error:
            problems += 1
            click.secho(str(error), fg="red", err=True)
            continue
        click.echo(f"Video {video_id} queued.")
    if wait:
        _wait_or_exit([v.id for v in videos])
    if problems:
        raise SystemExit(1)


def _add_storyboards(ids):
    """Storyboards from the published top renditions (a decode, no encode); exit 1 on a failure."""
    query = select(Video).where(Video.status == READY).order_by(Video.id)
    videos = db.session.execute(query.where(Video.id.in_(ids)) if ids else query).scalars().all()
    todo = [v for v in videos if ids or not storyboard_backfill.has_storyboard(v)]
    failures = 0
    for video in todo:
        try:
            storyboard_backfill.add_storyboard(video)
        except storyboard_backfill.PreviewFailed as error:
            failures += 1
            click.secho(str(error), fg="red", err=True)
            continue
        click.echo(f"Video {video.id}: storyboard added.")
    if not todo:
        click.echo("No video needs a storyboard.")
    if failures:
        raise SystemExit(1)


def _republish_subtitles(ids):
    """subtitle_tracks.repair for each video with tracks (of IDS); exit 1 when one failed."""
    query = select(Video).where(Video.id.in_(select(Subtitle.video_id))).order_by(Video.id)
    videos = db.session.execute(query.where(Video.id.in_(ids)) if ids else query).scalars().all()
    failures = 0
    for video in videos:
        try:
            notes = subtitle_tracks.repair(video)
        except (subtitle_tracks.SubtitleRefused, subtitle_tracks.NotPublished) as error:
            failures += 1
            click.secho(f"Video {video.id}: {error}", fg="red", err=True)
            continue
        for note in notes:
            click.echo(note)
        click.echo(f"Video {video.id}: subtitle tracks published.")
    if not videos:
        click.echo("No video has subtitle tracks.")
    if failures:
        raise SystemExit(1)


@click.command("add-subtitle")
@click.argument("video_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--language", required=True, help='BCP 47 language code, e.g. "de" or "pt-BR".')
@click.option("--label", required=True, help='Name shown in the player, e.g. "Deutsch".')
@with_appcontext
def add_subtitle_command(video_id, file, language, label):
    """Add FILE (WebVTT or SRT, UTF-8) as the subtitle track of that language to the video."""
    video = _get_or_fail(video_id)
    with open(file, "rb") as stream:
        data = stream.read(webvtt.MAX_BYTES + 1)
    try:
        track = subtitle_tracks.add(video, data, language=language, label=label)
    except (subtitle_tracks.SubtitleRefused, subtitle_tracks.NotPublished) as error:
        raise click.ClickException(f"{file}: {error}") from None
    click.echo(f"Video {video_id}: subtitle track {track.language} ({track.label}) added.")


def _get_or_fail(video_id):
    video = db.session.get(Video, video_id)
    if video is None:
        raise click.ClickException(f"Video {video_id} does not exist.")
    return video


def _select(*, pending, failed):
    conditions = []
    if pending:
        conditions.append(state.pending())
    if failed:
        conditions.append(state.last_job_failed())
    if not conditions:
        return []
    return list(db.session.execute(select(Video).where(or_(*conditions)).order_by(Video.id)).scalars())


def _snapshot(ids):
    db.session.rollback()  # a fresh transaction sees the workers' commits
    rows = db.session.execute(
        select(Video.id, Video.status, Video.progress, Video.error, Video.queued_at, Video.claimed_by,
               Video.job_plan)
        .where(Video.id.in_(ids))
    ).all()
    return {row.id: row for row in rows}


def _wait_or_exit(ids):
    """Show a progress bar until every job is over; exit 1 when a video failed or vanished."""
    total = 100 * len(ids)
    shown = 0
    chunks_shown = {}
    newline = "\n" if sys.stdout.isatty() else ""
    with click.progressbar(length=total, label="Transcoding", show_percent=True) as bar:
        while True:
            rows = _snapshot(ids)
            done = [i for i in ids if i not in rows or state.job_over(rows[i])]
            current = sum(100 if i in done else rows[i].progress for i in ids)
            if current > shown:
                bar.update(current - shown)
                shown = current
            for video_id in ids:
                # A chunked job: its chunks done of all and who holds each running one, when that changes.
                chunks = chunk_view(rows[video_id]) if video_id not in done else None
                if chunks is not None and chunks_shown.get(video_id) != chunks:
                    chunks_shown[video_id] = chunks
                    # On a terminal, below the bar's line (the bar is drawn again on the next one).
                    click.echo(f"{newline}Video {video_id}: {chunks.text}")
            if len(done) == len(ids):
                break
            time.sleep(POLL_SECONDS)
    failures = []
    for video_id in ids:
        row = rows.get(video_id)
        if row is None:
            failures.append(f"Video {video_id} was deleted.")
        elif state.job_failed(row):
            failures.append(f"Video {video_id} failed: {row.error}")
        else:
            click.echo(f"Video {video_id}: {row.status}.")
    for message in failures:
        click.secho(message, fg="red", err=True)
    if failures:
        raise SystemExit(1)

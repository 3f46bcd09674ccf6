"""Videos: uploads, transcoding to HLS, and streaming.

    api/        the HTTP routes, their schemas and the CLI commands (thin: load, call, dump)
    catalogue/  what viewers browse: list queries, categories, watch progress
    delivery/   sending media: the playable index, file lookup, app/X-Accel/presigned, fast path
    uploads/    how files come in: the upload service and tus
    tasks.py    the Huey tasks (their module path names queued jobs) and enqueueing
    jobs/       the state machine and the jobs: transcoding, storyboard backfill, subtitle tracks
    models/     the rows, full-text search and category counts
    storage/    where bytes live: local or S3 backends, the key layout, a version's files
    media/      the media library: probe, ffmpeg, the HLS ladder, storyboards (no Flask)

Imports run down this list, never up: `make lint` (import-linter) checks it.
"""


from videoflix.errors import handle_storage_unavailable, handle_unexpected
from videoflix.videos.storage.backends import StorageUnavailable, storage_fault

PUBLISH_CHOICES = ("playable", "complete")


def check_transcode_settings(app):
    """RuntimeError with a sentence for PUBLISH or TRANSCODE_CHUNK_SECONDS out of range (at start,
    not when the first video is transcoded)."""
    if app.config["PUBLISH"] not in PUBLISH_CHOICES:
        raise RuntimeError(f"PUBLISH must be one of {', '.join(PUBLISH_CHOICES)}, not {app.config['PUBLISH']!r}.")
    if app.config["TRANSCODE_CHUNK_SECONDS"] < 0:
        raise RuntimeError("TRANSCODE_CHUNK_SECONDS must be 0 (one part) or a number of seconds.")


def init_app(app):
    check_transcode_settings(app)
    # models: register the tables; tasks: register the Huey tasks and the worker hooks.
    from videoflix.videos import models, tasks  # noqa: F401
    from videoflix.videos.api import catalogue, cli, storage_cli, uploads, videos

    app.register_blueprint(videos.bp)
    app.register_blueprint(catalogue.bp)
    uploads.init_app(app)
    app.cli.add_command(cli.add_video_command)
    app.cli.add_command(cli.transcode_command)
    app.cli.add_command(cli.add_subtitle_command)
    storage_cli.init_app(app)
    app.register_error_handler(StorageUnavailable, handle_storage_unavailable)
    app.register_error_handler(OSError, _os_error)


def _os_error(error):
    """A full media disk is a storage fault (507 with a sentence); any other OSError a bug (500)."""
    fault = storage_fault(error)
    return handle_storage_unavailable(fault) if fault is not None else handle_unexpected(error)

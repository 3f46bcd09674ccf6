"""The upload service: what the admin, the CLI (and any upload route) call to accept a video.

`accept()` checks the fields (one schema), receives the file, probes it (a whole, decodable video
in an allowed container, within the size and duration limits), keeps it under a neutral name and
creates its row with the probe's result. It does not queue the transcode: the caller does
(videoflix.videos.tasks.request_transcode), and decides what a queue outage means to it.
"""
import logging
import os
import re

from flask import current_app
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from videoflix.extensions import db
from videoflix.videos.media.probe import InvalidMedia, Limits, probe
from videoflix.videos.models import Video
from videoflix.videos.storage.keys import sources

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
TITLE_MAX, CATEGORY_MAX, DESCRIPTION_MAX = 200, 80, 5000
TITLE_RULE = f"A title of 1 to {TITLE_MAX} characters is required."
CATEGORY_RULE = f"A category of 1 to {CATEGORY_MAX} characters is required (e.g. Drama)."
DESCRIPTION_RULE = f"The description is longer than {DESCRIPTION_MAX} characters."
# C0 and C1 controls with DEL (NUL among them, which PostgreSQL refuses), and lone surrogates (not
# UTF-8: no database or encoder takes them; a CLI argument that is not UTF-8 arrives as one). One-line
# fields refuse line and paragraph separators too; a description keeps its tabs and line breaks.
ONE_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _no_controls(pattern, message):
    """A validator refusing any character `pattern` finds, with `message` (a field error)."""

    def check(value):
        if pattern.search(value):
            raise ValidationError(message)

    return check


def _text(rule, *, controls=ONE_LINE_CONTROLS, control_rule, validate=(), **kwargs):
    return fields.String(error_messages={"required": rule, "null": rule, "invalid": rule},
                         validate=[*validate, _no_controls(controls, control_rule)], **kwargs)


class UploadFieldsSchema(Schema):
    """A video's viewer-facing fields and the file's name, stripped; the one rule for every way in
    (the tus metadata, the back office's form and edit page, flask add-video)."""

    title = _text(TITLE_RULE, required=True, validate=[validate.Length(1, TITLE_MAX, error=TITLE_RULE)],
                  control_rule="The title may not contain control characters.")
    description = _text(DESCRIPTION_RULE, load_default="", controls=TEXT_CONTROLS,
                        validate=[validate.Length(max=DESCRIPTION_MAX, error=DESCRIPTION_RULE)],
                        control_rule="The description may not contain control characters other than line "
                                     "breaks and tabs.")
    category = _text(CATEGORY_RULE, required=True,
                     validate=[validate.Length(1, CATEGORY_MAX, error=CATEGORY_RULE)],
                     control_rule="The category may not contain control characters.")
    # The name the file had on the client (shown to staff, cut to 255 characters); optional.
    filename = _text("The file name must be text.", load_default="",
                     control_rule="The file name may not contain control characters.")

    @pre_load
    def _strip(self, data, **kwargs):
        return {k: (v or "").strip() if isinstance(v, str) or v is None else v for k, v in data.items()}


upload_fields_schema = UploadFieldsSchema()


class UploadRefused(Exception):
    """The upload is not accepted and nothing was stored; `errors` maps a field to sentences."""

    def __init__(self, errors):
        super().__init__("; ".join(m for msgs in errors.values() for m in msgs))
        self.errors = errors


class UploadTooLarge(UploadRefused):
    def __init__(self, limit_mb):
        super().__init__({"file": [f"The file is larger than the limit of {limit_mb} MB."]})


def load_fields(data):
    """The cleaned fields of `data` (title, description, category, filename); UploadRefused
    otherwise, with the sentences by field."""
    try:
        return upload_fields_schema.load(data)
    except ValidationError as error:
        raise UploadRefused({k: list(v) for k, v in error.messages.items()}) from None


def field_error(name, value):
    """The sentence refusing `value` for the field `name`, or None (for form validators)."""
    errors = upload_fields_schema.validate({name: value}, partial=True)
    return errors[name][0] if name in errors else None


def max_upload_bytes():
    return current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024


def limits():
    """The probe's limits for uploads (MAX_UPLOAD_PIXELS, MAX_UPLOAD_SECONDS; 0 means none)."""
    config = current_app.config
    return Limits(max_pixels=config["MAX_UPLOAD_PIXELS"] or None,
                  max_duration=config["MAX_UPLOAD_SECONDS"] or None)


def _receive(stream, dest, limit):
    """Copy `stream` to `dest` in chunks; the byte count. UploadTooLarge past `limit` bytes."""
    size = 0
    with open(dest, "xb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(current_app.config["MAX_UPLOAD_MB"])
            out.write(chunk)
    return size


def _size_of(path, limit):
    """The size of the local file `path`; UploadTooLarge past `limit` bytes."""
    size = os.path.getsize(path)
    if size > limit:
        raise UploadTooLarge(current_app.config["MAX_UPLOAD_MB"])
    return size


def _probe(path):
    try:
        return probe(path, limits=limits())
    except InvalidMedia as error:
        raise UploadRefused({"file": [error.message]}) from None


def _new_video(values, size, filename, info):
    return Video(
        **values, source_size=size, original_filename=(filename or "")[:255] or None,
        duration=info.duration, width=info.width, height=info.height, source_info=info.to_dict(),
    )


def accept(stream=None, *, path=None, filename, title, description="", category, name=None, with_row=None):
    """Store an uploaded video and create its row; the caller queues its transcode.

    The file is `stream`, read into the store, or `path`, a finished local file kept without a
    copy where the store can (a hard link: `path` stays where it is, for the caller to remove).
    `name` is the stored file's name (default: a new one); a caller that may retry after a crash
    passes the same name each time, so a retry replaces what the crash left instead of adding a
    file. `with_row(video)` is called with the new row (flushed: it has its id) before it
    commits, so the caller's own changes commit with it or not at all.

    The file is received and probed BEFORE anything is kept: a field problem, a file over
    MAX_UPLOAD_MB (UploadTooLarge), or a file that is not a whole decodable video in an allowed
    container within the limits raises UploadRefused, and then no row and no file remain. A store
    that is away raises StorageUnavailable (the same: nothing remains).
    """
    values = load_fields({"title": title, "description": description, "category": category,
                          "filename": filename})
    filename = values.pop("filename")
    store = sources()
    store.check()  # a store that is away: StorageUnavailable now, before the file is received
    if path is not None:
        size = _size_of(path, max_upload_bytes())
        info = _probe(path)
        video = _new_video(values, size, filename, info)
        video.source_file = store.link(path, name)
    else:
        with store.incoming() as incoming:
            size = _receive(stream, incoming, max_upload_bytes())
            info = _probe(incoming)
            video = _new_video(values, size, filename, info)
            video.source_file = store.put(incoming, name)
    try:
        db.session.add(video)
        if with_row is not None:
            db.session.flush()
            with_row(video)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        store.delete(video.source_file)
        raise
    log.info("Video %s stored: %s (%s, %d bytes, %.1fs)", video.id, video.source_file, info.container_format,
             size, info.duration)
    return video

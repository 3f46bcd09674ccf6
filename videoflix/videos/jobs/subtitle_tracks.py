"""Subtitle tracks: validate and convert a staff upload (WebVTT or SRT) into a Subtitle row, and
keep the published version's files in step with the rows.

The admin form, `flask add-subtitle` and the worker (after publishing a new version) all call
this module. A track's files live in the version folder next to the renditions::

    subtitles/<language>.vtt     the WebVTT text (with the X-TIMESTAMP-MAP hls.js needs)
    subtitles/<language>.m3u8    its subtitle media playlist, named by master.m3u8

Adding or removing a track rewrites these files and master.m3u8 in the same transaction as the
row: the row and the files change together or not at all. Nothing is re-transcoded. The file
itself is decoded, parsed and checked by videoflix.videos.media.webvtt; what may go into the
playlists is checked by videoflix.videos.media.hls.
"""
import contextlib
import logging
import re
import unicodedata

import m3u8
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from videoflix.extensions import db
from videoflix.videos.media import hls, layout, webvtt
from videoflix.videos.models import Subtitle, Video
from videoflix.videos.storage.versions import VersionFiles

log = logging.getLogger(__name__)

MAX_LABEL = 100
# RFC 5646 language tags (ISO 639 2-3 letter languages; no extensions, no private use):
# language, script, region, variants. ASCII only: without re.ASCII, IGNORECASE lets "ſ" match
# [a-z] (it folds to "s"), and so do "ı", "İ" and the Kelvin sign.
LANGUAGE_RE = re.compile(
    r"(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3})(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|\d{3}))?(?P<variants>(?:-(?:[a-z0-9]{5,8}|\d[a-z0-9]{3}))*)",
    re.IGNORECASE | re.ASCII,
)

# A track's file names in the version folder (and in its URLs): <language>.vtt, <language>.m3u8.
FILE_RE = re.compile(r"(?P<language>[A-Za-z0-9-]{2,35})\.(?P<ext>vtt|m3u8)")


class SubtitleRefused(Exception):
    """A track that cannot be accepted; `field` is the form field to blame ("file", "language",
    "label"), `status` the HTTP status an upload answer should carry."""

    def __init__(self, field, message, status=400):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


class NotPublished(Exception):
    """The tracks' files could not be written (the store failed): nothing was changed."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def normalise_language(code):
    """The tag in canonical case ("PT-br" -> "pt-BR"); SubtitleRefused when it is no BCP 47 tag
    in ASCII letters and digits."""
    code = (code or "").strip()
    match = LANGUAGE_RE.fullmatch(code) if code.isascii() else None
    if not match or len(match.group(0)) > 35:
        raise SubtitleRefused("language", 'Give a BCP 47 language code such as "de" or "pt-BR".')
    parts = [match["language"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    return "-".join(parts) + match["variants"].lower()


def check_label(label):
    """The label as it is stored and shown (NFC, trimmed); SubtitleRefused when it is empty, too
    long, or holds anything but letters, digits, spaces and punctuation (hls.unsafe_character:
    the label is written into the master playlist)."""
    label = unicodedata.normalize("NFC", label or "").strip()
    if not label or len(label) > MAX_LABEL:
        raise SubtitleRefused("label", f'Give a label such as "Deutsch" (at most {MAX_LABEL} characters).')
    problem = hls.unsafe_character(label)
    if problem is not None:
        raise SubtitleRefused("label", f"A label holds letters, digits, spaces and punctuation, not {problem}.")
    return label


def _to_webvtt(data, duration):
    """webvtt.to_webvtt, its refusal as the form's: a file too large is a 413, anything else a 400."""
    try:
        return webvtt.to_webvtt(data, duration)
    except webvtt.InvalidSubtitles as error:
        raise SubtitleRefused("file", error.message, 413 if error.too_large else 400) from None


def add(video, data, *, language, label):
    """Validate and store a track for `video` with the published files; the Subtitle.
    Raises SubtitleRefused (nothing stored) for a bad file, language or label, or a language the
    video already has; NotPublished (nothing stored) when the files could not be written."""
    language, label = normalise_language(language), check_label(label)
    content = _to_webvtt(data, video.duration)
    taken = SubtitleRefused("language", f"Video {video.id} already has a {language} track; delete it first.", 409)
    with _tracks_changing(video.id):
        if db.session.execute(select(Subtitle.id).filter_by(video_id=video.id, language=language)).first():
            raise taken
        subtitle = Subtitle(video_id=video.id, language=language, label=label, content=content)
        db.session.add(subtitle)
        try:
            db.session.flush()
        except IntegrityError:  # the same language, added by someone else meanwhile
            raise taken from None
    log.info("Video %s: subtitle track %s (%s) added", video.id, language, label)
    return subtitle


def remove(subtitle):
    """Delete the track: its row, its files, its entry in the master playlist (together, or
    NotPublished and nothing changed)."""
    video_id, language = subtitle.video_id, subtitle.language
    with _tracks_changing(video_id):
        db.session.delete(subtitle)
    log.info("Video %s: subtitle track %s removed", video_id, language)


def repair(video):
    """Publish the video's tracks again under today's rules (`flask transcode --subtitles`): a
    row whose label fails check_label (stored before labels were checked) gets its language as
    label. The sentences to report: tracks changed, and tracks left out of the playlists (a
    language code that is no valid tag: delete the track and add it again)."""
    notes = []
    with _tracks_changing(video.id):
        for track in db.session.execute(select(Subtitle).filter_by(video_id=video.id)).scalars():
            entry = published(track)
            if entry is None:
                notes.append(f"Video {video.id}: track {track.language!r} has no valid language code; "
                             "it is left out of the playlists (delete it and add it again).")
            elif entry.label != track.label:
                notes.append(f"Video {video.id}: track {entry.language}: label {track.label!r} is now {entry.label!r}.")
                track.label = entry.label
    return notes


@contextlib.contextmanager
def _tracks_changing(video_id):
    """Around a change of video `video_id`'s Subtitle rows: the video's row is locked first, and after
    the change the version's files are written from the rows as they now are, then the change
    commits. When writing fails, the change is rolled back, the files are written again from the
    rows as they were, and NotPublished is raised."""
    row = _locked_row(video_id)
    if row is None:
        raise SubtitleRefused("video_id", f"There is no video {video_id}.", 404)
    hls_dir = row.hls_dir
    try:
        yield
        db.session.flush()
    except BaseException:
        db.session.rollback()
        raise
    try:
        publish_tracks(video_id, hls_dir)
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        log.exception("Video %s: the subtitle tracks could not be published; nothing changed", video_id)
        _restore(video_id, hls_dir)
        raise NotPublished(f"The subtitle tracks could not be published ({type(error).__name__}: {error}); "
                           "nothing was changed. Try again.") from error
    except BaseException:
        db.session.rollback()
        _restore(video_id, hls_dir)
        raise


def _locked_row(video_id):
    """The video's (id, hls_dir), its row locked until the transaction ends, so subtitle changes
    and a worker publishing a new version take turns (PostgreSQL: FOR UPDATE; SQLite takes the
    whole database at a transaction's first write); None when the video is gone."""
    return db.session.execute(select(Video.id, Video.hls_dir).where(Video.id == video_id).with_for_update()).first()


def _restore(video_id, hls_dir):
    """Write the files again from the committed rows after a failed change (best effort: the store
    that just failed may fail again; the next change of a track rewrites them anyway)."""
    try:
        publish_tracks(video_id, hls_dir)
        db.session.commit()
    except Exception:  # noqa: BLE001 - logged; the caller raises the first failure
        db.session.rollback()
        log.exception("Video %s: the subtitle files could not be restored", video_id)


def published(track):
    """The hls.SubtitleEntry a Subtitle row is published as; None when its language code is no
    valid tag (a row stored before codes were ASCII only: it is left out of the playlists). A
    label that fails check_label (a row from before labels were checked) is replaced by the
    language code."""
    try:
        language = normalise_language(track.language)
    except SubtitleRefused:
        language = None
    if language != track.language:
        return None
    try:
        label = check_label(track.label)
    except SubtitleRefused:
        label = language
    return hls.SubtitleEntry(language, label, f"{layout.SUBTITLES_DIR}/{language}.m3u8")


def publish_tracks(video_id, hls_dir):
    """Make the version folder `hls_dir` hold exactly the video's current tracks (files and the
    master's entries). Called by add/remove inside their transaction, and by the worker before it
    switches a video to a newly published version (so a re-transcode keeps the tracks); the
    video's row stays locked until the caller's transaction ends. No-op without hls_dir."""
    if not hls_dir:
        return
    _locked_row(video_id)
    files = VersionFiles(hls_dir)
    rows = db.session.execute(
        select(Subtitle).where(Subtitle.video_id == video_id).order_by(Subtitle.language)
    ).scalars().all()
    tracks = [(row, entry) for row in rows if (entry := published(row)) is not None]
    for row in set(rows) - {row for row, _ in tracks}:
        log.warning("Video %s: subtitle track %r has no valid language code; left out", video_id, row.language)
    master = files.read(layout.MASTER)
    duration, timestamp_map = _timing(files, master)
    new_master = hls.with_subtitles(master, [entry for _, entry in tracks])
    folder = layout.SUBTITLES_DIR
    for row, entry in tracks:
        files.write(f"{folder}/{entry.language}.vtt", webvtt.with_timestamp_map(row.content, timestamp_map))
        files.write(f"{folder}/{entry.language}.m3u8", hls.subtitle_playlist(f"{entry.language}.vtt", duration))
    # The master changes after the files it names exist, and before those it no longer names go.
    files.write(layout.MASTER, new_master)
    keep = {f"{entry.language}.{ext}" for _, entry in tracks for ext in ("vtt", "m3u8")}
    for name in files.names(layout.SUBTITLES_DIR):
        if name not in keep:
            files.delete(f"{layout.SUBTITLES_DIR}/{name}")


def _timing(files, master):
    """(the version's duration, its X-TIMESTAMP-MAP line) from the first rendition the master
    names."""
    renditions = hls.variant_uris(master)
    if not renditions:
        raise ValueError("the master playlist names no rendition")
    text = files.read(renditions[0])
    duration = layout.playlist_seconds(text)
    first = renditions[0].rpartition("/")[0] + "/" + hls.segment_file(m3u8.loads(text).segments[0].uri)
    with files.local_files([first]) as (segment,):
        pts = hls.first_pts(segment)
    return duration, f"X-TIMESTAMP-MAP=MPEGTS:{pts},LOCAL:00:00:00.000"

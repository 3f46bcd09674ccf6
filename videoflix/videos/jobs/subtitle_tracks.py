"""Subtitle tracks: validate and convert a staff upload (WebVTT or SRT) into a Subtitle row, and
keep the published version's files in step with the rows.

The admin form, `flask add-subtitle` and the worker (after publishing a new version) all call
this module. A track's files live in the version folder next to the renditions::

    subtitles/<language>.vtt     the WebVTT text (with the X-TIMESTAMP-MAP hls.js needs)
    subtitles/<language>.m3u8    its subtitle media playlist, named by master.m3u8

Adding or removing a track rewrites these files and master.m3u8; nothing is re-transcoded. The
file itself is decoded, parsed and checked by videoflix.videos.media.webvtt.
"""
import logging
import re

import m3u8
from sqlalchemy.exc import IntegrityError

from videoflix.extensions import db
from videoflix.videos.media import hls, layout, webvtt
from videoflix.videos.models import Subtitle
from videoflix.videos.storage.versions import VersionFiles

log = logging.getLogger(__name__)

MAX_LABEL = 100
# RFC 5646 language tags (ISO 639 2-3 letter languages; no extensions, no private use):
# language, script, region, variants.
LANGUAGE_RE = re.compile(
    r"(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3})(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|\d{3}))?(?P<variants>(?:-(?:[a-z0-9]{5,8}|\d[a-z0-9]{3}))*)",
    re.IGNORECASE,
)

# A track's file names in the version folder (and in its URLs): <language>.vtt, <language>.m3u8.
FILE_RE = re.compile(r"(?P<language>[A-Za-z0-9-]{2,35})\.(?P<ext>vtt|m3u8)")


class SubtitleRefused(Exception):
    """A track that cannot be accepted; `field` is the form field to blame ("file", "language",
    "label"), `status` the HTTP status an upload answer should carry."""

    def __init__(self, field, message, status=400):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


def normalise_language(code):
    """The tag in canonical case ("PT-br" -> "pt-BR"); SubtitleRefused when it is no BCP 47 tag."""
    match = LANGUAGE_RE.fullmatch((code or "").strip())
    if not match or len(match.group(0)) > 35:
        raise SubtitleRefused("language", 'Give a BCP 47 language code such as "de" or "pt-BR".')
    parts = [match["language"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    return "-".join(parts) + match["variants"].lower()


def check_label(label):
    label = (label or "").strip()
    if not label or len(label) > MAX_LABEL or any(ord(ch) < 32 for ch in label):
        raise SubtitleRefused("label", f'Give a label such as "Deutsch" (at most {MAX_LABEL} characters).')
    return label


def _to_webvtt(data, duration):
    """webvtt.to_webvtt, its refusal as the form's: a file too large is a 413, anything else a 400."""
    try:
        return webvtt.to_webvtt(data, duration)
    except webvtt.InvalidSubtitles as error:
        raise SubtitleRefused("file", error.message, 413 if error.too_large else 400) from None


def add(video, data, *, language, label):
    """Validate and store a track for `video`, then rewrite the published files; the Subtitle.
    Raises SubtitleRefused (nothing stored) for a bad file, language or label, or a language the
    video already has."""
    language, label = normalise_language(language), check_label(label)
    taken = SubtitleRefused("language", f"Video {video.id} already has a {language} track; delete it first.", 409)
    if any(s.language == language for s in video.subtitles):
        raise taken
    subtitle = Subtitle(video=video, language=language, label=label, content=_to_webvtt(data, video.duration))
    db.session.add(subtitle)
    try:
        db.session.commit()
    except IntegrityError:  # the same language, added by someone else meanwhile
        db.session.rollback()
        raise taken from None
    publish_tracks(video.id, video.hls_dir)
    log.info("Video %s: subtitle track %s (%s) added", video.id, language, label)
    return subtitle


def remove(subtitle):
    """Delete the track: its row, its files, its entry in the master playlist."""
    video = subtitle.video
    db.session.delete(subtitle)
    db.session.commit()
    publish_tracks(video.id, video.hls_dir)
    log.info("Video %s: subtitle track %s removed", video.id, subtitle.language)


def publish_tracks(video_id, hls_dir):
    """Make the version folder `hls_dir` hold exactly the video's current tracks (files and the
    master's entries). Called after a track changed and by the worker before it switches a video
    to a newly published version (so a re-transcode keeps the tracks). No-op without hls_dir."""
    if not hls_dir:
        return
    files = VersionFiles(hls_dir)
    tracks = db.session.execute(
        db.select(Subtitle).where(Subtitle.video_id == video_id).order_by(Subtitle.language)
    ).scalars().all()
    duration, timestamp_map = _timing(files)
    entries = []
    folder = layout.SUBTITLES_DIR
    for track in tracks:
        files.write(f"{folder}/{track.language}.vtt", webvtt.with_timestamp_map(track.content, timestamp_map))
        files.write(f"{folder}/{track.language}.m3u8", hls.subtitle_playlist(f"{track.language}.vtt", duration))
        entries.append(hls.SubtitleEntry(track.language, track.label, f"{folder}/{track.language}.m3u8"))
    # The master changes after the files it names exist, and before those it no longer names go.
    files.write(layout.MASTER, hls.with_subtitles(files.read(layout.MASTER), entries))
    keep = {f"{t.language}.{ext}" for t in tracks for ext in ("vtt", "m3u8")}
    for name in files.names(layout.SUBTITLES_DIR):
        if name not in keep:
            files.delete(f"{layout.SUBTITLES_DIR}/{name}")


def _timing(files):
    """(the version's duration, its X-TIMESTAMP-MAP line) from its first rendition's playlist."""
    master = m3u8.loads(files.read(layout.MASTER))
    rendition = master.playlists[0].uri.partition("?")[0]
    text = files.read(rendition)
    playlist = m3u8.loads(text)
    duration = layout.playlist_seconds(text)
    first = rendition.rpartition("/")[0] + "/" + hls.segment_file(playlist.segments[0].uri)
    with files.local_files([first]) as (segment,):
        pts = hls.first_pts(segment)
    return duration, f"X-TIMESTAMP-MAP=MPEGTS:{pts},LOCAL:00:00:00.000"

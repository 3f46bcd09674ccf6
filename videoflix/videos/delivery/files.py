"""Which stored file a media request names: a rendition's playlist or segment, the master playlist,
the thumbnail or another file of the current version of a playable video, below hls/ only.

uploads/ and work/ have no route; every name is checked against its pattern first.
"""
import os
import re
from dataclasses import dataclass

from videoflix.errors import APIError
from videoflix.videos.delivery.index import media_index
from videoflix.videos.media.layout import LABELS, MASTER, MEDIA_PLAYLIST, SEGMENT_RE
from videoflix.videos.storage.keys import hls_file, is_local

STORED_JPEG_RE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*\.jpg")


NOT_FOUND = "Not found."


@dataclass(frozen=True)
class MediaFile:
    """A file below hls/ that may be sent: where it is, and its video's current version.

    `path` and `stat` describe the local file (MEDIA_STORAGE=local); both are None for an object
    in a bucket, which is not asked for anything before it is sent (one request, not two).
    """

    relative: str                 # below hls/, e.g. "12/ab34cd/480p/seg000.ts"
    path: str | None              # absolute
    stat: os.stat_result | None
    version: str                  # "ab34cd": the version folder, the `?v=` of immutable URLs
    growing: bool = False         # the version is still being transcoded: its playlists change


def _find(relative, version, growing=False):
    """The MediaFile of `relative`; ValueError when a local file is not there."""
    if is_local():
        return MediaFile(relative, *hls_file(relative), version, growing)
    return MediaFile(relative, None, None, version, growing)


def _locate(video_id, relative_of, version=None):
    """The MediaFile at relative_of(entry) for a playable video; APIError(404) otherwise.

    relative_of returns the path below hls/ or None when the entry lacks that file. The cached
    entry is tried first (no SQL); when it or its file is missing, or it is older than the
    `version` the client asks for (a playlist another process published), one fresh read follows.
    """
    index = media_index()
    for fresh in (False, True):
        entry = index.get(video_id, fresh=fresh)
        if entry is None or not entry.servable:
            continue
        if version and version != entry.version and not fresh:
            continue
        relative = relative_of(entry)
        if relative is None:
            continue
        try:
            return _find(relative, entry.version, entry.growing)
        except ValueError:
            pass  # gone (re-transcoded meanwhile?): the fresh pass re-reads the row
    raise APIError(404, NOT_FOUND)


def rendition_file(video_id, label, name, version=None):
    """A rendition's playlist (`index.m3u8`) or segment (`segNNN.ts`) of the current version
    (re-read when `version`, the client's `?v=`, is not the cached one) as a MediaFile.

    Raises APIError(404) for an unknown or unplayable video, a rendition it lacks, any other
    name, or a file that is not there.
    """
    if label not in LABELS or not (name == MEDIA_PLAYLIST or SEGMENT_RE.fullmatch(name)):
        raise APIError(404, NOT_FOUND)
    return _locate(video_id, lambda e: e.rendition_file(label, name), version)


def master_file(video_id):
    """The master playlist the transcoder wrote into the version folder; APIError(404)."""
    return _locate(video_id, lambda e: f"{e.hls_dir}/{MASTER}")


def thumbnail_file(video_id):
    """A ready video's thumbnail; its version is the folder it lives in. APIError(404)."""
    media = _locate(video_id, lambda e: e.thumbnail if STORED_JPEG_RE.fullmatch(e.thumbnail or "") else None)
    return MediaFile(media.relative, media.path, media.stat, thumbnail_version(media.relative))


def thumbnail_version(thumbnail):
    """The version folder a thumbnail lives in ("12/ab34cd/thumbnail.jpg" -> "ab34cd"): the base
    name of its folder, as posixpath.basename(posixpath.dirname(...)) says, in string operations
    (the unpaged list asks for thousands)."""
    return thumbnail.rpartition("/")[0].rstrip("/").rpartition("/")[2] or "0"


def version_file(video_id, name):
    """A file of the current version by its name inside the version folder (the storyboard's and
    the subtitle tracks' files; callers check `name` against their own patterns); APIError(404)."""
    return _locate(video_id, lambda e: f"{e.hls_dir}/{name}")

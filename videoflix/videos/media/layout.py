"""The one source of truth for how a published version is laid out: the rendition ladder and its
labels, the fixed file names, the segment file pattern, and how long a media playlist lasts.

The transcoder writes what this module names, and the routes, the WSGI fast path, the presigned
playlists, the admin and the tests find files by the same names: a rung added to LADDER is
planned, served and signed everywhere without another change.

A version folder (hls/<id>/<version>/ in the store)::

    master.m3u8                 MASTER
    <label>/index.m3u8          MEDIA_PLAYLIST, one per rung of LADDER the source reaches
    <label>/seg000.ts ...       segment_name(n), matching SEGMENT_PATTERN
    thumbnail.jpg               THUMBNAIL
    storyboard.vtt              STORYBOARD_VTT, cues into the sprites
    storyboard/000.jpg ...      STORYBOARD_DIR / sprite files matching SPRITE_PATTERN
    subtitles/<language>.vtt    SUBTITLES_DIR, with its <language>.m3u8

Pure Python; no Flask, no app imports.
"""
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """One rendition of the ladder: its label, the short side of its picture, and its bitrate
    ceilings (bits/s)."""

    label: str
    short_side: int
    maxrate: int
    bufsize: int
    audio_bitrate: int


# Smallest first. A source gets every rung at or below its short side (never upscaled).
LADDER = [
    Rung("480p", 480, 1_400_000, 2_800_000, 96_000),
    Rung("720p", 720, 3_000_000, 6_000_000, 128_000),
    Rung("1080p", 1080, 6_000_000, 12_000_000, 128_000),
]
LABELS = frozenset(rung.label for rung in LADDER)
# The labels as a regular expression alternative, longest first so none shadows another.
LABEL_PATTERN = "|".join(re.escape(label) for label in sorted(LABELS, key=len, reverse=True))

MASTER = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
THUMBNAIL = "thumbnail.jpg"
STORYBOARD_VTT = "storyboard.vtt"
STORYBOARD_DIR = "storyboard"
SUBTITLES_DIR = "subtitles"

# Segments are numbered from 0; ffmpeg's template writes three digits at least, and a name may
# carry up to six (a 6-second segment: more than 69 days).
SEGMENT_TEMPLATE = "seg%03d.ts"
SEGMENT_PATTERN = r"seg[0-9]{1,6}\.ts"
SEGMENT_RE = re.compile(SEGMENT_PATTERN)
SPRITE_TEMPLATE = "%03d.jpg"
SPRITE_PATTERN = r"[0-9]{3,6}\.jpg"
SPRITE_RE = re.compile(SPRITE_PATTERN)


def segment_name(number):
    """The file name of segment `number` (0-based), as ffmpeg writes it (SEGMENT_TEMPLATE)."""
    return SEGMENT_TEMPLATE % number


def sprite_name(number):
    """The file name of storyboard sprite `number` (0-based) inside STORYBOARD_DIR."""
    return SPRITE_TEMPLATE % number


def media_playlist(label):
    """The path of a rendition's media playlist inside the version folder ("720p/index.m3u8")."""
    return f"{label}/{MEDIA_PLAYLIST}"


def playlist_seconds(text):
    """How long a media playlist lasts: the sum of its #EXTINF durations (a malformed one counts
    as 0). Works on the text, so it costs no parse of the whole playlist."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            try:
                total += float(line[8:].split(",", 1)[0])
            except ValueError:
                pass
    return total

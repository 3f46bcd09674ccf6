"""The index of what can be played: which videos are playable, their published version and
renditions, cached in each process for a few seconds (MEDIA_CACHE_TTL) and dropped as soon as
this process commits a change to a video.
"""
import posixpath
import re
import threading
import time
from dataclasses import dataclass

from flask import current_app

from videoflix.extensions import db
from videoflix.videos.media.layout import LABELS
from videoflix.videos.models import READY, Video
from videoflix.videos.models.video import videos_committed

# hls_dir and thumbnail come from the database, never from the client; checked anyway.
STORED_DIR_RE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


EXTENSION_KEY = "videoflix_media_index"


@dataclass(frozen=True)
class MediaEntry:
    """What delivery needs to know of a video, without touching the row again."""

    status: str
    hls_dir: str | None
    labels: frozenset
    thumbnail: str | None
    growing: bool = False     # its playlists still grow (EVENT): never cached long

    @property
    def playable(self):
        return self.status == READY and bool(self.hls_dir)

    @property
    def servable(self):
        """Playable, with a well-formed hls_dir (it comes from the database; checked anyway)."""
        return self.playable and bool(STORED_DIR_RE.fullmatch(self.hls_dir))

    @property
    def version(self):
        """The version folder of hls_dir ("12/ab34cd" -> "ab34cd"): the `?v=` of immutable URLs."""
        return posixpath.basename(self.hls_dir)

    def rendition_file(self, label, name):
        """The path below hls/ of a file of one rendition, or None when the video lacks it."""
        return f"{self.hls_dir}/{label}/{name}" if label in self.labels else None


class MediaIndex:
    """video id -> MediaEntry, cached in process for a few seconds.

    Positive answers live `ttl` seconds, misses `negative_ttl` (a video that just became ready
    shows up quickly in every worker). Commits in this process invalidate at once (see
    `_invalidate_committed`); other processes rely on the TTL, and a vanished file forces a re-read.
    """

    def __init__(self, ttl=5.0, negative_ttl=1.0, max_entries=10_000):
        self.ttl, self.negative_ttl, self.max_entries = ttl, negative_ttl, max_entries
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, video_id, *, fresh=False):
        """The entry for video_id, or None for an unknown video (one SELECT on a miss)."""
        now = time.monotonic()
        cached = self._entries.get(video_id)
        if cached is not None and not fresh and cached[0] > now:
            return cached[1]
        row = db.session.execute(
            db.select(Video.status, Video.hls_dir, Video.renditions, Video.thumbnail, Video.growing)
            .where(Video.id == video_id)
        ).first()
        entry = None
        if row is not None:
            labels = frozenset(r.get("label") for r in row.renditions or [] if isinstance(r, dict)) & LABELS
            entry = MediaEntry(row.status, row.hls_dir, labels, row.thumbnail, bool(row.growing))
        ttl = self.ttl if entry is not None and entry.playable else self.negative_ttl
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # crude, but bounded; a refill costs one SELECT per video
            self._entries[video_id] = (now + ttl, entry)
        return entry

    def peek(self, video_id):
        """The cached entry for video_id while it is fresh, else None; never touches the database."""
        cached = self._entries.get(video_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def invalidate(self, video_id):
        with self._lock:
            self._entries.pop(video_id, None)


def media_index(app=None):
    app = app or current_app
    index = app.extensions.get(EXTENSION_KEY)
    if index is None:
        ttl = float(app.config["MEDIA_CACHE_TTL"])
        index = app.extensions[EXTENSION_KEY] = MediaIndex(ttl=ttl, negative_ttl=min(ttl, 1.0))
    return index


@videos_committed.connect
def _invalidate_committed(app, video_ids):
    """Commits in this process take effect at once here; other processes wait for the TTL."""
    index = app.extensions.get(EXTENSION_KEY)
    for video_id in video_ids if index is not None else ():
        index.invalidate(video_id)

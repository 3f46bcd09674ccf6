"""Media stores: one interface with small verbs, one class per backend (storage.local,
storage.s3), and what both share: the errors, the Protocol the app types its store as, fsync.

Keys are relative, "/"-separated names such as "uploads/<uuid>" or "hls/12/ab34cd/480p/seg000.ts";
videoflix.videos.storage.keys decides the layout and builds the store MEDIA_STORAGE names, a store
only keeps bytes under keys.

    LocalStore   files below a root folder (MEDIA_ROOT): MEDIA_STORAGE=local, the default (local.py)
    S3Store      an S3-compatible bucket through boto3: MEDIA_STORAGE=s3 (s3.py)

Verbs: stat, open (a whole object or a byte range), read, put_file, link_file, put_dir, fetch,
exists, delete, delete_prefix, list, url (a presigned GET; None for local files).
No Flask, no model.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import mimetypes
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

log = logging.getLogger(__name__)

CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/MP2T", ".jpg": "image/jpeg",
                 ".vtt": "text/vtt; charset=utf-8"}
MB = 1024 * 1024
# os.link's refusals that mean "no hard link here" (another filesystem, or one without links): copy.


class NotStored(Exception):
    """No object under that key (or a key that may not be used)."""


class StorageUnavailable(OSError):
    """The store cannot be used now: the bucket is down, hung or answering server errors (or its
    circuit is open after such a failure), or the media disk is full. Trying again later may
    pass: the web answers 503 (507 for a full disk) with `detail`, a worker retries the job.
    `retry_after`: seconds until the store is asked again, when the circuit knows."""

    def __init__(self, detail, retry_after=None, *, full=False):
        super().__init__(errno.ENOSPC if full else errno.EIO, detail)
        self.detail, self.retry_after, self.full = detail, retry_after, full

    def __str__(self):
        return self.detail

    def reason(self):
        """The detail and what caused it, for one log line ("... (ReadTimeoutError: ...)")."""
        cause = self.__cause__
        return f"{self.detail} ({type(cause).__name__}: {cause})" if cause is not None else self.detail


UNAVAILABLE_DETAIL = "The media store is unavailable. Please try again later."
NO_SPACE_DETAIL = "No space left on the media disk."
# OSError numbers that mean "the disk is full" (a quota counts as full).
NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
# How SQLite and ffmpeg say it (a database or a work folder on the media disk).
NO_SPACE_WORDS = ("database or disk is full", "No space left on device", "Disk quota exceeded")


def storage_fault(error):
    """The StorageUnavailable that `error` (or what it was raised from) means, else None: the
    store's own, or a full disk as an OSError, SQLite or ffmpeg reports it."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, StorageUnavailable):
            return error
        if (isinstance(error, OSError) and error.errno in NO_SPACE) or any(
                words in str(error) for words in NO_SPACE_WORDS):
            return StorageUnavailable(NO_SPACE_DETAIL, full=True)
        error = error.__cause__ or error.__context__
    return None


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows of an object without reading it: size, a version tag and mtime (seconds)."""

    size: int
    tag: str          # changes when the content does (mtime for files, the S3 ETag for objects)
    mtime: float
    path: str | None  # the local file, when the store has one


def sha256_hex(stream):
    """The SHA-256 (hex) of what a readable binary stream holds from where it stands."""
    digest = hashlib.sha256()
    while chunk := stream.read(MB):
        digest.update(chunk)
    return digest.hexdigest()


def sync_file(path):
    """fsync the file or folder `path` (a folder: its entries, e.g. a rename into it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(folder, workers=8):
    """fsync every file below `folder`, then every folder bottom-up (their entries). The files
    are synced by a few threads at once, so their writeback overlaps (and the journal commits
    are shared) instead of the disk waiting for one file after another."""
    files, folders = [], []
    for root, _, names in os.walk(folder):
        folders.append(root)
        files.extend(os.path.join(root, name) for name in names)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(sync_file, files))
    for path in reversed(folders):
        sync_file(path)



def content_type(key):
    return CONTENT_TYPES.get(os.path.splitext(key)[1]) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def check_key(key):
    """The key, when every part of it is a plain name (no "", ".", ".."); NotStored otherwise."""
    if not isinstance(key, str) or any(part in ("", ".", "..") for part in key.split("/")):
        raise NotStored(f"{key!r} is not a valid key")
    return key


class MediaStore(Protocol):
    """The interface every store offers; the app's code is written against it alone (`local`
    says whether `stat(key).path` is a file ffmpeg can read in place)."""

    local: bool

    def stat(self, key: str) -> ObjectInfo: ...
    def exists(self, key: str) -> bool: ...
    def open(self, key: str, start: int | None = None, end: int | None = None) -> BinaryIO: ...
    def read(self, key: str) -> bytes: ...
    def read_range(self, key: str, start: int, end: int) -> bytes: ...
    def put_file(self, key: str, source: os.PathLike | str, *, move: bool = False) -> None: ...
    def link_file(self, key: str, source: os.PathLike | str) -> None: ...
    def put_dir(self, prefix: str, folder: os.PathLike | str) -> None: ...
    def fetch(self, key: str, dest: os.PathLike | str) -> None: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def checksum(self, key: str) -> str: ...
    def list(self, prefix: str) -> list[str]: ...
    def children(self, prefix: str) -> list[str]: ...
    def url(self, key: str, seconds: int) -> str | None: ...


class Store:
    """What both stores share: verbs defined by the others."""

    def exists(self, key):
        try:
            self.stat(key)
            return True
        except NotStored:
            return False


def round_trip(store):
    """Write, read back and delete a small object (`flask storage check`, /api/health/); raises
    when any step fails or the bytes differ."""
    key = f"health/{os.getpid()}-{os.urandom(6).hex()}"
    payload = os.urandom(64)
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"videoflix-check-{os.getpid()}-{os.urandom(4).hex()}"
    scratch.write_bytes(payload)
    try:
        store.put_file(key, scratch)
        try:
            if store.read(key) != payload:
                raise OSError("the store returned other bytes than were written")
        finally:
            store.delete(key)
    finally:
        scratch.unlink(missing_ok=True)
    if store.exists(key):
        raise OSError("a deleted object is still there")

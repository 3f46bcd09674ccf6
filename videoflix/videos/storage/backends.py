"""Media stores: one interface with small verbs, one class per backend.

Keys are relative, "/"-separated names such as "uploads/<uuid>" or "hls/12/ab34cd/480p/seg000.ts";
videoflix.videos.storage.keys decides the layout, a store only keeps bytes under keys.

    LocalStore   files below a root folder (MEDIA_ROOT): MEDIA_STORAGE=local, the default
    S3Store      an S3-compatible bucket through boto3: MEDIA_STORAGE=s3

Verbs: stat, open (a whole object or a byte range), read, put_file, link_file, put_dir, fetch,
exists, delete, delete_prefix, list, url (a presigned GET; None for local files).
The app types its store as MediaStore (the Protocol below) and builds it once (keys.media_store).
No Flask, no model.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import mimetypes
import os
import shutil
import stat as stat_module
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from videoflix.circuit import Circuit

log = logging.getLogger(__name__)

CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/MP2T", ".jpg": "image/jpeg",
                 ".vtt": "text/vtt; charset=utf-8"}
MB = 1024 * 1024
# os.link's refusals that mean "no hard link here" (another filesystem, or one without links): copy.
NO_HARD_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


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


def _copy_into_place(source, dest):
    """Copy `source` to a temporary name beside `dest`, fsync it, then rename it to `dest`."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{os.urandom(4).hex()}.part")
    try:
        shutil.copyfile(source, tmp)
        sync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


class LocalStore(Store):
    """Files below `root`. No part of a key may be a symlink: nothing outside root is reached."""

    local = True

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key):
        """The file of `key` (it need not exist); NotStored for a key that would leave root."""
        return self.root.joinpath(*check_key(key).split("/"))

    def stat(self, key):
        """ObjectInfo of a regular file reached without a symlink; NotStored otherwise."""
        path = os.path.realpath(self.root)
        try:
            for part in check_key(key).split("/"):
                path = os.path.join(path, part)
                st = os.lstat(path)
                if stat_module.S_ISLNK(st.st_mode):
                    raise NotStored(f"{key!r} leads through a symlink")
        except OSError:
            raise NotStored(key) from None
        if not stat_module.S_ISREG(st.st_mode):
            raise NotStored(key)
        return ObjectInfo(st.st_size, f"{st.st_mtime_ns:x}", st.st_mtime, path)

    def open(self, key, start=None, end=None):
        """A binary file object of the object (positioned at `start`); the caller closes it."""
        file = open(self.stat(key).path, "rb")  # noqa: SIM115 - returned to the caller
        if start:
            file.seek(start)
        return file

    def read(self, key):
        with self.open(key) as file:
            return file.read()

    def put_file(self, key, source, *, move=False):
        """Store the local file `source` under `key`, replacing it whole: readers see the old file
        or the new one, never a part. Moved when `move` (one rename; from another filesystem, a
        copy then the rename, and `source` goes), else copied.

        Durable on return: the file's bytes and its directory entry are fsync'ed, so a row
        committed after it never names a file that a power loss left empty or missing."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(source, dest)
            except OSError as error:
                if error.errno != errno.EXDEV:  # the scratch folder is on another filesystem
                    raise
                _copy_into_place(source, dest)
                os.unlink(source)
        else:
            _copy_into_place(source, dest)
        sync_file(dest)
        sync_file(dest.parent)

    def link_file(self, key, source):
        """Store the local file `source` under `key` like put_file, but without copying it when
        both are on this store's filesystem: a second name for the same file (a hard link), so
        `source` stays until its owner removes it, and a crash in between loses neither name.
        Copied when the filesystem refuses the link (another filesystem, no hard links there).
        Durable on return, like put_file (an fsync of a file already on disk writes nothing)."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)  # replaced, as put_file replaces
        try:
            os.link(source, dest)
        except OSError as error:
            if error.errno not in NO_HARD_LINK:
                raise
            log.info("No hard link for %s (%s): copied", key, error.strerror)
            self.put_file(key, source)
            return
        sync_file(dest)
        sync_file(dest.parent)

    def put_dir(self, prefix, folder):
        """Move the folder into place as `prefix`/ in one rename: complete or not there at all.

        Durable on return, like put_file: every file below it is on the disk before the rename,
        and the rename before the return. A row committed after it (and the previous version
        removed) never names a folder that a power loss left with empty segments."""
        dest = self.path(prefix)
        dest.parent.mkdir(parents=True, exist_ok=True)
        sync_tree(folder)
        os.rename(folder, dest)
        sync_file(dest.parent)

    def fetch(self, key, dest):
        shutil.copyfile(self.stat(key).path, dest)

    def delete(self, key):
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix):
        """Remove everything below prefix/, then its parent folders that this leaves empty (never
        the top-level one, e.g. hls/)."""
        path = self.path(prefix)
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
        for _ in range(len(prefix.split("/")) - 2):
            path = path.parent
            try:
                path.rmdir()
            except OSError:  # not empty, or gone
                break

    def checksum(self, key):
        """The SHA-256 (hex) of the object's bytes."""
        digest = hashlib.sha256()
        with self.open(key) as file:
            while chunk := file.read(MB):
                digest.update(chunk)
        return digest.hexdigest()

    def list(self, prefix):
        """The keys below prefix/ (files only), relative to the store."""
        base = self.path(prefix)
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())

    def children(self, prefix):
        """The names directly below prefix/ (files and folders)."""
        base = self.path(prefix)
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def url(self, key, seconds):
        return None


# Errors that mean the bucket is unreachable, too slow, or cut the connection (as opposed to an
# answer: a missing key, a refused signature).
UNREACHABLE = (BotoConnectionError, HTTPClientError, ResponseStreamingError, IncompleteReadError)


# Of those, what says "down or hung" at once: no attempt is made again within the call.
OUTAGE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)


def unreachable(error):
    """Whether `error` says the bucket is down, hung or failing (a 5xx answer counts: a store
    whose backend is away answers 500 or 503), as opposed to an answer about the request."""
    if isinstance(error, (StorageUnavailable, *UNREACHABLE)):
        return True
    if isinstance(error, S3UploadFailedError):
        return unreachable(error.__context__) if error.__context__ is not None else False
    if isinstance(error, ClientError):
        return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return False


class GuardedBody:
    """An object's streaming body whose read() raises StorageUnavailable when the bucket stops
    answering mid-object (a read timeout, a cut connection), and trips the circuit."""

    def __init__(self, body, store):
        self.body, self.store = body, store

    def read(self, size=None):
        with self.store.guard():
            return self.body.read(size)

    def close(self):
        self.body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class S3Store(Store):
    """Objects in one bucket below `prefix` (S3_PREFIX), through thread-safe boto3 clients.

    Every call has bounded waits: `timeouts` (connect, read) and `attempts` for what a request
    reads (stat, get, list, delete), so a viewer's request that needs a bucket which is down or
    hung fails within about a second; `transfer_timeouts` and `transfer_attempts` for whole
    files (uploads, publishing a transcode, a worker's copy of a source), which may wait longer.
    A failure to reach the bucket opens a circuit shared by both clients: for `retry_after`
    seconds every call fails at once with StorageUnavailable, then one call probes again.
    Uploads and downloads go through boto3's transfer manager: multipart above 16 MB, parts in
    parallel.
    """

    local = False

    def __init__(self, *, bucket, prefix="", endpoint_url=None, region="us-east-1", access_key=None,
                 secret_key=None, addressing_style=None, concurrency=8, timeouts=(0.5, 1.0), attempts=1,
                 transfer_timeouts=(0.5, 5.0), transfer_attempts=3, retry_after=5):
        self.bucket, self.prefix = bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""
        style = addressing_style or ("path" if endpoint_url else "auto")
        self.circuit = Circuit(retry_after, lambda seconds: StorageUnavailable(UNAVAILABLE_DETAIL, seconds))
        session = boto3.session.Session()

        def client(timeouts, attempts):
            made = session.client(
                "s3", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=BotoConfig(signature_version="s3v4", s3={"addressing_style": style},
                                  retries={"total_max_attempts": max(1, attempts), "mode": "standard"},
                                  max_pool_connections=max(10, concurrency * 2), connect_timeout=timeouts[0],
                                  read_timeout=timeouts[1]))
            self._watch(made)
            return made

        self.client = client(timeouts, attempts)
        self.transfer_client = client(transfer_timeouts, transfer_attempts)
        self.concurrency = concurrency
        self.transfer = TransferConfig(multipart_threshold=16 * MB, multipart_chunksize=16 * MB,
                                       max_concurrency=concurrency, use_threads=True,
                                       num_download_attempts=max(1, transfer_attempts))

    @classmethod
    def from_config(cls, config):
        return cls(bucket=config["S3_BUCKET"], prefix=config.get("S3_PREFIX") or "",
                   endpoint_url=config.get("S3_ENDPOINT_URL") or None, region=config.get("S3_REGION") or "us-east-1",
                   access_key=config.get("S3_ACCESS_KEY_ID") or None,
                   secret_key=config.get("S3_SECRET_ACCESS_KEY") or None,
                   addressing_style=config.get("S3_ADDRESSING_STYLE") or None,
                   concurrency=config.get("S3_CONCURRENCY") or 8,
                   timeouts=(config.get("S3_CONNECT_TIMEOUT", 0.5), config.get("S3_READ_TIMEOUT", 1.0)),
                   attempts=config.get("S3_MAX_ATTEMPTS", 1),
                   transfer_timeouts=(config.get("S3_CONNECT_TIMEOUT", 0.5),
                                      config.get("S3_TRANSFER_READ_TIMEOUT", 5.0)),
                   transfer_attempts=config.get("S3_TRANSFER_ATTEMPTS", 3),
                   retry_after=config.get("S3_RETRY_AFTER", 5))

    def _watch(self, client):
        """Every call of `client` (also those of the transfer manager and paginators) asks the
        circuit first; a connection failure, a timeout or a 5xx answer opens it, any other
        answer closes it."""
        events = client.meta.events
        events.register("before-call.s3", lambda **_: self.circuit.check())
        events.register("after-call.s3", self._answered)
        events.register("after-call-error.s3", self._failed)
        events.register("needs-retry.s3", self._attempt_failed)

    def _answered(self, http_response=None, **_):
        if http_response is not None and http_response.status_code >= 500:
            self.circuit.trip()
        else:
            self.circuit.success()

    def _attempt_failed(self, caught_exception=None, **_):
        """No retry after a refused connection or a timeout: the bucket is down or hung, and a
        retry would only wait again (the circuit opens; other failures retry as configured)."""
        if isinstance(caught_exception, OUTAGE):
            self.circuit.trip()
            raise caught_exception

    def _failed(self, exception=None, **_):
        if unreachable(exception):
            self.circuit.trip()

    @contextlib.contextmanager
    def guard(self):
        """Raise StorageUnavailable for an error that means the bucket cannot be used now (its
        cause kept for the log), other errors as they are."""
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as error:
            if not unreachable(error):
                raise
            if isinstance(error, UNREACHABLE):  # e.g. a body cut mid-object: no call saw it
                self.circuit.trip()
            # Logged once, by whoever answers for it (the error handler, the job): reason().
            raise StorageUnavailable(UNAVAILABLE_DETAIL, self.circuit.retry_after()) from error

    def key(self, key):
        return self.prefix + check_key(key)

    def _missing(self, error):
        code = error.response.get("Error", {}).get("Code")
        return code in ("404", "NoSuchKey", "NotFound")

    def stat(self, key):
        with self.guard():
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self.key(key))
            except ClientError as error:
                if self._missing(error):
                    raise NotStored(key) from None
                raise
        return ObjectInfo(head["ContentLength"], head["ETag"].strip('"'), head["LastModified"].timestamp(), None)

    def get(self, key, range_header=None):
        """boto3's get_object answer (Body streams: a GuardedBody); NotStored when missing;
        StorageUnavailable when the bucket cannot be reached. `range_header` ("bytes=0-99") asks
        for part of it; botocore's ClientError InvalidRange when beyond it."""
        extra = {"Range": range_header} if range_header else {}
        with self.guard():
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.key(key), **extra)
            except ClientError as error:
                if self._missing(error):
                    raise NotStored(key) from None
                raise
        answer["Body"] = GuardedBody(answer["Body"], self)
        return answer

    def open(self, key, start=None, end=None):
        ranged = f"bytes={start or 0}-{'' if end is None else end}" if start or end is not None else None
        return self.get(key, ranged)["Body"]

    def read(self, key):
        with self.get(key)["Body"] as body:
            return body.read()

    def put_file(self, key, source, *, move=False):
        with self.guard():
            self.transfer_client.upload_file(os.fspath(source), self.bucket, self.key(key), Config=self.transfer,
                                             ExtraArgs={"ContentType": content_type(key)})
        if move:
            os.unlink(source)

    def link_file(self, key, source):
        """A copy (a bucket cannot link a local file); `source` stays."""
        self.put_file(key, source)

    def put_dir(self, prefix, folder):
        """Upload every file below `folder` as prefix/<relative path>, several at a time."""
        folder = Path(folder)
        files = [p for p in folder.rglob("*") if p.is_file()]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for done in [pool.submit(self.put_file, f"{prefix}/{p.relative_to(folder).as_posix()}", p)
                         for p in files]:
                done.result()

    def fetch(self, key, dest):
        with self.guard():
            try:
                self.transfer_client.download_file(self.bucket, self.key(key), os.fspath(dest), Config=self.transfer)
            except ClientError as error:
                if self._missing(error):
                    raise NotStored(key) from None
                raise

    def delete(self, key):
        with self.guard():
            self.client.delete_object(Bucket=self.bucket, Key=self.key(key))

    def _raw_keys(self, prefix):
        """Every key below prefix/, read whole (a listing cut by an outage raises, never ends short)."""
        keys = []
        with self.guard():
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(prefix) + "/"):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def delete_prefix(self, prefix):
        """Delete every key below prefix/, 1000 per call: bulk work, with the whole files' waits
        (a thousand deletions may take the bucket longer than a viewer's read may wait)."""
        keys = self._raw_keys(prefix)
        with self.guard():
            for start in range(0, len(keys), 1000):
                self.transfer_client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})

    def checksum(self, key):
        digest = hashlib.sha256()
        with self.get(key)["Body"] as body:
            while chunk := body.read(MB):
                digest.update(chunk)
        return digest.hexdigest()

    def list(self, prefix):
        return sorted(k[len(self.prefix):] for k in self._raw_keys(prefix))

    def children(self, prefix):
        base = check_key(prefix) + "/"
        return sorted({k[len(base):].split("/", 1)[0] for k in self.list(prefix)})

    def url(self, key, seconds):
        """A presigned GET of the object, valid `seconds` (SigV4: at most 7 days). Signed here,
        without asking the bucket: it works while the bucket is away."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(key)},
            ExpiresIn=max(1, min(int(seconds), 7 * 24 * 3600)))


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


def make_store(config) -> MediaStore:
    """The store MEDIA_STORAGE names (ValueError for another name)."""
    kind = (config.get("MEDIA_STORAGE") or "local").lower()
    if kind == "local":
        return LocalStore(config["MEDIA_ROOT"])
    if kind == "s3":
        return S3Store.from_config(config)
    raise ValueError(f"MEDIA_STORAGE must be local or s3, not {kind!r}")

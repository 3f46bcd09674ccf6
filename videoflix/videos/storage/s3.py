"""S3Store: media as objects in one bucket (MEDIA_STORAGE=s3), with bounded waits and a circuit:
a bucket that is down or hung answers StorageUnavailable within about a second, and is not asked
again for every request until it answers once more."""
from __future__ import annotations

import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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

from videoflix.connections.circuit import Circuit
from videoflix.videos.storage.backends import (
    MB,
    UNAVAILABLE_DETAIL,
    NotStored,
    ObjectInfo,
    StorageUnavailable,
    Store,
    check_key,
    content_type,
)

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

    def read_range(self, key, start, end):
        """Bytes start..end (inclusive) of the object, with a whole-file transfer's patience (a
        worker reading its part of a source: S3_TRANSFER_READ_TIMEOUT, S3_TRANSFER_ATTEMPTS)."""
        with self.guard():
            try:
                answer = self.transfer_client.get_object(Bucket=self.bucket, Key=self.key(key),
                                                         Range=f"bytes={start}-{end}")
            except ClientError as error:
                if self._missing(error):
                    raise NotStored(key) from None
                raise
            with answer["Body"] as body:
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

"""Where the bytes of an unfinished tus upload wait: one small interface, one class per store.

    ScratchChunks   MEDIA_STORAGE=local: one file MEDIA_ROOT/tus/<id>/data on the media volume
                    every web process shares; the offset is its size after flush (and fsync).
    BucketChunks    MEDIA_STORAGE=s3 (web servers share no disk): each PATCH's bytes become one
                    object tus/<id>/<offset:020d>, put only once they are all there; the offset is
                    where the last part ends (parts are contiguous: each starts at the offset its
                    PATCH was checked against, under the upload's lock), so it is durable by
                    construction and every web process reads the same.

Verbs: create, offset, free_bytes, fence, append, open (all the bytes, in order), local_file (the finished
upload as one local file, when it is one), delete, sweep. The caller
(videoflix.videos.uploads.tus) holds the upload's lock around fence and append; `lock.refresh()`
is called before every change (each chunk written, each part put, a refused body cut off), so a
request whose lock lapsed changes nothing once another one may have taken it over.
"""
import contextlib
import hashlib
import os
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from videoflix.videos.storage.backends import NotStored, sync_file
from videoflix.videos.storage.keys import TUS_PREFIX, media_root, scratch_root, tus_key
from videoflix.videos.uploads.headers import ChecksumMismatch, OffsetMismatch, TooLarge, UploadLocked

# Bytes read from the request at a time: gunicorn's largest single read (MAX_READ_STEP). Less
# makes it buffer each read's rest again and again: 256 KiB reads cost twice the CPU per PATCH.
# A client slower than this per TUS_LOCK_SECONDS (17 kB/s at 60 s) may see a retry take its lock
# over; the lock is checked before each write, so the request that lost it writes nothing more.
CHUNK = 1024 * 1024
FENCE_STEP = 64 * CHUNK  # bytes copied by a fence between two refreshes of the lock


def copy_body(stream, out, room, digest, lock):
    """Copy the request body to `out`, at most `room` bytes (TooLarge past them)."""
    written = 0
    while chunk := stream.read(min(CHUNK, room - written + 1)):
        written += len(chunk)
        if written > room:
            raise TooLarge("The body goes past the upload's Upload-Length.")
        lock.refresh()  # before the write: the read may have waited long enough for the lock to lapse
        out.write(chunk)
        if digest is not None:
            digest.update(chunk)


def _check_digest(digest, checksum):
    if digest is not None and digest.digest() != checksum:
        raise ChecksumMismatch("The body does not match Upload-Checksum.")


def _check_start(offset, start, content_length, room):
    if offset != start:
        raise OffsetMismatch(f"Upload-Offset {offset} does not match the {start} bytes received.")
    if content_length is not None and content_length > room:
        raise TooLarge("The body goes past the upload's Upload-Length.")


def _free_bytes(folder):
    """Free bytes (for an unprivileged user) on the filesystem of `folder`, or of its nearest
    existing parent."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _older_than(mtime, now, seconds):
    return now - datetime.fromtimestamp(mtime, now.tzinfo) > timedelta(seconds=seconds)


class ScratchChunks:
    """The upload's bytes in one file below `root` (MEDIA_ROOT/tus), fsync'ed when `fsync`."""

    def __init__(self, root, fsync=True):
        self.root, self.fsync = root, fsync

    held_locally = True  # unfinished uploads' bytes take room on free_bytes()' disk

    def free_bytes(self):
        """Free bytes on the filesystem of the scratch files (the stored originals' too)."""
        return _free_bytes(self.root)

    def path(self, upload_id):
        """The upload's scratch file (ids are hex, so the path never leaves the scratch root)."""
        return self.root / upload_id / "data"

    def create(self, upload_id):
        path = self.path(upload_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=False)

    def offset(self, upload_id):
        """The scratch file's size; 0 when it is missing."""
        try:
            return self.path(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def fence(self, upload_id, lock):
        """Give the upload's bytes a new file (a copy, renamed over the old name) after its lock was
        taken over from a request that may still be alive: that request's open file is then no
        longer the upload's, so nothing it still writes or cuts off reaches the upload, nor the
        stored original a completion links to the scratch file. Costs a copy, on takeovers only."""
        path = self.path(upload_id)
        tmp = path.with_name(f"data.{lock.token}")
        try:
            with open(path, "rb") as source, open(tmp, "xb") as copy:
                size, done = os.fstat(source.fileno()).st_size, 0
                while done < size:
                    lock.refresh()
                    sent = os.sendfile(copy.fileno(), source.fileno(), done, min(FENCE_STEP, size - done))
                    if not sent:
                        break
                    done += sent
                self._sync(copy)
            os.replace(tmp, path)
        except FileNotFoundError:  # no scratch file: nothing to fence off
            tmp.unlink(missing_ok=True)
            return
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.fsync:
            sync_file(path.parent)

    def append(self, upload_id, stream, offset, room, content_length, checksum, lock):
        """Append the body at `offset` (OffsetMismatch unless it is the file's size); the new size."""
        with open(self.path(upload_id), "r+b") as out:
            start = os.fstat(out.fileno()).st_size
            _check_start(offset, start, content_length, room)
            out.seek(start)
            digest = hashlib.sha1() if checksum is not None else None
            try:
                copy_body(stream, out, room, digest, lock)
                _check_digest(digest, checksum)
            except UploadLocked:  # another request owns the file now: leave it alone
                raise
            except (TooLarge, ChecksumMismatch):  # refused: none of this body is kept
                self._cut(out, start, lock)
                raise
            except BaseException:
                # The client went away (or the disk failed): what arrived is the upload's next
                # bytes, in order, so it is kept and counted; unless it was to be checked.
                if digest is not None:
                    self._cut(out, start, lock)
                self._sync(out)
                raise
            self._sync(out)
            return os.fstat(out.fileno()).st_size

    def _cut(self, out, start, lock):
        """Drop this request's bytes (back to `start`), only while it still holds the lock: once
        another request may have taken it over, those bytes (and any after them) are that one's
        (UploadLocked, nothing cut)."""
        lock.refresh(force=True)
        out.truncate(start)
        self._sync(out)

    def _sync(self, out):
        """The bytes written reach the file (and, with TUS_FSYNC, the disk) before the answer."""
        out.flush()
        if self.fsync:
            os.fsync(out.fileno())

    def open(self, upload_id):
        return open(self.path(upload_id), "rb")  # noqa: SIM115 - the caller closes it

    def local_file(self, upload_id):
        """The scratch file: on the media volume, so the store can keep it without a copy."""
        return self.path(upload_id)

    def delete(self, upload_id):
        shutil.rmtree(self.root / upload_id, ignore_errors=True)

    def sweep(self, known, expired, now, seconds):
        """Delete the folders of `expired` ids, and those of no `known` id older than `seconds`."""
        folders = [p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else []
        for folder in folders:
            if folder.name not in known and (folder.name in expired
                                             or _older_than(folder.stat().st_mtime, now, seconds)):
                shutil.rmtree(folder, ignore_errors=True)


class BucketChunks:
    """The upload's bytes as parts tus/<id>/<offset:020d> in the store; a PATCH's body is
    received into a local scratch file (below `scratch`) and put when complete."""

    def __init__(self, store, scratch):
        self.store, self.scratch = store, scratch

    held_locally = False  # parts wait in the bucket

    def free_bytes(self):
        """Free bytes on the scratch folder's filesystem, where a completion receives the file."""
        return _free_bytes(self.scratch)

    def _parts(self, upload_id):
        """[(start, key)] of the upload's parts, in order."""
        prefix = tus_key(upload_id) + "/"
        return sorted((int(key[len(prefix):]), key) for key in self.store.list(tus_key(upload_id)))

    def create(self, upload_id):
        """Nothing to make: an upload without parts has 0 bytes."""

    def fence(self, upload_id, lock):
        """Nothing to do: a part is put only after a refresh of the lock, and parts are not files
        another request could still hold open."""

    def offset(self, upload_id):
        parts = self._parts(upload_id)
        if not parts:
            return 0
        start, key = parts[-1]
        try:
            return start + self.store.stat(key).size
        except NotStored:  # deleted meanwhile (terminated, swept)
            return 0

    def append(self, upload_id, stream, offset, room, content_length, checksum, lock):
        """Receive the body, then put it as the part at `offset`; the new offset.

        Refused bodies (TooLarge, ChecksumMismatch) are dropped; a body cut short is put as its
        own part (what arrived is kept, as in local mode) unless it was to be checked."""
        _check_start(offset, self.offset(upload_id), content_length, room)
        digest = hashlib.sha1() if checksum is not None else None
        key = tus_key(upload_id, offset)
        with tempfile.NamedTemporaryFile(dir=self.scratch, prefix="tus-part-") as out:
            try:
                copy_body(stream, out, room, digest, lock)
                _check_digest(digest, checksum)
            except (UploadLocked, TooLarge, ChecksumMismatch):
                raise
            except BaseException:
                if digest is None and out.tell():
                    out.flush()
                    lock.refresh()
                    self.store.put_file(key, out.name)
                raise
            out.flush()
            size = out.tell()
            if size:
                lock.refresh()
                self.store.put_file(key, out.name)
        return offset + size

    @contextlib.contextmanager
    def open(self, upload_id):
        parts = _Parts(self.store, [key for _, key in self._parts(upload_id)])
        try:
            yield parts
        finally:
            parts.close()

    def local_file(self, upload_id):
        """None: the parts are in the bucket (open streams them)."""
        return None

    def delete(self, upload_id):
        self.store.delete_prefix(tus_key(upload_id))

    def sweep(self, known, expired, now, seconds):
        for upload_id in self.store.children(TUS_PREFIX):
            if upload_id in known:
                continue
            parts = self._parts(upload_id)
            if upload_id in expired or not parts or self._old(parts[-1][1], now, seconds):
                self.delete(upload_id)

    def _old(self, key, now, seconds):
        try:
            return _older_than(self.store.stat(key).mtime, now, seconds)
        except NotStored:
            return False


class _Parts:
    """A read-only stream of the parts' bytes, one object after the other."""

    def __init__(self, store, keys):
        self.store, self.keys, self.body = store, list(keys), None

    def read(self, size=-1):
        while True:
            if self.body is None:
                if not self.keys:
                    return b""
                self.body = self.store.open(self.keys.pop(0))
            data = self.body.read(size)
            if data:
                return data
            self.close()

    def close(self):
        if self.body is not None:
            self.body.close()
            self.body = None


def tus_root():
    """The folder of the local mode's scratch files: MEDIA_ROOT/tus."""
    return media_root() / "tus"


def chunk_store(app_config, store):
    """The app's chunk store: scratch files for a local store, parts in the bucket otherwise."""
    if store.local:
        return ScratchChunks(tus_root(), fsync=app_config["TUS_FSYNC"])
    return BucketChunks(store, scratch_root())

"""LocalStore: media as files below a root folder (MEDIA_ROOT), written durably (fsync, then a
rename into place) so a crash leaves the previous file or the new one, never half of one."""
from __future__ import annotations

import errno
import os
import shutil
import stat as stat_module
from pathlib import Path

from videoflix.videos.storage.backends import (
    NotStored,
    ObjectInfo,
    Store,
    check_key,
    log,
    sha256_hex,
    sync_file,
    sync_tree,
)

NO_HARD_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


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

    def read_range(self, key, start, end):
        """Bytes start..end (inclusive) of the file."""
        with self.open(key, start) as file:
            return file.read(end - start + 1)

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
        with self.open(key) as file:
            return sha256_hex(file)

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

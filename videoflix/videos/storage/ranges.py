"""A stored object as a seekable binary file read by ranges: what a worker gives PyAV so a part of
a chunked transcode reads only its part of a source in the bucket (and the index it needs),
never the whole file.
"""
import io

BLOCK = 4 * 1024 * 1024  # bytes per ranged read; sequential reads of a part hit the same block


class RangeFile(io.RawIOBase):
    """Object `key` of `store` (its size known), read in BLOCK-sized ranges, one block cached."""

    def __init__(self, store, key, size):
        super().__init__()
        self.store, self.key, self.size = store, key, size
        self.pos = 0
        self.block_start, self.block = -1, b""

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer):
        if self.pos >= self.size:
            return 0
        if not self.block_start <= self.pos < self.block_start + len(self.block):
            self._load(self.pos)
        offset = self.pos - self.block_start
        count = min(len(buffer), len(self.block) - offset)
        buffer[:count] = self.block[offset:offset + count]
        self.pos += count
        return count

    def _load(self, start):
        end = min(self.size, start + BLOCK) - 1
        with self.store.open(self.key, start, end) as body:
            self.block = body.read()
        self.block_start = start

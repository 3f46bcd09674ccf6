"""Both stores offer the whole MediaStore interface, with the same parameters, so the app's code
(written against the Protocol) runs on either."""
import inspect

import pytest

from videoflix.videos.storage.backends import MediaStore
from videoflix.videos.storage.local import LocalStore
from videoflix.videos.storage.s3 import S3Store

VERBS = [name for name, member in vars(MediaStore).items() if callable(member) and not name.startswith("_")]


def test_the_interface_has_the_verbs_the_app_uses():
    assert set(VERBS) == {"stat", "exists", "open", "read", "read_range", "put_file", "link_file", "put_dir", "fetch",
                          "delete", "delete_prefix", "checksum", "list", "children", "url"}


@pytest.mark.parametrize("store", [LocalStore, S3Store])
@pytest.mark.parametrize("verb", VERBS)
def test_each_store_offers_each_verb_with_its_parameters(store, verb):
    wanted = list(inspect.signature(getattr(MediaStore, verb)).parameters)
    offered = list(inspect.signature(getattr(store, verb)).parameters)
    assert offered == wanted, f"{store.__name__}.{verb}{offered} is not MediaStore.{verb}{wanted}"
    assert isinstance(store.local, bool)


def test_a_source_is_read_by_ranges_through_the_store(app, tmp_path):
    """What a worker gives PyAV in s3 mode: a seekable file over read_range, block by block."""
    from videoflix.videos.storage.keys import media_store
    from videoflix.videos.storage.ranges import BLOCK, RangeFile

    data = bytes(range(256)) * (BLOCK // 128 + 3)  # a little over two blocks
    (tmp_path / "source").write_bytes(data)
    with app.app_context():
        store = media_store()
        store.put_file("uploads/ranges-test", tmp_path / "source")
        reads = []
        real = store.read_range
        store.read_range = lambda key, start, end: reads.append((start, end)) or real(key, start, end)
        try:
            with RangeFile(store, "uploads/ranges-test", len(data)) as stream:
                assert stream.read(10) == data[:10]
                stream.seek(-5, 2)
                assert stream.read() == data[-5:]
                stream.seek(BLOCK - 3)
                assert stream.read(6) == data[BLOCK - 3:BLOCK + 3]
        finally:
            del store.read_range
            store.delete("uploads/ranges-test")
    # one ranged read per block, from where the reader is (what is cached is not read again)
    assert reads == [(0, BLOCK - 1), (len(data) - 5, len(data) - 1), (BLOCK - 3, 2 * BLOCK - 4)]

"""Both stores offer the whole MediaStore interface, with the same parameters, so the app's code
(written against the Protocol) runs on either."""
import inspect

import pytest

from videoflix.videos.storage.backends import MediaStore
from videoflix.videos.storage.local import LocalStore
from videoflix.videos.storage.s3 import S3Store

VERBS = [name for name, member in vars(MediaStore).items() if callable(member) and not name.startswith("_")]


def test_the_interface_has_the_verbs_the_app_uses():
    assert set(VERBS) == {"stat", "exists", "open", "read", "put_file", "link_file", "put_dir", "fetch",
                          "delete", "delete_prefix", "checksum", "list", "children", "url"}


@pytest.mark.parametrize("store", [LocalStore, S3Store])
@pytest.mark.parametrize("verb", VERBS)
def test_each_store_offers_each_verb_with_its_parameters(store, verb):
    wanted = list(inspect.signature(getattr(MediaStore, verb)).parameters)
    offered = list(inspect.signature(getattr(store, verb)).parameters)
    assert offered == wanted, f"{store.__name__}.{verb}{offered} is not MediaStore.{verb}{wanted}"
    assert isinstance(store.local, bool)

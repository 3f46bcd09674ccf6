"""A request whose lock lapsed changes nothing (issue 18, finding 1).

Request A writes part of a PATCH and stalls past TUS_LOCK_SECONDS; the client's retry B takes the
lock over and is answered; then A goes on: one byte past Upload-Length (413), the end of a body
whose Upload-Checksum does not match (460), or the client goes away with a checksum pending. Before,
A's error path cut the scratch file back to A's start, wiping what B acknowledged (HEAD: 0), and
when B had completed the upload, the stored original (a hard link to the scratch file) dropped to
0 bytes while the video was `ready`. The lock here is short and really lapses (A's stall lasts
longer than it); nothing is timed.
"""
import hashlib
import time
from base64 import b64encode

import pytest
from werkzeug.exceptions import ClientDisconnected

from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, metadata, received, upload_row
from tests.fixtures.videos import row
from videoflix.extensions import db
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage.keys import media_store, sources
from videoflix.videos.uploads import chunks, tus
from videoflix.videos.uploads.headers import TusError, UploadLocked, parse_checksum

pytestmark = pytest.mark.media_store

LOCK_SECONDS = 1
STALL_SECONDS = LOCK_SECONDS + 0.5  # A's client sends nothing for longer than the lock lasts
FIRST = b"A" * chunks.CHUNK  # what A wrote before it stalled
RETRY = b"B" * 100_000  # what B, the client's retry, sends from HEAD's offset
WRONG = "sha1 " + b64encode(hashlib.sha1(b"not this body").digest()).decode()


@pytest.fixture
def app_config(app_config):
    app_config["TUS_LOCK_SECONDS"] = LOCK_SECONDS
    return app_config


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


class Stalled:
    """Request A's body: `first`, then a stall past the lock during which `meanwhile()` runs (the
    retry), then `then`: more bytes, or an exception (the client went away)."""

    def __init__(self, first, meanwhile, then=b""):
        self.items = [first, self._stall, then]
        self.meanwhile, self.during = meanwhile, None

    def _stall(self):
        time.sleep(STALL_SECONDS)
        self.during = self.meanwhile()

    def read(self, size=-1):
        while self.items:
            item = self.items.pop(0)
            if isinstance(item, BaseException):
                raise item
            if callable(item):
                item()
            elif item:
                if 0 <= size < len(item):
                    self.items.insert(0, item[size:])
                    item = item[:size]
                return item
        return b""


def local(app):
    with app.app_context():
        return media_store().local


def head(client, staff, location):
    response = client.head(location, headers={**TUS, **staff})
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def retry(client, app, staff, location, body):
    """Request B: HEAD, then PATCH `body` from there; its answer, and the offset and bytes it left."""
    offset = head(client, staff, location)
    response = client.patch(location, data=body, headers={**TUS, **staff, "Upload-Offset": str(offset),
                                                           "Content-Type": STREAM})
    assert response.status_code == 204, response.get_json()
    return response, head(client, staff, location), received(app, id_of(location))


def request_a(app, location, stream, checksum=None):
    """Run request A (the body `stream` from offset 0) as the route would; what it raised."""
    with app.app_context():
        upload = db.session.get(TusUpload, id_of(location))
        with pytest.raises((TusError, ClientDisconnected)) as raised:
            tus.write(upload, stream, 0, checksum=checksum)
    return raised.value


PATHS = {
    "past Upload-Length": dict(then=b"x" * (3 * chunks.CHUNK), checksum=None),
    "checksum mismatch": dict(then=b"", checksum=WRONG),
    "disconnect with a checksum": dict(then=ClientDisconnected(), checksum=WRONG),
}


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_a_request_that_lost_its_lock_changes_nothing(client, app, staff, path):
    length = len(FIRST) + len(RETRY) + 1000
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": str(length),
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    stream = Stalled(FIRST, lambda: retry(client, app, staff, location, RETRY), path["then"])
    checksum = None if path["checksum"] is None else parse_checksum(path["checksum"])

    error = request_a(app, location, stream, checksum)

    answer, offset, data = stream.during
    if local(app):  # A's first bytes were on disk: B went on from them (the report's case)
        assert answer.headers["Upload-Offset"] == str(len(FIRST) + len(RETRY)) == str(offset)
        assert data == FIRST + RETRY
    assert head(client, staff, location) == offset  # what B was told stands
    assert received(app, id_of(location)) == data
    assert upload_row(app, id_of(location))["locked_by"] is None
    # Locally A learns it lost the lock (423) before it would cut the file; from the bucket it
    # simply puts nothing (its part waits in a local file until a refresh of the lock).
    assert isinstance(error, UploadLocked) or not local(app), error


def stored(app, video_id):
    """(size, SHA-256) of the video's stored original."""
    with app.app_context(), sources().open(row(app, video_id)["source_file"]) as stream:
        data = stream.read()
    return len(data), hashlib.sha256(data).hexdigest()


COMPLETING = {k: PATHS[k] for k in ("past Upload-Length", "disconnect with a checksum")}


@pytest.mark.parametrize("path", COMPLETING.values(), ids=COMPLETING.keys())
def test_the_stored_original_of_a_completed_upload_stays_whole(client, app, staff, clip_360p, path):
    body = clip_360p.read_bytes()
    half = len(body) // 2
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": str(len(body)),
                                                     "Upload-Metadata": metadata()}).headers["Location"]

    def complete():
        offset = head(client, staff, location)
        response = client.patch(location, data=body[offset:], headers={
            **TUS, **staff, "Upload-Offset": str(offset), "Content-Type": STREAM})
        assert response.status_code == 204, response.get_json()
        return int(response.headers["Video-Id"])

    stream = Stalled(body[:half], complete, path["then"])
    checksum = None if path["checksum"] is None else parse_checksum(path["checksum"])

    error = request_a(app, location, stream, checksum)

    video_id = stream.during
    assert row(app, video_id)["status"] == "ready" and row(app, video_id)["source_size"] == len(body)
    assert stored(app, video_id) == (len(body), hashlib.sha256(body).hexdigest())
    assert upload_row(app, id_of(location))["status"] == "done"
    # Locally A learns it lost the lock (423) before it would cut the file; from the bucket it
    # simply puts nothing (its part waits in a local file until a refresh of the lock).
    assert isinstance(error, UploadLocked) or not local(app), error


def test_a_taken_over_upload_is_out_of_reach_of_its_last_holders_open_file(client, app, staff, clip_360p):
    """Whatever a request whose lock lapsed still does to the file it opened (here: writes, then
    cuts it to nothing) reaches neither the upload nor, once completed, its stored original."""
    if not local(app):
        pytest.skip("scratch files are local; in the bucket, parts are put only after a refresh")
    body = clip_360p.read_bytes()
    half = len(body) // 2
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": str(len(body)),
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    upload_id = id_of(location)
    with app.app_context():
        lost = tus.locked(upload_id).__enter__()  # request A: holds the lock, the file open
        opened = open(chunks.tus_root() / upload_id / "data", "r+b")  # noqa: SIM115 - closed below
    opened.write(body[:half])
    opened.flush()
    time.sleep(STALL_SECONDS)  # A stalls: its lock lapses
    response = client.patch(location, data=body[half:], headers={
        **TUS, **staff, "Upload-Offset": str(head(client, staff, location)), "Content-Type": STREAM})
    assert response.status_code == 204, response.get_json()
    video_id = int(response.headers["Video-Id"])
    try:
        opened.seek(0)
        opened.write(b"\0" * 1000)
        opened.truncate(0)
        opened.flush()
    finally:
        opened.close()
    assert stored(app, video_id) == (len(body), hashlib.sha256(body).hexdigest())
    assert lost.token and upload_row(app, upload_id)["locked_by"] is None


def test_a_takeover_keeps_the_bytes_and_the_offset(client, app, staff):
    """The fence (a copy under the old name) keeps every byte: HEAD and the next PATCH see them."""
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "10",
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    client.patch(location, data=b"abcd", headers={**TUS, **staff, "Upload-Offset": "0", "Content-Type": STREAM})
    with app.app_context():
        tus.locked(id_of(location)).__enter__()  # a request that died holding the lock
    time.sleep(STALL_SECONDS)
    response = client.patch(location, data=b"ef", headers={
        **TUS, **staff, "Upload-Offset": "4", "Content-Type": STREAM})
    assert response.status_code == 204 and response.headers["Upload-Offset"] == "6"
    assert received(app, id_of(location)) == b"abcdef"
    assert upload_row(app, id_of(location))["locked_by"] is None

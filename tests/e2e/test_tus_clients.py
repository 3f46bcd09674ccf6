"""tus against a real server (werkzeug in a thread, real sockets): tuspy uploads in chunks, the test
kills a connection in the middle of a PATCH and the upload resumes from HEAD's offset; two
clients writing the same upload at once cannot interleave."""
import hashlib
import io
import os
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests
from tusclient.client import TusClient

from tests.fixtures.live_server import file_database, serve
from tests.fixtures.tus_uploads import FIELDS, STREAM, TUS, bearer, id_of, metadata, received, scratch, upload_row
from tests.fixtures.videos import row
from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage.keys import source_path
from videoflix.videos.uploads import tus


@pytest.fixture
def app_config(app_config, tmp_path):
    """SQLite becomes a file the server's threads share."""
    file_database(app_config, tmp_path / "tus.sqlite3")
    return app_config


@pytest.fixture
def base_url(app):
    with serve(app) as url:
        yield url


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


def wait_for(condition, timeout=20):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def raw_patch(url, headers, offset, length):
    """A socket that has sent a PATCH's headers announcing `length` bytes at `offset`, and no body."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    lines = [f"PATCH {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Type: {STREAM}",
             f"Content-Length: {length}", f"Upload-Offset: {offset}", "Connection: close",
             *(f"{k}: {v}" for k, v in {**TUS, **headers}.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def response_of(sock):
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    status = int(head.split(" ", 2)[1])
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
    return status, {k.lower(): v for k, v in headers.items()}


def unlocked(app, upload_id):
    return lambda: upload_row(app, upload_id)["locked_by"] is None


def test_tuspy_resumes_after_the_connection_dies_mid_patch(app, base_url, staff, clip_720p):
    data = clip_720p.read_bytes()
    chunk = len(data) // 5 + 1
    client = TusClient(f"{base_url}/api/uploads/", headers=staff)
    stream = io.BytesIO(data)  # a file_path's file is left open by tuspy
    first = client.uploader(file_stream=stream, chunk_size=chunk, metadata=FIELDS, upload_checksum=True)
    first.upload(stop_at=2 * chunk)
    upload_id = id_of(first.url)
    assert upload_row(app, upload_id)["length"] == len(data)

    # The connection dies halfway through the third chunk: what arrived is kept, nothing more.
    sock = raw_patch(first.url, staff, 2 * chunk, chunk)
    sock.sendall(data[2 * chunk:2 * chunk + chunk // 2])
    wait_for(lambda: upload_row(app, upload_id)["locked_by"] is not None)
    sock.close()
    wait_for(unlocked(app, upload_id))

    resumed = client.uploader(file_stream=stream, chunk_size=chunk, url=first.url, upload_checksum=True)
    assert resumed.offset == 2 * chunk + chunk // 2  # HEAD's Upload-Offset: the bytes on disk
    resumed.upload()
    video_id = int(resumed.request.response_headers["video-id"])
    assert resumed.request.status_code == 204

    video = row(app, video_id)
    assert video["status"] == "ready" and video["title"] == "Resumed"  # transcoded inline (HUEY_IMMEDIATE)
    with app.app_context():
        stored = source_path(db.session.get(Video, video_id)).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    assert not scratch(app, upload_id).exists()


def test_two_clients_writing_one_upload_cannot_interleave(app, base_url, staff):
    response = requests.post(f"{base_url}/api/uploads/", headers={
        **TUS, **staff, "Upload-Length": "32", "Upload-Metadata": metadata()})
    url = response.headers["Location"]
    upload_id = id_of(url)

    winner = raw_patch(url, staff, 0, 8)
    winner.sendall(b"AAAA")
    wait_for(lambda: upload_row(app, upload_id)["locked_by"] is not None)
    loser = requests.patch(url, data=b"BBBBBBBB", headers={**TUS, **staff, "Upload-Offset": "0",
                                                            "Content-Type": STREAM})
    assert loser.status_code == 423
    assert loser.json() == {"detail": "Another request is writing to this upload; try again shortly."}
    winner.sendall(b"AAAA")
    status, headers = response_of(winner)
    assert (status, headers["upload-offset"]) == (204, "8")

    late = requests.patch(url, data=b"BBBBBBBB", headers={**TUS, **staff, "Upload-Offset": "0",
                                                           "Content-Type": STREAM})
    assert late.status_code == 409
    assert (scratch(app, upload_id) / "data").read_bytes() == b"AAAAAAAA"
    head = requests.head(url, headers={**TUS, **staff})
    assert head.headers["Upload-Offset"] == "8"


def test_a_writer_in_another_process_holds_the_lock(app, client, staff):
    """The lock is the database's, so it holds across web processes: while a PATCH in another
    process is receiving its body, a PATCH here gets 423; once it is done, a stale offset gets 409."""
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "32",
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    upload_id = id_of(location)
    body, more = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the other web process
        try:
            os.close(more)
            with app.app_context(), os.fdopen(body, "rb", buffering=0) as stream:
                db.engine.dispose(close=False)  # the parent's connections stay the parent's
                tus.write(db.session.get(TusUpload, upload_id), stream, 0)
                os._exit(0)
        finally:
            os._exit(1)
    os.close(body)
    os.write(more, b"AAAA")
    wait_for(lambda: upload_row(app, upload_id)["locked_by"] is not None)
    second = client.patch(location, data=b"BBBBBBBB", headers={**TUS, **staff, "Upload-Offset": "0",
                                                                "Content-Type": STREAM})
    assert second.status_code == 423
    os.write(more, b"AAAA")
    os.close(more)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert upload_row(app, upload_id)["locked_by"] is None
    late = client.patch(location, data=b"BBBBBBBB", headers={**TUS, **staff, "Upload-Offset": "0",
                                                              "Content-Type": STREAM})
    assert late.status_code == 409
    assert received(app, upload_id) == b"AAAAAAAA"
    assert client.head(location, headers={**TUS, **staff}).headers["Upload-Offset"] == "8"

"""The S3 store's bounded waits and circuit, against an endpoint where nothing listens (no server
needed): the first call fails fast with StorageUnavailable and opens the circuit; until it closes,
calls fail at once without a request; then one call probes again (issue 22)."""
import errno
import socket

import pytest

from tests.fixtures.object_store import free_ports
from videoflix.videos.storage.backends import StorageUnavailable, storage_fault
from videoflix.videos.storage.s3 import S3Store, unreachable


def store(**options):
    return S3Store(bucket="b", endpoint_url=f"http://127.0.0.1:{free_ports(1)[0]}", access_key="k",
                   secret_key="s" * 40, **options)


def sent(s3):
    """The HTTP requests (their methods) the store's clients try to send."""
    names = []
    for client in (s3.client, s3.transfer_client):
        client.meta.events.register("before-send.s3", lambda request=None, **kw: names.append(request.method))
    return names


def test_a_refused_connection_opens_the_circuit_and_later_calls_send_nothing():
    s3 = store(attempts=3, retry_after=30)
    requests = sent(s3)
    with pytest.raises(StorageUnavailable) as first:
        s3.stat("a/b")
    assert requests == ["HEAD"]  # no retry after a refused connection, whatever the attempts
    assert first.value.retry_after >= 1 and not first.value.full
    assert str(first.value) == "The media store is unavailable. Please try again later."
    for call in (lambda: s3.read("a/b"), lambda: s3.list("a"), lambda: s3.delete("a/b")):
        with pytest.raises(StorageUnavailable) as later:
            call()
        assert 1 <= later.value.retry_after <= 30
    assert requests == ["HEAD"]  # the circuit answered


def test_the_circuit_lets_one_call_probe_once_its_time_is_up():
    s3 = store(retry_after=30)
    requests = sent(s3)
    with pytest.raises(StorageUnavailable):
        s3.stat("a/b")
    s3.circuit.open_until = 0.0  # the time is up
    with pytest.raises(StorageUnavailable):
        s3.stat("a/b")
    assert requests == ["HEAD", "HEAD"]


def test_a_hung_endpoint_fails_within_the_read_timeout():
    silent = socket.socket()  # accepts connections (the kernel does), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        s3 = S3Store(bucket="b", endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}", access_key="k",
                     secret_key="s" * 40, timeouts=(0.5, 0.3), attempts=3)
        requests = sent(s3)
        with pytest.raises(StorageUnavailable) as error:
            s3.stat("a/b")
        assert type(error.value.__cause__).__name__ == "ReadTimeoutError"
        assert requests == ["HEAD"]  # a timeout is not retried either
    finally:
        silent.close()


def test_storage_faults_are_told_from_other_errors():
    assert storage_fault(OSError(errno.ENOSPC, "No space left on device")).full
    assert storage_fault(RuntimeError("x")) is None
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("while publishing") from inner
    except RuntimeError as outer:
        assert storage_fault(outer).detail == "No space left on the media disk."
    assert not unreachable(KeyError("x"))

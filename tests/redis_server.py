"""A redis-server of a test's own, on a free port, without persistence, that the test stops and
starts or hangs (SIGSTOP) and resumes; never the shared Redis of TEST_REDIS_URL."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import redis

WAIT_SECONDS = 60  # a bound on waiting, not a timing assertion
# In CI (CI=true) a missing redis-server fails the tests that need it instead of skipping them.
needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None and not os.environ.get("CI"), reason="needs redis-server on PATH"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, what, log_path=None):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}" + (f"; log:\n{log_path.read_text()}" if log_path else ""))


class OwnRedis:
    def __init__(self, folder):
        self.port, self.folder, self.process = free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, "redis-server to answer")

    def answers(self):
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5) as client:
                return client.ping()
        except redis.RedisError:
            return False

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=WAIT_SECONDS)

    def hang(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)


"""A circuit breaker for a service that may go away (Redis, the media bucket): after a failure it
is not asked again for `seconds`; then exactly one caller probes it, and a success closes the
circuit, so a service that comes back is used again without a restart.

No Flask, no app: videoflix.connections.redis_conn and videoflix.videos.storage.backends each build theirs,
with the exception their callers already handle (`opened(retry_after)` makes it).
"""
import math
import threading
import time

# How long the one probing call may take before others may probe again.
PROBE_SECONDS = 1.0


class Circuit:
    """Open for `seconds` after a connection error or a timeout; then one caller probes."""

    def __init__(self, seconds, opened):
        self.seconds = seconds
        self.opened = opened  # retry_after (int seconds) -> the exception check() raises
        self.open_until = 0.0
        self.tripped = False
        self._lock = threading.Lock()

    def check(self):
        """Raise opened(retry_after) while open. Once the time is up, let exactly one caller
        through (the others wait out its probe) until success() or trip() says how it went."""
        if not self.tripped:
            return
        with self._lock:
            remaining = self.open_until - time.monotonic()
            if remaining > 0:
                raise self.opened(max(1, math.ceil(remaining)))
            self.open_until = time.monotonic() + PROBE_SECONDS

    def trip(self):
        with self._lock:
            self.tripped = True
            self.open_until = time.monotonic() + self.seconds

    def success(self):
        if self.tripped:
            with self._lock:
                self.tripped, self.open_until = False, 0.0

    def retry_after(self):
        """Seconds until the service is asked again (at least 1)."""
        return max(1, math.ceil(self.open_until - time.monotonic()))

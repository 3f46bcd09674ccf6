"""How the end-to-end scripts of .ci wait and report: `poll` (a predicate until it holds), and
`Steps`: one line a step, and a miss (a failed check, a wait that gave up) exits non-zero with a
line that names the script. Imported by .ci/smoke.py, .ci/smoke_s3.py and .ci/compose_e2e.py (run
as scripts, .ci/ is first on their path)."""
import time

WAIT = 300  # seconds: a bound on waiting, never a measurement


def poll(predicate, seconds, interval=0.5):
    """The predicate's first true value within `seconds` (asked every `interval`), else None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


class Steps:
    def __init__(self, name):
        self.name = name

    def step(self, message):
        print(f"--> {self.name}: {message}", flush=True)

    def check(self, condition, message):
        if not condition:
            raise SystemExit(f"!!! {self.name}: {message}")

    def wait_for(self, predicate, what, seconds=WAIT):
        value = poll(predicate, seconds)
        if not value:
            raise SystemExit(f"!!! {self.name}: gave up waiting for {what}")
        return value

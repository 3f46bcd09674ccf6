"""How the end-to-end scripts of .ci report: one line a step, and a miss (a failed check, a wait
that gave up) exits non-zero with a line that names the script. Imported by .ci/smoke_s3.py and
.ci/compose_e2e.py (run as scripts, .ci/ is first on their path)."""
import time

WAIT = 300  # seconds: a bound on waiting, never a measurement


class Steps:
    def __init__(self, name):
        self.name = name

    def step(self, message):
        print(f"--> {self.name}: {message}", flush=True)

    def check(self, condition, message):
        if not condition:
            raise SystemExit(f"!!! {self.name}: {message}")

    def wait_for(self, predicate, what, seconds=WAIT):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise SystemExit(f"!!! {self.name}: gave up waiting for {what}")

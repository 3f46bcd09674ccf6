"""Running ffmpeg: locate the binary, run an argument list, follow progress, classify errors.

Commands are built in ``transcode.py``; this module only runs them.
Pure Python + subprocess; no Flask, no app imports.
"""
from __future__ import annotations

import logging
import queue
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable

from videoflix.env import cpu_cores

from .probe import TranscodeError

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- ffmpeg binary

def ffmpeg_exe(ffmpeg: str | None = None) -> str:
    if ffmpeg:
        return ffmpeg
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # imported lazily: only needed without a system ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_version(ffmpeg: str | None = None) -> str | None:
    """First line of ``ffmpeg -version`` (e.g. "ffmpeg version 5.1.6 ..."), or None."""
    try:
        out = subprocess.run([ffmpeg_exe(ffmpeg), "-hide_banner", "-version"],
                             capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return None
    if out.returncode != 0 or not out.stdout:
        return None
    return out.stdout.splitlines()[0].strip()


def ffmpeg_available(ffmpeg: str | None = None) -> bool:
    return ffmpeg_version(ffmpeg) is not None


def default_threads() -> int:
    """ffmpeg's thread count when FFMPEG_THREADS is 0: the cores this process may use."""
    return cpu_cores()


# ---------------------------------------------------------------- running

_TRANSIENT = re.compile(r"No space left|Cannot allocate memory|Resource temporarily|"
                        r"received signal|Killed|Too many open files|Broken pipe", re.I)
_PERMANENT = re.compile(r"Invalid data found|does not contain any stream|matches no streams|"
                        r"Error while decoding|moov atom not found|corrupt|Invalid NAL|"
                        r"could not find codec parameters|no frame!|decoding error|"
                        r"Error opening input|Stream specifier", re.I)


def _tail(lines, limit: int = 1000) -> str:
    useful = [ln.strip() for ln in lines if ln.strip()
              and not ln.lstrip().startswith(("Press [q]", "configuration:", "built with"))]
    text = "\n".join(useful[-8:])
    return text[-limit:] if len(text) > limit else text


def run_ffmpeg(cmd: list[str], *, duration: float, progress_cb: Callable[[int], None] | None,
               deadline: float | None, what: str = "ffmpeg",
               min_interval: float = 1.0, keepalive: float = 5.0) -> None:
    """Run ffmpeg; raise TranscodeError when it fails (not transient when it ran past ``deadline``:
    it would only time out again).

    ``progress_cb(percent)`` (from ``-progress pipe:1``) is called at most every ``min_interval``
    seconds with a percent that grew, and at least every ``keepalive`` seconds while ffmpeg runs,
    then with the last percent again: the caller's heartbeat even when progress stalls.
    """
    log.info("running %s: %s", what, shlex.join(cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace")
    except OSError as exc:
        raise TranscodeError(f"Could not start ffmpeg: {exc}", transient=True) from exc
    errlines: deque[str] = deque(maxlen=50)
    events: queue.Queue = queue.Queue()

    def read_err():
        for line in proc.stderr:
            errlines.append(line.rstrip("\n"))

    def read_out():
        for line in proc.stdout:
            key, _, val = line.strip().partition("=")
            if key in ("out_time_us", "out_time_ms") and val.isdigit():
                events.put(int(val) / 1e6)  # both are microseconds in ffmpeg 5.x
        events.put(None)

    readers = [threading.Thread(target=read_err, daemon=True),
               threading.Thread(target=read_out, daemon=True)]
    for t in readers:
        t.start()
    last_pct, last_call = 0, time.monotonic()  # transcode() already reported 0
    timed_out = False
    try:
        while True:
            wait = 0.25
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            try:
                ev = events.get(timeout=wait)
            except queue.Empty:
                ev = False
            if ev is None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                break
            if progress_cb is None:
                continue
            pct = last_pct
            if ev and duration > 0:
                pct = max(last_pct, min(99, int(ev * 100 / duration)))
            now = time.monotonic()
            if (pct > last_pct and now - last_call >= min_interval) or now - last_call >= keepalive:
                last_pct, last_call = pct, now
                progress_cb(pct)
        if not timed_out:
            try:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for t in readers:
            t.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if timed_out:
        raise TranscodeError(f"{what} timed out and was killed", transient=False)
    rc = proc.returncode
    if rc == 0:
        return
    tail = _tail(errlines) or f"{what} exited with status {rc}"
    if rc < 0:
        transient = True
        tail = f"{what} was killed by signal {-rc}. " + tail
    elif _TRANSIENT.search(tail):
        transient = True
    elif _PERMANENT.search(tail):
        transient = False
    else:
        transient = True
    log.warning("%s failed (rc=%s, transient=%s): %s", what, rc, transient, tail)
    raise TranscodeError(tail[-1000:], transient=transient)

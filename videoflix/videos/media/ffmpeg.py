"""Running ffmpeg: locate the binary, run an argument list, follow progress, classify errors.

Commands are built in ``transcode.py``; this module only runs them.
Pure Python + subprocess; no Flask, no app imports.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable

from .errors import MediaError

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- ffmpeg binary

def ffmpeg_exe(ffmpeg: str | None = None) -> str:
    """``ffmpeg`` if given, else $FFMPEG_BINARY, else ffmpeg on PATH, else imageio-ffmpeg's.

    The one place FFMPEG_BINARY is read: the app's FFMPEG_BINARY setting (None unless a test or
    a caller sets it) is passed in as ``ffmpeg``."""
    ffmpeg = ffmpeg or os.environ.get("FFMPEG_BINARY", "").strip()
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


def even(x: float) -> int:
    """The even size nearest to `x` (at least 2): what the encoders take for 4:2:0 pictures."""
    return max(2, int(round(x / 2.0)) * 2)


def fit(width: float, height: float, max_width: int, max_height: int) -> tuple[int, int]:
    """The even size of a `width` x `height` picture scaled down (never up) to fit in the box
    `max_width` x `max_height` (both even), its aspect ratio kept as far as sides of at least 2
    allow: however extreme the shape, the result is within the box."""
    scale = min(1.0, max_width / width, max_height / height)
    return min(max_width, even(width * scale)), min(max_height, even(height * scale))


def default_threads() -> int:
    """ffmpeg's thread count when the caller names none: the cores this process may run on (its
    CPU affinity, which a container's cpuset narrows), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------- running

_TRANSIENT = re.compile(r"No space left|Cannot allocate memory|Resource temporarily|"
                        r"received signal|Killed|Too many open files|Broken pipe", re.I)
# An encoder refusing its settings (a picture too large for JPEG or x264) refuses them again on
# every retry: permanent too.
_PERMANENT = re.compile(r"Invalid data found|does not contain any stream|matches no streams|"
                        r"Error while decoding|moov atom not found|corrupt|Invalid NAL|"
                        r"could not find codec parameters|no frame!|decoding error|"
                        r"Error opening input|Stream specifier|Error while opening encoder|Could not open encoder|"
                        r"Error initializing output stream|does not support resolutions|"
                        r"invalid width x height", re.I)


def _tail(lines, limit: int = 1000) -> str:
    useful = [ln.strip() for ln in lines if ln.strip()
              and not ln.lstrip().startswith(("Press [q]", "configuration:", "built with"))]
    text = "\n".join(useful[-8:])
    return text[-limit:] if len(text) > limit else text


def run_ffmpeg(cmd: list[str], *, duration: float, progress_cb: Callable[[int], None] | None,
               deadline: float | None, what: str = "ffmpeg",
               min_interval: float = 1.0, keepalive: float = 5.0,
               position: Callable[[], float] | None = None,
               feed: Callable[[object], None] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
    """Run ffmpeg; raise MediaError when it fails (not transient when it ran past ``deadline``:
    it would only time out again).

    ``progress_cb(percent)`` (from ``-progress pipe:1``) is called at most every ``min_interval``
    seconds with a percent that grew, and at least every ``keepalive`` seconds while ffmpeg runs,
    then with the last percent again: the caller's heartbeat even when progress stalls.

    ``position()``, when given, says how many seconds of the output are written so far and is
    read instead of ffmpeg's ``out_time``: with several outputs ffmpeg's own figure is not the
    encode's (a storyboard's tile filter holds its frames until a sprite is full, so ffmpeg 5.1
    reports nothing until the end and ffmpeg 9 reports the whole duration at once).

    ``feed(stdin)``, when given, runs in a thread of its own and writes ffmpeg's input into its
    stdin (a binary file it must close); an exception it raises fails the run (MediaError as it
    is; anything else as transient). ``pass_fds`` stay open in ffmpeg (an output "pipe:N").
    """
    log.info("running %s: %s", what, shlex.join(cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds)
    except OSError as exc:
        raise MediaError(f"Could not start ffmpeg: {exc}", transient=True) from exc
    run = _Run(proc, feed)
    try:
        timed_out = run.follow(duration, progress_cb, deadline, min_interval, keepalive, position)
    finally:
        run.stop()
    if timed_out:
        raise MediaError(f"{what} timed out and was killed", transient=False)
    if run.feed_error is not None:  # ffmpeg was stopped for it: its own status says nothing
        raise _feed_failure(run.feed_error)
    if proc.returncode != 0:
        raise _failure(what, proc.returncode, run.errlines)


def _feed_failure(error: BaseException) -> MediaError:
    """The error of a feed that failed: its own MediaError, else judged by its message as
    ffmpeg's stderr is (PyAV's errors are ffmpeg's: "Invalid data found ..." is permanent)."""
    if isinstance(error, MediaError):
        return error
    text = f"Reading the source failed: {error}"
    transient = bool(_TRANSIENT.search(text)) or not _PERMANENT.search(text)
    return MediaError(text[-1000:], transient=transient)


class _Run:
    """A started ffmpeg with two reader threads: stderr's last lines, and progress times (seconds)
    from stdout (None when stdout closes)."""

    def __init__(self, proc, feed=None):
        self.proc = proc
        self.errlines: deque[str] = deque(maxlen=50)
        self.events: queue.Queue = queue.Queue()
        self.feed_error: BaseException | None = None
        self.readers = [threading.Thread(target=self._read_err, daemon=True),
                        threading.Thread(target=self._read_out, daemon=True)]
        if feed is not None:
            self.readers.append(threading.Thread(target=self._feed, args=(feed,), daemon=True))
        for t in self.readers:
            t.start()

    def _feed(self, feed):
        pipe = _Stdin(self.proc.stdin)
        try:
            feed(pipe)
        except BaseException as error:  # noqa: BLE001 - reported by run_ffmpeg
            if pipe.broken:
                return  # ffmpeg stopped reading (it had what it needed, or failed: its status says)
            self.feed_error = error
            if self.proc.poll() is None:
                self.proc.kill()
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def _read_err(self):
        for raw in self.proc.stderr:
            self.errlines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _read_out(self):
        for raw in self.proc.stdout:
            key, _, val = raw.decode("utf-8", "replace").strip().partition("=")
            if key in ("out_time_us", "out_time_ms") and val.isdigit():
                self.events.put(int(val) / 1e6)  # both are microseconds in ffmpeg 5.x
        self.events.put(None)

    def _next_event(self, deadline):
        wait = 0.25 if deadline is None else min(0.25, max(0.0, deadline - time.monotonic()))
        try:
            return self.events.get(timeout=wait)
        except queue.Empty:
            return False

    def follow(self, duration, progress_cb, deadline, min_interval, keepalive, position=None) -> bool:
        """Report progress until ffmpeg closes stdout and exits; True when ``deadline`` passed."""
        last_pct, last_call = 0, time.monotonic()  # transcode() already reported 0
        while (ev := self._next_event(deadline)) is not None:
            if deadline is not None and time.monotonic() >= deadline:
                return True
            if progress_cb is None:
                continue
            pct = last_pct
            seconds = position() if position is not None else ev
            if seconds and duration > 0:
                pct = max(last_pct, min(99, int(seconds * 100 / duration)))
            now = time.monotonic()
            if (pct > last_pct and now - last_call >= min_interval) or now - last_call >= keepalive:
                last_pct, last_call = pct, now
                progress_cb(pct)
        try:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            return True
        return False

    def stop(self):
        """Kill ffmpeg if it still runs; reap it and its readers."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self.readers:
            t.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


class _Stdin:
    """ffmpeg's stdin as the feed writes it: notes when ffmpeg closed its end (PyAV reports that as
    an error of its own)."""

    def __init__(self, raw):
        self.raw, self.broken = raw, False

    def write(self, data):
        try:
            return self.raw.write(data)
        except (BrokenPipeError, ValueError):
            self.broken = True
            raise

    def flush(self):
        try:
            self.raw.flush()
        except (BrokenPipeError, ValueError):
            self.broken = True

    def close(self):
        try:
            self.raw.close()
        except OSError:
            self.broken = True


def _failure(what: str, rc: int, errlines) -> MediaError:
    """The error for a non-zero exit: killed by a signal, or a known transient or permanent cause
    in stderr (unknown causes count as transient)."""
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
    return MediaError(tail[-1000:], transient=transient)

"""Benchmark: playable in seconds, one film spread over workers, chunking's CPU cost, joins (issue 19).

Run from the repository root (make bench-progressive):

    .venv/bin/python bench/progressive.py [--reps 1] [--minutes 1,10] [--parallel-minutes 2] [--full]
                                          [--baseline-minutes 1] [--only a|bc] [--playable-only]

Every run is the real thing, from scratch: a fresh database, a web server (gunicorn with the
repository's gunicorn.conf.py, production profile), `flask worker` processes, a viewer and a staff
member signed in through /api/login/, the source sent by tus (POST, then PATCHes; the last PATCH
carries 1 KiB, so its time is the upload's own checks: the probe of every packet, the store, the
row, the queued job), then the video polled as a player would find it. Measured from the last
PATCH's response:

(a) time to playable: the master answers 200 and the first segment of every rendition it lists
    answers 200 (`make run`'s defaults: SQLite, the SQLite queue, local media, `flask worker` with
    WORKERS and FFMPEG_THREADS unset), and time to ready (`status` "ready": the whole ladder, which
    is what a viewer waited for before issue 19). Sources: 1080p @25 with a 1 kHz tone, --minutes
    long, one whose every rung is re-encoded (MPEG-4 Part 2 at 20 Mbit/s + MP3: 1.5 GB for 10
    minutes) and one whose 1080p rung is a stream copy (H.264 High 4 Mbit/s, keyframes every 2 s,
    AAC).
(b) one film, many workers: the re-encoded source (--parallel-minutes; --full: 10) in s3 mode
    (SeaweedFS, PostgreSQL, Redis), every worker WORKERS=1 FFMPEG_THREADS=1 with its own
    MEDIA_ROOT and MEDIA_SCRATCH and pinned to a core of its own with taskset (a one-core host;
    --no-pin: not pinned): two such workers against one, wall time to ready.
(c) chunking's CPU: the one-worker run of (b) against the same with TRANSCODE_CHUNK_SECONDS=0
    (one chunk: today's single pass), user+sys CPU of the worker process trees (/proc: every
    process below the worker, with the children each has reaped) from the last PATCH to ready.

(a') today, in the same run: the --baseline-minutes sources (default: the 1-minute ones; --full: all)
    also run with TRANSCODE_CHUNK_SECONDS=0 PUBLISH=complete (one chunk, published complete),
    the time to playable before issue 19.
(d) invisible joins: the finished chunked version of those runs decoded with ffmpeg as the client
    (tests/fixtures/media_checks.py): every rendition has the source's frame count and decodes
    without error, the tone has no 5 ms dropout and lasts as long as the source's within one AAC
    frame, and the SSIM around every segment boundary (+/- 1 s, frame order) is within 0.005 of
    the one-chunk version's there.

Runs of (b)/(c) alternate their order per repetition; medians over --reps. Sources are cached in
--work/sources. Heavy: run it alone (`flock /tmp/videoflix-heavy.lock make bench-progressive`).
Ports: TEST_PORT_RANGE (e.g. 9100-9199) when set, else any free ones.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.fixtures.media_checks import (  # noqa: E402
    aac_frame_seconds,
    frame_count,
    frame_ssim,
    make_tone_clip,
    media_playlists,
    source_frame_count,
    tone_dropouts,
    tone_seconds,
)
from tests.fixtures.object_store import SeaweedFS, free_ports  # noqa: E402

PY = sys.executable
PASSWORD = "bench-" + secrets.token_hex(8)
ORIGIN = "http://frontend.bench.test"
# TRANSCODE_CHUNK_SECONDS 0: one part, the single pass (a huge value still cuts after the first segment)
ONE_CHUNK = "0"
TODAY = {"TRANSCODE_CHUNK_SECONDS": ONE_CHUNK, "PUBLISH": "complete"}  # before issue 19
LAST_PATCH = 1024  # bytes in the last PATCH: its time is the upload's checks, not its transfer
PATCH_BYTES = 64 * 1024 * 1024
POLL = 0.1  # seconds between looks while waiting for playable; a look at the detail every POLL * 3
TARGETS = {"reencode": 10.0, "copy": 5.0}  # issue 19: seconds to playable for a 10-minute source
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The environment every process starts from: the caller's, without the settings a run decides.
DROPPED = ("DB_", "TEST_", "S3_", "MEDIA_", "REDIS", "HUEY", "DATABASE_URL", "WORKERS", "FFMPEG_THREADS",
           "TRANSCODE_", "PUBLISH", "VIDEOFLIX_ENV", "DEBUG", "FLASK_", "WEB_", "PORT", "HOST", "LOG_")


# ------------------------------------------------------------------ sources

def sources(folder: Path, minutes: float) -> dict[str, Path]:
    """The two 1080p sources of `minutes` (cached): every rung re-encoded, and the top rung copied."""
    seconds = round(minutes * 60)
    common = dict(width=1920, height=1080, fps=25)
    out = {
        "reencode": folder / f"reencode-1080p-{seconds}s.mkv",
        "copy": folder / f"copy-1080p-{seconds}s.mp4",
    }
    for kind, path in out.items():
        if not path.exists():
            print(f"  generating {path.name} ...", flush=True)
        if kind == "reencode":
            make_tone_clip(path, seconds, video="mpeg4", bitrate="20M", audio="mp3", **common)
        else:
            make_tone_clip(path, seconds, video="h264", bitrate="4M", audio="aac", preset="superfast", **common)
    return out


# ------------------------------------------------------------------ processes

def proc_tree_cpu(roots: list[int]) -> float:
    """user+sys seconds of every live process at or below `roots`, each with the CPU of the
    children it has reaped (an ffmpeg that finished counts in its worker's cutime/cstime)."""
    parent, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        pid = int(entry)
        parent[pid] = int(fields[1])
        times[pid] = sum(int(x) for x in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
    total = 0.0
    for pid in times:
        p = pid
        while p > 1:
            if p in roots:
                total += times[pid]
                break
            p = parent.get(p, 0)
    return total


class Processes:
    """Processes of one run, each in its own process group, logging below the run's folder."""

    def __init__(self, folder: Path):
        self.folder, self.running = folder, {}

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "ab") as log:
            self.running[name] = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, start_new_session=True)
        return self.running[name]

    def stop_all(self):
        for proc in self.running.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # a run's result is taken: nothing to finish
                except ProcessLookupError:
                    pass
        for proc in self.running.values():
            proc.wait(timeout=30)
        self.running.clear()

    def tail(self, lines: int = 15):
        for log in sorted(self.folder.glob("*.log")):
            print(f"--- last lines of {log.name}", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]), file=sys.stderr)


def flask(env: dict, *args: str) -> str:
    done = subprocess.run([PY, "-m", "flask", "--app", "wsgi", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def wait_until(predicate, what: str, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise RuntimeError(f"gave up waiting for {what}")


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def sign_in(base: str, email: str) -> requests.Session:
    """A session that sends the access token as a Bearer token (the cookies are Secure, and the
    servers run the production profile on plain HTTP)."""
    s = requests.Session()
    r = s.post(f"{base}/api/login/", json={"email": email, "password": PASSWORD}, headers={"Origin": ORIGIN})
    if r.status_code != 200:
        raise RuntimeError(f"login of {email}: {r.status_code} {r.text[:200]}")
    s.headers["Authorization"] = f"Bearer {r.cookies['access_token']}"
    s.cookies.clear()
    return s


# ------------------------------------------------------------------ one run

@dataclass
class Setup:
    """What a run starts: the storage mode and one dict of settings per worker process."""

    name: str
    source: Path
    s3: bool = False
    workers: list[dict] = field(default_factory=lambda: [{}])
    settings: dict = field(default_factory=dict)  # for every process (e.g. TRANSCODE_CHUNK_SECONDS)
    until: str = "ready"  # or "playable": stop there (the rest is not measured)
    keep: Path | None = None  # local mode: copy the finished version folder here


@dataclass
class Result:
    setup: Setup
    upload_s: float = 0.0          # POST to the last PATCH's response
    checks_s: float = 0.0          # the last PATCH (1 KiB): the upload's own checks
    playable_s: float | None = None  # from the last PATCH's response
    detail_playable_s: float | None = None  # when the detail first said "playable": true
    ready_s: float | None = None
    cpu_s: float | None = None     # worker trees, from the last PATCH's response to ready
    cpu_each: list[float] = field(default_factory=list)
    busy_each: list[float] = field(default_factory=list)  # seconds each worker spent in tasks (Huey's log)
    tasks_each: list[int] = field(default_factory=list)
    progress_at_playable: int | None = None
    renditions: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work)
        self.store: SeaweedFS | None = None
        self.runs = 0
        self.tag = secrets.token_hex(3)  # in every Redis key of this bench's runs

    def base_env(self, run_dir: Path, s3: bool) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
        env.update(VIDEOFLIX_ENV="production", SECRET_KEY=secrets.token_urlsafe(48), EMAIL_BACKEND="console",
                   FRONTEND_URL=ORIGIN, LOG_JSON="0", LOG_LEVEL="INFO", MAX_UPLOAD_MB="4096",
                   WEB_CONCURRENCY="2", PYTHONDONTWRITEBYTECODE="1")
        if s3:
            db = f"{self.args.pg}/{self.args.db_name}"
            env.update(self.store.settings(self.args.bucket, prefix=f"run{self.runs}"))
            env.update(DATABASE_URL=db, REDIS_URL=self.args.redis_url, REDIS_PREFIX=f"benchprog{self.tag}r{self.runs}:")
        else:  # make run's defaults: a SQLite database and queue, media below MEDIA_ROOT
            env.update(DATABASE_URL=f"sqlite:///{run_dir}/videoflix.sqlite3", HUEY_FILE=str(run_dir / "huey.sqlite3"),
                       MEDIA_ROOT=str(run_dir / "media"), REDIS_URL="")
        return env

    def prepare(self, env: dict, s3: bool):
        if s3:
            subprocess.run(["psql", f"{self.args.pg}/postgres", "-v", "ON_ERROR_STOP=1", "-q",
                            "-c", f"DROP DATABASE IF EXISTS {self.args.db_name} WITH (FORCE)",
                            "-c", f"CREATE DATABASE {self.args.db_name}"], check=True, capture_output=True)
            self.forget_queues()
        flask(env, "db", "upgrade")
        if s3:
            flask(env, "storage", "init")
        flask(env, "create-user", "staff@example.com", "--staff", "--password", PASSWORD)
        flask(env, "create-user", "viewer@example.com", "--password", PASSWORD)

    def run(self, setup: Setup) -> Result:
        self.runs += 1
        run_dir = Path(tempfile.mkdtemp(prefix=f"run{self.runs}-", dir=self.work))
        if setup.s3 and self.store is None:
            self.store = SeaweedFS(self.work / f"seaweedfs-{self.tag}").start()
            self.store.client().create_bucket(Bucket=self.args.bucket)
        env = {**self.base_env(run_dir, setup.s3), **setup.settings}

        def own(name, extra=None):  # in s3 mode every process has its own folders, as on its own host
            folders = {"MEDIA_ROOT": str(run_dir / name / "media"), "MEDIA_SCRATCH": str(run_dir / name / "scratch")}
            return {**env, **(folders if setup.s3 else {}), **(extra or {})}

        procs = Processes(run_dir)
        ok = False
        try:
            self.prepare(own("admin"), setup.s3)
            port = free_ports(1)[0]
            base = f"http://127.0.0.1:{port}"
            procs.start("web", [PY, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                        own("web", {"HOST": "127.0.0.1", "PORT": str(port)}))
            wait_until(lambda: answers(f"{base}/api/health/"), "the web server", 60)
            staff, viewer = sign_in(base, "staff@example.com"), sign_in(base, "viewer@example.com")
            workers = [procs.start(f"worker{i}", [*_pinned(extra), PY, "-m", "flask", "--app", "wsgi", "worker"],
                                   own(f"worker{i}", extra))
                       for i, extra in enumerate(setup.workers, 1)]
            wait_until(lambda: all(_consuming(run_dir / f"worker{i}.log") for i in range(1, len(workers) + 1)),
                       "the workers to consume", 60)
            result = Result(setup)
            roots = [w.pid for w in workers]
            video_id, t0, cpu0 = self.upload(base, staff, setup.source, result, roots)
            self.follow(base, viewer, video_id, result, t0, roots, cpu0)
            for i in range(1, len(workers) + 1):
                done = task_times(run_dir / f"worker{i}.log")
                result.busy_each.append(sum(done))
                result.tasks_each.append(len(done))
            if setup.keep is not None:
                version = next((run_dir / "media").glob(f"hls/{video_id}/*/master.m3u8")).parent
                shutil.rmtree(setup.keep, ignore_errors=True)
                shutil.copytree(version, setup.keep)
            ok = True
            return result
        finally:
            procs.stop_all()
            if not ok:
                procs.tail()
            if ok or not self.args.keep_failed:
                shutil.rmtree(run_dir, ignore_errors=True)

    def upload(self, base, staff, source: Path, result: Result, roots):
        """tus: creation, PATCHes of PATCH_BYTES, then the last LAST_PATCH bytes alone; the video's id,
        the last response's time and the worker trees' CPU then."""
        size = source.stat().st_size
        meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                        {"filename": source.name, "title": f"Bench {source.stem}", "category": "Bench"}.items())
        tus = {"Tus-Resumable": "1.0.0"}
        began = time.monotonic()
        created = staff.post(f"{base}/api/uploads/",
                             headers={**tus, "Upload-Length": str(size), "Upload-Metadata": meta})
        if created.status_code != 201:
            raise RuntimeError(f"tus creation: {created.status_code} {created.text[:300]}")
        url = urljoin(f"{base}/api/uploads/", created.headers["Location"])
        offset = 0
        with open(source, "rb") as f:
            while offset < size:
                last = size - offset <= LAST_PATCH
                n = size - offset if last else min(PATCH_BYTES, size - offset - LAST_PATCH)
                body = f.read(n)
                sent = time.monotonic()
                r = staff.patch(url, data=body, headers={**tus, "Upload-Offset": str(offset),
                                                         "Content-Type": "application/offset+octet-stream"})
                done = time.monotonic()
                offset += n
                if r.status_code != 204:
                    raise RuntimeError(f"PATCH at {offset - n}: {r.status_code} {r.text[:300]}")
        cpu0 = [proc_tree_cpu([root]) for root in roots]
        result.upload_s, result.checks_s = done - began, done - sent
        return int(r.headers["Video-Id"]), done, cpu0

    def follow(self, base, viewer, video_id, result: Result, t0, roots, cpu0):
        """Poll as a player would until playable (and ready, unless the setup stops at playable)."""
        api = f"{base}/api/video/{video_id}/"
        deadline = t0 + self.args.timeout
        looks = 0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if result.playable_s is None and playable(viewer, api, result):
                result.playable_s = now - t0
            if looks % 3 == 0 or result.playable_s is not None:
                detail = viewer.get(api).json()
                if detail.get("status") == "failed":
                    raise RuntimeError(f"video {video_id} failed: {detail}")
                if detail.get("playable") and result.detail_playable_s is None:
                    result.detail_playable_s = now - t0
                if result.playable_s is not None and result.progress_at_playable is None:
                    result.progress_at_playable = detail.get("progress")
                if detail.get("status") == "ready":
                    result.ready_s = time.monotonic() - t0
                    if result.playable_s is None and playable(viewer, api, result):
                        result.playable_s = result.ready_s
                    result.cpu_each = [proc_tree_cpu([root]) - before for root, before in zip(roots, cpu0)]
                    result.cpu_s = sum(result.cpu_each)
                    return
                if result.playable_s is not None and result.setup.until == "playable":
                    return
            looks += 1
            time.sleep(POLL if result.playable_s is None else 1.0)
        raise RuntimeError(f"video {video_id}: not {result.setup.until} after {self.args.timeout} s")

    def forget_queues(self):
        """Delete the keys of earlier runs (their queues included: Huey names its keys after REDIS_PREFIX)."""
        import redis

        client = redis.Redis.from_url(self.args.redis_url)
        keys = list(client.scan_iter("*benchprog*"))
        if keys:
            client.delete(*keys)
        client.close()

    def close(self):
        if self.store is not None:
            self.forget_queues()
            self.store.stop()
            shutil.rmtree(self.store.folder, ignore_errors=True)
        subprocess.run(["psql", f"{self.args.pg}/postgres", "-q", "-c",
                        f"DROP DATABASE IF EXISTS {self.args.db_name} WITH (FORCE)"], check=False, capture_output=True)


def task_times(log: Path) -> list[float]:
    """The seconds of every task a worker ran (Huey logs "... executed in 12.345s")."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [float(m) for m in re.findall(r"executed in ([0-9.]+)s", text)]


def _consuming(log: Path) -> bool:
    try:
        return "Huey consumer" in log.read_text(errors="replace")
    except OSError:
        return False


def playable(viewer: requests.Session, api: str, result: Result) -> bool:
    """The master answers 200 and so does the first segment of every rendition it lists."""
    master = viewer.get(urljoin(api, "master.m3u8"))
    if master.status_code != 200:
        return False
    master_url = master.url
    variants = [ln.strip() for ln in master.text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not variants:
        return False
    for uri in variants:
        playlist_url = urljoin(master_url, uri)
        playlist = viewer.get(playlist_url)
        if playlist.status_code != 200:
            return False
        segments = [ln.strip() for ln in playlist.text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not segments:
            return False
        first = viewer.get(urljoin(playlist_url, segments[0]), stream=True)
        status = first.status_code
        first.close()
        if status != 200:
            return False
    result.renditions = [uri.split("/")[0] for uri in variants]
    return True


# ------------------------------------------------------------------ the report

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, unit="s", digits=1):
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--reps", type=int, default=1, help="runs of every setup (medians)")
    ap.add_argument("--minutes", default="1,10", help="source lengths of (a), comma-separated")
    ap.add_argument("--parallel-minutes", type=float, default=2.0, help="the source length of (b) and (c)")
    ap.add_argument("--full", action="store_true", help="(b) and (c) on the 10-minute source, as issue 19 says")
    ap.add_argument("--only", choices=["a", "bc"], help="run one part only")
    ap.add_argument("--no-pin", action="store_true",
                    help="(b)/(c): do not pin each worker to a core of its own (taskset)")
    ap.add_argument("--playable-only", action="store_true", help="(a): stop each run once playable (no ready time)")
    ap.add_argument("--baseline-minutes", default="1",
                    help="(a) sources also run as today (one chunk, PUBLISH=complete), both versions checked "
                         "for invisible joins (d); empty: none")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "videoflix-bench-progressive"))
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432"),
                    help="PostgreSQL server for (b)/(c) (BENCH_PG)")
    ap.add_argument("--db-name", default=os.environ.get("BENCH_DB_NAME", "videoflix_bench_progressive"))
    ap.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/7")
    ap.add_argument("--bucket", default="videoflix-bench")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds a run may take at most")
    ap.add_argument("--keep-failed", action="store_true", help="keep a failed run's folder (logs, media)")
    args = ap.parse_args()
    if args.full:
        args.parallel_minutes = 10.0
        args.baseline_minutes = args.minutes
    work = Path(args.work)
    (work / "sources").mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}  work: {work}  reps: {args.reps}", flush=True)
    bench = Bench(args)
    checks, results_a, results_bc, joins = [], {}, {}, []
    try:
        if args.only in (None, "a"):
            results_a = part_a(bench, args, work, checks)
            if not args.playable_only:  # (d) needs finished versions (a growing one never ends)
                joins = part_d(results_a, checks)
        if args.only in (None, "bc"):
            results_bc = part_bc(bench, args, work, checks)
    finally:
        bench.close()
    print_tables(results_a, results_bc, args)
    print_joins(joins)
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores: above 2, other work competed)")
    return 0 if all(ok for _, ok in checks) else 1


def part_a(bench, args, work, checks):
    """(a) on `make run`'s defaults; for the --baseline-minutes sources also today's behaviour (one
    chunk, PUBLISH=complete) and both finished versions kept for (d)."""
    baseline = {float(m) for m in args.baseline_minutes.split(",") if m}
    cases = {}
    for m in (float(m) for m in args.minutes.split(",")):
        for kind, src in sources(work / "sources", m).items():
            keep = work / "outputs" / f"{m:g}min-{kind}"
            cases[(m, kind, "chunked")] = Setup(f"{m:g} min {kind}", src, keep=keep if m in baseline else None,
                                                until="playable" if args.playable_only else "ready")
            if m in baseline:
                cases[(m, kind, "today")] = Setup(f"{m:g} min {kind}, today", src, keep=today_of(keep),
                                                  settings=TODAY)
    results = {case: [] for case in cases}
    for rep in range(args.reps):
        for case, setup in cases.items():
            r = bench.run(setup)
            results[case].append(r)
            print(f"  (a) rep {rep + 1} {setup.name}: checks {fmt(r.checks_s, digits=2)}, playable "
                  f"{fmt(r.playable_s)} (progress then {r.progress_at_playable}), detail playable "
                  f"{fmt(r.detail_playable_s)}, ready {fmt(r.ready_s)}, renditions {r.renditions}, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    for (m, kind, variant), rs in results.items():
        if m == 10 and variant == "chunked":
            value = med(r.playable_s for r in rs)
            checks.append((f"(a) 10 min {kind}: time to playable {fmt(value)} <= {TARGETS[kind]:g} s",
                           value is not None and value <= TARGETS[kind]))
    return results


def today_of(keep: Path) -> Path:
    return keep.with_name(keep.name + "-today")


def part_d(results_a, checks):
    """(d) invisible joins: each kept chunked version against its source and against today's."""
    rows = []
    for (m, kind, variant), rs in results_a.items():
        setup = rs[-1].setup
        if variant != "chunked" or setup.keep is None:
            continue
        today = today_of(setup.keep)
        source = setup.source
        frames, source_tone = source_frame_count(source), tone_seconds(source)
        for label, playlist in media_playlists(setup.keep).items():
            decode = frame_count(playlist)
            dropouts = tone_dropouts(playlist)
            tone_delta = tone_seconds(playlist) - source_tone
            ssim = frame_ssim(playlist, source)
            ssim_today = frame_ssim(media_playlists(today)[label], source)
            joins = [round(t, 3) for t in boundaries(playlist)]
            worst = worst_join_delta(ssim, ssim_today, joins)
            rows.append((f"{m:g} min {kind}", label, decode.frames, frames, decode.errors, dropouts, tone_delta,
                         worst, len(joins)))
            name = f"(d) {m:g} min {kind} {label}"
            checks.append((f"{name}: {decode.frames} frames of {frames}, decodes without error",
                           decode.frames == frames and not decode.errors))
            checks.append((f"{name}: {len(dropouts)} tone dropouts", not dropouts))
            checks.append((f"{name}: tone length {tone_delta * 1000:+.1f} ms within one AAC frame",
                           abs(tone_delta) <= aac_frame_seconds()))
            checks.append((f"{name}: worst join SSIM {fmt(worst[1], '', 4)} vs today's {fmt(worst[2], '', 4)} "
                           f"at {worst[0]} s (within 0.005)", worst[2] is None or worst[1] >= worst[2] - 0.005))
    return rows


def print_joins(rows):
    if rows:
        print("\n(d) invisible joins: the chunked version of the (a) run (--baseline-minutes sources), "
              "SSIM at every segment boundary (+/- 1 s) against the one-chunk version's")
        print("| source | rendition | frames (source) | decode errors | tone dropouts | tone length vs source | "
              "worst join: at, SSIM, one chunk's | boundaries |")
        print("|---|---|---:|---|---:|---:|---|---:|")
        for src, label, got, want, errors, dropouts, tone_delta, worst, n in rows:
            print(f"| {src} | {label} | {got} ({want}) | {errors[:60] or 'none'} | {len(dropouts)} "
                  f"{dropouts[:3] if dropouts else ''}".rstrip() + f" | {tone_delta * 1000:+.1f} ms | {worst[0]} s, "
                  f"{fmt(worst[1], '', 4)}, {fmt(worst[2], '', 4)} | {n} |")


def boundaries(playlist) -> list[float]:
    """Where a media playlist's segments meet (seconds from its start)."""
    total, out = 0.0, []
    for line in Path(playlist).read_text().splitlines():
        if line.startswith("#EXTINF:"):
            total += float(line[8:].split(",", 1)[0])
            out.append(total)
    return out[:-1]


def worst_join_delta(ssim, ssim_today, joins, fps=25, span=1.0):
    """(time, SSIM, today's SSIM) of the boundary where the chunked version falls furthest below
    today's, SSIM averaged over +/- `span` around it (frame order, as media_checks.join_ssim)."""
    worst = (None, None, None)
    for t in joins:
        first, last = max(0, round((t - span) * fps)), round((t + span) * fps)
        a, b = ssim[first:last], ssim_today[first:last]
        if not a or not b:
            continue
        here = (t, statistics.fmean(a), statistics.fmean(b))
        if worst[0] is None or here[2] - here[1] > worst[2] - worst[1]:
            worst = here
    return worst


def _pinned(extra):
    """`taskset -c N` when the worker is a simulated one-core host (BENCH_CPU), else nothing."""
    cpu = extra.get("BENCH_CPU")
    return ["taskset", "-c", cpu] if cpu and shutil.which("taskset") else []


def part_bc(bench, args, work, checks):
    src = sources(work / "sources", args.parallel_minutes)["reencode"]

    def one_core(cpu):  # a one-core host: one process worker, one ffmpeg thread, pinned to one core
        return {"WORKERS": "1", "FFMPEG_THREADS": "1", **({} if args.no_pin else {"BENCH_CPU": str(cpu)})}

    setups = {
        "1 worker": Setup("1 worker", src, s3=True, workers=[one_core(0)]),
        "2 workers": Setup("2 workers", src, s3=True, workers=[one_core(0), one_core(1)]),
        "1 worker, one chunk": Setup("1 worker, one chunk", src, s3=True, workers=[one_core(0)],
                                     settings={"TRANSCODE_CHUNK_SECONDS": ONE_CHUNK}),
    }
    results = {name: [] for name in setups}
    names = list(setups)
    for rep in range(args.reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            r = bench.run(setups[name])
            results[name].append(r)
            print(f"  (b/c) rep {rep + 1} {name}: ready {fmt(r.ready_s)}, playable {fmt(r.playable_s)}, "
                  f"worker CPU {fmt(r.cpu_s)} (each: {', '.join(fmt(c) for c in r.cpu_each)}), "
                  f"in tasks {', '.join(fmt(b) for b in r.busy_each)} ({', '.join(map(str, r.tasks_each))} tasks), "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    one, two = med(r.ready_s for r in results["1 worker"]), med(r.ready_s for r in results["2 workers"])
    chunked = med(r.cpu_s for r in results["1 worker"])
    single = med(r.cpu_s for r in results["1 worker, one chunk"])
    speedup = one / two if one and two else None
    cost = chunked / single if chunked and single else None
    checks.append((f"(b) {args.parallel_minutes:g} min s3: 2 workers {fmt(speedup, 'x', 2)} faster to ready "
                   f"than 1 (>= 1.8x)", speedup is not None and speedup >= 1.8))
    checks.append((f"(c) CPU chunked / one chunk {fmt(cost, '', 3)} (<= 1.10)", cost is not None and cost <= 1.10))
    return results


def print_tables(results_a, results_bc, args):
    if results_a:
        print(f"\n(a) time to playable, `make run` defaults (medians of {args.reps}; seconds from the last "
              "PATCH's response; \"today\": TRANSCODE_CHUNK_SECONDS=0 PUBLISH=complete)")
        print("| source | run | upload's checks (last PATCH) | upload, all | playable | detail says playable | "
              "progress then | ready | playable, today / this |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for (m, kind, variant), rs in results_a.items():
            playable_s, ready_s = med(r.playable_s for r in rs), med(r.ready_s for r in rs)
            today = med(r.playable_s for r in results_a.get((m, kind, "today"), []))
            ratio = today / playable_s if variant == "chunked" and today and playable_s else None
            print(f"| {m:g} min {kind} | {variant} | {fmt(med(r.checks_s for r in rs), digits=2)} | "
                  f"{fmt(med(r.upload_s for r in rs))} | {fmt(playable_s)} | "
                  f"{fmt(med(r.detail_playable_s for r in rs))} | {med(r.progress_at_playable for r in rs)} | "
                  f"{fmt(ready_s)} | {fmt(ratio, 'x', 1)} |")
    if results_bc:
        print(f"\n(b)/(c) {args.parallel_minutes:g} min re-encoded source, s3 mode, workers WORKERS=1 "
              f"FFMPEG_THREADS=1 (medians of {args.reps})")
        print("| setup | ready | playable | worker CPU (user+sys) | CPU per worker |")
        print("|---|---:|---:|---:|---|")
        for name, rs in results_bc.items():
            each = [med(r.cpu_each[i] for r in rs) for i in range(len(rs[0].cpu_each))] if rs else []
            print(f"| {name} | {fmt(med(r.ready_s for r in rs))} | {fmt(med(r.playable_s for r in rs))} | "
                  f"{fmt(med(r.cpu_s for r in rs))} | {', '.join(fmt(c) for c in each)} |")


if __name__ == "__main__":
    sys.exit(main())

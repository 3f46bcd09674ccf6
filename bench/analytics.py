"""Viewing analytics benchmark (issue 20), on PostgreSQL and Redis under gunicorn (gunicorn.conf.py,
production profile):

1. Beacon load: --viewers viewers (default 2,000), each POSTing a progress beacon every 10 s
   (200 beacons/s) for --seconds (60), each its own account, token and playback session, spread
   evenly over the 10 s. Errors (anything but 200: must be 0), median, p95 (target <= 20 ms) and
   p99 latency, and how late the senders ran (a late sender means the load generator, not the
   server, fell behind).
2. Meanwhile a prober fetches a 1 MB segment and a catalogue page (GET /api/video/?limit=24) in
   turn; the same prober runs --baseline seconds before and after the load, in this run. Medians
   and p95 of each, and the ratio under load / baseline (target: medians within 10 %).
3. In process (Flask's test client, no gunicorn), before the load: CPU per request of a beacon, a
   video's detail and a catalogue page, alternating (what a beacon costs beside what already runs).
4. Roll-up: a day of --viewers viewers' sessions (--sessions-per-viewer each, on 200 videos,
   inserted with SQL) plus the load's own sessions, folded by rollup.run() in this process: the
   wall time (target <= 10 s) and the sessions folded.

    flock /tmp/videoflix-heavy.lock .venv/bin/python bench/analytics.py \
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/7] \
        [--viewers 2000] [--seconds 60] [--baseline 30] [--senders 16] [--workers N]

Everything lives in a scratch database (dropped at exit) and under a unique Redis key prefix
(deleted at exit); gunicorn is stopped at exit.
"""
import argparse
import http.client
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from tests.fixtures.databases import scratch_database  # noqa: E402

VIDEOS = 200
SEGMENT_BYTES = 1024 * 1024
BEACON_EVERY = 10.0
PROCESSES = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, share):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * share))] if values else float("nan")


def summary(values):
    return {"n": len(values), "median_ms": round(statistics.median(values), 2) if values else None,
            "p95_ms": round(percentile(values, 0.95), 2), "p99_ms": round(percentile(values, 0.99), 2)}


def seed(env, viewers):
    """Schema, VIDEOS ready videos with one segment each, `viewers` accounts; their access tokens."""
    os.environ.update(env)
    from flask_jwt_extended import create_access_token
    from flask_migrate import upgrade

    from videoflix import create_app
    from videoflix.auth import sessions
    from videoflix.auth.models import User
    from videoflix.config import with_driver
    from videoflix.extensions import db
    from videoflix.videos.models import READY, Video

    # The config module was read before this environment was set (tests.databases imports it).
    app = create_app({"SECRET_KEY": env["SECRET_KEY"], "SQLALCHEMY_DATABASE_URI": with_driver(env["DATABASE_URL"]),
                      "REDIS_URL": env["REDIS_URL"], "REDIS_PREFIX": env["REDIS_PREFIX"],
                      "RATELIMIT_STORAGE_URI": env["REDIS_URL"], "RATELIMIT_KEY_PREFIX": env["REDIS_PREFIX"] + "rl",
                      "MEDIA_ROOT": env["MEDIA_ROOT"]})
    hls = Path(env["MEDIA_ROOT"]) / "hls"
    for video_id in range(1, VIDEOS + 1):
        folder = hls / str(video_id) / "bench" / "480p"
        folder.mkdir(parents=True)
        (folder / "seg000.ts").write_bytes(os.urandom(SEGMENT_BYTES) if video_id == 1 else b"\0" * 188)
        (folder / "index.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg000.ts?v=bench\n"
                                           "#EXT-X-ENDLIST\n")
    renditions = [{"label": "480p", "width": 854, "height": 480, "bandwidth": 1_400_000}]
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.session.execute(insert(Video), [
            {"title": f"Video {i}", "description": "Benchmark video", "category": "Drama", "status": READY,
             "progress": 100, "hls_dir": f"{i}/bench", "renditions": renditions, "duration": 3600.0}
            for i in range(1, VIDEOS + 1)])
        db.session.execute(insert(User), [
            {"email": f"viewer{i}@example.com", "password_hash": "!", "is_active": True} for i in range(viewers)])
        db.session.commit()
        ids = db.session.execute(db.select(User.id).order_by(User.id)).scalars().all()
        tokens = [create_access_token(identity=str(uid), additional_claims=sessions._claims(uuid.uuid4().hex))
                  for uid in ids]
    return app, tokens


class Sender(threading.Thread):
    """Sends the beacons of its viewers at their times, on one keep-alive connection."""

    def __init__(self, port, schedule, results):
        super().__init__(daemon=True)
        self.port, self.schedule, self.results = port, schedule, results

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for due, viewer in self.schedule:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            late = time.monotonic() - due
            body = json.dumps(viewer.next_beacon())
            started = time.perf_counter()
            try:
                conn.request("POST", f"/api/video/{viewer.video}/playback/", body=body, headers=viewer.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.results.append((status, (time.perf_counter() - started) * 1000, late * 1000))


class Viewer:
    def __init__(self, token, video):
        self.video, self.session, self.seq = video, str(uuid.uuid4()), 0
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def next_beacon(self):
        body = {"session": self.session, "seq": self.seq, "event": "progress" if self.seq else "start",
                "position": BEACON_EVERY * (self.seq + 1), "watched": BEACON_EVERY, "stalls": 0, "stalled": 0,
                "switches": 0, "rendition": "480p", **({"ttff_ms": 400} if self.seq == 0 else {})}
        self.seq += 1
        return body


def beacon_load(port, tokens, seconds, senders):
    rng = random.Random(7)
    viewers = [Viewer(token, rng.randint(1, VIDEOS)) for token in tokens]
    start = time.monotonic() + 1
    schedule = sorted((start + BEACON_EVERY * i / len(viewers) + BEACON_EVERY * k, viewer)
                      for k in range(int(seconds / BEACON_EVERY)) for i, viewer in enumerate(viewers))
    results = []
    threads = [Sender(port, schedule[n::senders], results) for n in range(senders)]
    for thread in threads:
        thread.start()
    return threads, results


def wrk_load(port, tokens, seconds, tmp, connections):
    """Start wrk with bench/analytics_beacons.lua on the same schedule as `beacon_load` (a viewer
    per token, each its own session, beaconing every 10 s, spread evenly). Returns (process,
    the monotonic time beacon 0 is due)."""
    rng = random.Random(7)
    viewers = tmp / "viewers.txt"
    viewers.write_text("".join(f"{token} {rng.randint(1, VIDEOS)} {uuid.uuid4()}\n" for token in tokens))
    start = time.monotonic() + 1.5
    env = {**os.environ, "BEACON_VIEWERS": str(viewers), "BEACON_RATE": str(len(tokens) / BEACON_EVERY),
           "BEACON_START": repr(start), "BEACON_TOTAL": str(len(tokens) * int(seconds / BEACON_EVERY)),
           "BEACON_THREADS": "1"}
    # Run for the schedule (it starts 1.5 s after wrk) and 2.5 s more for the last answers.
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds + 4}s", "--timeout", "10s",
               "-s", str(ROOT / "bench" / "analytics_beacons.lua"), f"http://127.0.0.1:{port}"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True), start


def wrk_results(process):
    """wrk's report (the script's BEACONS line) and the CPU seconds wrk used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output, _ = process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in output.splitlines() if line.startswith("BEACONS "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(line.split(" ", 1)[1]), cpu


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid):
    """CPU seconds (user + system) a process has used, or 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid):
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def machine_busy():
    """CPU seconds the whole machine spent busy (all cores, /proc/stat), and the wall clock."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICK, time.monotonic()


class CpuMeter:
    """CPU seconds used over a window by gunicorn (master and workers), this database's PostgreSQL
    backends, this bench process (the prober, and the Python senders when they are used) and the
    whole machine."""

    def __init__(self, server_pid, app):
        self.server_pid, self.app = server_pid, app

    def backends(self):
        from sqlalchemy import text

        from videoflix.extensions import db

        with self.app.app_context():
            return db.session.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()")).scalars().all()

    def read(self):
        server = [self.server_pid, *children(self.server_pid)]
        return {"gunicorn": {pid: process_cpu(pid) for pid in server},
                "postgres": {pid: process_cpu(pid) for pid in self.backends()},
                "bench": time.process_time(), "machine": machine_busy()}

    @staticmethod
    def spent(before, after):
        """{gunicorn, postgres, bench, machine, other, wall}: CPU seconds between two reads."""
        used = {name: sum(cpu - before[name].get(pid, 0.0) for pid, cpu in after[name].items())
                for name in ("gunicorn", "postgres")}
        used["bench"] = after["bench"] - before["bench"]
        used["machine"] = after["machine"][0] - before["machine"][0]
        used["wall"] = after["machine"][1] - before["machine"][1]
        return {name: round(value, 2) for name, value in used.items()}


def probe(port, token, stop, seconds=None):
    """Segment and list requests in turn, 4 of each a second, until `stop` is set (or `seconds`)."""
    headers = {"Authorization": f"Bearer {token}"}
    timings = {"segment": [], "list": []}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    paths = {"segment": "/api/video/1/480p/seg000.ts?v=bench", "list": "/api/video/?limit=24"}
    until = time.monotonic() + seconds if seconds else None
    while not stop.is_set() and (until is None or time.monotonic() < until):
        for name, path in paths.items():
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
            timings[name].append((time.perf_counter() - started) * 1000)
            time.sleep(0.125)
    return timings


def wait_http(url, timeout=30):
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def day_of_sessions(app, viewers, per_viewer):
    """A day of sessions (not rolled up, ended an hour ago) of every viewer, inserted with SQL."""
    from videoflix.analytics.models import PlaybackSession
    from videoflix.auth.models import User
    from videoflix.extensions import db

    rng = random.Random(11)
    now = datetime.now(UTC) - timedelta(hours=1)
    with app.app_context():
        ids = db.session.execute(db.select(User.id)).scalars().all()[:viewers]
        rows = []
        for uid in ids:
            for _ in range(per_viewer):
                watched = rng.uniform(0, 3600)
                start = rng.uniform(0, 3600 - watched)
                rows.append({
                    "id": str(uuid.uuid4()), "user_id": uid, "video_id": rng.randint(1, VIDEOS), "day": now.date(),
                    "started_at": now, "last_beacon_at": now, "last_seq": int(watched // 10), "seen": 1,
                    "position": start + watched, "duration": 3600.0, "watched": watched,
                    "coverage": sum(1 << k for k in range(21) if start <= k * 180 <= start + watched),
                    "ttff_ms": rng.randint(150, 4000), "stalls": rng.randint(0, 3), "stalled": rng.uniform(0, 5),
                    "switches": rng.randint(0, 4), "errors": 0, "rendition": rng.choice(["480p", "720p", "1080p"]),
                    "ended": True, "window_start": now, "window_beacons": 1, "rolled_up_at": None,
                    "counted_viewer": False})
        for n in range(0, len(rows), 5000):
            db.session.execute(insert(PlaybackSession), rows[n:n + 5000])
        db.session.commit()
        return len(rows)


def rollup_benchmark(app, viewers, per_viewer):
    from videoflix.analytics import rollup

    inserted = day_of_sessions(app, viewers, per_viewer)
    with app.app_context():
        started = time.perf_counter()
        result = rollup.run(now=datetime.now(UTC) + timedelta(hours=1))
        seconds = time.perf_counter() - started
    return {"sessions_inserted": inserted, "folded": result.folded, "seconds": round(seconds, 2)}


def request_costs(app, token, repeat=300):
    """CPU (this process's) and wall time per request, in process through Flask's test client: a
    beacon, a video's detail and a catalogue page, alternating, so a busy machine weighs on all three."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    session = str(uuid.uuid4())
    seq = iter(range(10**6))
    requests = {
        "beacon": lambda: client.post("/api/video/2/playback/", headers=headers, json={
            "session": session, "seq": next(seq), "event": "progress", "position": 10.0, "watched": 10.0}),
        "detail": lambda: client.get("/api/video/2/", headers=headers),
        "list": lambda: client.get("/api/video/?limit=24", headers=headers),
    }
    for send in requests.values():  # warm up
        for _ in range(20):
            assert send().status_code == 200
    costs = {name: {"cpu": [], "wall": []} for name in requests}
    for _ in range(repeat):
        for name, send in requests.items():
            cpu, wall = time.process_time(), time.perf_counter()
            assert send().status_code == 200
            costs[name]["cpu"].append((time.process_time() - cpu) * 1000)
            costs[name]["wall"].append((time.perf_counter() - wall) * 1000)
    return {name: {"cpu_ms": round(statistics.mean(c["cpu"]), 2),
                   "wall_median_ms": round(statistics.median(c["wall"]), 2)} for name, c in costs.items()}


def cpu_per_request(report, before, loaded, args):
    """The server's CPU per request (gunicorn and PostgreSQL, ms): a probe request's from the
    baseline window (the prober alone), a beacon's from the load window minus the probes' share;
    and the load generator's share of the machine's busy CPU during the load."""
    base, load = report["cpu_seconds"]["baseline"], report["cpu_seconds"]["load"]
    probes_before = len(before["segment"]) + len(before["list"])
    probes_loaded = len(loaded["segment"]) + len(loaded["list"])
    beacons = report["beacons"]["n"]
    result = {}
    for name in ("gunicorn", "postgres"):
        per_probe = base[name] / probes_before if probes_before else 0.0
        result[f"{name}_per_probe"] = round(per_probe * 1000, 3)
        beacon_share = (load[name] - per_probe * probes_loaded) / beacons if beacons else float("nan")
        result[f"{name}_per_beacon"] = round(beacon_share * 1000, 3)
    generator = report["beacons"].get("generator_cpu_s", load["bench"])
    result["generator_share_of_busy_cpu"] = round(generator / load["machine"], 3) if load["machine"] else None
    result["generator_cores"] = round(generator / load["wall"], 3) if load["wall"] else None
    result["machine_busy_cores"] = round(load["machine"] / load["wall"], 2) if load["wall"] else None
    # What the rest of the machine (other people's work) took meanwhile: the noise of this run.
    ours = load["gunicorn"] + load["postgres"] + load["bench"] + report["beacons"].get("generator_cpu_s", 0.0)
    result["others_cores"] = round((load["machine"] - ours) / load["wall"], 2) if load["wall"] else None
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    parser.add_argument("--viewers", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--baseline", type=int, default=30, help="probe seconds before and after the load")
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--sessions-per-viewer", type=int, default=10)
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="the beacon load: wrk with bench/analytics_beacons.lua (default when installed: a "
                             "fraction of the CPU) or the Python sender threads of this process")
    parser.add_argument("--connections", type=int, default=32, help="wrk's keep-alive connections")
    args = parser.parse_args()

    prefix = f"vfbench:{uuid.uuid4().hex[:8]}:"
    tmp = Path(tempfile.mkdtemp(prefix="vf-analytics-bench-"))
    with scratch_database(args.database_url) as url:
        port = free_port()
        env = {"VIDEOFLIX_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": url,
               "REDIS_URL": args.redis_url, "REDIS_PREFIX": prefix, "MEDIA_ROOT": str(tmp / "media"),
               "HOST": "127.0.0.1", "PORT": str(port), "METRICS_DIR": str(tmp / "metrics"),
               "ANALYTICS_BEACONS_PER_MINUTE": "30"}
        app, tokens = seed(env, args.viewers)
        app.config["ANALYTICS_BEACONS_PER_MINUTE"] = 10**6  # the cost loop sends one session's beacons back to back
        costs = request_costs(app, tokens[-1])
        app.config["ANALYTICS_BEACONS_PER_MINUTE"] = 30
        gunicorn_env = {**os.environ, **env}
        if args.workers:
            gunicorn_env["WEB_CONCURRENCY"] = str(args.workers)
        log = open(tmp / "gunicorn.log", "w")  # noqa: SIM115 (gunicorn writes to it until the end)
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                                   "--chdir", str(ROOT), "wsgi:app"], env=gunicorn_env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/api/health/")
            prober_token = tokens[0]
            meter = CpuMeter(server.pid, app)
            probe(port, prober_token, threading.Event(), seconds=3)  # warm up
            cpu_start = meter.read()
            before = probe(port, prober_token, threading.Event(), seconds=args.baseline)
            cpu_baseline = CpuMeter.spent(cpu_start, meter.read())
            if args.generator == "wrk":
                generator, load_start = wrk_load(port, tokens, args.seconds, tmp, args.connections)
            else:
                threads, results = beacon_load(port, tokens, args.seconds, args.senders)
            stop = threading.Event()
            loaded = {}
            prober = threading.Thread(target=lambda: loaded.update(probe(port, prober_token, stop)), daemon=True)
            time.sleep(2)  # the load is running
            cpu_start = meter.read()
            prober.start()
            if args.generator == "wrk":
                wrk_report, wrk_cpu = wrk_results(generator)
            else:
                for thread in threads:
                    thread.join()
            stop.set()
            prober.join()
            cpu_load = CpuMeter.spent(cpu_start, meter.read())
            after = probe(port, prober_token, threading.Event(), seconds=args.baseline)
            rolled = rollup_benchmark(app, args.viewers, args.sessions_per_viewer)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            with app.app_context():
                from videoflix.extensions import db, redis_client

                db.engine.dispose()
                client = redis_client()
                keys = list(client.scan_iter(prefix + "*"))
                if keys:
                    client.delete(*keys)

    if args.generator == "wrk":
        beacons = {key: wrk_report[key] for key in ("median_ms", "p95_ms", "p99_ms", "max_ms")}
        errors = wrk_report["non200"] + wrk_report["socket_errors"] + wrk_report["timeouts"]
        expected = args.viewers * int(args.seconds / BEACON_EVERY)
        errors += max(0, expected - wrk_report["requests"])  # never answered
        beacon_report = {"n": wrk_report["requests"], **beacons,
                         "per_second": round(wrk_report["requests"] / args.seconds, 1),
                         "errors": errors, "error_statuses": wrk_report["statuses"].split(),
                         "sender_late_p95_ms": wrk_report["late_p95_ms"], "generator": "wrk",
                         "generator_cpu_s": round(wrk_cpu, 2)}
    else:
        failed = [r for r in results if r[0] != 200]
        beacons = summary([r[1] for r in results])
        errors = len(failed)
        beacon_report = {**beacons, "per_second": round(len(results) / args.seconds, 1), "errors": errors,
                         "error_statuses": sorted({r[0] for r in failed}),
                         "sender_late_p95_ms": round(percentile([r[2] for r in results], 0.95), 1),
                         "generator": "python (this process's threads)"}
    report = {"beacons": beacon_report, "probes": {}, "rollup": rolled, "in_process_cost": costs,
              "cpu_seconds": {"baseline": cpu_baseline, "load": cpu_load}}
    report["cpu_per_request_ms"] = cpu_per_request(report, before, loaded, args)
    for name in ("segment", "list"):
        base = before[name] + after[name]
        report["probes"][name] = {"baseline": summary(base), "under_load": summary(loaded[name]),
                                  "median_ratio": round(statistics.median(loaded[name]) / statistics.median(base), 3)}
    print(json.dumps(report, indent=2))
    checks = {
        "beacons: 0 errors": errors == 0,
        "beacons: p95 <= 20 ms": beacons["p95_ms"] <= 20,
        "segment median within 10 %": report["probes"]["segment"]["median_ratio"] <= 1.10,
        "list median within 10 %": report["probes"]["list"]["median_ratio"] <= 1.10,
        "roll-up of the day <= 10 s": rolled["seconds"] <= 10,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

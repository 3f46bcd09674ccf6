"""Streaming benchmark: one 2 MB segment fetched by N concurrent clients (wrk, loopback) through
(a) nginx serving the file directly, (b) gunicorn + the app, (c) nginx + X-Accel-Redirect from the
app, and (f) (c)'s gunicorn and nginx in front of an app that checks nothing (bench/floor_app.py,
the ceiling of (c) on this machine); then GET /api/video/ with 10,000 ready videos. The paths run
in turn, --rounds times, and the medians are reported with each round's ratios (other load on the
machine moves every figure). `--soak`: 64 clients for 30 s against (b), with the gunicorn
workers' RSS at start and end.

    .venv/bin/python bench/serve.py [--rounds 3] [--connections 32] [--duration 8] [--workers 2] [--threads 4]
    .venv/bin/python bench/serve.py --soak

Everything runs in a temporary folder (SQLite database, media, nginx prefix) on 127.0.0.1 and is
stopped at exit. Token revocation uses Redis when REDIS_URL is set, else the database.
The nginx configuration is deploy/nginx/videoflix.conf itself, with its ports and paths replaced.
"""
import argparse
import atexit
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx" / "videoflix.conf"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SEGMENT_BYTES = 2 * 1024 * 1024
LIST_VIDEOS = 10_000
PROCESSES = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, env=None, log=None):
    proc = subprocess.Popen(cmd, env=env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    PROCESSES.append(proc)
    return proc


def stop_all():
    for proc in reversed(PROCESSES):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in PROCESSES:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_http(url, headers=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            if e.code not in (502, 503, 504):  # nginx answers before gunicorn is up
                return e.code
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def seed(tmp, env):
    """Database, user and token, one 2 MB segment and LIST_VIDEOS ready rows; returns the token."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert

    from videoflix import create_app
    from videoflix.auth import sessions
    from videoflix.auth.users import create_user
    from videoflix.extensions import db
    from videoflix.videos.models import READY, Video

    app = create_app()
    hls = Path(env["MEDIA_ROOT"]) / "hls" / "1" / "bench"
    (hls / "480p").mkdir(parents=True)
    (hls / "480p" / "seg000.ts").write_bytes(os.urandom(SEGMENT_BYTES))
    (hls / "480p" / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg000.ts?v=bench\n#EXT-X-ENDLIST\n")
    (hls / "thumbnail.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    with app.app_context():
        db.create_all()
        user = create_user("bench@example.com", secrets.token_urlsafe(16), active=True)
        db.session.flush()
        access, _ = sessions.issue(user)
        renditions = [{"label": "480p", "width": 854, "height": 480, "bandwidth": 1_400_000}]
        db.session.execute(insert(Video), [
            {"title": f"Video {i}", "description": "Benchmark video " * 4, "category": "Drama", "status": READY,
             "progress": 100, "hls_dir": f"{i}/bench", "renditions": renditions,
             "thumbnail": f"{i}/bench/thumbnail.jpg"}
            for i in range(1, LIST_VIDEOS + 1)
        ])
        db.session.commit()
        queries = list_query_count(app, access)
    return access, queries


def list_query_count(app, access):
    """SQL statements GET /api/video/ runs (in process, through the test client)."""
    from sqlalchemy import event

    from videoflix.extensions import db

    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = app.test_client().get("/api/video/", headers={"Authorization": f"Bearer {access}"})
        count = len(response.get_json())
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return {"items": count, "statements": len(statements)}


def nginx_config(tmp, media, direct_port, proxy_port, app_port, workers, name="nginx"):
    """The shipped server block (ports and paths replaced) plus a bare static server for (a);
    `name` is the folder below tmp for its pid and temporary files."""
    server = NGINX_CONF.read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
        "listen 80;": f"listen 127.0.0.1:{proxy_port};",
        "alias /srv/videoflix/media/hls/;": f"alias {media}/hls/;",
        "/etc/nginx/videoflix/protected-media.conf": str(NGINX_CONF.parent / "protected-media.conf"),
        "/etc/nginx/videoflix/proxy-app.conf": str(NGINX_CONF.parent / "proxy-app.conf"),
    }
    for old, new in replacements.items():
        assert old in server, f"{NGINX_CONF} changed: {old!r} not found"
        server = server.replace(old, new)
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {tmp}/{name}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}
worker_processes {workers};
daemon off;
pid {tmp}/{name}/nginx.pid;
error_log {tmp}/{name}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000;
{temp}
    server {{
        listen 127.0.0.1:{direct_port};
        location /direct/ {{
            alias {media}/hls/;
            sendfile on;
            tcp_nopush on;
            types {{ video/MP2T ts; }}
        }}
    }}
{server}
}}
"""


def start_nginx(tmp, media, direct_port, proxy_port, app_port, workers, name, log):
    (tmp / name).mkdir(exist_ok=True)
    (tmp / f"{name}.conf").write_text(nginx_config(tmp, media, direct_port, proxy_port, app_port, workers, name))
    return start([NGINX, "-p", str(tmp / name), "-c", str(tmp / f"{name}.conf"), "-e", str(tmp / name / "error.log")],
                 log=log)


def cpu_seconds(proc):
    """CPU time (user + system, s) of every live process in proc's session (it leads one)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == proc.pid:  # session id
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def cpu_split(procs, run):
    """Run run(); returns (its result, {name: CPU seconds used meanwhile}) incl. wrk itself."""
    before = {name: cpu_seconds(p) for name, p in procs.items()}
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run()
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = {name: cpu_seconds(p) - before[name] for name, p in procs.items()}
    used["wrk"] = (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime + wrk_before.ru_stime)
    return result, used


def wrk(url, connections, duration, threads, headers=()):
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"rps": rps, "p99_ms": p99_ms, "requests": total, "errors": errors}


def check(url, cookie, expect_len=SEGMENT_BYTES, accel=False):
    """One request by hand: the right status, length and headers, so wrk measures real answers."""
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookie}), timeout=10) as r:
        body = r.read()
        assert r.status == 200 and len(body) == expect_len, (url, r.status, len(body))
        assert r.headers["Content-Type"] == "video/MP2T", r.headers["Content-Type"]
        assert "X-Accel-Redirect" not in r.headers
        return dict(r.headers)


def check_nginx_delivery(url, cookie, internal_url):
    """The shipped nginx config really does what the app asks: headers, 304, 206, internal only."""
    headers = check(url, cookie)
    expected = {"Cache-Control": "private, max-age=31536000, immutable", "Content-Type": "video/MP2T"}
    assert all(headers.get(k) == v for k, v in expected.items()), headers
    assert {"Cookie", "Authorization", "Origin"} <= {v.strip() for v in headers.get("Vary", "").split(",")}, headers
    print("(c) nginx answers with: " + ", ".join(f"{k}: {headers[k]}" for k in
          ("Content-Type", "Content-Length", "Cache-Control", "Vary", "ETag", "Last-Modified") if k in headers))
    # hls.js on the SPA's origin: the app's CORS answer must survive the X-Accel-Redirect.
    spa = "http://127.0.0.1:5500"
    request = urllib.request.Request(url, headers={"Cookie": cookie, "Origin": spa})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.headers.get("Access-Control-Allow-Origin") == spa, dict(r.headers)
        assert r.headers.get("Access-Control-Allow-Credentials") == "true", dict(r.headers)
    cases = [({"If-None-Match": headers["ETag"]}, 304), ({"Range": "bytes=0-99"}, 206)]
    for extra, status in cases:
        request = urllib.request.Request(url, headers={"Cookie": cookie, **extra})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                got, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            got, body = e.code, e.read()
        assert got == status, (extra, got)
        assert status != 206 or len(body) == 100
    for probe, cookie_header in ((internal_url, cookie), (url, "")):
        try:
            urllib.request.urlopen(urllib.request.Request(probe, headers={"Cookie": cookie_header}), timeout=10)
            raise AssertionError(f"{probe} answered without the app's consent")
        except urllib.error.HTTPError as e:
            assert e.code in (401, 404), e.code


def worker_rss(master_pid):
    """RSS (MiB) of each gunicorn worker (the master's children), from /proc."""
    children = []
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    rss = {}
    for pid in sorted(children):
        status = Path(f"/proc/{pid}/status").read_text()
        rss[pid] = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    return rss


def list_latency(url, cookie, rounds):
    timings = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookie}), timeout=30) as r:
            items = len(json.loads(r.read()))
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return {"items": items, "median_ms": statistics.median(timings),
            "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", "-c", type=int, default=32)
    parser.add_argument("--duration", "-d", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=0,
                        help="gunicorn threads per worker (gthread; default: gunicorn.conf.py's, WEB_THREADS or 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a), (b), (c) in turn; medians are reported")
    parser.add_argument("--gunicorn-config", default="", help="a gunicorn config file (default: ./gunicorn.conf.py)")
    parser.add_argument("--list-rounds", type=int, default=30)
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip (f), (c)'s set-up in front of an app that checks nothing")
    parser.add_argument("--soak", action="store_true", help="64 clients for 30 s against (b), RSS and errors")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="videoflix-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    media = tmp / "media"
    tmp.mkdir(parents=True, exist_ok=True)
    redis_url = os.environ.get("REDIS_URL") or ""
    env = {
        "VIDEOFLIX_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "MEDIA_ROOT": str(media),
        "REDIS_URL": redis_url, "REDIS_PREFIX": f"vfbench:{secrets.token_hex(4)}:", "LOG_LEVEL": "WARNING",
    }
    print(f"seeding {LIST_VIDEOS} ready videos and a {SEGMENT_BYTES // 1024 // 1024} MB segment in {tmp} ...")
    access, queries = seed(tmp, env)
    cookie = f"access_token={access}"
    revocation = f"Redis ({redis_url})" if redis_url else "the database (SQLite; set REDIS_URL for Redis)"

    app_port, accel_port, direct_port, proxy_port = (free_port() for _ in range(4))
    # The production config (sendfile, gthread, no access log); workers and threads from the flags.
    conf = Path(args.gunicorn_config) if args.gunicorn_config else ROOT / "gunicorn.conf.py"
    threads = args.threads or int(os.environ.get("WEB_THREADS") or 4)
    gunicorn = [sys.executable, "-m", "gunicorn", "--config", str(conf), "--chdir", str(ROOT), "-k", "gthread",
                "-w", str(args.workers), "--threads", str(threads), "--keep-alive", "75",
                "--backlog", "2048", "--log-level", "warning", "wsgi:app"]
    log = open(tmp / "gunicorn.log", "w")  # noqa: SIM115 (the servers write to it until the bench exits)
    env_b = {**os.environ, **env}
    env_c = {**env_b, "MEDIA_ACCEL_REDIRECT": "/protected-media/"}
    master_b = start(gunicorn + ["-b", f"127.0.0.1:{app_port}"], env_b, log)
    # The URL a published playlist names (`?v=<version>`): the one that is immutable.
    path = "/api/video/1/480p/seg000.ts?v=bench"
    url_b = f"http://127.0.0.1:{app_port}{path}"
    wait_http(url_b, {"Cookie": cookie})
    check(url_b, cookie)

    if args.soak:
        soak(args, threads, master_b, url_b, cookie, revocation)
        return

    master_c = start(gunicorn + ["-b", f"127.0.0.1:{accel_port}"], env_c, log)
    nginx = start_nginx(tmp, media, direct_port, proxy_port, accel_port, args.workers, "nginx", log)
    url_a = f"http://127.0.0.1:{direct_port}/direct/1/bench/480p/seg000.ts"
    url_c = f"http://127.0.0.1:{proxy_port}{path}"
    wait_http(url_a)
    wait_http(url_c, {"Cookie": cookie})
    check(url_a, cookie)
    check_nginx_delivery(url_c, cookie, f"http://127.0.0.1:{proxy_port}/protected-media/hls/1/bench/480p/seg000.ts")
    paths = [("a", "nginx static (limit)", url_a), ("b", "gunicorn + app", url_b),
             ("c", "nginx + X-Accel-Redirect", url_c)]
    procs = {"nginx": nginx, "gunicorn": master_b, "gunicorn-accel": master_c}
    if args.floor:
        # (f): the same gunicorn and nginx set-up in front of an app that checks nothing
        # (bench/floor_app.py): what (c) would reach if authenticating cost nothing.
        floor_app, floor_proxy = free_port(), free_port()
        floor = start([x if x != "wsgi:app" else "bench.floor_app:app" for x in gunicorn]
                      + ["-b", f"127.0.0.1:{floor_app}"], env_c, log)
        nginx_floor = start_nginx(tmp, media, free_port(), floor_proxy, floor_app, args.workers, "nginx-floor", log)
        url_f = f"http://127.0.0.1:{floor_proxy}{path}"
        wait_http(url_f)
        check(url_f, "")
        paths.append(("f", "(c) with an app doing nothing", url_f))
        procs.update({"nginx-floor": nginx_floor, "gunicorn-floor": floor})

    print(f"wrk: {args.connections} connections, {args.duration} s per run, {args.wrk_threads} wrk threads; "
          f"gunicorn gthread {args.workers} workers x {threads} threads; {os.cpu_count()} CPUs; "
          f"revocation: {revocation}; {args.rounds} rounds of ({'), ('.join(k for k, _, _ in paths)}) in turn")
    runs = {key: [] for key, _, _ in paths}
    for number in range(1, args.rounds + 1):
        load = os.getloadavg()[0]
        for key, name, url in paths:
            result, cpu = cpu_split(procs, lambda url=url: wrk(url, args.connections, args.duration, args.wrk_threads,
                                                       [f"Cookie: {cookie}"]))
            result["cpu"] = {n: 1000 * s / max(result["requests"], 1) for n, s in cpu.items() if s > 0.05}
            runs[key].append(result)
            per_k = ", ".join(f"{n} {ms:.2f}" for n, ms in result["cpu"].items())
            print(f"  round {number} ({key}) {name:<26} {result['rps']:9.1f} req/s  p99 {result['p99_ms']:8.2f} ms  "
                  f"errors {result['errors']}   CPU ms/request: {per_k}")
        last = {k: results[-1]["rps"] for k, results in runs.items()}
        print(f"  round {number}: " + "   ".join(f"{k}/a = {last[k] / last['a']:.2f}" for k in last if k != "a")
              + f"   (load average before it {load:.2f})")

    median = statistics.median
    print(f"medians of {args.rounds} rounds:")
    for key, name, _ in paths:
        results = runs[key]
        names = dict.fromkeys(n for r in results for n in r["cpu"])
        cpu = ", ".join(f"{n} {median(r['cpu'].get(n, 0) for r in results):.2f}" for n in names)
        print(f"  ({key}) {name:<26} {median(r['rps'] for r in results):9.1f} req/s  "
              f"{median(r['rps'] for r in results) * SEGMENT_BYTES / 2**30:6.2f} GiB/s  "
              f"p99 {median(r['p99_ms'] for r in results):8.2f} ms  errors {sum(r['errors'] for r in results)}   "
              f"CPU ms/request: {cpu}")
    for key in (k for k in runs if k != "a"):
        ratios = [r["rps"] / base["rps"] for r, base in zip(runs[key], runs["a"])]
        target = {"b": 0.4, "c": 0.6}.get(key)
        verdict = f"; target >= {target}: {'met' if median(ratios) >= target else 'NOT met'}" if target else ""
        print(f"  {key}/a = {median(ratios):.2f} (rounds: {', '.join(f'{x:.2f}' for x in ratios)}){verdict}")
    if "f" in runs:
        shares = [c["rps"] / f["rps"] for c, f in zip(runs["c"], runs["f"])]
        print(f"  c/f = {median(shares):.2f} (rounds: {', '.join(f'{x:.2f}' for x in shares)}): the share of this "
              f"set-up's ceiling that (c) reaches while authenticating every request")

    listing = list_latency(f"http://127.0.0.1:{app_port}/api/video/", cookie, args.list_rounds)
    print(f"GET /api/video/ with {listing['items']} ready videos (gunicorn, {args.list_rounds} sequential requests): "
          f"median {listing['median_ms']:.1f} ms, p99 {listing['p99_ms']:.1f} ms; "
          f"{queries['statements']} SQL statements per request (in-process count)")


def soak(args, threads, master, url, cookie, revocation):
    # Warm up first (imports, connection pools, the first thread stacks), so the start sample
    # is a steady state and growth during the 30 s would mean a leak.
    wrk(url, 64, 3, args.wrk_threads, [f"Cookie: {cookie}"])
    before = worker_rss(master.pid)
    print(f"soak: 64 connections for 30 s (after a 3 s warm-up) against gunicorn (master pid {master.pid}) "
          f"+ app ({args.workers} workers x {threads} threads); revocation: {revocation}")
    print("  worker RSS at start (MiB): " + ", ".join(f"{pid}: {mib:.1f}" for pid, mib in before.items()))
    result = wrk(url, 64, 30, args.wrk_threads, [f"Cookie: {cookie}"])
    after = worker_rss(master.pid)
    print("  worker RSS at end   (MiB): " + ", ".join(f"{pid}: {mib:.1f}" for pid, mib in after.items()))
    print(f"  {result['requests']} requests, {result['rps']:.1f} req/s, p99 {result['p99_ms']:.1f} ms, "
          f"errors {result['errors']}")
    if set(before) != set(after):
        print("  WARNING: the worker set changed (a worker died or was restarted)")


if __name__ == "__main__":
    main()

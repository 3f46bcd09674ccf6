"""Benchmark: a bucket outage under load (issue 22), against a SeaweedFS of its own.

Run from the repository root:  .venv/bin/python bench/bucket_outage.py [--streamers 64] [--seconds 15]
(TEST_PORT_RANGE=20300-20399 keeps every port it opens in that range.)

gunicorn (2 processes x 32 threads, MEDIA_STORAGE=s3, MEDIA_DELIVERY=app) and a `flask worker`
serve one ready video to N streamers (playlists and segments in a loop, one HTTP session each) for
the given seconds while a second video is being transcoded. The bucket is hung (SIGSTOP) from
second 3 for 5 seconds, then resumed; in a second round it is killed at second 3 and started
again. Reported per round: the answers during the outage (statuses, median and max time), every
other answer's status, answers that were neither 200 nor 503 (0 is the target), the streamer
threads still stuck 35 s after the end (0 is the target), and whether the transcode in flight
finished. Targets (issue 22): during the outage every media answer is 503 within 1.5 s (median
within 1 s); none is 500.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VIDEOFLIX_ENV", "testing")

from tests.fixtures.object_store import SeaweedFS, free_ports  # noqa: E402
from videoflix import create_app  # noqa: E402
from videoflix.auth.users import create_user  # noqa: E402
from videoflix.extensions import db  # noqa: E402
from videoflix.videos.models import Video  # noqa: E402
from videoflix.videos.tasks import request_transcode  # noqa: E402
from videoflix.videos.uploads.service import accept  # noqa: E402

PASSWORD = "bench-password-123"
FF = shutil.which("ffmpeg") or "ffmpeg"


def wsgi():
    """The served app (gunicorn and the worker): its config from BENCH_OUTAGE_CONFIG."""
    return create_app(json.loads(os.environ["BENCH_OUTAGE_CONFIG"]))


def clip(path, seconds, size):
    subprocess.run([FF, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True, timeout=300)
    return path


def prepare(work, config):
    """A user, a ready video (transcoded inline) and one queued for the worker: (ready id, queued id)."""
    setup = create_app({**config, "HUEY_IMMEDIATE": True})
    with setup.app_context():
        db.create_all()
        create_user("viewer@example.com", PASSWORD, active=True)
        db.session.commit()
        with open(clip(work / "short.mp4", 6, "640x360"), "rb") as stream:
            ready = accept(stream, filename="short.mp4", title="Ready", category="Drama")
        request_transcode(ready)
        ready_id = ready.id
    queued_app = create_app(config)
    with queued_app.app_context():
        with open(clip(work / "long.mp4", 40, "1280x720"), "rb") as stream:
            queued = accept(stream, filename="long.mp4", title="In flight", category="Drama")
        request_transcode(queued)
        return ready_id, queued.id


def start(command, env, log):
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_up(base, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/api/health/", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


class Streamers:
    """N threads playing the video in a loop; every answer as (time, status or error, seconds)."""

    def __init__(self, base, cookies, paths, count):
        self.base, self.cookies, self.paths = base, cookies, paths
        self.seen, self.stop = [], threading.Event()
        self.threads = [threading.Thread(target=self.play, daemon=True) for _ in range(count)]

    def play(self):
        session = requests.Session()
        session.cookies.update(self.cookies)
        while not self.stop.is_set():
            for path in self.paths:
                started = time.monotonic()
                try:
                    status = session.get(self.base + path, timeout=30).status_code
                except requests.RequestException as error:
                    status = type(error).__name__
                self.seen.append((started, status, time.monotonic() - started))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        deadline = time.monotonic() + 35
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.stuck = sum(thread.is_alive() for thread in self.threads)


def play_round(name, streamers, away, again, seconds):
    """Streamers for `seconds` (at least until 3 s after the bucket is back); the outage from 3 s."""
    with streamers:
        time.sleep(3)
        down_at = time.monotonic()
        away()
        if name == "hung":
            time.sleep(5)
        again()
        back_at = time.monotonic()
        time.sleep(max(3.0, seconds - 3 - (back_at - down_at)))
    during = [(status, took) for t, status, took in streamers.seen if down_at <= t < back_at]
    other = [status for t, status, _ in streamers.seen if not down_at <= t < back_at]
    took = [took for _, took in during] or [0.0]
    bad = [status for status, _ in during if status not in (200, 503)] + [s for s in other if s not in (200, 503)]
    print(f"\nbucket {name} for {back_at - down_at:.1f} s, {len(streamers.threads)} streamers:")
    print(f"  during the outage: {len(during)} answers {_count(s for s, _ in during)}, "
          f"median {statistics.median(took) * 1000:.0f} ms, max {max(took) * 1000:.0f} ms")
    print(f"  before and after: {len(other)} answers {_count(other)}")
    print(f"  answers neither 200 nor 503: {len(bad)} {_count(bad)}; streamer threads stuck: {streamers.stuck}")
    return {"during": len(during), "median_ms": statistics.median(took) * 1000, "max_ms": max(took) * 1000,
            "bad": len(bad), "stuck": streamers.stuck}


def _count(statuses):
    counts = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items(), key=str))


def media_paths(base, cookies, video_id):
    session = requests.Session()
    session.cookies.update(cookies)
    master = f"/api/video/{video_id}/master.m3u8"
    label = re.search(r"^(\w+)/index\.m3u8$", session.get(base + master, timeout=10).text, re.M)[1]
    playlist = f"/api/video/{video_id}/{label}/index.m3u8"
    segments = re.findall(r"^(seg\w+\.ts\S*)$", session.get(base + playlist, timeout=10).text, re.M)
    return [master, playlist, *[f"/api/video/{video_id}/{label}/{s}" for s in segments]]


def run(args, work):
    server = SeaweedFS(work / "seaweedfs").start()
    processes = []
    try:
        server.client().create_bucket(Bucket="bench-outage")
        config = {**server.settings("bench-outage"), "TESTING": True, "HUEY_IMMEDIATE": False,
                  "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'db.sqlite3'}", "MEDIA_ROOT": str(work / "media"),
                  "MEDIA_SCRATCH": str(work / "scratch"), "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://",
                  "REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:6]}:", "HUEY_FILE": str(work / "huey.sqlite3"),
                  "STORAGE_RETRY_DELAY": 2, "WORKERS": 1, "RECOVERY_INTERVAL": 5}
        ready_id, queued_id = prepare(work, config)
        env = {**os.environ, "BENCH_OUTAGE_CONFIG": json.dumps(config), "PYTHONPATH": str(ROOT)}
        port = free_ports(1)[0]
        base = f"http://127.0.0.1:{port}"
        processes.append(start([sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "32", "-b",
                                f"127.0.0.1:{port}", "bench.bucket_outage:wsgi()"], env, work / "web.log"))
        processes.append(start([sys.executable, "-m", "flask", "--app", "bench.bucket_outage:wsgi()", "worker"],
                               env, work / "worker.log"))
        wait_up(base)
        login = requests.post(base + "/api/login/", json={"email": "viewer@example.com", "password": PASSWORD},
                              timeout=10)
        cookies = login.cookies.get_dict()
        paths = media_paths(base, cookies, ready_id)
        results = {}
        for name, away, again in (("hung", server.hang, server.resume), ("down", server.kill, server.restart)):
            results[name] = play_round(name, Streamers(base, cookies, paths, args.streamers), away, again,
                                       args.seconds)
        results["transcode"] = finished(config, queued_id)
        log = (work / "web.log").read_text(errors="replace")
        results["tracebacks"] = log.count("Traceback")
        print(f"\nweb log: {results['tracebacks']} tracebacks, {log.count(' 500 ')} lines with 500")
        return results
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
        server.stop()


def finished(config, video_id, seconds=300):
    """Wait for the transcode in flight; its final row (status, attempts, error)."""
    app = create_app(config)
    deadline = time.monotonic() + seconds
    while True:
        with app.app_context():
            video = db.session.get(Video, video_id)
            state = (video.status, video.attempts, video.error)
            db.session.remove()
        if state[0] in ("ready", "failed") or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"\nthe transcode in flight: {state[0]} after {state[1]} attempt(s); last error: {state[2]}")
    return state[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streamers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bucket-outage-bench-"))
    try:
        results = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()

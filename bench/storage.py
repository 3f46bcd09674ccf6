"""Benchmark: media in a bucket (MEDIA_STORAGE=s3) against a SeaweedFS of its own.

Run from the repository root:  .venv/bin/python bench/storage.py [--reps N] [--seconds S]
(or `make bench-storage`). Every figure is measured in this run, against its baseline:

1. segment fetch rate with presigned URLs (signed mode) vs unsigned reads of the same objects
   from the same store (a copy in a bucket that allows anonymous reads): requests per second,
   same HTTP client, alternating rounds, medians; the ratio (target >= 0.9);
2. media requests reaching the API per viewer-hour: a player watching a one-hour video (600
   segments of 6 s) in signed mode vs app mode (target <= 10 vs about 600);
3. transcoding a S-second 1080p clip (bench/transcode.py's source) with MEDIA_STORAGE=s3 (fetch,
   transcode, upload, publish) vs local, the whole job as the worker runs it: medians and the
   ratio (target <= 1.15);
4. store requests made by the list and detail routes (target 0).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VIDEOFLIX_ENV", "testing")

from bench.transcode import make_sources  # noqa: E402
from tests.fixtures.object_store import SeaweedFS  # noqa: E402
from videoflix import create_app  # noqa: E402
from videoflix.auth.users import create_user  # noqa: E402
from videoflix.extensions import db  # noqa: E402
from videoflix.videos.models import READY, Video  # noqa: E402
from videoflix.videos.storage.keys import media_store  # noqa: E402
from videoflix.videos.tasks import request_transcode  # noqa: E402
from videoflix.videos.uploads.service import accept  # noqa: E402

PUBLIC = "bench-public"
PASSWORD = "bench-password-123"


def make_app(work, name, **overrides):
    config = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / name}.sqlite3",
              "MEDIA_ROOT": str(work / name / "media"), "MEDIA_SCRATCH": str(work / name / "scratch"),
              "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://", "REDIS_PREFIX": f"bench:{name}:",
              **overrides}
    app = create_app(config)
    with app.app_context():
        db.create_all()
    return app


# ---------------------------------------------------------------- 1. presigned vs unsigned reads

def fetch_all(http, urls, threads):
    with ThreadPoolExecutor(threads) as pool:
        sizes = list(pool.map(lambda u: len(http.get(u, timeout=30).content), urls))
    return sizes


def rate(http, urls, threads):
    started = time.perf_counter()
    sizes = fetch_all(http, urls, threads)
    assert all(sizes), "an empty answer"
    return len(urls) / (time.perf_counter() - started)


def bench_presigned(server, app, reps, objects=200, size=512 * 1024, threads=4):
    """req/s of presigned GETs vs anonymous GETs of the same bytes, alternating, medians."""
    client = server.client()
    client.create_bucket(Bucket=PUBLIC)
    payload = os.urandom(size)
    with app.app_context():
        store = media_store()
        keys = [f"hls/bench/v1/480p/seg{i:03d}.ts" for i in range(objects)]
        for key in keys:
            store.client.put_object(Bucket=store.bucket, Key=store.key(key), Body=payload)
            client.put_object(Bucket=PUBLIC, Key=key, Body=payload)
        signed = [store.url(key, 3600) for key in keys]  # as send_media_playlist writes them
    unsigned = [f"{server.endpoint}/{PUBLIC}/{key}" for key in keys]
    assert requests.get(unsigned[0]).status_code == 200 and requests.get(signed[0]).status_code == 200
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
    fetch_all(http, unsigned[:20] + signed[:20], threads)  # warm up both paths
    presigned_rates, plain_rates = [], []
    for _ in range(max(3, reps * 2)):
        plain_rates.append(rate(http, unsigned, threads))
        presigned_rates.append(rate(http, signed, threads))
    p, u = statistics.median(presigned_rates), statistics.median(plain_rates)
    print(f"[1] segment GETs ({objects} x {size >> 10} KiB, {threads} threads): presigned {p:.0f} req/s, "
          f"unsigned {u:.0f} req/s, ratio {p / u:.2f} (target >= 0.9)")
    return p / u


# ---------------------------------------------------------------- 2. API requests per viewer-hour

def hour_long_video(app, hls_dir, segments=600):
    """A published version of one rendition: 600 six-second segments (tiny bytes: only the
    number of requests matters here)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:6", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i in range(segments):
        lines += ["#EXTINF:6.000000,", f"seg{i:03d}.ts?v={hls_dir.split('/')[1]}"]
    lines.append("#EXT-X-ENDLIST")
    master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=854x480\n480p/index.m3u8\n"
    with app.app_context():
        store = media_store()
        put = store.client.put_object
        put(Bucket=store.bucket, Key=store.key(f"hls/{hls_dir}/master.m3u8"), Body=master.encode())
        put(Bucket=store.bucket, Key=store.key(f"hls/{hls_dir}/480p/index.m3u8"), Body="\n".join(lines).encode())
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: put(Bucket=store.bucket, Key=store.key(f"hls/{hls_dir}/480p/seg{i:03d}.ts"),
                                        Body=b"G" * 188), range(segments)))


def play(app, video_id):
    """A player watching the whole video: (API requests, store requests, seconds of video)."""
    client = app.test_client()
    assert client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD}).status_code == 200
    api = store = 0
    master = client.get(f"/api/video/{video_id}/master.m3u8")
    api += 1
    variant = next(ln for ln in master.text.splitlines() if ln and not ln.startswith("#"))
    playlist = client.get(f"/api/video/{video_id}/{variant}")
    api += 1
    seconds = sum(float(ln[8:].split(",")[0]) for ln in playlist.text.splitlines() if ln.startswith("#EXTINF:"))
    http = requests.Session()
    for line in [ln for ln in playlist.text.splitlines() if ln and not ln.startswith("#")]:
        if line.startswith("http"):
            assert http.get(line, timeout=30).status_code == 200
            store += 1
        else:
            assert client.get(f"/api/video/{video_id}/480p/{line}").status_code == 200
            api += 1
    return api, store, seconds


def bench_requests(app):
    with app.app_context():
        create_user("viewer@example.com", PASSWORD, active=True)
        video = Video(title="An hour", category="Drama", description="", status=READY, duration=3600.0,
                      renditions=[{"label": "480p", "width": 854, "height": 480}])
        db.session.add(video)
        db.session.flush()
        video.hls_dir = f"{video.id}/{uuid.uuid4().hex[:12]}"
        db.session.commit()
        video_id, hls_dir = video.id, video.hls_dir
    hour_long_video(app, hls_dir)
    results = {}
    for mode in ("app", "signed"):
        app.config["MEDIA_DELIVERY"] = mode
        api, store, seconds = play(app, video_id)
        results[mode] = api * 3600 / seconds
        print(f"[2] {mode:6} mode: {api} media requests reached the API, {store} went to the store directly, "
              f"for {seconds / 3600:.1f} h of video: {results[mode]:.0f} per viewer-hour")
    print(f"    target: signed <= 10 (measured {results['signed']:.0f}), app about 600 "
          f"(measured {results['app']:.0f})")
    return video_id


def bench_no_store_requests(app, video_id):
    with app.app_context():
        store = media_store()
    calls = []
    store.client.meta.events.register("before-call.s3", lambda **kw: calls.append(kw["model"].name))
    client = app.test_client()
    client.post("/api/login/", json={"email": "viewer@example.com", "password": PASSWORD})
    assert client.get("/api/video/").status_code == 200
    assert client.get(f"/api/video/{video_id}/").status_code == 200
    print(f"[4] list and detail routes: {len(calls)} store requests (target 0)")
    return len(calls)


# ---------------------------------------------------------------- 3. transcoding: s3 vs local

def transcode_once(app, clip):
    """Upload (not timed), then the whole job as the worker runs it (timed): seconds."""
    with app.app_context(), open(clip, "rb") as stream:
        video = accept(stream, filename=clip.name, title="Bench", category="Drama")
        started = time.perf_counter()
        request_transcode(video)  # HUEY_IMMEDIATE: runs inline, as a worker would
        elapsed = time.perf_counter() - started
        video = db.session.get(Video, video.id)
        assert video.status == READY, video.error
        db.session.delete(video)
        db.session.commit()
    return elapsed


def bench_transcode(apps, clip, reps):
    times = {"local": [], "s3": []}
    for _ in range(reps):
        for mode in ("local", "s3"):
            times[mode].append(transcode_once(apps[mode], clip))
            print(f"    {mode}: {times[mode][-1]:.1f} s", flush=True)
    local, s3 = statistics.median(times["local"]), statistics.median(times["s3"])
    print(f"[3] transcode job, {clip.name}: local {local:.1f} s, s3 {s3:.1f} s (medians of {reps}), "
          f"ratio {s3 / local:.3f} (target <= 1.15)")
    return s3 / local


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="transcode repetitions per mode (default 3)")
    parser.add_argument("--seconds", type=int, default=20, help="length of the 1080p clip (default 20)")
    parser.add_argument("--skip-transcode", action="store_true", help="only the delivery figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="videoflix-bench-storage-"))
    cache = ROOT / "bench" / "work"
    cache.mkdir(exist_ok=True)
    server = SeaweedFS(work / "seaweedfs", public_bucket=PUBLIC).start()
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        server.client().create_bucket(Bucket=bucket)
        s3 = make_app(work, "s3", **server.settings(bucket, prefix="s3"))
        bench_presigned(server, s3, args.reps)
        video_id = bench_requests(s3)
        bench_no_store_requests(s3, video_id)
        if not args.skip_transcode:
            clip = make_sources(cache, args.seconds)["h264"]
            bench_transcode({"local": make_app(work, "local"), "s3": s3}, clip, args.reps)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

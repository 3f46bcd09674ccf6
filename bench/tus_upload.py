"""Upload benchmark: one 1 GiB file sent over loopback (a) as tus, 8 MiB PATCHes to /api/uploads/,
and (b) as the single-request upload form of the back office (/admin/videos/new/, multipart), to
the same gunicorn (production config) and, unless --no-nginx, through deploy/nginx/videoflix.conf
(tus unbuffered, the form buffered to disk by nginx as shipped). The paths run in turn, --rounds
times; medians and the tus/form ratio are printed, with the gunicorn workers' peak RSS growth.

    .venv/bin/python bench/tus_upload.py [--rounds 3] [--size-mb 1024] [--chunk-mb 8] [--no-nginx] [--no-fsync]
                                         [--video]

tus fsyncs every chunk before answering it (TUS_FSYNC=1, the default); the form fsyncs only a file
it keeps, once at the end (so with random bytes, which are refused, never), so on a disk slower
than loopback the comparison measures the disk: --no-fsync shows the protocol's own cost.

Both paths end in the same upload service (uploads.accept: the probe, then the store; the form's
file is copied into it, tus's finished scratch file is kept as it is, by a hard link).
The file is random bytes, so the probe refuses it at once in both (tus: 422, the form: 400) and
nothing is kept: the figures compare receiving the bytes, not ffprobe, whose cost on a real film
is the same in both paths. One client (http.client, 1 MiB writes) sends both.
With --video the file is a real video instead (raw 720p frames in NUT, made by ffmpeg, about
--size-mb): both paths accept it, so both also store it durably (the local store fsyncs the stored
file and its folder before the row commits) and the comparison is like for like.
Everything runs in a temporary folder on 127.0.0.1 and is stopped at exit.
"""
import argparse
import atexit
import base64
import http.client
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import ROOT, free_port, start, start_nginx, stop_all, wait_http, worker_rss  # noqa: E402

BLOCK = 1024 * 1024


def seed(env):
    """The database and a staff account; its access token."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from videoflix import create_app
    from videoflix.auth import sessions
    from videoflix.auth.users import create_user
    from videoflix.extensions import db

    app = create_app()
    with app.app_context():
        db.create_all()
        user = create_user("staff@example.com", secrets.token_urlsafe(16), active=True, staff=True)
        db.session.flush()
        access, _ = sessions.issue(user)
        db.session.commit()
    return access


def send(conn, method, path, headers, source=None, length=0, prefix=b"", suffix=b""):
    """One request whose body is prefix + `length` bytes of the file `source` + suffix, written in
    1 MiB blocks; (status, headers, body)."""
    conn.putrequest(method, path, skip_accept_encoding=True)
    for key, value in {**headers, "Content-Length": str(len(prefix) + length + len(suffix))}.items():
        conn.putheader(key, value)
    conn.endheaders()
    if prefix:
        conn.send(prefix)
    left = length
    while left:
        block = source.read(min(BLOCK, left))
        conn.send(block)
        left -= len(block)
    if suffix:
        conn.send(suffix)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def make_video(path, size_mb):
    """A real video of about `size_mb` MiB: raw 1280x720 frames (1.3 MiB each) in NUT; its size."""
    frames = max(1, size_mb * 1024 * 1024 // (1280 * 720 * 3 // 2))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                    "-frames:v", str(frames), "-c:v", "rawvideo", "-pix_fmt", "yuv420p", "-f", "nut", str(path)],
                   check=True)
    return path.stat().st_size


def upload_tus(port, token, path, size, chunk, accepted=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in {"filename": "bench.bin", "title": "Bench", "category": "Bench"}.items())
    status, headers, _ = send(conn, "POST", "/api/uploads/", {**auth, "Upload-Length": str(size),
                                                              "Upload-Metadata": meta})
    assert status == 201, status
    location = "/" + headers["Location"].split("/", 3)[3]
    offset = 0
    with open(path, "rb") as source:
        while offset < size:
            n = min(chunk, size - offset)
            status, headers, body = send(conn, "PATCH", location, {
                **auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}, source, n)
            offset += n
            if offset < size:
                assert status == 204 and int(headers["Upload-Offset"]) == offset, (status, body[:200])
    if accepted:
        assert status == 204 and headers.get("Video-Id"), (status, body[:200])
    else:
        assert status == 422, (status, body[:200])  # random bytes: refused by the probe, nothing kept
    conn.close()


def upload_form(port, token, path, size, accepted=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    cookie = {"Cookie": f"access_token={token}"}
    status, headers, page = send(conn, "GET", "/admin/videos/new/", cookie)
    assert status == 200, status
    csrf = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1).decode()
    session = headers.get("Set-Cookie", "").split(";")[0]
    boundary = secrets.token_hex(16)
    fields = {"csrf_token": csrf, "title": "Bench", "description": "", "category": "Bench"}
    prefix = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                     for k, v in fields.items())
    prefix += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
               "Content-Type: application/octet-stream\r\n\r\n")
    with open(path, "rb") as source:
        status, _, body = send(conn, "POST", "/admin/videos/new/", {
            "Cookie": f"{cookie['Cookie']}; {session}" if session else cookie["Cookie"],
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Origin": f"http://127.0.0.1:{port}"}, source, size, prefix.encode(), f"\r\n--{boundary}--\r\n".encode())
    if accepted:
        assert status == 302, (status, body[:300])  # stored: back to the list
    else:
        assert status == 400 and b"The upload was refused" in body, (status, body[:300])  # the probe refused it
    conn.close()


class PeakRSS(threading.Thread):
    """Samples the gunicorn workers' RSS every 50 ms; `growth` is the peak over the start (MiB)."""

    def __init__(self, master_pid):
        super().__init__(daemon=True)
        self.master_pid, self.stop = master_pid, threading.Event()
        self.start_rss = sum(worker_rss(master_pid).values())
        self.peak = self.start_rss

    def run(self):
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, sum(worker_rss(self.master_pid).values()))

    @property
    def growth(self):
        return self.peak - self.start_rss


def timed(master_pid, fn, *args):
    sampler = PeakRSS(master_pid)
    sampler.start()
    began = time.perf_counter()
    fn(*args)
    elapsed = time.perf_counter() - began
    sampler.stop.set()
    sampler.join()
    return elapsed, sampler.growth


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--chunk-mb", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--no-fsync", action="store_true", help="TUS_FSYNC=0 (chunks not fsync'ed before the answer)")
    parser.add_argument("--video", action="store_true", help="a real video both paths accept and store")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="videoflix-bench-upload-"))
    atexit.register(lambda: __import__("shutil").rmtree(tmp, ignore_errors=True))
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    media = tmp / "media"
    env = {
        "VIDEOFLIX_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48), "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "MEDIA_ROOT": str(media), "REDIS_URL": "",
        "HUEY_FILE": str(tmp / "huey.sqlite3"), "MAX_UPLOAD_MB": str(args.size_mb + 64), "PROXY_COUNT": "1",
        "TUS_FSYNC": "0" if args.no_fsync else "1",
    }
    token = seed(env)
    path = tmp / "upload.bin"
    if args.video:
        size = make_video(path, args.size_mb)
    else:
        size = args.size_mb * 1024 * 1024
        with open(path, "wb") as out:
            for _ in range(args.size_mb):
                out.write(os.urandom(BLOCK))

    app_port, proxy_port, direct_port = free_port(), free_port(), free_port()
    log = open(tmp / "servers.log", "w")  # noqa: SIM115 (the servers write to it until the bench exits)
    master = start([sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                    "-w", str(args.workers), "--timeout", "600", "--log-level", "warning",
                    "-b", f"127.0.0.1:{app_port}", "wsgi:app"], {**os.environ, **env}, log)
    wait_http(f"http://127.0.0.1:{app_port}/api/health/")
    ports = {"gunicorn": app_port}
    if not args.no_nginx:
        start_nginx(tmp, media, direct_port, proxy_port, app_port, 1, "nginx", log)
        wait_http(f"http://127.0.0.1:{proxy_port}/api/health/")
        ports["nginx"] = proxy_port

    chunk = args.chunk_mb * 1024 * 1024
    what = "a raw video (accepted)" if args.video else "random bytes"
    print(f"{size / 2**20:.0f} MiB of {what}; tus chunks of {args.chunk_mb} MiB; gunicorn gthread "
          f"{args.workers} workers; {os.cpu_count()} CPUs; {args.rounds} rounds; TUS_FSYNC={env['TUS_FSYNC']}")
    results = {(via, kind): [] for via in ports for kind in ("tus", "form")}
    for round_no in range(1, args.rounds + 1):
        for via, port in ports.items():
            for kind in ("form", "tus"):
                fn, fargs = (upload_tus, (port, token, path, size, chunk, args.video)) if kind == "tus" else \
                    (upload_form, (port, token, path, size, args.video))
                elapsed, growth = timed(master.pid, fn, *fargs)
                results[(via, kind)].append((elapsed, growth))
                print(f"  round {round_no} {via:8} {kind:4}: {elapsed:6.2f} s  {size / elapsed / 2**20:7.1f} MiB/s  "
                      f"worker RSS +{growth:.1f} MiB")
    for via in ports:
        tus_s = statistics.median(e for e, _ in results[(via, "tus")])
        form_s = statistics.median(e for e, _ in results[(via, "form")])
        rss = max(g for kind in ("tus", "form") for _, g in results[(via, kind)])
        tus_rss = max(g for _, g in results[(via, "tus")])
        print(f"{via}: median tus {size / tus_s / 2**20:.1f} MiB/s, form {size / form_s / 2**20:.1f} MiB/s, "
              f"tus/form throughput {form_s / tus_s:.2f}; worker RSS growth: tus {tus_rss:.1f} MiB, "
              f"max of both {rss:.1f} MiB")


if __name__ == "__main__":
    main()

"""`make smoke-s3` (.ci/smoke-s3.sh): Videoflix scaled out on one machine, sharing nothing but
PostgreSQL, Redis and a bucket (a SeaweedFS of its own).

Two gunicorn web servers and two workers, each with its own empty scratch folder and its own
MEDIA_ROOT that nobody writes to. A staff user uploads a 60 s 1080p clip through web 1's admin;
its transcode is split into parts of 6 s (TRANSCODE_CHUNK_SECONDS) that both workers take; a
viewer watches it through web 2 while it grows (processing, yet listed and playable from 0);
once each worker has finished a part, the one doing a part is killed with SIGKILL; the other one
does that part again and finishes the film; the killed worker, started again on its scratch
folder, removes what it left there; a viewer watches the finished film through web 2 (list,
master, every media playlist, every segment). Afterwards no scratch folder holds a file, no
MEDIA_ROOT exists, and the bucket holds exactly the upload and the current version.
"""
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from steps import Steps  # noqa: E402  (.ci/, first on the path of a script run from it)

from tests.fixtures.object_store import SeaweedFS, free_ports  # noqa: E402
from videoflix.videos.media.ffmpeg import ffmpeg_exe  # noqa: E402

PY = sys.executable
PG = os.environ.get("SMOKE_PG", "postgresql://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("SMOKE_S3_DB_NAME", "videoflix_smoke_s3")
REDIS_URL = os.environ.get("SMOKE_S3_REDIS", "redis://127.0.0.1:6379/6")
PASSWORD = "smoke-s3-" + secrets.token_hex(8)
STEPS = Steps("smoke-s3")
step, check, wait_for = STEPS.step, STEPS.check, STEPS.wait_for


class Processes:
    """Processes started here, each in its own process group, stopped at the end."""

    def __init__(self, work):
        self.work, self.running = work, {}

    def start(self, name, args, env):
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - the child writes to it
        self.running[name] = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
        log.close()
        return self.running[name]

    def kill(self, name, sig):
        process = self.running.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def stop_all(self):
        for name in list(self.running):
            self.kill(name, signal.SIGTERM)

    def tail(self):
        for log in sorted(self.work.glob("*.log")):
            print(f"--- last lines of {log.name}", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)


def make_clip(path):
    """60 s of 1080p with sound: ten parts of 6 s, so parts are still being written once each worker
    has finished one (with five, both workers were sometimes done with the film by then)."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=1920x1080:rate=25:duration=60", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=60", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True, timeout=300)


def flask(env, *args):
    done = subprocess.run([PY, "-m", "flask", "--app", "wsgi", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    check(done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def row(video_id=None):
    columns = ["id", "status", "claimed_by", "progress", "hls_dir", "source_file", "growing"]
    with psycopg2.connect(f"{PG}/{DB_NAME}") as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(columns)} FROM video ORDER BY id DESC")
        found = cur.fetchone()
    return dict(zip(columns, found)) if found else None


def parts():
    """[(number, status, claimed_by, the worker that did it)] of the running job's parts."""
    with psycopg2.connect(f"{PG}/{DB_NAME}") as conn, conn.cursor() as cur:
        cur.execute("SELECT number, status, claimed_by, result FROM transcode_chunk ORDER BY number")
        return [(n, status, claim, (result or {}).get("worker")) for n, status, claim, result in cur.fetchall()]


class PlainHTTPSession(requests.Session):
    """Sends the Secure cookies over plain HTTP (the servers run the production profile on
    127.0.0.1, without TLS)."""

    def request(self, *args, **kwargs):
        response = super().request(*args, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return response


def session():
    return PlainHTTPSession()


def upload_through_admin(base, clip):
    admin = session()
    admin.headers["Origin"] = base  # a browser's same-origin form post
    page = admin.get(f"{base}/admin/login/")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)[1]
    signed_in = admin.post(f"{base}/admin/login/", data={"csrf_token": token, "email": "staff@example.com",
                                                          "password": PASSWORD}, allow_redirects=False)
    check(signed_in.status_code == 302, f"admin sign-in: {signed_in.status_code}")
    form = admin.get(f"{base}/admin/videos/new/")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)[1]
    with open(clip, "rb") as stream:
        sent = admin.post(f"{base}/admin/videos/new/", allow_redirects=False, files={"file": ("clip.mp4", stream)},
                          data={"csrf_token": token, "title": "Scaled out", "description": "smoke",
                                "category": "Drama"})
    check(sent.status_code == 302, f"admin upload: {sent.status_code} {sent.text[:300]}")


def watch(base, video_id, growing=False):
    """List, master, every media playlist, every segment through `base`; the number of segments.
    `growing`: the playlists are EVENT playlists from 0 (a video still processing), else VOD."""
    viewer = session()
    check(viewer.post(f"{base}/api/login/", json={"email": "viewer@example.com", "password": PASSWORD},
                      headers={"Origin": "http://frontend.smoke.test"}).status_code == 200, "viewer login")
    listed = viewer.get(f"{base}/api/video/").json()
    check([v["id"] for v in listed] == [video_id], f"the list through web 2: {listed}")
    detail = viewer.get(f"{base}/api/video/{video_id}/").json()
    check(detail["playable"] and detail["status"] == ("processing" if growing else "ready"), f"detail: {detail}")
    master = viewer.get(f"{base}/api/video/{video_id}/master.m3u8")
    check(master.status_code == 200, f"master: {master.status_code}")
    segments = 0
    for uri in [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")]:
        playlist = viewer.get(f"{base}/api/video/{video_id}/{uri}")
        check(playlist.status_code == 200, f"{uri}: {playlist.status_code}")
        kind = "#EXT-X-PLAYLIST-TYPE:EVENT" if growing else "#EXT-X-PLAYLIST-TYPE:VOD"
        check(kind in playlist.text and ("#EXT-X-ENDLIST" in playlist.text) != growing, f"{uri}: {playlist.text}")
        label = uri.split("/")[0]
        for line in [ln for ln in playlist.text.splitlines() if ln and not ln.startswith("#")]:
            segment = viewer.get(f"{base}/api/video/{video_id}/{label}/{line}")
            check(segment.status_code == 200 and segment.content[:1] == b"G", f"{label}/{line}: {segment.status_code}")
            segments += 1
    return segments


def scratch_files(work):
    return [str(p) for p in work.glob("*/scratch/**/*") if p.is_file()]


def run(work, procs):
    step("a SeaweedFS of our own, a fresh PostgreSQL database, Redis database 6")
    store = SeaweedFS(work / "seaweedfs").start()
    procs.running["seaweedfs"] = store.process
    subprocess.run(["psql", f"{PG}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c",
                    f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", "-c", f"CREATE DATABASE {DB_NAME}"], check=True)
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "TEST_", "S3_", "MEDIA_"))}
    env.update(store.settings("videoflix-smoke"))
    env.update(VIDEOFLIX_ENV="production", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(48),
               DATABASE_URL=f"{PG}/{DB_NAME}", REDIS_URL=REDIS_URL, REDIS_PREFIX="smokes3:", EMAIL_BACKEND="console",
               FRONTEND_URL="http://frontend.smoke.test", WORKERS="1", RECOVERY_INTERVAL="2",
               TRANSCODE_STALE_SECONDS="20", FFMPEG_THREADS="2", WEB_CONCURRENCY="2", LOG_JSON="0", FLASK_APP="wsgi",
               TRANSCODE_CHUNK_SECONDS="6")

    def own(name):  # each process: its own MEDIA_ROOT (never written) and scratch folder
        return {**env, "MEDIA_ROOT": str(work / name / "media"), "MEDIA_SCRATCH": str(work / name / "scratch")}

    flask(own("admin"), "db", "upgrade")
    step(flask(own("admin"), "storage", "init").strip().replace("\n", "; "))
    flask(own("admin"), "create-user", "staff@example.com", "--staff", "--password", PASSWORD)
    flask(own("admin"), "create-user", "viewer@example.com", "--password", PASSWORD)

    ports = free_ports(2)
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    for i, port in enumerate(ports, 1):
        procs.start(f"web{i}", [PY, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                    {**own(f"web{i}"), "HOST": "127.0.0.1", "PORT": str(port)})
    for i in (1, 2):
        procs.start(f"worker{i}", [PY, "-m", "flask", "--app", "wsgi", "worker"], own(f"worker{i}"))
    for base in bases:
        wait_for(lambda b=base: _answers(f"{b}/api/health/"), f"{base}/api/health/")

    clip = work / "clip.mp4"
    make_clip(clip)
    step("upload a 60 s 1080p clip through web 1's admin")
    upload_through_admin(bases[0], clip)
    growing = wait_for(lambda: (r := row()) and r["growing"] and r, "the first part to be published", 600)
    step(f"video {growing['id']} playable while processing ({growing['progress']}%): "
         f"{watch(bases[1], growing['id'], growing=True)} segments watched through web 2")
    done_by = wait_for(lambda: len(workers := {w for _, status, _, w in parts() if status == "done"}) >= 2 and workers,
                       "each worker to finish a part", 600)
    step(f"parts done by {len(done_by)} workers: {sorted(done_by)}")
    number, pid, victim = wait_for(lambda: _running_part_with_files(work, procs), "a part being written")
    step(f"kill -9 {victim} (pid {pid}) in part {number}")
    procs.kill(victim, signal.SIGKILL)
    ready = wait_for(lambda: (r := row()) and r["status"] == "ready" and not r["growing"] and r,
                     "the other worker to finish", 600)
    step(f"video {ready['id']} ready as {ready['hls_dir']}, finished by the other worker")
    check(any(Path(p).relative_to(work).parts[0] == victim for p in scratch_files(work)),
          "the killed worker left no scratch files (kill -9 came too late?)")
    procs.start(victim, [PY, "-m", "flask", "--app", "wsgi", "worker"], own(victim))
    wait_for(lambda: not scratch_files(work), "the restarted worker to clean its scratch folder", 120)
    step(f"{victim} started again: its scratch folder is empty")

    segments = watch(bases[1], ready["id"])
    step(f"watched through web 2: list, master, media playlists and {segments} segments")

    client = store.client()
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket="videoflix-smoke").get("Contents", []))
    wanted = {f"uploads/{ready['source_file']}"}
    check(set(keys) >= wanted and all(k in wanted or k.startswith(f"hls/{ready['hls_dir']}/") for k in keys),
          f"the bucket holds more than the upload and the current version: {keys}")
    check(any(k.endswith("master.m3u8") for k in keys), "no master playlist in the bucket")
    step(f"the bucket holds exactly the upload and the current version ({len(keys)} objects)")
    check(not scratch_files(work), f"scratch files left: {scratch_files(work)}")
    check(not any((work / name / "media").exists() for name in ("web1", "web2", "worker1", "worker2")),
          "a MEDIA_ROOT was written to")
    step("no scratch folder holds a file, no MEDIA_ROOT was created")


def _running_part_with_files(work, procs):
    """(number, pid, worker name) of a running part whose worker has written into its scratch
    folder, or None."""
    for number, status, claim, _ in parts():
        if status != "running" or not claim:
            continue
        pid = int(claim.rsplit(":", 2)[1])
        name = next((n for n in ("worker1", "worker2") if _in_group(pid, procs.running[n].pid)), None)
        if name and any(Path(p).relative_to(work).parts[0] == name for p in scratch_files(work)):
            return number, pid, name
    return None


def _answers(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _in_group(pid, group):
    try:
        return os.getpgid(pid) == group
    except ProcessLookupError:
        return False


def main():
    work = Path(tempfile.mkdtemp(prefix="videoflix-smoke-s3-"))
    procs = Processes(work)
    ok = False
    try:
        run(work, procs)
        ok = True
    finally:
        procs.stop_all()
        if not ok:
            procs.tail()
        subprocess.run(["psql", f"{PG}/postgres", "-q", "-c", f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"],
                       check=False)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print("smoke-s3: all passed", flush=True)


if __name__ == "__main__":
    main()

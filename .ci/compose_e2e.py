"""The compose stack end to end (.ci/compose.sh runs it against a stack it started), through nginx only.

register -> activate from the e-mail the worker container sent (an SMTP sink on the host) -> login ->
a staff user uploads a 40 s 1080p clip with tus (tuspy) -> the worker container transcodes it ->
`docker stop` of the worker mid-transcode re-queues the job -> a restarted worker finishes it -> every
segment of every rendition is fetched and ffmpeg decodes each rendition as an HLS client -> `down` and
`up` again -> the same account signs in, the video is listed and plays (volumes kept everything).

Each step prints one line; any miss exits non-zero. The database is read (never written) on its
published port to watch the job's state; every request goes to nginx.
"""
import argparse
import mailbox
import re
import secrets
import subprocess
import sys
import tempfile
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2
import requests
from steps import Steps
from tusclient.client import TusClient

VIEWER = "compose.viewer@example.com"
STAFF = "compose.staff@example.com"
PASSWORD = "compose-" + secrets.token_hex(8)
STEPS = Steps("compose-e2e")
step, check, wait_for = STEPS.step, STEPS.check, STEPS.wait_for


class Stack:
    """The compose command of this run (a wrapper script .ci/compose.sh wrote) and the database."""

    def __init__(self, args):
        self.compose, self.dsn, self.base = args.compose, args.dsn, args.base_url.rstrip("/")

    def run(self, *args, timeout=600):
        done = subprocess.run([self.compose, *args], capture_output=True, text=True, timeout=timeout)
        check(done.returncode == 0, f"compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def ffmpeg_running(self, service):
        """Whether an ffmpeg process runs in the service's container (its /proc: no ps in the image)."""
        probe = ("import os\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
                 "    try:\n        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')[0]\n"
                 "    except OSError:\n        continue\n"
                 "    if os.path.basename(cmd) == b'ffmpeg':\n        print(pid)")
        done = subprocess.run([self.compose, "exec", "-T", service, "python", "-c", probe], capture_output=True,
                              text=True, timeout=60)
        return done.returncode == 0 and done.stdout.strip() != ""

    def row(self, video_id):
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT status, claimed_by, progress, growing FROM video WHERE id = %s", (video_id,))
            found = cur.fetchone()
        return dict(zip(["status", "claimed_by", "progress", "growing"], found)) if found else None

    def parts(self, video_id):
        """[(number, status, claimed_by)] of the video's running transcode's parts."""
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT number, status, claimed_by FROM transcode_chunk WHERE video_id = %s ORDER BY number",
                        (video_id,))
            return cur.fetchall()


def login(base, email):
    """A signed-in requests session; the production profile's Secure cookies go back over plain http."""
    client = requests.Session()
    answer = client.post(f"{base}/api/login/", json={"email": email, "password": PASSWORD}, timeout=30)
    check(answer.status_code == 200, f"login {email}: {answer.status_code} {answer.text[:200]}")
    for cookie in client.cookies:
        cookie.secure = False
    return client


def activation_link(maildir):
    if not (Path(maildir) / "new").is_dir():
        return None
    box = mailbox.Maildir(maildir, create=False)
    for key in box.keys():  # noqa: SIM118 (iterating a Mailbox yields messages, not keys)
        message = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        if VIEWER in str(message["To"]):
            text = message.get_body(preferencelist=("plain",)).get_content()
            match = re.search(r"\S+/pages/auth/activate\.html\?\S+", text)
            check(match is not None, f"no activation link in the e-mail:\n{text}")
            return match.group(0)
    return None


def register_and_activate(stack, maildir):
    body = {"email": VIEWER, "password": PASSWORD, "confirmed_password": PASSWORD, "privacy_policy": "on"}
    answer = requests.post(f"{stack.base}/api/register/", json=body, timeout=30)
    check(answer.status_code == 201, f"register: {answer.status_code} {answer.text[:200]}")
    link = wait_for(lambda: activation_link(maildir), "the activation e-mail (worker container -> SMTP sink)", 120)
    query = parse_qs(urlsplit(link).query)
    activated = requests.get(f"{stack.base}/api/activate/{query['uid'][0]}/{query['token'][0]}/", timeout=30)
    check(activated.status_code == 200, f"activate: {activated.status_code} {activated.text[:200]}")
    login(stack.base, VIEWER)
    step("registered, activated from the delivered e-mail, signed in")


def make_clip(path):
    """40 s of 1080p with sound: long enough to stop the worker in the middle of it."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=40",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=40", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True, timeout=300)


def upload_with_tus(stack, clip):
    stack.run("exec", "-T", "web", "flask", "--app", "wsgi", "create-user", STAFF, "--staff", "--password", PASSWORD)
    token = login(stack.base, STAFF).cookies["access_token"]
    client = TusClient(f"{stack.base}/api/uploads/", headers={"Authorization": f"Bearer {token}"})
    fields = {"filename": "clip.mp4", "title": "Compose clip", "description": "Sent with tus.", "category": "Drama"}
    uploader = client.uploader(str(clip), chunk_size=4 * 1024 * 1024, metadata=fields)
    uploader.upload()
    check(uploader.request.status_code == 204, f"last PATCH: {uploader.request.status_code}")
    video_id = int(uploader.request.response_headers["video-id"])
    step(f"uploaded {clip.stat().st_size} bytes with tus through nginx: video {video_id}")
    return video_id


def stop_worker_mid_transcode(stack, video_id):
    """The worker container is stopped while it writes a part: that part is queued again (the
    parts done stay done), and the started worker finishes the film."""
    wait_for(lambda: any(status == "running" for _, status, _ in stack.parts(video_id)),
             "the worker container to take a part")
    wait_for(lambda: stack.ffmpeg_running("worker"), "ffmpeg to run in the worker container", 60)
    claimed = stack.row(video_id)
    running = [(n, claim) for n, status, claim in stack.parts(video_id) if status == "running"]
    check(claimed["claimed_by"] and running, f"not transcoding at the stop: {claimed} {running}")
    step(f"docker stop of the worker while its ffmpeg runs, at {claimed['progress']}% (parts {running})")
    stack.run("stop", "worker")
    after, parts = stack.row(video_id), stack.parts(video_id)
    check(not any(status == "running" or claim for _, status, claim in parts) and
          any(status == "queued" for _, status, _ in parts), f"a part not queued again after the stop: {parts}")
    check(after["claimed_by"] and (after["status"] != "ready" or after["growing"]), f"the job is gone: {after}")
    step(f"the stopped worker let go of its part: {parts}")
    stack.run("start", "worker")
    ready = wait_for(lambda: (r := stack.row(video_id)) and (r["status"] == "failed" or
                                                           (r["status"] == "ready" and not r["growing"])) and r,
                     "the restarted worker to finish", 600)
    check(ready["status"] == "ready", f"the transcode failed after the restart: {ready}")
    step("a restarted worker finished it: ready")


def play_everything(stack, video_id):
    """Every segment of every rendition, then ffmpeg decodes each rendition as an HLS client."""
    viewer = login(stack.base, VIEWER)
    listed = viewer.get(f"{stack.base}/api/video/", timeout=30).json()
    check(video_id in [v["id"] for v in listed], f"video {video_id} not listed: {listed}")
    master = viewer.get(f"{stack.base}/api/video/{video_id}/master.m3u8", timeout=30)
    check(master.status_code == 200, f"master: {master.status_code}")
    renditions = [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")]
    check(len(renditions) >= 2, f"a 1080p upload gave only {renditions}")
    cookie = f"access_token={viewer.cookies['access_token']}"
    total = 0
    for uri in renditions:
        url = f"{stack.base}/api/video/{video_id}/{uri}"
        playlist = viewer.get(url, timeout=30)
        check(playlist.status_code == 200 and "#EXT-X-ENDLIST" in playlist.text, f"{uri}: {playlist.status_code}")
        label = uri.split("/")[0]
        segments = [ln for ln in playlist.text.splitlines() if ln and not ln.startswith("#")]
        for name in segments:
            segment = viewer.get(f"{stack.base}/api/video/{video_id}/{label}/{name}", timeout=30)
            check(segment.status_code == 200 and segment.content[:1] == b"G", f"{label}/{name}: {segment.status_code}")
        decoded = subprocess.run(["ffmpeg", "-v", "error", "-headers", f"Cookie: {cookie}\r\n", "-i", url,
                                  "-map", "0", "-f", "null", "-"], capture_output=True, text=True, timeout=300)
        check(decoded.returncode == 0 and not decoded.stderr.strip(), f"ffmpeg on {uri}: {decoded.stderr[-800:]}")
        total += len(segments)
        step(f"{label}: {len(segments)} segments fetched, ffmpeg decoded the rendition without an error")
    return total


def survives_down_and_up(stack, video_id):
    stack.run("down")
    step("docker-compose down (volumes kept)")
    stack.run("up", "-d")
    wait_for(lambda: _answers(f"{stack.base}/api/health/"), "the stack to answer again after up")
    viewer = login(stack.base, VIEWER)
    listed = viewer.get(f"{stack.base}/api/video/", timeout=30).json()
    check(video_id in [v["id"] for v in listed], f"after down + up, video {video_id} is not listed: {listed}")
    playlist = viewer.get(f"{stack.base}/api/video/{video_id}/480p/index.m3u8", timeout=30)
    first = next(ln for ln in playlist.text.splitlines() if ln and not ln.startswith("#"))
    segment = viewer.get(f"{stack.base}/api/video/{video_id}/480p/{first}", timeout=30)
    check(segment.status_code == 200 and segment.content[:1] == b"G", f"segment after up: {segment.status_code}")
    step("after down + up: the account signs in, the video is listed, its media play")


def _answers(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True, help="nginx")
    parser.add_argument("--compose", required=True, help="a script running docker-compose for this stack")
    parser.add_argument("--dsn", required=True, help="the stack's database, read-only use")
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    stack = Stack(args)
    health = requests.get(f"{stack.base}/api/health/", timeout=30)
    check(health.status_code == 200 and health.json()["status"] == "ok", f"health: {health.text[:300]}")
    step(f"health through nginx: {health.json()['checks']}")
    register_and_activate(stack, args.maildir)
    with tempfile.TemporaryDirectory(prefix="videoflix-compose-clip-") as work:
        clip = Path(work) / "clip.mp4"
        make_clip(clip)
        video_id = upload_with_tus(stack, clip)
    stop_worker_mid_transcode(stack, video_id)
    segments = play_everything(stack, video_id)
    step(f"{segments} segments in all")
    survives_down_and_up(stack, video_id)
    print("compose-e2e: all passed", flush=True)


if __name__ == "__main__":
    sys.exit(main())

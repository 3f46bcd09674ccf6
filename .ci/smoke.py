"""The production smoke flow, run by .ci/smoke.sh against a live stack (nginx -> gunicorn, a Huey
worker, PostgreSQL, Redis, a real SMTP listener).

register -> activate from the delivered e-mail -> login -> add a video (`flask add-video`) ->
wait until it is listed (URLs on the address used; through nginx also as a published port and
behind TLS, and same-origin POSTs pass) -> playlist, segment (caching, 304, 206) and thumbnail ->
logout -> streaming refused.

Cookies are handled by hand: the production profile marks them Secure, and a cookie jar would
not send them back over plain http://127.0.0.1. Each step prints one line; any failure raises
and exits non-zero. Standard library only.
"""
import argparse
import json
import mailbox
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from email import policy
from email.parser import BytesParser
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urljoin, urlsplit

from steps import poll

EMAIL = "smoke.viewer@example.com"
PASSWORD = "smoke-Test-passw0rd-long"


class SmokeFailure(Exception):
    pass


def step(message):
    print(f"    smoke: {message}", flush=True)


def check(condition, message):
    if not condition:
        raise SmokeFailure(message)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to look at, not to follow


class Client:
    """A tiny HTTP client that keeps cookies itself, Secure ones included."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.cookies = {}
        self.opener = urllib.request.build_opener(NoRedirect)

    def call(self, method, path, body=None, *, headers=None, cookies=True):
        url = path if path.startswith("http") else self.base + path
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if cookies and self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            status, raw, header_list = response.status, response.read(), response.headers
        set_cookies = header_list.get_all("Set-Cookie") or []
        for line in set_cookies:
            for name, morsel in SimpleCookie(line).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Response(status, header_list, raw, set_cookies)


class Response:
    def __init__(self, status, headers, raw, set_cookies):
        self.status, self.headers, self.raw, self.set_cookies = status, headers, raw, set_cookies

    def json(self):
        try:
            return json.loads(self.raw)
        except ValueError:
            raise SmokeFailure(f"not JSON ({self.status}): {self.raw[:200]!r}") from None

    def expect(self, status, what):
        check(self.status == status, f"{what}: expected {status}, got {self.status}: {self.raw[:300]!r}")
        return self


def wait_for(predicate, seconds, what):
    result = poll(predicate, seconds)
    if not result:
        raise SmokeFailure(f"timed out after {seconds}s waiting for {what}")
    return result


def delivered_activation_link(maildir, frontend_url):
    """The activation link from the e-mail the SMTP listener stored, or None while none came."""
    if not os.path.isdir(os.path.join(maildir, "new")):
        return None
    box = mailbox.Maildir(maildir, create=False)
    for key in box.keys():  # noqa: SIM118 (iterating a Mailbox yields messages, not keys)
        message = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        if EMAIL not in str(message["To"]):
            continue
        kinds = {part.get_content_type() for part in message.walk()}
        check({"text/plain", "text/html"} <= kinds, f"activation e-mail lacks a text or HTML part: {kinds}")
        text = message.get_body(preferencelist=("plain",)).get_content()
        match = re.search(re.escape(frontend_url) + r"/pages/auth/activate\.html\?\S+", text)
        check(match is not None, f"no activation link in the e-mail:\n{text}")
        return match.group(0)
    return None


def cookie_flags(set_cookies, name):
    for line in set_cookies:
        if line.startswith(name + "="):
            return {part.strip().split("=")[0].lower() for part in line.split(";")[1:]}
    raise SmokeFailure(f"no {name} cookie set")


def make_clip(path):
    """A 2-second 854x480 H.264/AAC clip: small, but enough for a 480p rendition."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=25:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path],
        check=True,
    )


IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"


def vary_values(response):
    return {v.strip().lower() for line in response.headers.get_all("Vary") or [] for v in line.split(",")}


def check_segment_caching(api, url, version, origin):
    """A segment (through nginx: X-Accel-Redirect) is immutable only under its current version's
    URL, varies on the credentials and the Origin, and answers 304 and 206."""
    for query, cache in ((f"?v={version}", IMMUTABLE), ("?v=stale", REVALIDATE), ("", REVALIDATE)):
        full = api.call("GET", url + query, headers={"Origin": origin}).expect(200, f"segment{query}")
        check(full.headers.get("Cache-Control") == cache,
              f"segment{query}: Cache-Control {full.headers.get('Cache-Control')!r}, expected {cache!r}")
        check({"cookie", "authorization", "origin"} <= vary_values(full), f"segment{query}: Vary {full.headers}")
        etag = full.headers.get("ETag")
        check(etag, f"segment{query} has no ETag: {full.headers}")
        again = api.call("GET", url + query, headers={"If-None-Match": etag}).expect(304, f"segment{query} revalidated")
        check(again.raw == b"", "a 304 with a body")
        part = api.call("GET", url + query, headers={"Range": "bytes=0-187"}).expect(206, f"segment{query} range")
        check(part.raw == full.raw[:188], f"segment{query}: the 206 is not the first 188 bytes")
    step(f"segment caching: immutable only with ?v={version}, else revalidated; Vary, 304 and 206 work")


def check_forwarded_address(api, video_id):
    """nginx forwards the address the client used, as a published port or an outer TLS proxy
    would present it: the app builds its URLs and its same-origin check from it."""
    published = "http://videoflix.smoke.test:8080"  # Host as docker's port mapping leaves it
    detail = api.call("GET", f"/api/video/{video_id}/", headers={"Host": "videoflix.smoke.test:8080"})
    master = detail.expect(200, "details through a published port").json()["master_url"]
    check(master == f"{published}/api/video/{video_id}/master.m3u8", f"master_url behind a published port: {master}")
    tls = api.call("GET", "/api/video/", headers={"Host": "videoflix.example.com", "X-Forwarded-Proto": "https"})
    urls = [v["thumbnail_url"] for v in tls.expect(200, "list behind TLS").json() if v["id"] == video_id]
    check(urls and urls[0].startswith("https://videoflix.example.com/api/video/"), f"behind TLS: {urls}")
    # A same-origin write from a page served by this very address is not refused as cross-site.
    for base, host in ((api.base, None), (published, "videoflix.smoke.test:8080")):
        headers = {"Origin": base, **({"Host": host} if host else {})}
        refreshed = api.call("POST", "/api/token/refresh/", headers=headers)
        check(refreshed.status == 200,
              f"same-origin POST from {base} refused: {refreshed.status} {refreshed.raw[:200]!r}")
    refused = api.call("POST", "/api/token/refresh/", headers={"Origin": "http://evil.example"})
    refused.expect(403, "cross-site POST")
    step(f"nginx forwards host, port and scheme: {master}, {urls[0]}; same-origin POSTs pass, "
         f"cross-site ones get {refused.json()['detail']!r}")


def check_upload_limit(args):
    """An upload a little over MAX_UPLOAD_MB reaches the app (nginx allows MAX_UPLOAD_MB + 16),
    which refuses it with its JSON 413, not nginx's HTML page."""
    email, password = "smoke.staff@example.com", PASSWORD + "-staff"
    made = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "create-user", email,
                           "--password", password, "--staff"], capture_output=True, text=True, check=False)
    check(made.returncode == 0, f"flask create-user --staff failed:\n{made.stdout}\n{made.stderr}")
    staff = Client(args.base_url)
    staff.call("POST", "/api/login/", {"email": email, "password": password}).expect(200, "staff login")
    health = staff.call("GET", "/api/health/").expect(200, "health for staff").json()
    check(health["checks"]["redis"]["backend"] == "redis", f"health should use Redis: {health}")
    check(health["checks"]["queue"]["backend"] == "redis", f"queue should be Redis: {health}")
    step(f"staff see the backends in health ({health['checks']['ffmpeg'].get('version', '?')[:30]})")
    boundary = "smoke-upload-boundary"
    size = (args.max_upload_mb + 2) * 1024 * 1024  # over the app's limit (+1 MB for the form), under nginx's
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nToo big\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    body = head + bytes(size) + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        args.base_url + "/admin/videos/new/", data=body, method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": args.base_url,
                 "Cookie": "; ".join(f"{k}={v}" for k, v in staff.cookies.items())})
    try:
        with staff.opener.open(request, timeout=60) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    check(status == 413 and kind.startswith("application/json"),
          f"an upload of {size >> 20} MB: {status} {kind} {raw[:200]!r} (the app's JSON 413 expected)")
    step(f"a {size >> 20} MB upload passes nginx and gets the app's JSON 413: {json.loads(raw)}")


def run(args):
    api = Client(args.base_url)

    health = api.call("GET", "/api/health/").expect(200, "health").json()
    check(health["status"] == "ok", f"health: {health}")
    check(all(set(c) <= {"status", "ms", "error"} for c in health["checks"].values()),
          f"anonymous health must not show backends or versions: {health}")
    timings = ", ".join(f"{name} {c['ms']}ms" for name, c in health["checks"].items())
    step(f"health ok ({timings})")

    body = {"email": EMAIL, "password": PASSWORD, "confirmed_password": PASSWORD, "privacy_policy": "on"}
    registered = api.call("POST", "/api/register/", body).expect(201, "register").json()
    check(registered["user"]["email"] == EMAIL, f"register: {registered}")
    step(f"registered user {registered['user']['id']}")

    link = wait_for(lambda: delivered_activation_link(args.maildir, args.frontend_url), 60,
                    "the activation e-mail (worker -> SMTP)")
    query = parse_qs(urlsplit(link).query)
    uid, token = query["uid"][0], query["token"][0]
    step("activation e-mail delivered by the worker through SMTP")

    early = api.call("POST", "/api/login/", {"email": EMAIL, "password": PASSWORD})
    early.expect(403, "login before activation")
    check(api.cookies == {}, f"no cookie before activation: {api.cookies}")
    activated = api.call("GET", f"/api/activate/{uid}/{token}/").expect(200, "activate").json()
    check(activated == {"message": "Account successfully activated."}, f"activate: {activated}")
    api.call("GET", f"/api/activate/{uid}/{token}/").expect(400, "activation link used twice")
    step(f"activated (403 before: {early.json()['detail']!r})")

    login = api.call("POST", "/api/login/", {"email": EMAIL, "password": PASSWORD}).expect(200, "login")
    check(login.json()["detail"] == "Login successful", f"login: {login.json()}")
    for name in ("access_token", "refresh_token"):
        flags = cookie_flags(login.set_cookies, name)
        check({"secure", "httponly", "samesite"} <= flags, f"{name} cookie flags in production: {flags}")
    check({"access_token", "refresh_token"} <= set(api.cookies), f"login cookies: {api.cookies}")
    step("logged in; cookies are Secure, HttpOnly, SameSite")

    clip = os.path.join(args.work, "smoke-clip.mp4")
    make_clip(clip)
    added = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "add-video", clip,
         "--title", "Smoke clip", "--description", "Made by .ci/smoke.py", "--category", "Drama"],
        capture_output=True, text=True, check=False,
    )
    check(added.returncode == 0, f"flask add-video failed:\n{added.stdout}\n{added.stderr}")
    video_id = int(re.search(r"Video (\d+)", added.stdout).group(1))
    step(f"flask add-video stored video {video_id}; waiting for the worker to transcode it")

    def listed():
        items = api.call("GET", "/api/video/").expect(200, "list videos").json()
        return [v for v in items if v["id"] == video_id]

    [video] = wait_for(listed, args.transcode_seconds, f"video {video_id} to become ready")
    check(set(video) == {"id", "created_at", "title", "description", "thumbnail_url", "category"},
          f"list item: {video}")
    check(video["title"] == "Smoke clip" and video["category"] == "Drama", f"list item: {video}")
    # Absolute URLs name the address the client used, port included (through nginx too).
    check(video["thumbnail_url"] and video["thumbnail_url"].startswith(api.base + "/api/video/"),
          f"thumbnail_url does not start with {api.base}: {video}")
    step(f"listed: {video}")
    if args.through_nginx:
        check_forwarded_address(api, video_id)

    thumb_path = urlsplit(video["thumbnail_url"]).path
    thumb = api.call("GET", thumb_path).expect(200, "thumbnail")
    check(thumb.raw[:3] == b"\xff\xd8\xff", "thumbnail is not a JPEG")
    playlist_path = f"/api/video/{video_id}/480p/index.m3u8"
    playlist = api.call("GET", playlist_path).expect(200, "480p playlist")
    check(playlist.headers["Content-Type"].startswith("application/vnd.apple.mpegurl"),
          f"playlist type: {playlist.headers}")
    segments = [line for line in playlist.raw.decode().splitlines() if line and not line.startswith("#")]
    check(segments, f"playlist has no segment:\n{playlist.raw.decode()}")
    segment_url = urljoin(api.base + playlist_path, segments[0])
    # As hls.js on the SPA's origin asks: the CORS answer must survive nginx's X-Accel-Redirect.
    origin = args.frontend_url.rstrip("/")
    segment = api.call("GET", segment_url, headers={"Origin": origin}).expect(200, "segment")
    check(segment.headers.get("Access-Control-Allow-Origin") == origin
          and segment.headers.get("Access-Control-Allow-Credentials") == "true",
          f"segment lacks the CORS headers the SPA needs: {dict(segment.headers)}")
    check(segment.headers["Content-Type"].lower().startswith("video/mp2t"), f"segment type: {segment.headers}")
    check(len(segment.raw) > 188 and segment.raw[0] == 0x47, "segment is not MPEG-TS")
    check("X-Accel-Redirect" not in segment.headers, "X-Accel-Redirect leaked to the client")
    step(f"streamed {segments[0]} ({len(segment.raw)} bytes) and the thumbnail ({len(thumb.raw)} bytes)")
    version = parse_qs(urlsplit(video["thumbnail_url"]).query)["v"][0]
    check_segment_caching(api, segment_url.split("?")[0], version, origin)

    if args.through_nginx:
        internal = api.call("GET", "/protected-media/hls/").status
        check(internal == 404, f"nginx's internal media location answered {internal} to a client")
        step("nginx's internal media location is not reachable from outside")
        check_upload_limit(args)

    stale = dict(api.cookies)
    logout = api.call("POST", "/api/logout/").expect(200, "logout").json()
    check(logout["detail"].startswith("Logout successful"), f"logout: {logout}")
    check(api.cookies == {}, f"cookies after logout: {api.cookies}")
    api.cookies = stale  # a client that kept the old cookies must still be refused
    refused = api.call("GET", segment_url).expect(401, "segment after logout")
    api.call("GET", playlist_path).expect(401, "playlist after logout")
    api.call("POST", "/api/token/refresh/").expect(401, "refresh after logout")
    step(f"logged out; streaming refused afterwards ({refused.json()['detail']!r})")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--frontend-url", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--transcode-seconds", type=int, default=180)
    parser.add_argument("--through-nginx", action="store_true")
    parser.add_argument("--max-upload-mb", type=int, default=64, help="the app's MAX_UPLOAD_MB")
    try:
        run(parser.parse_args())
    except SmokeFailure as failure:
        print(f"    smoke: FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    print("    smoke: all steps passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

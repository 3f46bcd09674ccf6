"""/metrics: the Prometheus text format, counters that move with requests and transcodes, and
who may read it."""
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.catalogue_rows import add_videos
from tests.fixtures.playback import beacon, new_session
from tests.fixtures.videos import add_clip

STRANGER = {"REMOTE_ADDR": "203.0.113.7"}


def scrape(client, **kwargs):
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def sample(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_counters_and_latency_move_with_requests(client, auth):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/api/video/").status_code == 200
    client.get("/api/video/999999/")
    after = scrape(client)
    route = {"route": "/api/video/", "method": "GET"}
    assert sample(after, "videoflix_http_requests_total", **route, status="200") - sample(
        before, "videoflix_http_requests_total", **route, status="200") == 3
    assert sample(after, "videoflix_http_request_duration_seconds_count", **route) - sample(
        before, "videoflix_http_request_duration_seconds_count", **route) == 3
    missing = {"route": "/api/video/<id:video_id>/", "method": "GET", "status": "404"}
    assert sample(after, "videoflix_http_requests_total", **missing) - sample(
        before, "videoflix_http_requests_total", **missing) == 1


def test_queue_depth_and_active_playback_sessions(app, client, auth):
    video = add_videos(app, dict(title="Film"))[0]
    for _ in range(2):
        assert beacon(client, video, new_session(), 0, "start").status_code == 200
    ended = new_session()
    beacon(client, video, ended, 0, "start")
    beacon(client, video, ended, 1, "end", 10, 10)
    samples = scrape(client)
    assert sample(samples, "videoflix_active_playback_sessions") == 2
    assert sample(samples, "videoflix_queue_depth", queue="default") == 0
    assert ("videoflix_queue_depth", (("queue", "mail"),)) in samples
    assert sample(samples, "videoflix_metrics_source_up", source="database") == 1


@pytest.mark.slow
def test_transcodes_move_their_histograms(app, client, clip_360p):
    before = scrape(client)
    add_clip(app, clip_360p)
    after = scrape(client)
    for name, labels in (("videoflix_transcode_duration_seconds_count", {"outcome": "ready"}),
                         ("videoflix_time_to_playable_seconds_count", {})):
        assert sample(after, name, **labels) - sample(before, name, **labels) == 1, name
    assert sample(after, "videoflix_transcode_duration_seconds_sum", outcome="ready") > sample(
        before, "videoflix_transcode_duration_seconds_sum", outcome="ready")


def test_strangers_get_404_and_a_wrong_token_401(app, client):
    response = client.get("/metrics", environ_base=STRANGER)
    assert response.status_code == 404 and response.get_json() == {"detail": "Not found."}
    app.config["METRICS_TOKEN"] = "s3cret-metrics-token-for-tests"
    response = client.get("/metrics", environ_base=STRANGER, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.get_json() == {"detail": "Invalid metrics token."}
    scrape(client, environ_base=STRANGER, headers={"Authorization": "Bearer s3cret-metrics-token-for-tests"})


def test_allowed_networks_are_configurable(app, client):
    app.config["METRICS_ALLOW"] = ["10.0.0.0/8", "not an address"]
    assert client.get("/metrics").status_code == 404  # 127.0.0.1 is no longer allowed
    scrape(client, environ_base={"REMOTE_ADDR": "10.1.2.3"})


PROCESS = textwrap.dedent("""
    import sys
    from videoflix import create_app
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    client = app.test_client()
    for _ in range(int(sys.argv[1])):
        client.get("/api/health/")
    if sys.argv[2] == "scrape":
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
""")


@pytest.mark.slow
def test_with_metrics_dir_every_process_is_counted(tmp_path):
    env = {**os.environ, "METRICS_DIR": str(tmp_path / "metrics")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    run = [sys.executable, "-c", PROCESS]
    for count in ("2", "3"):
        subprocess.run([*run, count, "-"], env=env, check=True, cwd=os.getcwd(), timeout=120)
    text = subprocess.run([*run, "1", "scrape"], env=env, check=True, capture_output=True, text=True,
                          timeout=120).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    health = {"route": "/api/health/", "method": "GET"}
    total = sum(v for (name, labels), v in samples.items()
                if name == "videoflix_http_requests_total" and set(health.items()) <= set(labels))
    assert total == 6  # 2 + 3 from processes that are gone, 1 from the one answering


def test_segments_answered_by_the_fast_path_are_counted_under_their_route(app, client, auth, make_video):
    from videoflix.videos.delivery.fastpath import SegmentFastPath

    video_id = make_video(labels=("480p",))
    url = f"/api/video/{video_id}/480p/seg000.ts"
    assert client.get(url).status_code == 200  # through Flask: the token is verified and cached
    fast_calls = []
    fast_path = app.wsgi_app
    assert isinstance(fast_path, SegmentFastPath)
    flask_alone = fast_path.wsgi_app
    fast_path.wsgi_app = lambda environ, start: fast_calls.append(environ["PATH_INFO"]) or flask_alone(environ, start)
    before = scrape(client)
    for _ in range(3):
        assert client.get(url).status_code == 200
    assert url not in fast_calls  # none reached Flask
    after = scrape(client)
    labels = {"route": "/api/video/<id:video_id>/<resolution>/<segment>/", "method": "GET", "status": "200"}
    assert sample(after, "videoflix_http_requests_total", **labels) - sample(
        before, "videoflix_http_requests_total", **labels) == 3


WORKER = textwrap.dedent("""
    import sys, time, urllib.request
    from videoflix import create_app
    from videoflix.metrics import instruments, observers
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "METRICS_PORT": int(sys.argv[1])})
    observers.serve_worker_metrics(app)
    instruments.FAILURES.labels("task").inc(3)
    for _ in range(100):
        try:
            sys.stdout.write(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2).read().decode())
            break
        except OSError:
            time.sleep(0.1)
""")


@pytest.mark.slow
def test_the_worker_serves_its_metrics_on_metrics_port(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "METRICS_DIR": str(tmp_path / "metrics")}
    text = subprocess.run([sys.executable, "-c", WORKER, str(port)], env=env, check=True, capture_output=True,
                          text=True, timeout=120).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("videoflix_failures_total", (("kind", "task"),))] == 3


def test_the_grafana_dashboard_asks_only_for_metrics_we_export(client):
    import json
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "videoflix-dashboard.json"
    dashboard = json.loads(path.read_text())
    asked = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"\b(videoflix_[a-z_]+)", target["expr"])}
    text = client.get("/metrics").get_data(as_text=True)
    exported = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}  # labelled: none observed yet
    exported |= {family.name + suffix for family in text_string_to_metric_families(text)
                 for suffix in suffixes.get(family.type, ())}
    assert len(asked) >= 9 and asked <= exported, asked - exported


@pytest.mark.slow
@pytest.mark.s3
def test_bucket_errors_are_counted_by_operation(app_config, seaweedfs, s3_bucket):
    """A real SeaweedFS that refuses the signature (a wrong secret key): every call is a 403."""
    from botocore.exceptions import ClientError

    from videoflix import create_app
    from videoflix.videos.storage import keys

    app_config.update({**seaweedfs.settings(s3_bucket), "S3_SECRET_ACCESS_KEY": "not-the-secret"})
    app = create_app(app_config)
    client = app.test_client()
    before = scrape(client)
    with app.app_context(), pytest.raises(ClientError):
        keys.media_store(app).read("hls/1/missing/thumbnail.jpg")
    after = scrape(client)
    errors = sum(v for (name, _), v in after.items() if name == "videoflix_bucket_errors_total") - sum(
        v for (name, _), v in before.items() if name == "videoflix_bucket_errors_total")
    assert errors == 1
    assert sample(after, "videoflix_bucket_errors_total", operation="GetObject") >= 1

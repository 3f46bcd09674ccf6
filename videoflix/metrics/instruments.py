"""The instruments, created once per process.

With METRICS_DIR in the environment, prometheus_client's multiprocess mode is switched on before
they are created: each process writes memory-mapped files there, named after the host and the pid
(containers sharing the folder never share a file), and `/metrics` sums the folder. The folder
must start empty with the deployment (compose: the migrate step empties it).
"""
import os
import re
import socket

from prometheus_client import CollectorRegistry, Counter, Histogram, values

METRICS_DIR = os.environ.get("METRICS_DIR") or None
HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:60] or "host"


def process_id():
    """This process in the file names of the multiprocess mode (no "_": the collector splits on it)."""
    return f"{HOST}-{os.getpid()}"


if METRICS_DIR:
    os.makedirs(METRICS_DIR, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)

# Where the instruments of this process are registered when there is no METRICS_DIR.
REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
JOB_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600)

REQUESTS = Counter("videoflix_http_requests", "HTTP requests answered, by route, method and status.",
                   ["route", "method", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("videoflix_http_request_duration_seconds",
                            "Time to answer a request (until its body starts), by route and method.",
                            ["route", "method"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
TRANSCODE_SECONDS = Histogram("videoflix_transcode_duration_seconds",
                              "Wall time of transcode jobs from their planning to their end, over all their "
                              "parts and workers (ready, failed); retry: a task that failed transiently.",
                              ["outcome"], buckets=JOB_BUCKETS, registry=REGISTRY)
TIME_TO_PLAYABLE = Histogram("videoflix_time_to_playable_seconds",
                             "From a video's upload to its first published version.",
                             buckets=JOB_BUCKETS, registry=REGISTRY)
FAILURES = Counter("videoflix_failures", "Failures by kind: transcode (failed for good), transcode_retry "
                   "(transient, retried), task (a background task raised), http_5xx.", ["kind"], registry=REGISTRY)
BUCKET_ERRORS = Counter("videoflix_bucket_errors", "Object store (S3) calls that failed, by operation.",
                        ["operation"], registry=REGISTRY)

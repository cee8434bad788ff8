"""Test support: a live ``hubstead serve`` on a loopback port, throwaway PostgreSQL, client subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hubstead.devtools.postgres import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Account:
    name: str
    write_token: str
    read_token: str


@dataclass
class LiveServer:
    """A running ``hubstead serve`` and the means to act on its data dir with the CLI."""

    data_dir: Path
    database_url: str | None
    backend: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # API processes (``serve --workers``): 1 is the single process that runs everything; N > 1 adds a compute
    # process beside the N API processes (docs/ARCHITECTURE.md, "Processes").
    workers: int = 1
    # ``serve --role``: "all", or "api" / "compute" for one half of a deployment.
    role: str = "all"
    # more ``serve`` arguments, after the defaults (a later one wins: ``--log-level info --log-format json``)
    extra_args: list[str] = field(default_factory=list)
    _names: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["HUBSTEAD_DATA_DIR"] = str(self.data_dir)
        env.pop("HUBSTEAD_DATABASE_URL", None)
        if self.database_url:
            env["HUBSTEAD_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "hubstead.cli", *args], env=self.env(), capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(f"hubstead {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.role}-{self.port}.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hubstead.cli", "serve", "--port", str(self.port), "--log-level", "warning",
             "--workers", str(self.workers), "--role", self.role, *self.extra_args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer /healthz within 60 s")

    def services_url(self) -> str:
        """Where the stateful services (inference, spaces, jobs) answer: this server, or with ``serve --workers N``
        its compute process (the address it publishes in its lease). A Prometheus scrape of the inference series
        goes there, as docs/deploy.md says."""
        if self.workers == 1 and self.role == "all":
            return self.url
        from hubstead.coordination import leases
        from hubstead.db import Database

        db = Database(self.database_url or f"sqlite:///{self.data_dir / 'hubstead.db'}")
        try:
            lease = leases.current(db, "compute")
        finally:
            db.engine.dispose()
        assert lease is not None, "no compute process holds the lease"
        return lease.address

    # What the server's blob stores hold (the data dir's, or the S3 bucket of a deployment), for tests that check
    # that a refused upload stored nothing and an accepted one landed.
    def _bucket(self, part: str) -> tuple[object, str, str] | None:
        location = self.extra_env.get("HUBSTEAD_BLOB_STORE", "")
        if not location.startswith("s3://"):
            return None
        import boto3

        from hubstead.storage.s3 import parse_location

        where = parse_location(location)
        client = boto3.client(
            "s3", endpoint_url=self.extra_env["HUBSTEAD_S3_ENDPOINT"],
            aws_access_key_id=self.extra_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.extra_env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.extra_env.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        prefix = "/".join(p for p in (where.prefix, part) if p)
        return client, where.bucket, prefix

    def _stored(self, part: str, local: Path) -> dict[str, int]:
        """Name -> size of every object in one store (``part``: "" for LFS objects, "xet/xorbs", ...)."""
        bucket = self._bucket(part)
        if bucket is None:
            return {p.name: p.stat().st_size for p in local.rglob("*") if p.is_file()} if local.exists() else {}
        client, name, prefix = bucket
        found: dict[str, int] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix + "/"):  # type: ignore[attr-defined]
            for item in page.get("Contents", []):
                key = item["Key"][len(prefix) + 1 :]
                if re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}", key):
                    found[key.rsplit("/", 1)[1]] = item["Size"]
        return found

    def has_blob(self, oid: str) -> bool:
        """Whether the LFS store holds the object with this sha256."""
        bucket = self._bucket("")
        if bucket is None:
            return (self.data_dir / "lfs" / oid[:2] / oid[2:4] / oid).is_file()
        client, name, prefix = bucket
        from hubstead.storage.s3 import object_key

        try:
            client.head_object(Bucket=name, Key=object_key(prefix, oid))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - botocore's ClientError (404)
            return False
        return True

    def blob_bytes(self, oid: str) -> bytes:
        """The bytes the LFS store holds under this sha256."""
        bucket = self._bucket("")
        if bucket is None:
            return (self.data_dir / "lfs" / oid[:2] / oid[2:4] / oid).read_bytes()
        client, name, prefix = bucket
        from hubstead.storage.s3 import object_key

        return client.get_object(Bucket=name, Key=object_key(prefix, oid))["Body"].read()  # type: ignore[attr-defined,no-any-return]

    def xorbs(self) -> dict[str, int]:
        """Xorb name -> size, for every xorb body the hub stores."""
        return self._stored("xet/xorbs", self.data_dir / "xet" / "xorbs")

    def chunk_index(self, xorb: str) -> bytes:
        """The bytes of one xorb's chunk index."""
        bucket = self._bucket("xet/chunk-index")
        if bucket is None:
            return (self.data_dir / "xet" / "chunk-index" / xorb[:2] / xorb[2:4] / xorb).read_bytes()
        client, name, prefix = bucket
        from hubstead.storage.s3 import object_key

        return client.get_object(Bucket=name, Key=object_key(prefix, xorb))["Body"].read()  # type: ignore[attr-defined,no-any-return]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self, timeout: float = 20) -> None:
        """Stop the server as an operator would (SIGTERM: a graceful shutdown, so a coverage-measured server writes
        its data), and SIGKILL it if it has not exited within ``timeout`` seconds. ``kill`` is for crashes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None

    def unique(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def account(self, prefix: str = "user", *, admin: bool = False, password: str | None = None) -> Account:
        """A new user with a write token and a read token (and ``password`` for the web pages, if given)."""
        name = self.unique(prefix)
        self.cli("users", "create", name, *(["--admin"] if admin else []), *(["--password", password] if password else []))
        write = self.cli("tokens", "create", name, "--role", "write").stdout.strip().splitlines()[-1]
        read = self.cli("tokens", "create", name, "--role", "read").stdout.strip().splitlines()[-1]
        return Account(name=name, write_token=write, read_token=read)


# A hub whose multipart uploads start at 1 MiB with 1 MiB parts: a few megabytes exercise the whole path.
SMALL_PARTS_ENV = {"HUBSTEAD_MULTIPART_THRESHOLD": str(1024 * 1024), "HUBSTEAD_MULTIPART_CHUNK_SIZE": str(1024 * 1024)}


def web_session(server: LiveServer, name: str, password: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in to the web pages (its session cookie), and the CSRF token its pages carry
    (htmx sends it as ``X-CSRF-Token``; forms as ``csrf_token``)."""
    client = httpx.Client(base_url=server.url, timeout=60)
    form = client.get("/login")
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert login_csrf, form.text[:2000]
    answer = client.post("/login", data={"username": name, "password": password, "login_csrf": login_csrf.group(1)})
    assert answer.status_code in (302, 303), answer.text[:2000]
    page = client.get("/settings/tokens")
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert token, page.text[:2000]
    return client, token.group(1)


def client_env(server: LiveServer, token: str | None, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=server.url,
        HF_HOME=str(home),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false",
        TRANSFORMERS_VERBOSITY="error",
    )
    if token:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env


def run_client(
    script: str, env: dict[str, str], *, python: str = sys.executable, timeout: int = 600, expect_ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a client script in a fresh Python process. The script prints JSON on its last line (if any)."""
    with tempfile.TemporaryDirectory(prefix="hubstead-client-") as workdir:
        # A scratch working directory: scripts may write files without touching the checkout.
        result = subprocess.run(
            [python, "-c", textwrap.dedent(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
        )
    if expect_ok and result.returncode != 0:
        raise AssertionError(
            f"client script failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def last_json(result: subprocess.CompletedProcess[str]) -> object:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])

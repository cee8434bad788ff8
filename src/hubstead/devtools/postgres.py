"""A private PostgreSQL server in a temp dir, for the test suite and the benchmarks.

Started from Debian's server binaries (``apt-get install postgresql``) on a free loopback port, as the
``postgres`` user when we are root, with ``fsync=off`` (throwaway data). Each ``new_database`` is a fresh
database on it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_bindir() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` directory, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


class PostgresCluster:
    """A running private PostgreSQL; ``stop_server()``/``start_server()`` restart it (its databases kept), ``stop()``
    ends it and removes its files."""

    def __init__(self, base: str | None = None, *, prefix: str = "hubstead-pg-", db_prefix: str = "hubstead_") -> None:
        bindir = server_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bindir = bindir
        self.db_prefix = db_prefix
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start_server()
        self.counter = 0

    def start_server(self) -> None:
        """Start the server on its data directory and port (at creation, or after ``stop_server``)."""
        self._run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-o",
            f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off -c max_connections=300", "start",
        )  # fmt: skip

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server but keep its data, as an operator's restart does (``fast``: open transactions are rolled
        back and every connection is closed; ``immediate``: as a crash). ``start_server`` brings it back."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def new_database(self) -> str:
        """Create a fresh database and return its URL."""
        import psycopg

        self.counter += 1
        name = f"{self.db_prefix}{self.counter}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def cpu_seconds(self) -> float:
        """CPU used so far by the cluster's live processes (postmaster, backends, background workers)."""
        import psutil

        try:
            pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
            main = psutil.Process(pid)
            procs = [main, *main.children(recursive=True)]
        except (OSError, ValueError, psutil.Error):
            return 0.0
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> None:
        if not self.root.exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

"""Shared pieces of the Hubstead benchmarks: servers on loopback in temp dirs, nginx, a private PostgreSQL,
RSS sampling, optional py-spy profiling, and the result table.

Nothing here touches the project's code: the hub runs as ``python -m hubstead.cli serve`` exactly as a user
would start it, and accounts are made with ``hubstead users create`` / ``hubstead tokens create``.

Ratio convention (every table): the ratio says how hubstead compares with the baseline measured in the same run,
as a *speed* ratio: ``hubstead / baseline`` for rates (MB/s, req/s) and ``baseline / hubstead`` for durations
(s, ms). So 1.0 is parity, 0.5 means half the baseline's speed (twice its time), and higher is always better.
Rows that are not speeds (memory) say what their ratio means in the metric name.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime as _dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hubstead.devtools.postgres import PostgresCluster as _PostgresCluster

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

_cleanups: list = []


def on_exit(fn) -> None:  # type: ignore[no-untyped-def]
    """Run ``fn`` at exit (also on SIGTERM / Ctrl-C), newest first."""
    _cleanups.append(fn)


def _run_cleanups() -> None:
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - cleanup must go on
            print(f"[cleanup] {exc}", file=sys.stderr)


atexit.register(_run_cleanups)


def _sigterm(signum, frame):  # type: ignore[no-untyped-def]
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _sigterm)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_tempdir(prefix: str, base: str | None = None) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    on_exit(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


def free_bytes(path: Path | str) -> int:
    return shutil.disk_usage(path).free


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def machine_info() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    return f"{os.cpu_count()} cores ({cpu}), {mem}, Linux {platform.release()}, Python {platform.python_version()}"


# --- other load on the machine ------------------------------------------------------------------------


class ForeignLoad:
    """Samples, every ``interval`` s, the CPU used by processes that are not this benchmark's (not descendants of
    this process, and not its PostgreSQL), so that a table can say how busy the machine was with other work."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _foreign_cpu(self) -> dict[int, float]:
        import psutil

        table: dict[int, tuple[int, str, float]] = {}
        for proc in psutil.process_iter(["pid", "ppid", "cmdline", "cpu_times"]):
            info = proc.info
            if info["cpu_times"] is None:
                continue
            table[info["pid"]] = (info["ppid"] or 0, " ".join(info["cmdline"] or []),
                                  info["cpu_times"].user + info["cpu_times"].system)
        me = os.getpid()

        def ours(pid: int) -> bool:
            seen = 0
            while pid and pid in table and seen < 64:
                ppid, cmdline, _ = table[pid]
                # this process and its children; our PostgreSQL (daemonized by pg_ctl) and its backends
                if pid == me or any(marker in cmdline for marker in OWN_MARKERS):
                    return True
                pid, seen = ppid, seen + 1
            return False

        return {pid: cpu for pid, (_, _, cpu) in table.items() if not ours(pid)}

    def _loop(self) -> None:
        with contextlib.suppress(Exception):
            self._last = self._foreign_cpu()
            while not self._stop.wait(self.interval):
                now = self._foreign_cpu()
                used = sum(max(0.0, cpu - self._last.get(pid, cpu)) for pid, cpu in now.items())
                self.samples.append(used / self.interval)
                self._last = now

    def summary(self) -> str:
        if not self.samples:
            return "other processes: not measured"
        mean = sum(self.samples) / len(self.samples)
        busy = sum(1 for s in self.samples if s > 0.25) / len(self.samples)
        return (f"other processes on the machine used {mean:.2f} cores on average (max {max(self.samples):.2f}; "
                f"over 0.25 cores {100 * busy:.0f}% of the time)")


FOREIGN: ForeignLoad | None = None
OWN_MARKERS: set[str] = set()  # command-line fragments of this run's processes that are not its children


# --- which hubstead is measured --------------------------------------------------------------------------

_CODE_NOTE = ""


def add_common_args(parser) -> None:  # type: ignore[no-untyped-def]
    parser.add_argument("--tmp-dir", default=None, help="where temp dirs go (default: $TMPDIR or /tmp)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the server into this dir during each measured step (slows it; for finding "
                             "where time goes, not for the numbers)")
    parser.add_argument("--rev", default=None,
                        help="benchmark this git revision of src/ (exported with git archive to a temp dir and put "
                             "first on PYTHONPATH for this process and the servers) instead of the working tree")


def pin_source(rev: str | None) -> str:
    """Choose the hubstead code to measure (before anything imports it); returns a line describing it.
    Also starts watching the machine for other load."""
    global _CODE_NOTE, FOREIGN
    FOREIGN = FOREIGN or ForeignLoad()
    if rev:
        sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO_ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
        target = Path(tempfile.mkdtemp(prefix=f"hubstead-src-{sha[:10]}-"))
        on_exit(lambda: shutil.rmtree(target, ignore_errors=True))
        archive = subprocess.run(["git", "archive", sha, "src"], cwd=REPO_ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        src = str(target / "src")
        os.environ["PYTHONPATH"] = src + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
        sys.path.insert(0, src)
        _CODE_NOTE = f"hubstead at commit {sha[:10]} (--rev {rev})"
    else:
        import importlib.util

        spec = importlib.util.find_spec("hubstead")
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        if origin is not None and str(origin).startswith(str(REPO_ROOT / "src")):
            sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                 text=True).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO_ROOT,
                                   capture_output=True, text=True).stdout.strip()
            _CODE_NOTE = f"hubstead working tree at {sha[:10]}" + (" + uncommitted changes in src/" if dirty else "")
        else:
            _CODE_NOTE = f"hubstead from {origin}"
    log(_CODE_NOTE)
    return _CODE_NOTE


# --- the hub --------------------------------------------------------------------------------------------


@dataclass
class HubServer:
    """``hubstead serve`` on a loopback port with its own data dir (and optionally a PostgreSQL database)."""

    root: Path
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    serve_args: tuple[str, ...] = ()  # more ``hubstead serve`` options (e.g. ``--workers 2``)
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.root / f"server-{self.port}.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSTEAD_")}
        env["HUBSTEAD_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["HUBSTEAD_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "-m", "hubstead.cli", *args], env=self.env(), capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(f"hubstead {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def create_account(self, name: str) -> str:
        """Create user ``name`` and return a write token for it."""
        self.cli("users", "create", name)
        return self.cli("tokens", "create", name, "--role", "write").strip().splitlines()[-1]

    def start(self, timeout: float = 900) -> None:
        log_file = open(self.log_path, "ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [PYTHON, "-m", "hubstead.cli", "serve", "--port", str(self.port), "--log-level", "warning",
             *self.serve_args],
            env=self.env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()
        on_exit(self.stop)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hubstead exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    self.startup_seconds = time.perf_counter() - started
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"hubstead did not answer /healthz within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None


def hf_client_env(server: HubServer, token: str | None, hf_home: Path) -> None:
    """Point ``huggingface_hub`` (imported *after* this call) at ``server``. Modifies ``os.environ``."""
    for key in [k for k in os.environ if k.startswith(("HF_", "HUGGING"))]:
        del os.environ[key]
    os.environ.update(
        HF_ENDPOINT=server.url,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1" if token is None else "0",
        HF_HUB_ETAG_TIMEOUT="60",
        HF_HUB_DOWNLOAD_TIMEOUT="600",
    )
    if token:
        os.environ["HF_TOKEN"] = token
    if "huggingface_hub" in sys.modules:
        raise RuntimeError("hf_client_env must run before huggingface_hub is imported")


# --- nginx ----------------------------------------------------------------------------------------------


class Nginx:
    """nginx serving ``root`` read-only on a loopback port (no logs), in the foreground.

    ``sendfile`` is off by default (read + write through two 1 MiB buffers): on the 2-core firecracker VM these
    benchmarks were written on, that pushed a cached 1 GiB file at ~4.5 GB/s to curl against ~3.2 GB/s with
    sendfile on, so it is the stronger baseline there. Pass ``sendfile=True`` to compare."""

    def __init__(self, root: Path, workdir: Path, *, sendfile: bool = False) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx not found (apt-get install nginx-light)")
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        user_line = "user root;" if os.geteuid() == 0 else ""
        conf = textwrap.dedent(
            f"""
            {user_line}
            worker_processes 1;
            pid {workdir}/nginx.pid;
            error_log {workdir}/error.log warn;
            events {{ worker_connections 256; }}
            http {{
                access_log off;
                {"sendfile on; tcp_nopush on;" if sendfile else "sendfile off; output_buffers 2 1m;"}
                keepalive_timeout 30;
                default_type application/octet-stream;
                client_body_temp_path {workdir}/client_body;
                proxy_temp_path {workdir}/proxy;
                fastcgi_temp_path {workdir}/fastcgi;
                uwsgi_temp_path {workdir}/uwsgi;
                scgi_temp_path {workdir}/scgi;
                server {{
                    listen 127.0.0.1:{self.port};
                    root {root};
                    location / {{ }}
                }}
            }}
            """
        )
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(conf)
        self.process = subprocess.Popen(
            [binary, "-p", str(workdir), "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "stderr.log", "wb"),
        )
        on_exit(self.stop)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(workdir / 'stderr.log').read_text()}")
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- PostgreSQL -----------------------------------------------------------------------------------------


class PostgresCluster(_PostgresCluster):
    """The test suite's private PostgreSQL (``hubstead.devtools.postgres``), marked as the benchmark's own and
    stopped when the benchmark exits."""

    def __init__(self, base: str | None = None) -> None:
        super().__init__(base, prefix="hubstead-bench-pg-", db_prefix="hubstead_bench_")
        OWN_MARKERS.add(str(self.root))
        on_exit(self.stop)


# --- measuring ------------------------------------------------------------------------------------------


class RssSampler:
    """Samples a process's RSS (VmRSS) every ``interval`` seconds; ``phase(name)`` records the peak inside it."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.current_phase: str | None = None
        self.peaks: dict[str, int] = {}
        self.samples: dict[str, int] = Counter()
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        on_exit(self.stop)

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.rss()
            except OSError:
                return
            self.last = value
            self.on_sample(value)
            phase = self.current_phase
            if phase is not None:
                self.peaks[phase] = max(self.peaks.get(phase, 0), value)
                self.samples[phase] += 1
            self._stop.wait(self.interval)

    def on_sample(self, value: int) -> None:
        """Called from the sampling thread with each periodic sample (for subclasses)."""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.current_phase = name
        self.peaks[name] = max(self.peaks.get(name, 0), self.rss())
        try:
            yield
        finally:
            self.peaks[name] = max(self.peaks.get(name, 0), self.rss())
            self.current_phase = None

    def stop(self) -> None:
        self._stop.set()


@dataclass
class ProcStats:
    """CPU seconds and bytes read/written (rchar/wchar, i.e. including page-cache I/O) of a process."""

    cpu: float
    rchar: int
    wchar: int

    @classmethod
    def of(cls, pid: int) -> ProcStats:
        import psutil

        proc = psutil.Process(pid)
        times = proc.cpu_times()
        io = proc.io_counters()
        return cls(cpu=times.user + times.system, rchar=io.read_chars, wchar=io.write_chars)

    def __sub__(self, other: ProcStats) -> ProcStats:
        return ProcStats(cpu=self.cpu - other.cpu, rchar=self.rchar - other.rchar, wchar=self.wchar - other.wchar)


class Profiler:
    """Optional py-spy sampling of the server during chosen phases (``--profile DIR``).

    Writes ``DIR/<phase>.txt`` (collapsed stacks of busy threads, flamegraph.pl / speedscope compatible) and
    prints the hottest functions. Profiling slows the server a little: use it to find where time goes, not for
    the numbers.
    """

    def __init__(self, outdir: Path | None, pid: int | None = None) -> None:
        self.outdir = outdir
        self.pid = pid
        self.summaries: dict[str, str] = {}
        if outdir is not None:
            outdir.mkdir(parents=True, exist_ok=True)
            if shutil.which("py-spy") is None and not (Path(PYTHON).parent / "py-spy").exists():
                raise SystemExit("--profile needs py-spy (pip install py-spy)")

    @contextlib.contextmanager
    def phase(self, name: str, pid: int | None = None) -> Iterator[Timer]:
        """Profile the block (when profiling); the yielded Timer times only the block itself."""
        pid = pid or self.pid
        timer = Timer()
        if self.outdir is None or pid is None:
            with timer:
                yield timer
            return
        binary = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        out = self.outdir / f"{name}.txt"
        proc = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--threads",
             "--nonblocking", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # let py-spy attach (not timed)
        try:
            with timer:
                yield timer
        finally:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
            if out.exists():
                self.summaries[name] = summarize_collapsed(out)
                print(f"\n--- py-spy: {name} (server pid {pid}, {out}) ---\n{self.summaries[name]}", file=sys.stderr)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def summarize_collapsed(path: Path, top: int = 12) -> str:
    """The hottest code in a py-spy ``--format raw`` file (busy samples only): inclusive time of hubstead's own
    functions, and self time by (caller -> line)."""
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")[1:]]  # the first frame names the thread
        if not frames:
            continue
        total += count
        caller = frames[-2] if len(frames) > 1 else ""
        self_time[f"{caller} -> {frames[-1]}"] += count
        for frame in {f.rsplit(" (", 1)[0] + " (" + f.rsplit(" (", 1)[1].split(":")[0] + ")" for f in frames
                      if "hubstead/" in f and "hubstead/cli.py" not in f}:
            inclusive[frame] += count
    if total == 0:
        return "(no busy samples)"
    lines = [f"busy samples: {total} (50 Hz, all threads)", "inclusive%  hubstead function"]
    for name, count in inclusive.most_common(top):
        lines.append(f"{100 * count / total:9.1f}  {name}")
    lines.append("self%  caller -> line")
    for name, count in self_time.most_common(top):
        lines.append(f"{100 * count / total:5.1f}  {name}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    return frame.replace(str(REPO_ROOT) + "/", "").replace(sys.prefix + "/lib/python3.11/site-packages/", "")


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- the table ------------------------------------------------------------------------------------------


@dataclass
class Row:
    metric: str
    hub: float | None
    base: float | None
    kind: str = "rate"  # "rate" (higher is better), "time" (lower is better), "ratio" (ratio = hub / base, shown as ×)
    fmt: str = "{:.2f}"
    note: str = ""

    def ratio(self) -> float | None:
        if self.hub is None or self.base is None or self.hub == 0 or self.base == 0:
            return None
        if self.kind == "time":
            return self.base / self.hub
        return self.hub / self.base


def render_table(title: str, rows: list[Row], notes: list[str] | None = None) -> str:
    def cell(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else fmt.format(value)

    header = ("metric", "hubstead", "baseline", "ratio")
    body = []
    for row in rows:
        ratio = row.ratio()
        ratio_text = "n/a" if ratio is None else (f"{ratio:.2f}x" if row.kind == "ratio" else f"{ratio:.2f}")
        body.append((row.metric, cell(row.hub, row.fmt), cell(row.base, row.fmt), ratio_text))
    widths = [max(len(header[i]), *(len(r[i]) for r in body)) for i in range(4)]
    out = [f"### {title}", ""]
    out.append("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |")
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in body:
        out.append(
            "| " + r[0].ljust(widths[0]) + " | " + " | ".join(r[i].rjust(widths[i]) for i in (1, 2, 3)) + " |"
        )
    row_notes = [f"- {row.metric}: {row.note}" for row in rows if row.note]
    if row_notes or notes:
        out.append("")
        out.extend(row_notes)
        out.extend(f"- {n}" for n in notes or [])
    return "\n".join(out)


def print_report(title: str, rows: list[Row], notes: list[str] | None = None, args: object | None = None) -> None:
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    print()
    print(render_table(title, rows, notes))
    print()
    print(f"_{stamp}; {machine_info()}; {_CODE_NOTE or 'hubstead: working tree'}_")
    if args is not None:
        print(f"_flags: {' '.join(sys.argv[1:]) or '(defaults)'}_")
    if FOREIGN is not None:
        print(f"_{FOREIGN.summary()}_")
    print(
        "_ratio = speed relative to the baseline of the same row (hubstead/baseline for rates, baseline/hubstead "
        "for times): 1.0 = parity, higher = better; rows marked x are plain hubstead/baseline multiples._"
    )
    sys.stdout.flush()


def percentile(values: list[float], p: float) -> float:
    """The p-quantile (0..1) of ``values`` (nearest rank), NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


class RawClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams: ~20x less CPU per request than httpx, so that on
    a 2-core machine the load generator leaves the servers their CPU. ``request`` sends pre-built request bytes
    and returns the status and the body (content-length or chunked)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip().lower()
        body = b""
        if "content-length" in fields:
            body = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append((await self.reader.readexactly(size + 2))[:-2])
                if size == 0:
                    break
            body = b"".join(parts)
        if fields.get("connection") == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

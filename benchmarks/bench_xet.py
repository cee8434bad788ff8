"""Xet storage: chunk dedup of a fine-tuned model copy, and upload/download throughput, against the LFS path.

Starts its own hub (``python -m hubstead.cli serve`` on a loopback port, data in a temp dir), makes a user and a
write token, and drives the real client (``huggingface_hub`` + ``hf_xet``). ``huggingface_hub`` reads
``HF_HUB_DISABLE_XET`` at import time, so every upload and download runs in its own child process (this script
with the hidden ``_client`` sub-command): Xet with the variable unset, the LFS path with ``HF_HUB_DISABLE_XET=1``.
Times are taken inside the child around the one call (imports and repo creation excluded).

1. Dedup: a safetensors "model" (``--tensors`` random float32 tensors, ``--model-mb`` MB in all) goes to repo A
   through Xet; then a "fine-tuned copy" with ``--changed`` tensors replaced by new random values goes to repo B.
   Metric: growth of ``data_dir/xet/xorbs`` (sum of file sizes) during the second upload / file size. The second
   upload uses a fresh ``HF_HOME`` (hf_xet's local chunk/shard cache lives in ``HF_HOME/xet``) so that any dedup
   must come from the server's global dedup index; a second variant uploads another fine-tuned copy with the same
   ``HF_HOME`` as the first upload. Baseline: the same two uploads (another random model, so the stores cannot
   share anything) through the LFS path into repos C and D, measuring growth of ``data_dir/lfs``: expected 1.0.
2. Throughput: a ``--size-mb`` MiB random file uploaded through Xet and through LFS (a different random file
   each, so neither can dedup against the other), then downloaded with ``hf_hub_download`` into fresh
   ``HF_HOME`` caches. MB/s = 10^6 bytes/s. Xet and LFS get a hub process each (so peak RSS is per path); the
   dedup section has its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import (  # noqa: E402
    PYTHON,
    HubServer,
    ProcStats,
    Profiler,
    Row,
    RssSampler,
    add_common_args,
    human_bytes,
    log,
    machine_info,
    make_tempdir,
    pin_source,
)

SCRIPT = str(Path(__file__).resolve())
USER = "bench"


# --- the child: one client operation per process -----------------------------------------------------------


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_xet.py _client")
    parser.add_argument("op", choices=["upload", "download"])
    parser.add_argument("--mode", choices=["xet", "lfs"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--hf-home", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--file", help="local file (upload)")
    parser.add_argument("--path-in-repo", required=True)
    parser.add_argument("--expect-size", type=int, default=None, help="download: check the size")
    args = parser.parse_args(argv)

    for key in [k for k in os.environ if k.startswith(("HF_", "HUGGING"))]:
        del os.environ[key]
    os.environ.update(
        HF_ENDPOINT=args.endpoint,
        HF_HOME=args.hf_home,
        HF_TOKEN=args.token,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_ETAG_TIMEOUT="60",
        HF_HUB_DOWNLOAD_TIMEOUT="600",
    )
    if args.mode == "lfs":
        os.environ["HF_HUB_DISABLE_XET"] = "1"

    from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.utils._runtime import is_xet_available

    xet_on = is_xet_available()
    if (args.mode == "xet") != xet_on:
        raise SystemExit(
            f"mode {args.mode} but is_xet_available()={xet_on} (HF_HUB_DISABLE_XET={constants.HF_HUB_DISABLE_XET})"
        )
    api = HfApi()
    out: dict[str, object] = {"mode": args.mode, "xet_available": xet_on}
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    if args.op == "upload":
        api.create_repo(args.repo, exist_ok=True)
        started = time.perf_counter()
        api.upload_file(path_or_fileobj=args.file, path_in_repo=args.path_in_repo, repo_id=args.repo)
        out["seconds"] = time.perf_counter() - started
    else:
        meta = get_hf_file_metadata(hf_hub_url(args.repo, args.path_in_repo))
        out["served_as_xet"] = meta.xet_file_data is not None
        started = time.perf_counter()
        path = hf_hub_download(args.repo, args.path_in_repo)
        out["seconds"] = time.perf_counter() - started
        size = os.path.getsize(path)
        out["size"] = size
        if args.expect_size is not None and size != args.expect_size:
            raise SystemExit(f"downloaded {size} bytes, expected {args.expect_size}")
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out["client_cpu"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# --- the parent --------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script works")
    parser.add_argument("--model-mb", type=float, default=None, help="dedup: model size in MB (default 200)")
    parser.add_argument("--tensors", type=int, default=40, help="dedup: tensors in the model (default 40)")
    parser.add_argument(
        "--changed",
        type=int,
        default=None,
        help="dedup: tensors changed in the fine-tuned copy (default 10%% of --tensors)",
    )
    parser.add_argument("--size-mb", type=int, default=None, help="throughput: file size in MiB (default 1024)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="throughput: runs per row (a fresh random file per upload run); the best run is shown "
        "(default 3, --quick 1)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="dedup: seed of the model's random tensors (where CDC cuts chunks, and so which xorbs "
        "hold a global-dedup-eligible chunk, depends on it)",
    )
    parser.add_argument("--skip-dedup", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    add_common_args(parser)
    args = parser.parse_args()
    if args.model_mb is None:
        args.model_mb = 20 if args.quick else 200
    if args.size_mb is None:
        args.size_mb = 64 if args.quick else 1024
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.changed is None:
        args.changed = max(1, round(args.tensors / 10))
    return args


def dir_bytes(path: Path) -> tuple[int, int]:
    """(sum of file sizes, file count) under ``path``."""
    total = count = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
                count += 1
            except FileNotFoundError:
                pass
    return total, count


def write_model(path: Path, tensors: int, total_mb: float, seed: int, changed: list[int], change_seed: int) -> int:
    """A safetensors file of ``tensors`` random float32 tensors; those in ``changed`` get values from
    ``change_seed`` instead (a "fine-tuned" copy: same header, same other tensors, byte for byte)."""
    import numpy as np
    from safetensors.numpy import save_file

    per = int(total_mb * 1e6 / 4 / tensors)
    cols = 1024
    rows = max(1, per // cols)
    base = np.random.default_rng(seed)
    alt = np.random.default_rng(change_seed)
    data = {}
    for i in range(tensors):
        values = base.standard_normal((rows, cols), dtype=np.float32)
        if i in changed:
            values = alt.standard_normal((rows, cols), dtype=np.float32)
        data[f"model.layers.{i:03d}.weight"] = values
    save_file(data, str(path), metadata={"format": "np"})
    return path.stat().st_size


def write_random(path: Path, size: int) -> None:
    block = 16 * 1024 * 1024
    with open(path, "wb") as handle:
        left = size
        while left > 0:
            n = min(block, left)
            handle.write(os.urandom(n))
            left -= n


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = make_tempdir("hubstead-bench-xet-", args.tmp_dir)
        self.profiler = Profiler(args.profile)
        self.hubs: dict[str, tuple[HubServer, str, RssSampler]] = {}
        self.idle_rss: dict[str, int] = {}
        self.homes = 0
        self.notes: dict[str, list[str]] = {"dedup": [], "throughput": []}

    def use(self, name: str) -> None:
        """Point the methods below at hub ``name`` (started on first use, in its own data dir): each section, and
        each upload path of the throughput section, gets its own server process, so RSS peaks do not carry over."""
        if name not in self.hubs:
            root = self.work / f"hub-{name}"
            root.mkdir()
            server = HubServer(root)
            server.start()
            log(f"hub {name} on {server.url} (started in {server.startup_seconds:.1f} s), data {server.data_dir}")
            token = server.create_account(USER)
            self.hubs[name] = (server, token, RssSampler(server.pid, interval=0.2))
            self.idle_rss[name] = self.hubs[name][2].rss()
        self.server, self.token, self.rss = self.hubs[name]

    def fresh_home(self) -> Path:
        self.homes += 1
        path = self.work / f"hf-home-{self.homes}"
        path.mkdir()
        return path

    def xorb_names(self) -> set[str]:
        return {p.name for p in (self.server.data_dir / "xet" / "xorbs").rglob("*") if p.is_file()}

    def xorb_chunks(self, xorb_hex: str) -> list[tuple[int, int]]:
        """(uncompressed size, dedup-eligible 0/1) per chunk, from the server's chunk index beside the xorb
        (entries of ``<32sIII``: hash, size, byte start, byte end). Eligible = last u64 of the hash % 1024 == 0,
        the rule both hf_xet and the hub use for global-dedup queries."""
        raw = (self.server.data_dir / "xet" / "chunk-index" / xorb_hex[:2] / xorb_hex[2:4] / xorb_hex).read_bytes()
        out = []
        for offset in range(0, len(raw), 44):
            digest = raw[offset : offset + 32]
            size = int.from_bytes(raw[offset + 32 : offset + 36], "little")
            out.append((size, int(int.from_bytes(digest[24:32], "little") % 1024 == 0)))
        return out

    def file_xorbs(self, repo: str, filename: str) -> list[str]:
        """The xorbs a Xet file is reconstructed from, asked of the hub as hf_xet would (read token, then
        ``/v1/reconstructions``)."""
        import httpx

        auth = {"authorization": f"Bearer {self.token}"}
        head = httpx.head(f"{self.server.url}/{USER}/{repo}/resolve/main/{filename}", headers=auth)
        file_hash = head.headers["x-xet-hash"]
        grant = httpx.get(f"{self.server.url}/api/models/{USER}/{repo}/xet-read-token/main", headers=auth).json()
        answer = httpx.get(
            f"{grant['casUrl']}/v1/reconstructions/{file_hash}",
            headers={"authorization": f"Bearer {grant['accessToken']}"},
            timeout=60,
        ).json()
        return [term["hash"] for term in answer["terms"]]

    def xorbs(self) -> tuple[int, int]:
        return dir_bytes(self.server.data_dir / "xet" / "xorbs")

    def lfs(self) -> tuple[int, int]:
        return dir_bytes(self.server.data_dir / "lfs")

    def client(
        self,
        op: str,
        mode: str,
        repo: str,
        path_in_repo: str,
        hf_home: Path,
        step: str,
        file: Path | None = None,
        expect_size: int | None = None,
    ) -> dict:
        cmd = [
            PYTHON,
            SCRIPT,
            "_client",
            op,
            "--mode",
            mode,
            "--endpoint",
            self.server.url,
            "--token",
            self.token,
            "--hf-home",
            str(hf_home),
            "--repo",
            f"{USER}/{repo}",
            "--path-in-repo",
            path_in_repo,
        ]
        if file is not None:
            cmd += ["--file", str(file)]
        if expect_size is not None:
            cmd += ["--expect-size", str(expect_size)]
        subprocess.run(["sync"], check=False)
        before = ProcStats.of(self.server.pid)
        start_rss = self.rss.rss()
        with self.profiler.phase(step, pid=self.server.pid), self.rss.phase(step):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
        after = ProcStats.of(self.server.pid)
        if proc.returncode != 0:
            raise RuntimeError(
                f"client {op} {mode} {repo} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                f"{proc.stderr[-6000:]}\nserver log tail:\n{self.server.log_path.read_text()[-3000:]}"
            )
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
        result = json.loads(line.removeprefix("RESULT "))
        stats = after - before
        result["server_cpu"] = stats.cpu
        result["server_rchar"] = stats.rchar
        result["server_wchar"] = stats.wchar
        result["server_peak_rss"] = self.rss.peaks.get(step, 0)
        result["server_start_rss"] = start_rss
        log(
            f"{step}: {op} {mode} {repo}: {result['seconds']:.2f} s, client CPU {result['client_cpu']:.1f} s, "
            f"server CPU {stats.cpu:.1f} s"
        )
        return result

    def upload_measured(self, mode: str, repo: str, file: Path, hf_home: Path, step: str) -> dict:
        x0, l0, names0 = self.xorbs(), self.lfs(), self.xorb_names()
        result = self.client("upload", mode, repo, file.name, hf_home, step, file=file)
        x1, l1 = self.xorbs(), self.lfs()
        result["new_xorbs"] = sorted(self.xorb_names() - names0)
        result["xorb_growth"], result["xorb_files"] = x1[0] - x0[0], x1[1] - x0[1]
        result["lfs_growth"], result["lfs_files"] = l1[0] - l0[0], l1[1] - l0[1]
        # the path really taken: a Xet upload must not have written LFS objects, and vice versa
        wrong = result["lfs_growth"] if mode == "xet" else result["xorb_growth"]
        if wrong:
            raise RuntimeError(f"{step}: {mode} upload wrote {wrong} bytes to the other store: wrong path taken")
        return result

    # --- 1. dedup ----------------------------------------------------------------------------------------

    def dedup(self) -> list[Row]:
        a = self.args
        self.use("dedup")
        tensors, changed_n = a.tensors, a.changed
        step = tensors / changed_n
        changed1 = sorted({int(step * k + step / 2) for k in range(changed_n)})
        changed2 = sorted({(i + 1) % tensors for i in changed1})  # other tensors, for the same-HF_HOME variant
        files = self.work / "models"
        files.mkdir()
        t0 = time.perf_counter()
        # Xet and LFS get different models (seed + 1, seed + 2), so the two stores cannot dedup against each other
        xa = files / "xet-base" / "model.safetensors"
        xb = files / "xet-ft" / "model.safetensors"
        xb2 = files / "xet-ft2" / "model.safetensors"
        la = files / "lfs-base" / "model.safetensors"
        lb = files / "lfs-ft" / "model.safetensors"
        for p in (xa, xb, xb2, la, lb):
            p.parent.mkdir()
        seed = a.seed * 1000
        size = write_model(xa, tensors, a.model_mb, seed + 1, [], 0)
        write_model(xb, tensors, a.model_mb, seed + 1, changed1, seed + 101)
        write_model(xb2, tensors, a.model_mb, seed + 1, changed2, seed + 102)
        write_model(la, tensors, a.model_mb, seed + 2, [], 0)
        write_model(lb, tensors, a.model_mb, seed + 2, changed1, seed + 201)
        changed_bytes = size * changed_n / tensors
        log(
            f"models: {human_bytes(size)} each, {tensors} tensors, changed {changed1} / {changed2} "
            f"(written in {time.perf_counter() - t0:.1f} s)"
        )

        home_a = self.fresh_home()
        up_xa = self.upload_measured("xet", "xet-a", xa, home_a, "dedup-xet-base")
        up_xb = self.upload_measured("xet", "xet-b", xb, self.fresh_home(), "dedup-xet-ft-fresh-home")
        up_xb2 = self.upload_measured("xet", "xet-b-same-home", xb2, home_a, "dedup-xet-ft-same-home")
        home_c = self.fresh_home()
        up_la = self.upload_measured("lfs", "lfs-c", la, home_c, "dedup-lfs-base")
        up_lb = self.upload_measured("lfs", "lfs-d", lb, self.fresh_home(), "dedup-lfs-ft")

        frac_fresh = up_xb["xorb_growth"] / size
        frac_same = up_xb2["xorb_growth"] / size
        frac_lfs = up_lb["lfs_growth"] / size
        rows = [
            Row(
                "fine-tuned copy, fresh HF_HOME: new bytes stored / file size (goal < 0.15)",
                frac_fresh,
                frac_lfs,
                kind="time",
                fmt="{:.3f}",
            ),
            Row(
                "fine-tuned copy, same HF_HOME: new bytes stored / file size",
                frac_same,
                frac_lfs,
                kind="time",
                fmt="{:.3f}",
            ),
            Row(
                "first upload: bytes stored / file size",
                up_xa["xorb_growth"] / size,
                up_la["lfs_growth"] / size,
                kind="time",
                fmt="{:.3f}",
            ),
            Row("upload time, first (s)", up_xa["seconds"], up_la["seconds"], kind="time"),
            Row("upload time, fine-tuned copy, fresh HF_HOME (s)", up_xb["seconds"], up_lb["seconds"], kind="time"),
            Row("upload time, fine-tuned copy, same HF_HOME (s)", up_xb2["seconds"], up_lb["seconds"], kind="time"),
        ]
        goal = "MET" if frac_fresh < 0.15 else "NOT MET"
        n = self.notes["dedup"]
        n.append(
            f"model: {size} bytes ({human_bytes(size)}), {tensors} float32 tensors; fine-tuned copies change "
            f"{changed_n} tensors = {changed_bytes / size:.3f} of the file (the floor for this metric)"
        )
        n.append(f"goal (fresh HF_HOME fraction < 0.15): {goal} ({frac_fresh:.3f})")
        for label, r in (
            ("xet first", up_xa),
            ("xet fine-tuned, fresh HF_HOME", up_xb),
            ("xet fine-tuned, same HF_HOME", up_xb2),
            ("lfs first", up_la),
            ("lfs fine-tuned", up_lb),
        ):
            n.append(
                f"{label}: {r['seconds']:.2f} s; xorbs +{r['xorb_growth']} B in {r['xorb_files']} files, "
                f"lfs +{r['lfs_growth']} B; client CPU {r['client_cpu']:.1f} s, server CPU "
                f"{r['server_cpu']:.1f} s, server read {human_bytes(r['server_rchar'])}, wrote "
                f"{human_bytes(r['server_wchar'])}, peak RSS {human_bytes(r['server_peak_rss'])}"
            )
        # Why the fresh-HF_HOME copy stores what it stores: which of the first upload's xorbs it reuses, and how
        # many global-dedup-eligible chunks each of them holds (without one, hf_xet never learns of the xorb)
        base_xorbs = list(dict.fromkeys(self.file_xorbs("xet-a", xa.name)))  # in file order
        for label, repo, r in (("fresh HF_HOME", "xet-b", up_xb), ("same HF_HOME", "xet-b-same-home", up_xb2)):
            used = self.file_xorbs(repo, xb.name)
            parts = []
            blind = 0  # bytes of the first upload that hf_xet sees before it can know their xorb (see README-xet.md)
            for i, xh in enumerate(base_xorbs):
                chunks = self.xorb_chunks(xh)
                if i > 0:
                    first_eligible = next((k for k, c in enumerate(chunks) if c[1]), len(chunks))
                    blind += sum(c[0] for c in chunks[:first_eligible])
                first = " + the file's first chunk" if i == 0 else ""
                parts.append(
                    f"#{i} {xh[:8]} ({human_bytes(sum(c[0] for c in chunks))}, {len(chunks)} chunks, "
                    f"{sum(c[1] for c in chunks)} eligible{first}): "
                    f"{'reused' if xh in used else 'NOT reused'}"
                )
            n.append(
                f"fine-tuned copy, {label}: references {len(set(used))} xorbs ({len(r['new_xorbs'])} new); "
                f"first upload's xorbs in file order: " + "; ".join(parts)
            )
        n.append(
            f"bytes of the first upload's xorbs #1.. that precede the first eligible chunk of their xorb: {blind} "
            f"({blind / size:.3f} of the file); plus the changed tensors ({changed_bytes / size:.3f}), less their "
            "overlap, this is roughly what a fresh HF_HOME stores again when a global-dedup answer names one xorb"
        )
        ci = dir_bytes(self.server.data_dir / "xet" / "chunk-index")
        n.append(f"xet chunk-index after all uploads: {human_bytes(ci[0])} in {ci[1]} files (not counted above)")
        n.append("ratio for the fraction rows = baseline / hubstead (how many times fewer bytes stored)")
        return rows

    # --- 2. throughput -----------------------------------------------------------------------------------

    def throughput(self) -> list[Row]:
        a = self.args
        size = a.size_mb * 1024 * 1024
        files = self.work / "big"
        files.mkdir()
        runs: dict[str, list[dict]] = {k: [] for k in ("up-xet", "up-lfs", "down-xet", "down-lfs")}
        for run in range(a.repeat):
            for mode in ("xet", "lfs"):
                path = files / mode / f"random-{run}.bin"
                path.parent.mkdir(exist_ok=True)
                t0 = time.perf_counter()
                write_random(path, size)
                self.use(f"tp-{mode}")
                log(f"wrote {human_bytes(size)} random in {time.perf_counter() - t0:.1f} s")
                runs[f"up-{mode}"].append(
                    self.upload_measured(mode, f"tp-{mode}", path, self.fresh_home(), f"upload-{mode}-{run}")
                )
                runs[f"up-{mode}"][-1]["file"] = path.name
        for run in range(a.repeat):
            for mode in ("xet", "lfs"):
                name = runs[f"up-{mode}"][run]["file"]
                self.use(f"tp-{mode}")
                result = self.client(
                    "download", mode, f"tp-{mode}", name, self.fresh_home(), f"download-{mode}-{run}", expect_size=size
                )
                if result["served_as_xet"] != (mode == "xet"):
                    raise RuntimeError(f"download {mode}: served_as_xet={result['served_as_xet']}")
                runs[f"down-{mode}"].append(result)
        for path in files.rglob("*.bin"):
            path.unlink()

        def best(key: str) -> dict:
            return min(runs[key], key=lambda r: r["seconds"])

        def rate(r: dict) -> float:
            return size / r["seconds"] / 1e6

        rows = [
            Row(f"upload {human_bytes(size)} (MB/s)", rate(best("up-xet")), rate(best("up-lfs"))),
            Row(f"download {human_bytes(size)}, fresh HF_HOME (MB/s)", rate(best("down-xet")), rate(best("down-lfs"))),
            Row(
                "upload: server peak RSS (MiB)",
                best("up-xet")["server_peak_rss"] / 2**20,
                best("up-lfs")["server_peak_rss"] / 2**20,
                kind="time",
                fmt="{:.0f}",
            ),
            Row(
                "download: server peak RSS (MiB)",
                best("down-xet")["server_peak_rss"] / 2**20,
                best("down-lfs")["server_peak_rss"] / 2**20,
                kind="time",
                fmt="{:.0f}",
            ),
            Row(
                "upload: server CPU s per GB",
                best("up-xet")["server_cpu"] / size * 1e9,
                best("up-lfs")["server_cpu"] / size * 1e9,
                kind="time",
            ),
            Row(
                "upload: client CPU s per GB",
                best("up-xet")["client_cpu"] / size * 1e9,
                best("up-lfs")["client_cpu"] / size * 1e9,
                kind="time",
            ),
            Row(
                "download: server CPU s per GB",
                best("down-xet")["server_cpu"] / size * 1e9,
                best("down-lfs")["server_cpu"] / size * 1e9,
                kind="time",
            ),
            Row(
                "download: client CPU s per GB",
                best("down-xet")["client_cpu"] / size * 1e9,
                best("down-lfs")["client_cpu"] / size * 1e9,
                kind="time",
            ),
        ]
        n = self.notes["throughput"]
        for key, items in runs.items():
            n.append(
                f"{key}: "
                + "; ".join(
                    f"{r['seconds']:.2f} s ({rate(r):.1f} MB/s), client CPU {r['client_cpu']:.1f} s, server CPU "
                    f"{r['server_cpu']:.1f} s, server read {human_bytes(r['server_rchar'])} wrote "
                    f"{human_bytes(r['server_wchar'])}, RSS {human_bytes(r['server_start_rss'])} at start, peak "
                    f"{human_bytes(r['server_peak_rss'])}"
                    for r in items
                )
            )
        n.append(
            "one server process per path (a fresh hub each for Xet and LFS), so peak RSS is per path; RSS at idle "
            f"after start: xet {human_bytes(self.idle_rss['tp-xet'])}, lfs {human_bytes(self.idle_rss['tp-lfs'])}"
        )
        n.append("client and server share the machine's cores; CPU seconds are per process (all threads)")
        n.append(
            "ratio = hubstead-xet / baseline-lfs for MB/s, baseline / xet for CPU seconds and RSS (higher = "
            "better); each row is the fastest run (--repeat), its CPU and RSS rows are of that same run"
        )
        return rows


def render(title: str, rows: list[Row], notes: list[str]) -> str:
    def cell(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else fmt.format(value)

    header = ("metric", "hubstead-xet", "baseline-lfs", "ratio")
    body = []
    for row in rows:
        ratio = row.ratio()
        body.append(
            (row.metric, cell(row.hub, row.fmt), cell(row.base, row.fmt), "n/a" if ratio is None else f"{ratio:.2f}")
        )
    widths = [max(len(header[i]), *(len(r[i]) for r in body)) for i in range(4)]
    out = [f"### {title}", ""]
    out.append("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |")
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in body:
        out.append("| " + r[0].ljust(widths[0]) + " | " + " | ".join(r[i].rjust(widths[i]) for i in (1, 2, 3)) + " |")
    if notes:
        out.append("")
        out.extend(f"- {n}" for n in notes)
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        return client_main(sys.argv[2:])
    args = parse_args()
    code_note = pin_source(args.rev)
    bench = Bench(args)
    outputs = []
    if not args.skip_dedup:
        rows = bench.dedup()
        outputs.append(
            render(
                f"Xet dedup: fine-tuned copy of a {args.model_mb:g} MB safetensors model "
                f"({args.changed} of {args.tensors} tensors changed)",
                rows,
                bench.notes["dedup"],
            )
        )
        print("\n" + outputs[-1] + "\n", flush=True)
    if not args.skip_throughput:
        rows = bench.throughput()
        outputs.append(
            render(f"Xet vs LFS throughput: {args.size_mb} MiB random file", rows, bench.notes["throughput"])
        )
        print("\n" + outputs[-1] + "\n", flush=True)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    print(f"_{stamp}; {machine_info()}; {code_note}_")
    print(f"_flags: {' '.join(sys.argv[1:]) or '(defaults)'}_")
    if _common.FOREIGN is not None:
        print(f"_{_common.FOREIGN.summary()}_")
    print(
        "_ratio: speed-like, higher = better for hubstead-xet (rates: xet/lfs; times, CPU and stored fractions: "
        "lfs/xet)_"
    )
    if bench.profiler.summaries:
        print("\n### py-spy (server) per step\n")
        for step, summary in bench.profiler.summaries.items():
            print(f"#### {step}\n\n```\n{summary}\n```\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

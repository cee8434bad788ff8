#!/usr/bin/env python
"""A very large LFS file (default 20 GB) up and down, watching the server's memory.

The file is a repeated random 64 MiB block (quick to write; unique content per run). It is uploaded with
``HfApi().upload_file`` (the client hashes it, then, being over the server's multipart threshold,
``HUBSTEAD_MULTIPART_THRESHOLD``, default 256 MB, sends it in parts) and downloaded with ``hf_hub_download``
into a fresh cache. The server's RSS (VmRSS of the ``hubstead serve`` process) is sampled every 0.5 s: peak
during upload and during download against RSS at idle. The upload is also split into phases: client-side
hashing (sampled by watching the client), parts arriving, and the server joining the parts (seen as a
``joined-*`` file in the server's uploads dir).

Baselines in the same run: ``cp`` of the file on the same disk (upload), and the stored blob served by nginx,
fetched with ``huggingface_hub``'s ``http_get`` (download).

``sync`` runs (untimed) before each timed step. Disk: needs about 3x the size free (file + parts + joined object
at the end of the upload); refused otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    Nginx,
    ProcStats,
    Profiler,
    Row,
    RssSampler,
    add_common_args,
    free_bytes,
    hf_client_env,
    human_bytes,
    log,
    make_tempdir,
    pin_source,
    print_report,
)

MB = 1_000_000
MiB = 1024 * 1024
GB = 1_000_000_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=20.0, help="file size in GB (10^9 bytes; default 20)")
    parser.add_argument("--multipart-threshold", type=int, default=None,
                        help="HUBSTEAD_MULTIPART_THRESHOLD for the server (default: the server's, 256 MB)")
    parser.add_argument("--interval", type=float, default=0.5, help="RSS sampling interval in seconds")
    parser.add_argument("--quick", action="store_true", help="smoke run: 0.5 GB, multipart threshold 64 MiB")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.size_gb = 0.5
        args.multipart_threshold = args.multipart_threshold or 64 * MiB
    return args


class PhaseProbe(RssSampler):
    """RSS sampler that also notes, per sample, whether the server is joining parts (a ``joined-*`` upload file)."""

    def __init__(self, pid: int, interval: float, uploads_dir: Path) -> None:
        self.uploads_dir = uploads_dir
        self.joining = 0
        self.timeline: list[tuple[float, int, str]] = []
        self._t0 = time.perf_counter()
        super().__init__(pid, interval)

    def on_sample(self, value: int) -> None:
        if self.current_phase == "upload":
            try:
                names = os.listdir(self.uploads_dir)
            except OSError:
                names = []
            state = "joining" if any(n.startswith("joined-") for n in names) else (
                "parts" if any(n.startswith(("part-", "multipart-", "put-")) for n in names) else "other")
            self.timeline.append((time.perf_counter() - self._t0, value, state))


def write_file(path: Path, size: int) -> None:
    block = bytearray(os.urandom(64 * MiB))
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            n = min(size - written, len(block))
            block[:16] = written.to_bytes(16, "little")  # no two blocks alike
            handle.write(memoryview(block)[:n])
            written += n


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    size = int(args.size_gb * GB)
    tmp_base = args.tmp_dir or os.environ.get("TMPDIR") or "/tmp"
    need = 3 * size + 2 * 1024 * MiB
    have = free_bytes(tmp_base)
    if have < need:
        fits = max(0.0, (have - 2 * 1024 * MiB) / 3 / GB)
        print(
            f"Not enough free disk in {tmp_base} for a {args.size_gb:g} GB file: the run needs about "
            f"{need / GB:.1f} GB (file + uploaded parts + joined object, briefly), {have / GB:.1f} GB are free. "
            f"Use --size-gb {fits:.0f} or less, or --tmp-dir on a bigger disk.",
            file=sys.stderr,
        )
        return 2
    work = make_tempdir("hubstead-bench-large-", tmp_base)
    env = {}
    if args.multipart_threshold:
        env["HUBSTEAD_MULTIPART_THRESHOLD"] = str(args.multipart_threshold)
    threshold = args.multipart_threshold or 256 * MiB
    hub = HubServer(root=work / "hub", extra_env=env)
    hub.data_dir.mkdir(parents=True)
    token = hub.create_account("bench")
    hub.start()
    hf_client_env(hub, token, work / "hf-home")
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.file_download import http_get

    api = HfApi(endpoint=hub.url, token=token)
    repo_id = "bench/large"
    api.create_repo(repo_id)
    profiler = Profiler(args.profile, hub.pid)

    source = work / "large.bin"
    log(f"writing a {size / GB:g} GB file")
    started = time.perf_counter()
    write_file(source, size)
    log(f"written in {time.perf_counter() - started:.0f} s")

    # Baseline for the upload: cp on the same disk.
    copy = work / "copy.bin"
    os.sync()
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(copy)], check=True)
    cp_seconds = time.perf_counter() - started
    copy.unlink()
    log(f"cp: {cp_seconds:.1f} s ({size / MB / cp_seconds:.0f} MB/s)")

    sampler = PhaseProbe(hub.pid, args.interval, hub.data_dir / "uploads")
    with sampler.phase("idle"):
        httpx_warm = api.model_info(repo_id)  # noqa: F841 - one request so that idle means "served something"
        time.sleep(3)
    idle_rss = sampler.peaks["idle"]

    os.sync()
    before = ProcStats.of(hub.pid)
    with sampler.phase("upload"), profiler.phase("upload") as timer:
        api.upload_file(path_or_fileobj=str(source), path_in_repo="large.bin", repo_id=repo_id,
                        commit_message="large file")
    upload_seconds = timer.seconds
    upload_io = ProcStats.of(hub.pid) - before
    log(f"upload: {upload_seconds:.1f} s ({size / MB / upload_seconds:.0f} MB/s), peak RSS "
        f"{human_bytes(sampler.peaks['upload'])}; server cpu {upload_io.cpu:.0f} s, wrote "
        f"{human_bytes(upload_io.wchar)}, read {human_bytes(upload_io.rchar)}")
    source.unlink()
    states = [s for _, _, s in sampler.timeline]
    phase_seconds = {state: states.count(state) * args.interval for state in ("other", "parts", "joining")}

    with sampler.phase("idle-after-upload"):
        time.sleep(2)

    cache = work / "cache"
    os.sync()
    before = ProcStats.of(hub.pid)
    with sampler.phase("download"), profiler.phase("download") as timer:
        path = hf_hub_download(repo_id, "large.bin", cache_dir=str(cache))
    download_seconds = timer.seconds
    download_io = ProcStats.of(hub.pid) - before
    if Path(path).stat().st_size != size:
        raise RuntimeError("downloaded file has the wrong size")
    log(f"download: {download_seconds:.1f} s ({size / MB / download_seconds:.0f} MB/s), peak RSS "
        f"{human_bytes(sampler.peaks['download'])}; server cpu {download_io.cpu:.0f} s")
    shutil.rmtree(cache)

    info = api.get_paths_info(repo_id, ["large.bin"])[0]
    oid = info.lfs.sha256
    nginx = Nginx(root=hub.data_dir / "lfs", workdir=work / "nginx")
    target = work / "nginx-download.bin"
    os.sync()
    started = time.perf_counter()
    with open(target, "wb") as handle:
        http_get(f"{nginx.url}/{oid[:2]}/{oid[2:4]}/{oid}", handle, expected_size=size)
    nginx_seconds = time.perf_counter() - started
    target.unlink()
    log(f"nginx download: {nginx_seconds:.1f} s ({size / MB / nginx_seconds:.0f} MB/s)")
    sampler.stop()

    parts = -(-size // (64 * MiB))
    path_used = f"multipart, {parts} x 64 MiB parts" if size > threshold else "single PUT"
    label = f"{size / GB:g} GB"
    rows = [
        Row(f"upload {label} ({path_used}) vs cp [MB/s]", size / MB / upload_seconds, size / MB / cp_seconds,
            "rate", "{:.0f}"),
        Row(f"download {label}: hf_hub_download vs http_get from nginx [MB/s]", size / MB / download_seconds,
            size / MB / nginx_seconds, "rate", "{:.0f}"),
        Row("server peak RSS during upload vs idle RSS [MiB] (ratio = x idle)", sampler.peaks["upload"] / MiB,
            idle_rss / MiB, "ratio", "{:.0f}"),
        Row("server peak RSS during download vs idle RSS [MiB] (ratio = x idle)", sampler.peaks["download"] / MiB,
            idle_rss / MiB, "ratio", "{:.0f}"),
        Row("server RSS at idle after the upload vs before [MiB] (ratio = x before)",
            sampler.peaks["idle-after-upload"] / MiB, idle_rss / MiB, "ratio", "{:.0f}"),
    ]
    notes = [
        f"upload {upload_seconds:.0f} s; phases seen in the server's uploads dir (+/-{args.interval} s): client "
        f"hashing/preupload/commit {phase_seconds['other']:.0f} s, parts arriving {phase_seconds['parts']:.0f} s, "
        f"server joining parts {phase_seconds['joining']:.0f} s",
        f"server during upload: cpu {upload_io.cpu:.0f} s, wrote {human_bytes(upload_io.wchar)}, read "
        f"{human_bytes(upload_io.rchar)} (rchar/wchar count socket I/O too)",
        f"server during download: cpu {download_io.cpu:.0f} s; download {download_seconds:.0f} s, nginx "
        f"{nginx_seconds:.0f} s, cp {cp_seconds:.0f} s",
        f"RSS sampled every {args.interval} s: {sampler.samples['upload']} samples in upload, "
        f"{sampler.samples['download']} in download",
    ]
    print_report(f"bench_large_file: {label} LFS file", rows, notes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

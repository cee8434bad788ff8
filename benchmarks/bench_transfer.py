#!/usr/bin/env python
"""LFS transfer throughput: one large random file up and down through ``huggingface_hub``.

Download: ``hf_hub_download`` (fresh cache dir every run) from hubstead, against the same bytes (the very blob
file hubstead stores) served by nginx and fetched with ``huggingface_hub.file_download.http_get`` (the streaming
loop ``hf_hub_download`` itself uses). A second row fetches hubstead's resolve URL with that same ``http_get``, to
separate the server from the client's own overhead (HEAD, cache layout), a third does both into /dev/null, to
take the client's disk writes (the noisiest part on a VM) out of the comparison, and a fourth uses curl into
/dev/null (no Python client at all: what each server alone can push over loopback).

Upload: ``HfApi().upload_file`` (LFS path, the client hashes the file, then PUTs it) against the floor of what
any upload must do on this machine: sha256 the file plus ``shutil.copyfile`` it on the same disk. It runs twice:
against a server that offers the multipart transfer for this size (the default for files over 256 MB) and
against one that receives it as a single PUT (threshold raised above the size).

Everything runs on loopback; page cache is warm for both sides (the file was just written), and ``sync`` runs
(untimed) before every timed step so that no step pays for writing back an earlier one's dirty pages. Each row
reports the fastest of ``--repeat`` runs (``--stat median`` for the median); every run's time is printed below
the table.
"""

from __future__ import annotations

import argparse
import hashlib
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
    add_common_args,
    free_bytes,
    hf_client_env,
    human_bytes,
    log,
    make_tempdir,
    median,
    pin_source,
    print_report,
)

MB = 1_000_000
MiB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024 = 1 GiB)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (default 5)")
    parser.add_argument("--stat", choices=["best", "median"], default="best",
                        help="which run each row reports: the fastest (default; disk/VM noise only ever slows a "
                             "run down) or the median")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 MiB, 1 run, small multipart parts")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.repeat = 64, 1
    return args


def write_random_file(path: Path, size: int) -> None:
    block = os.urandom(min(size, 64 * MiB))
    with open(path, "wb") as handle:
        remaining = size
        while remaining > 0:
            n = min(remaining, len(block))
            handle.write(block[:n])
            remaining -= n


def perturb(path: Path, run: int) -> None:
    """Make the file's content (so its sha256) new, so that each upload really transfers the bytes."""
    with open(path, "r+b") as handle:
        handle.write(f"run-{run}-{time.time_ns()}-".encode() + os.urandom(16))


def floor_hash_and_copy(path: Path, target: Path) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * MiB):
            digest.update(chunk)
    digest.hexdigest()
    shutil.copyfile(path, target)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    size = args.size_mb * MiB
    tmp_base = args.tmp_dir or os.environ.get("TMPDIR") or "/tmp"
    # source + blob (+ parts while joining) + one downloaded copy + one floor copy
    need = size * 5 + 512 * MiB
    if free_bytes(tmp_base) < need:
        print(f"Not enough free disk in {tmp_base}: need about {human_bytes(need)}, have "
              f"{human_bytes(free_bytes(tmp_base))}. Use --size-mb or --tmp-dir.", file=sys.stderr)
        return 2
    work = make_tempdir("hubstead-bench-transfer-", tmp_base)

    # Server 1: multipart offered for this size (default threshold 256 MB; scaled down for --quick).
    multipart_env: dict[str, str] = {}
    if size <= 256 * MiB:
        multipart_env = {
            "HUBSTEAD_MULTIPART_THRESHOLD": str(size // 4),
            "HUBSTEAD_MULTIPART_CHUNK_SIZE": str(size // 4),
        }
    chunk = int(multipart_env.get("HUBSTEAD_MULTIPART_CHUNK_SIZE", 64 * MiB))
    hub = HubServer(root=work / "hub-multipart", extra_env=multipart_env)
    hub.data_dir.mkdir(parents=True)
    # Server 2: single PUT for this size.
    hub_single = HubServer(root=work / "hub-single", extra_env={"HUBSTEAD_MULTIPART_THRESHOLD": str(size * 2)})
    hub_single.data_dir.mkdir(parents=True)

    log("starting hubstead servers")
    token = hub.create_account("bench")
    token_single = hub_single.create_account("bench")
    hub.start()
    hub_single.start()
    hf_client_env(hub, token, work / "hf-home")
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.file_download import http_get

    api = HfApi(endpoint=hub.url, token=token)
    api_single = HfApi(endpoint=hub_single.url, token=token_single)
    repo_id = "bench/transfer"
    api.create_repo(repo_id)
    api_single.create_repo(repo_id)

    source = work / "payload.bin"
    log(f"writing a {human_bytes(size)} random file")
    write_random_file(source, size)
    profiler = Profiler(args.profile)

    # --- upload -----------------------------------------------------------------------------------------
    floor_times: list[float] = []
    up_times: dict[str, list[float]] = {"multipart": [], "single": []}
    server_io: dict[str, ProcStats] = {}
    client_cpu: dict[str, list[float]] = {"multipart": [], "single": []}
    run = 0
    for i in range(args.repeat):
        for label, server, client in (("multipart", hub, api), ("single", hub_single, api_single)):
            run += 1
            perturb(source, run)
            os.sync()
            floor_times.append(floor_hash_and_copy(source, work / "floor-copy.bin"))
            os.sync()
            before = ProcStats.of(server.pid)
            cpu0 = time.process_time()
            with profiler.phase(f"upload-{label}-{i}", server.pid) as timer:
                client.upload_file(path_or_fileobj=str(source), path_in_repo="model.bin", repo_id=repo_id,
                                   commit_message=f"upload run {run}")
            up_times[label].append(timer.seconds)
            client_cpu[label].append(time.process_time() - cpu0)
            server_io[label] = ProcStats.of(server.pid) - before
            log(f"upload {label} run {i + 1}: {up_times[label][-1]:.2f} s; floor {floor_times[-1]:.2f} s; server "
                f"cpu {server_io[label].cpu:.1f} s, wrote {human_bytes(server_io[label].wchar)}, read "
                f"{human_bytes(server_io[label].rchar)}")
    source.unlink()

    # --- download ---------------------------------------------------------------------------------------
    info = api.get_paths_info(repo_id, ["model.bin"])[0]
    oid = info.lfs.sha256
    blob = hub.data_dir / "lfs" / oid[:2] / oid[2:4] / oid
    assert blob.stat().st_size == size, "blob not where expected"
    nginx = Nginx(root=hub.data_dir / "lfs", workdir=work / "nginx")
    nginx_url = f"{nginx.url}/{oid[:2]}/{oid[2:4]}/{oid}"
    resolve_url = f"{hub.url}/{repo_id}/resolve/main/model.bin"
    down: dict[str, list[float]] = {"hf_hub_download": [], "http_get hubstead": [], "http_get nginx": [],
                                    "null hubstead": [], "null nginx": [], "curl hubstead": [], "curl nginx": []}
    curl = shutil.which("curl")
    dl_cpu: dict[str, ProcStats] = {}

    def get_to_file(url: str, headers: dict[str, str] | None = None) -> None:
        target = work / "download.bin"
        with open(target, "wb") as handle:
            http_get(url, handle, headers=headers, expected_size=size)
        if target.stat().st_size != size:
            raise RuntimeError("short download")
        target.unlink()

    def curl_to_null(url: str, headers: dict[str, str] | None = None) -> float:
        """curl (C, no Python in the client) into /dev/null: what the server alone can push."""
        cmd = [curl, "-sf", "-o", os.devnull, "-w", "%{size_download}"]
        for key, value in (headers or {}).items():
            cmd += ["-H", f"{key}: {value}"]
        started = time.perf_counter()
        out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
        elapsed = time.perf_counter() - started
        if int(float(out)) != size:
            raise RuntimeError(f"curl got {out} bytes")
        return elapsed

    def get_to_null(url: str, headers: dict[str, str] | None = None) -> float:
        with open(os.devnull, "wb") as handle:
            started = time.perf_counter()
            http_get(url, handle, headers=headers, expected_size=size)
            return time.perf_counter() - started

    for i in range(args.repeat):
        cache = work / f"cache-{i}"
        os.sync()
        before = ProcStats.of(hub.pid)
        with profiler.phase(f"download-hf_hub_download-{i}", hub.pid) as timer:
            path = hf_hub_download(repo_id, "model.bin", cache_dir=str(cache))
        down["hf_hub_download"].append(timer.seconds)
        dl_cpu["hubstead"] = ProcStats.of(hub.pid) - before
        assert Path(path).stat().st_size == size
        shutil.rmtree(cache)

        os.sync()
        started = time.perf_counter()
        get_to_file(resolve_url, {"authorization": f"Bearer {token}"})
        down["http_get hubstead"].append(time.perf_counter() - started)

        os.sync()
        started = time.perf_counter()
        get_to_file(nginx_url)
        down["http_get nginx"].append(time.perf_counter() - started)
        down["null hubstead"].append(get_to_null(resolve_url, {"authorization": f"Bearer {token}"}))
        down["null nginx"].append(get_to_null(nginx_url))
        if curl:
            down["curl hubstead"].append(curl_to_null(resolve_url, {"authorization": f"Bearer {token}"}))
            down["curl nginx"].append(curl_to_null(nginx_url))
        log(f"download run {i + 1}: " + ", ".join(f"{name} {times[-1]:.2f} s" for name, times in down.items() if times))

    def rate(seconds: list[float]) -> float:
        return size / MB / (min(seconds) if args.stat == "best" else median(seconds))

    label_size = human_bytes(size)
    rows = [
        Row(f"download {label_size}: hf_hub_download vs http_get from nginx [MB/s]",
            rate(down["hf_hub_download"]), rate(down["http_get nginx"]), "rate", "{:.0f}"),
        Row(f"download {label_size}: http_get of /resolve vs http_get from nginx [MB/s]",
            rate(down["http_get hubstead"]), rate(down["http_get nginx"]), "rate", "{:.0f}"),
        Row(f"download {label_size} to /dev/null: http_get of /resolve vs from nginx [MB/s]",
            rate(down["null hubstead"]), rate(down["null nginx"]), "rate", "{:.0f}"),
        *([Row(f"download {label_size} to /dev/null: curl of /resolve vs from nginx [MB/s]",
               rate(down["curl hubstead"]), rate(down["curl nginx"]), "rate", "{:.0f}")] if curl else []),
        Row(f"upload {label_size}: upload_file, multipart ({human_bytes(chunk)} parts) vs sha256+copyfile [MB/s]",
            rate(up_times["multipart"]), rate(floor_times), "rate", "{:.0f}"),
        Row(f"upload {label_size}: upload_file, single PUT vs sha256+copyfile [MB/s]",
            rate(up_times["single"]), rate(floor_times), "rate", "{:.0f}"),
    ]
    mp, sp = server_io["multipart"], server_io["single"]
    notes = [
        f"{'best' if args.stat == 'best' else 'median'} of {args.repeat} run(s); all times: " + "; ".join(
            f"{k} {', '.join(f'{t:.2f}' for t in v)} s" for k, v in {**down, **{f'upload {a}': b for a, b in
                                                                             up_times.items()},
                                                                     'floor': floor_times}.items()),
        f"server per upload (last run): multipart cpu {mp.cpu:.1f} s, wrote {human_bytes(mp.wchar)}, read "
        f"{human_bytes(mp.rchar)}; single PUT cpu {sp.cpu:.1f} s, wrote {human_bytes(sp.wchar)}, read "
        f"{human_bytes(sp.rchar)} (for a {label_size} file)",
        f"client cpu per upload_file (median): multipart {median(client_cpu['multipart']):.1f} s, single "
        f"{median(client_cpu['single']):.1f} s",
        f"server cpu per hf_hub_download (last run): {dl_cpu['hubstead'].cpu:.1f} s",
    ]
    print_report(f"bench_transfer: {label_size} LFS file", rows, notes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

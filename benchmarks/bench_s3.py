#!/usr/bin/env python
"""LFS on S3 (SeaweedFS from the ``s3`` extra, on loopback): a large file up and down.

Download: the hub's ``/resolve`` answered as a 302 to a presigned URL (the client then reads straight from the
object store) against the same file streamed through the hub (a second hub on the same data dir and bucket with
``HUBSTEAD_S3_PRESIGN=0``). Both fetched with httpx into /dev/null (no client disk writes), following redirects.

Upload: ``HfApi().upload_file`` into the hub on S3 (the client hashes the file, PUTs it to the hub, which hashes
it again and uploads it to S3 with multipart) against two floors: sha256 plus ``shutil.copyfile`` of the file
(what the local store's upload must at least do) and boto3's own multipart upload of the file to the same
bucket (what any upload to this object store costs).

Each row reports the fastest of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HubServer, Row, hf_client_env, log, make_tempdir, print_report  # noqa: E402

from hubstead.devtools.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server  # noqa: E402

MiB = 1024 * 1024


def fetch(url: str, headers: dict[str, str]) -> int:
    import httpx

    total = 0
    with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=600) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_bytes(4 * MiB):
            total += len(chunk)
    return total


def cpu_seconds(pid: int) -> float:
    """CPU used so far by a process and its children (the hub's API and compute processes)."""
    import psutil

    main = psutil.Process(pid)
    total = 0.0
    for proc in [main, *main.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="file size in MiB (default 256)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mb * MiB
    work = make_tempdir("hubstead-bench-s3-")
    s3 = S3Server(str(work))
    try:
        env = {**s3.env("bench"), "HUBSTEAD_S3_PRESIGN_MIN": "1MiB"}
        (work / "hub").mkdir()
        hub = HubServer(root=work / "hub", extra_env=env)
        hub.start()
        token = hub.create_account("bench")
        hf_client_env(hub, token, work / "hf-home")
        from huggingface_hub import HfApi

        source = work / "big.bin"
        with open(source, "wb") as handle:
            for _ in range(args.size_mb):
                handle.write(os.urandom(MiB))
        api = HfApi()
        api.create_repo("bench/big")
        counter = iter(range(1000))

        def upload() -> None:
            api.upload_file(path_or_fileobj=str(source), path_in_repo=f"big-{next(counter)}.bin", repo_id="bench/big")
            # Each run needs new bytes or the hub (rightly) skips the transfer: change the first MiB.
            with open(source, "r+b") as handle:
                handle.write(os.urandom(MiB))

        log("upload through the hub to S3")
        up = best(upload, args.repeat)

        def hash_copy() -> None:
            digest = hashlib.sha256()
            with open(source, "rb") as handle:
                while chunk := handle.read(8 * MiB):
                    digest.update(chunk)
            shutil.copyfile(source, work / "copy.bin")

        floor_local = best(hash_copy, args.repeat)
        import boto3

        client = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY, region_name=REGION)  # fmt: skip
        floor_s3 = best(lambda: client.upload_file(str(source), s3.bucket, "direct/big.bin"), args.repeat)

        api.upload_file(path_or_fileobj=str(source), path_in_repo="dl.bin", repo_id="bench/big")
        url = f"{hub.url}/bench/big/resolve/main/dl.bin"
        auth = {"authorization": f"Bearer {token}"}
        log("download: presigned redirect")
        cpu_before = cpu_seconds(hub.pid)
        direct = best(lambda: fetch(url, auth), args.repeat)
        hub_cpu_direct = (cpu_seconds(hub.pid) - cpu_before) / args.repeat
        streaming = HubServer(root=work / "hub", extra_env={**env, "HUBSTEAD_S3_PRESIGN": "0"})
        streaming.start()
        log("download: through the hub")
        cpu_before = cpu_seconds(streaming.pid)
        through = best(lambda: fetch(f"{streaming.url}/bench/big/resolve/main/dl.bin", auth), args.repeat)
        hub_cpu_through = (cpu_seconds(streaming.pid) - cpu_before) / args.repeat
        streaming.stop()
        hub.stop()
        rate = size / MiB
        rows = [
            Row("download MiB/s: 302 to presigned S3 vs streamed by the hub", rate / direct, rate / through),
            Row("hub CPU s per download: presigned vs streamed", hub_cpu_direct, hub_cpu_through, kind="time"),
            Row("upload MiB/s: hub on S3 vs sha256 + copy", rate / up, rate / floor_local),
            Row("upload MiB/s: hub on S3 vs boto3 straight to S3", rate / up, rate / floor_s3),
        ]
        print_report(f"LFS on S3 (SeaweedFS), {args.size_mb} MiB file, best of {args.repeat}", rows, args=args)
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

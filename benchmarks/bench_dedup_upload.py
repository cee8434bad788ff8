#!/usr/bin/env python
"""What proof of the bytes costs: uploading bytes the store already holds, through ``huggingface_hub``'s LFS path.

Since issue 16 an upload of an object the hub already stores (from anyone) is skipped only when the caller can
read a repo that references it; anyone else must send the bytes, which are hashed and checked (and then
dropped: the store keeps one copy). Three uploads of the same random file, each timed around
``HfApi().upload_file`` (the client hashes the file, asks the batch API, PUTs if asked, commits):

* fresh: the owner uploads new bytes into a private repo (the baseline of both rows);
* known, not readable: another user uploads the very same bytes into their own repo; the store holds them but
  this user cannot read the owner's private repo, so the bytes travel and are checked;
* known, readable: the owner uploads them again into a second repo of theirs; the client is told the object is
  present and sends nothing.

Each run uses new bytes (so "fresh" is really fresh). Rows report the fastest of ``--repeat`` runs; every run's
time is printed below the table. ``sync`` runs (untimed) before each timed step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    ProcStats,
    Row,
    add_common_args,
    hf_client_env,
    human_bytes,
    log,
    make_tempdir,
    pin_source,
    print_report,
)

MiB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="file size in MiB (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 MiB, 2 runs")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.repeat = 20, 2
    return args


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    size = args.size_mb * MiB
    work = make_tempdir("hubstead-bench-dedup-", args.tmp_dir or os.environ.get("TMPDIR") or "/tmp")
    hub = HubServer(root=work / "hub")
    hub.data_dir.mkdir(parents=True)
    log("starting hubstead")
    owner_token = hub.create_account("owner")
    other_token = hub.create_account("other")
    hub.start()
    hf_client_env(hub, owner_token, work / "hf-home")
    from huggingface_hub import HfApi

    owner, other = HfApi(endpoint=hub.url, token=owner_token), HfApi(endpoint=hub.url, token=other_token)
    owner.create_repo("owner/private", private=True)
    owner.create_repo("owner/again", private=True)
    other.create_repo("other/mine")

    source = work / "payload.bin"
    times: dict[str, list[float]] = {"fresh": [], "known, not readable": [], "known, readable": []}
    received: dict[str, int] = {}
    for run in range(args.repeat):
        source.write_bytes(os.urandom(size))  # new bytes every run
        for label, api, repo in (("fresh", owner, "owner/private"), ("known, not readable", other, "other/mine"),
                                 ("known, readable", owner, "owner/again")):  # fmt: skip
            os.sync()
            before = ProcStats.of(hub.pid)
            started = time.perf_counter()
            api.upload_file(path_or_fileobj=str(source), path_in_repo="model.bin", repo_id=repo,
                            commit_message=f"run {run}")  # fmt: skip
            times[label].append(time.perf_counter() - started)
            received[label] = (ProcStats.of(hub.pid) - before).wchar
            log(f"run {run + 1} {label}: {times[label][-1]:.3f} s, server wrote {human_bytes(received[label])}")
    hub.stop()

    best = {label: min(values) for label, values in times.items()}
    label_size = human_bytes(size)
    rows = [
        Row(f"upload {label_size} the store holds, by a user who cannot read it, vs a fresh upload [s]",
            best["known, not readable"], best["fresh"], kind="time", fmt="{:.3f}",
            note="must send and have checked the bytes: about a fresh upload's cost (the store keeps one copy)"),
        Row(f"re-upload {label_size} by a user who can read it vs a fresh upload [s]",
            best["known, readable"], best["fresh"], kind="time", fmt="{:.3f}",
            note="skipped: the client hashes the file and commits, no bytes travel"),
    ]  # fmt: skip
    notes = ["every run (s): " + "; ".join(f"{k}: {', '.join(f'{t:.3f}' for t in v)}" for k, v in times.items())]
    print_report(f"bench_dedup_upload: {label_size} LFS file", rows, notes, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

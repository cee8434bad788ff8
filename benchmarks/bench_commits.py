#!/usr/bin/env python
"""Commits with many files, and a repo with very many files.

1. One ``create_commit`` of N small files (``CommitOperationAdd`` from bytes; default 10,000), timed end to end
   from the client (preupload calls + the NDJSON commit). Baseline: ``git add -A && git commit`` of the same
   files in a working tree (files written beforehand, not timed), with git's defaults and again with
   ``core.fsync=committed`` (fsync each object and ref, as hubstead's libgit2 setting does).
2. A repo of M files (default 100,000) built by several commits of B files (default 20,000) each. Then
   ``list_repo_files`` (the paginated recursive tree listing) and a single one-file ``create_commit`` on it.
   Baselines: ``git ls-tree -r -l HEAD`` (names, modes, ids and sizes) and ``git add <file> && git commit``
   in a working tree of the same M files.

Files are laid out ``dNNN/fNNNNNN.txt`` with ``--files-per-dir`` files per folder (0 = all at the root).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
    ProcStats,
    Profiler,
    Row,
    add_common_args,
    hf_client_env,
    log,
    make_tempdir,
    median,
    pin_source,
    print_report,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="files in the one big commit (default 10000)")
    parser.add_argument("--big-files", type=int, default=100_000, help="files in the big repo (default 100000)")
    parser.add_argument("--batch", type=int, default=20_000, help="files per commit building the big repo")
    parser.add_argument("--files-per-dir", type=int, default=1000, help="files per folder (0: flat)")
    parser.add_argument("--file-bytes", type=int, default=200, help="size of each small file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 files, big repo of 2000, 1 run")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.files, args.big_files, args.batch, args.files_per_dir, args.repeat = 500, 2000, 1000, 100, 1
    return args


def file_path(i: int, per_dir: int) -> str:
    return f"f{i:06d}.txt" if per_dir <= 0 else f"d{i // per_dir:03d}/f{i:06d}.txt"


def file_bytes(i: int, size: int, salt: str) -> bytes:
    head = f"file {i} {salt}\n".encode()
    body = (b"lorem ipsum dolor sit amet " * (size // 27 + 1))[: max(0, size - len(head))]
    return head + body


def git(cwd: Path, *args: str, fsync: bool = False) -> None:
    config = ["-c", "core.fsync=committed", "-c", "core.fsyncMethod=fsync"] if fsync else []
    subprocess.run(["git", *config, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def git_init(path: Path) -> None:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "bench")
    git(path, "config", "user.email", "bench@example.invalid")
    git(path, "config", "gc.auto", "0")


def write_tree(root: Path, start: int, stop: int, per_dir: int, size: int, salt: str) -> None:
    for i in range(start, stop):
        path = root / file_path(i, per_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_bytes(i, size, salt))


def git_commit_all(path: Path, *, fsync: bool, message: str) -> float:
    started = time.perf_counter()
    git(path, "add", "-A", fsync=fsync)
    git(path, "commit", "-q", "-m", message, fsync=fsync)
    return time.perf_counter() - started


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    work = make_tempdir("hubstead-bench-commits-", args.tmp_dir)
    hub = HubServer(root=work / "hub")
    hub.data_dir.mkdir(parents=True)
    token = hub.create_account("bench")
    hub.start()
    hf_client_env(hub, token, work / "hf-home")
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub.url, token=token)
    profiler = Profiler(args.profile, hub.pid)

    def ops(start: int, stop: int, salt: str) -> list:
        return [
            CommitOperationAdd(path_in_repo=file_path(i, args.files_per_dir),
                               path_or_fileobj=file_bytes(i, args.file_bytes, salt))
            for i in range(start, stop)
        ]

    # --- 1. one commit of N files -----------------------------------------------------------------------
    n = args.files
    hub_commit: list[float] = []
    server_cpu: list[float] = []
    git_plain: list[float] = []
    git_fsync: list[float] = []
    for run in range(args.repeat):
        repo_id = f"bench/commit-{run}"
        api.create_repo(repo_id)
        operations = ops(0, n, f"run{run}")
        before = ProcStats.of(hub.pid)
        with profiler.phase(f"commit-{n}-files-{run}") as timer:
            api.create_commit(repo_id, operations=operations, commit_message=f"{n} files")
        hub_commit.append(timer.seconds)
        server_cpu.append((ProcStats.of(hub.pid) - before).cpu)
        if run == 0:  # the commit really holds the files (+ .gitattributes)
            count = len(api.list_repo_files(repo_id))
            if count != n + 1:
                raise RuntimeError(f"commit of {n} files left {count} files in the repo")
        for fsync, out in ((False, git_plain), (True, git_fsync)):
            tree = work / f"git-{run}-{'fsync' if fsync else 'plain'}"
            git_init(tree)
            write_tree(tree, 0, n, args.files_per_dir, args.file_bytes, f"run{run}")
            out.append(git_commit_all(tree, fsync=fsync, message=f"{n} files"))
            subprocess.run(["rm", "-rf", str(tree)], check=True)
        log(f"commit of {n} files, run {run + 1}: hubstead {hub_commit[-1]:.2f} s (server cpu {server_cpu[-1]:.1f} s), "
            f"git {git_plain[-1]:.2f} s, git+fsync {git_fsync[-1]:.2f} s")

    # --- 2. a repo of M files ---------------------------------------------------------------------------
    m = args.big_files
    big_id = "bench/big"
    api.create_repo(big_id)
    big_git = work / "git-big"
    git_init(big_git)
    build: list[str] = []
    done = 0
    while done < m:
        stop = min(m, done + args.batch)
        operations = ops(done, stop, "big")
        with profiler.phase(f"build-commit-{done}-{stop}") as timer:
            api.create_commit(big_id, operations=operations, commit_message=f"files {done}..{stop}")
        hub_t = timer.seconds
        write_tree(big_git, done, stop, args.files_per_dir, args.file_bytes, "big")
        git_t = git_commit_all(big_git, fsync=False, message=f"files {done}..{stop}")
        build.append(f"{stop - done} files onto {done}: hubstead {hub_t:.2f} s, git {git_t:.2f} s")
        log(f"big repo: {build[-1]}")
        done = stop

    hub_list: list[float] = []
    git_list: list[float] = []
    listed = 0
    for run in range(args.repeat):
        with profiler.phase(f"list-repo-files-{run}") as timer:
            files = api.list_repo_files(big_id)
        hub_list.append(timer.seconds)
        listed = len(files)
        started = time.perf_counter()
        out = subprocess.run(["git", "ls-tree", "-r", "-l", "HEAD"], cwd=big_git, check=True, capture_output=True)
        git_list.append(time.perf_counter() - started)
        git_count = out.stdout.count(b"\n")
        log(f"list of {listed} files, run {run + 1}: hubstead {hub_list[-1]:.2f} s, git ls-tree {git_list[-1]:.3f} s "
            f"({git_count} entries)")
    if listed != m + 1:  # + .gitattributes
        log(f"WARNING: list_repo_files returned {listed} paths, expected {m + 1}")

    hub_single: list[float] = []
    git_single_plain: list[float] = []
    git_single_fsync: list[float] = []
    for run in range(args.repeat):
        operations = ops(m // 2, m // 2 + 1, f"edit{run}")
        with profiler.phase(f"single-commit-{run}") as timer:
            api.create_commit(big_id, operations=operations, commit_message=f"edit {run}")
        hub_single.append(timer.seconds)
        for fsync, out_list in ((False, git_single_plain), (True, git_single_fsync)):
            target = big_git / file_path(m // 2, args.files_per_dir)
            target.write_bytes(file_bytes(m // 2, args.file_bytes, f"edit{run}-{fsync}"))
            started = time.perf_counter()
            git(big_git, "add", file_path(m // 2, args.files_per_dir), fsync=fsync)
            git(big_git, "commit", "-q", "-m", f"edit {run}", fsync=fsync)
            out_list.append(time.perf_counter() - started)
        log(f"single commit on {m} files, run {run + 1}: hubstead {hub_single[-1]:.3f} s, git "
            f"{git_single_plain[-1]:.3f} s, git+fsync {git_single_fsync[-1]:.3f} s")

    layout = "flat" if args.files_per_dir <= 0 else f"{args.files_per_dir} per folder"
    rows = [
        Row(f"create_commit of {n:,} files vs git add+commit [s]", median(hub_commit), median(git_plain), "time"),
        Row(f"create_commit of {n:,} files vs git add+commit, core.fsync=committed [s]", median(hub_commit),
            median(git_fsync), "time"),
        Row(f"list_repo_files on {m:,} files vs git ls-tree -r -l [s]", median(hub_list), median(git_list), "time",
            "{:.3f}"),
        Row(f"create_commit of 1 file on {m:,} files vs git add+commit [s]", median(hub_single),
            median(git_single_plain), "time", "{:.3f}"),
        Row(f"create_commit of 1 file on {m:,} files vs git add+commit, core.fsync=committed [s]",
            median(hub_single), median(git_single_fsync), "time", "{:.3f}"),
    ]
    notes = [
        f"{args.file_bytes}-byte files, {layout}; medians of {args.repeat} run(s)",
        f"create_commit of {n:,} files runs: {', '.join(f'{t:.2f}' for t in hub_commit)} s; server cpu "
        f"{', '.join(f'{t:.1f}' for t in server_cpu)} s",
        "building the big repo: " + "; ".join(build),
        f"list_repo_files runs: {', '.join(f'{t:.2f}' for t in hub_list)} s ({listed} paths)",
    ]
    print_report(f"bench_commits: {n:,}-file commit, {m:,}-file repo", rows, notes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

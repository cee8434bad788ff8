#!/usr/bin/env python
"""Pull requests: what opening, reading and merging one costs, in a repo of many files.

The repo holds N small files (default 5,000, ``--files``) in folders. Each measurement is through the real
client (``huggingface_hub``) against a hub started for the run; each has a baseline measured in the same run:

1. ``create_commit(create_pr=True)`` of one file (opens ``refs/pr/N`` and its thread) vs the same one-file
   ``create_commit`` to main.
2. ``merge_pull_request`` of a fast-forward PR vs a one-file ``create_commit`` to main (both move main once).
3. ``merge_pull_request`` that needs a merge commit (main moved on another file) vs ``git merge --no-ff`` of the
   same change in a working tree of the same N files (``core.fsync=committed``, as hubstead's libgit2 setting).
4. ``get_discussion_details`` (with the diff) of a PR changing ``--pr-files`` files (default 200) vs
   ``git diff`` of the same change in that working tree.
5. With ``--webhooks K`` (default 5): a one-file commit to main while K webhooks watch the repo and their receiver
   hangs 10 s before answering, vs the same commit with no webhooks: delivery must not slow the commit.
"""

from __future__ import annotations

import argparse
import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HubServer,
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
    parser.add_argument("--files", type=int, default=5000, help="files in the repo (default 5000)")
    parser.add_argument("--pr-files", type=int, default=200, help="files a PR changes for the diff (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is reported")
    parser.add_argument("--webhooks", type=int, default=5, help="webhooks watching the repo in step 5 (0: skip)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 files, 20 PR files, 1 run")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.files, args.pr_files, args.repeat = 300, 20, 1
    return args


def path_of(i: int) -> str:
    return f"d{i // 500:03d}/f{i:06d}.txt"


def content(i: int, salt: str) -> bytes:
    return f"file {i} {salt}\n".encode() + b"lorem ipsum dolor sit amet\n" * 4


def git(cwd: Path, *args: str) -> str:
    config = ["-c", "core.fsync=committed", "-c", "core.fsyncMethod=fsync", "-c", "user.name=bench",
              "-c", "user.email=bench@example.invalid"]  # fmt: skip
    return subprocess.run(["git", *config, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class _Hang(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that takes 10 s to answer."""

    received = 0

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).received += 1
        time.sleep(10)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def main() -> int:
    args = parse_args()
    pin_source(args.rev)
    work = make_tempdir("hubstead-bench-pulls-", args.tmp_dir)
    hub = HubServer(root=work / "hub", extra_env={"HUBSTEAD_WEBHOOKS_ALLOW_PRIVATE": "1"})
    hub.data_dir.mkdir(parents=True)
    token = hub.create_account("bench")
    hub.start()
    hf_client_env(hub, token, work / "hf-home")
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub.url, token=token)
    profiler = Profiler(args.profile, hub.pid)
    n = args.files
    repo_id = "bench/pulls"
    api.create_repo(repo_id)
    api.create_commit(
        repo_id, [CommitOperationAdd(path_of(i), content(i, "base")) for i in range(n)], commit_message="base"
    )
    tree = work / "tree"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "main")
    for i in range(n):
        target = tree / path_of(i)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content(i, "base"))
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "base")
    log(f"repo of {n} files ready")

    def one_file(i: int, salt: str) -> list:
        return [CommitOperationAdd(path_of(i), content(i, salt))]

    # 1. opening a PR vs a commit to main
    open_pr, to_main = [], []
    prs: list[int] = []
    for run in range(args.repeat):
        with profiler.phase(f"open-pr-{run}") as timer:
            info = api.create_commit(repo_id, one_file(run, f"pr{run}"), commit_message=f"pr {run}", create_pr=True)
        open_pr.append(timer.seconds)
        prs.append(int(info.pr_num))
        with profiler.phase(f"commit-main-{run}") as timer:
            api.create_commit(repo_id, one_file(n - 1 - run, f"main{run}"), commit_message=f"main {run}")
        to_main.append(timer.seconds)
        log(f"open PR {open_pr[-1] * 1000:.0f} ms, commit to main {to_main[-1] * 1000:.0f} ms")

    # 2. fast-forward merges (fresh PRs opened on main's head) vs a commit to main
    ff_merge, ff_base = [], []
    for run in range(args.repeat):
        info = api.create_commit(repo_id, one_file(100 + run, f"ff{run}"), commit_message=f"ff {run}", create_pr=True)
        with profiler.phase(f"merge-ff-{run}") as timer:
            api.merge_pull_request(repo_id, int(info.pr_num))
        ff_merge.append(timer.seconds)
        with profiler.phase(f"commit-main-ff-{run}") as timer:
            api.create_commit(repo_id, one_file(200 + run, f"ffbase{run}"), commit_message=f"base {run}")
        ff_base.append(timer.seconds)
        log(f"fast-forward merge {ff_merge[-1] * 1000:.0f} ms, commit to main {ff_base[-1] * 1000:.0f} ms")

    # 3. merge commits: the PRs of step 1 changed files main did not; main has moved since
    true_merge, git_merge = [], []
    for run, num in enumerate(prs):
        with profiler.phase(f"merge-commit-{run}") as timer:
            api.merge_pull_request(repo_id, num)
        true_merge.append(timer.seconds)
        git(tree, "checkout", "-q", "-b", f"pr{run}")
        (tree / path_of(run)).write_bytes(content(run, f"pr{run}"))
        git(tree, "commit", "-q", "-am", f"pr {run}")
        git(tree, "checkout", "-q", "main")
        (tree / path_of(n - 1 - run)).write_bytes(content(n - 1 - run, f"main{run}"))
        git(tree, "commit", "-q", "-am", f"main {run}")
        started = time.perf_counter()
        git(tree, "merge", "-q", "--no-ff", "-m", f"merge {run}", f"pr{run}")
        git_merge.append(time.perf_counter() - started)
        log(f"merge commit {true_merge[-1] * 1000:.0f} ms, git merge --no-ff {git_merge[-1] * 1000:.0f} ms")

    # 4. a PR changing many files: its details with the diff vs git diff
    k = min(args.pr_files, n)
    info = api.create_commit(
        repo_id, [CommitOperationAdd(path_of(i), content(i, "wide")) for i in range(k)],
        commit_message="wide", create_pr=True,
    )  # fmt: skip
    git(tree, "checkout", "-q", "-b", "wide")
    for i in range(k):
        (tree / path_of(i)).write_bytes(content(i, "wide"))
    git(tree, "commit", "-q", "-am", "wide")
    details_t, diff_t = [], []
    for run in range(args.repeat):
        with profiler.phase(f"details-{run}") as timer:
            details = api.get_discussion_details(repo_id, int(info.pr_num))
        details_t.append(timer.seconds)
        started = time.perf_counter()
        out = git(tree, "diff", "main...wide")
        diff_t.append(time.perf_counter() - started)
        if (details.diff or "").count("diff --git") != k or out.count("diff --git") != k:
            raise RuntimeError("the PR's diff does not name every changed file")
        log(f"details with a {k}-file diff {details_t[-1] * 1000:.0f} ms, git diff {diff_t[-1] * 1000:.0f} ms")
    git(tree, "checkout", "-q", "main")

    rows = [
        Row("create_commit(create_pr=True), one file vs the same commit to main [ms]", median(open_pr) * 1000,
            median(to_main) * 1000, "time", "{:.0f}"),
        Row("merge_pull_request, fast-forward vs a one-file commit to main [ms]", median(ff_merge) * 1000,
            median(ff_base) * 1000, "time", "{:.0f}"),
        Row(f"merge_pull_request, merge commit in {n:,} files vs git merge --no-ff [ms]", median(true_merge) * 1000,
            median(git_merge) * 1000, "time", "{:.0f}"),
        Row(f"get_discussion_details with a {k}-file diff vs git diff main...pr [ms]", median(details_t) * 1000,
            median(diff_t) * 1000, "time", "{:.0f}"),
    ]  # fmt: skip
    notes = [
        f"open PR runs (ms): {', '.join(f'{t * 1000:.0f}' for t in open_pr)}; "
        f"main commits: {', '.join(f'{t * 1000:.0f}' for t in to_main)}",
        f"merge commits (ms): {', '.join(f'{t * 1000:.0f}' for t in true_merge)}; "
        f"git merge: {', '.join(f'{t * 1000:.0f}' for t in git_merge)}",
        "client-side times include the HTTP round trips the client makes (preupload + commit; merge = one POST; "
        "details = one GET); git baselines run the git binary in a working tree (process start included).",
    ]

    # 5. webhooks that hang do not slow commits
    if args.webhooks > 0 and hasattr(api, "create_webhook"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        quiet, watched = [], []
        for run in range(args.repeat * 2):
            with profiler.phase(f"commit-no-hooks-{run}") as timer:
                api.create_commit(repo_id, one_file(300 + run, f"q{run}"), commit_message=f"q {run}")
            quiet.append(timer.seconds)
            time.sleep(0.5)  # the same rhythm as the runs with hooks (the sender polls meanwhile)
        hooks = [
            api.create_webhook(
                url=f"http://127.0.0.1:{server.server_address[1]}/hook{i}",
                watched=[{"type": "model", "name": repo_id}], domains=["repo"], secret="s",
            )
            for i in range(args.webhooks)
        ]  # fmt: skip
        for run in range(args.repeat * 2):
            with profiler.phase(f"commit-hooks-{run}") as timer:
                api.create_commit(repo_id, one_file(400 + run, f"w{run}"), commit_message=f"w {run}")
            watched.append(timer.seconds)
            time.sleep(0.5)
        time.sleep(2)
        rows.append(
            Row(f"one-file commit to main with {len(hooks)} webhooks whose receiver hangs 10 s vs none [ms]",
                median(watched) * 1000, median(quiet) * 1000, "time", "{:.0f}",
                note=f"{_Hang.received} deliveries had reached the receiver 2 s after the last commit")
        )  # fmt: skip
        notes.append(
            f"commits with hooks (ms): {', '.join(f'{t * 1000:.0f}' for t in watched)}; "
            f"without: {', '.join(f'{t * 1000:.0f}' for t in quiet)}"
        )
        server.shutdown()

    print_report(f"Pull requests in a repo of {n:,} files", rows, notes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

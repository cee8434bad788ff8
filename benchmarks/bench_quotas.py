"""What the storage quota check costs (``repos/quotas.require_room``, docs/quotas.md), on a real hub database
(SQLite in a temp data dir, migrated; no server: the check is one function every upload path calls).

Rows: a namespace holding N LFS object references (20 repos, half of the objects shared between two repos, so
the distinct count matters) checked for an upload of 10 new objects, with a limit set (the usage is summed) vs the
same call with no limit (the baseline: the override lookup every upload makes on a site without quotas), and
the GET /api/quotas answer's work (``usage``: both pools) vs the baseline. Medians of 20 calls.

    python benchmarks/bench_quotas.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hubstead.auth.service import create_user  # noqa: E402
from hubstead.config import Settings  # noqa: E402
from hubstead.context import Hub  # noqa: E402
from hubstead.repos.models import Repo, RepoLfsObject  # noqa: E402
from hubstead.repos.quotas import require_room, usage  # noqa: E402


def oid(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def median_ms(fn, runs: int = 20) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def fill(hub: Hub, name: str, refs: int) -> None:
    repos = 20
    per_repo = refs // repos
    with hub.db.session() as s:
        create_user(s, name=name)
        made = []
        for r in range(repos):
            repo = Repo(repo_type="model", namespace=name, name=f"r{r}", id_key=f"{name}/r{r}".lower(),
                        storage_key=uuid.uuid4().hex, private=False)  # fmt: skip
            s.add(repo)
            made.append(repo)
        s.flush()
        rows = []
        for r, repo in enumerate(made):
            # repo r holds objects [r*per_repo/2, r*per_repo/2 + per_repo): half shared with the next repo
            start = r * per_repo // 2
            rows += [{"repo_pk": repo.pk, "oid": oid(n), "size": 1_000_000 + n} for n in range(start, start + per_repo)]
        s.execute(RepoLfsObject.__table__.insert(), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    root = Path(tempfile.mkdtemp(prefix="bench-quotas-"))
    try:
        settings = Settings(data_dir=root, database_url=f"sqlite:///{root / 'hub.db'}", secret_key=secrets.token_hex(8))
        hub = Hub.from_settings(settings)
        limited = dataclasses.replace(hub, settings=dataclasses.replace(settings, quota_user_bytes=10**15))
        unlimited = hub
        new = {oid(10**9 + n): 1000 for n in range(10)}
        print("| metric | hubstead | baseline | ratio |\n|---|---|---|---|")
        for refs in sizes:
            name = f"ns{refs}"
            fill(hub, name, refs)
            repo = Repo(namespace=name, private=False)  # what the check reads of the repo (a fresh session per call)

            def check(h: Hub) -> None:
                with h.db.session() as s:
                    require_room(h, s, repo, new)  # noqa: B023

            def answer() -> None:
                with limited.db.session() as s:
                    usage(limited, s, name)  # noqa: B023

            ours, base = median_ms(lambda: check(limited)), median_ms(lambda: check(unlimited))
            print(f"| require_room, {refs:,} refs, limit set vs no limit [ms] | {ours:.2f} | {base:.2f} | "
                  f"{ours / base:.1f} |")
            ours = median_ms(answer)
            print(f"| usage (GET /api/quotas), {refs:,} refs vs require_room with no limit [ms] | {ours:.2f} | "
                  f"{base:.2f} | {ours / base:.1f} |")
        hub.db.engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Start-up reconciliation reads heads from git's ref files (loose or packed) and re-indexes only rows that lag."""

from __future__ import annotations

import subprocess

from sqlalchemy import update

from hubstead.auth import service as auth
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.repos.commits import commit_files
from hubstead.repos.git import Author
from hubstead.repos.index import main_head_from_files, reconcile_all
from hubstead.repos.models import Repo
from hubstead.repos.service import create_repo, git_dir, open_git


def test_heads_from_files_match_libgit2_and_lagging_rows_are_reindexed(hub: Hub) -> None:
    with hub.db.session() as s:
        principal = Principal(user=auth.create_user(s, name="recon"), token_role="write")
        empty, _ = create_repo(hub, s, principal, repo_id="recon/empty", repo_type="model", private=False)
        repo, _ = create_repo(hub, s, principal, repo_id="recon/full", repo_type="model", private=False)
        git = open_git(hub, repo)
        readme = git.write_blob(b"---\npipeline_tag: fill-mask\n---\n")
        commit_files(hub, s, repo=repo, branch="main", files=[("README.md", readme)], lfs_objects={},
                     message="card", author=Author(name="recon", email="recon@x"))  # fmt: skip
        empty_dir, full_dir, pk = git_dir(hub, empty), git_dir(hub, repo), repo.pk
        empty_head = open_git(hub, empty).branch_head("refs/heads/main")
    head = open_git(hub, repo).branch_head("refs/heads/main")
    assert main_head_from_files(full_dir) == str(head)
    assert main_head_from_files(empty_dir) == (str(empty_head) if empty_head else None)
    assert main_head_from_files(full_dir.parent / "no-such-repo") not in (None, str(head))
    subprocess.run(["git", "--git-dir", str(full_dir), "pack-refs", "--all"], check=True)
    assert not (full_dir / "refs" / "heads" / "main").exists()
    assert main_head_from_files(full_dir) == str(head)

    assert reconcile_all(hub) == 0  # every row matches its head: nothing opened, nothing refreshed
    with hub.db.session() as s:  # a row left behind (killed between moving main and updating the row)
        s.execute(update(Repo).where(Repo.pk == pk).values(sha=None, pipeline_tag=None))
    assert reconcile_all(hub) == 1
    with hub.db.session() as s:
        row = s.get(Repo, pk)
        assert row is not None and row.sha == str(head) and row.pipeline_tag == "fill-mask"

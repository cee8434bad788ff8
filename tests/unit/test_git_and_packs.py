"""The git layer on a real bare repository: tree editing, packs that git itself accepts, revisions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2
import pytest

from hubstead.errors import BadRequestError, RevisionNotFoundError
from hubstead.repos.files import iter_entries
from hubstead.repos.git import Author, GitRepo
from hubstead.repos.packs import BlobSink, PackWriter

AUTHOR = Author(name="t", email="t@example.com")


def _fsck(path: Path) -> None:
    result = subprocess.run(
        ["git", f"--git-dir={path}", "fsck", "--full", "--strict", "--no-dangling"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tree_editor_add_delete_and_conflicts(tmp_path: Path) -> None:
    git = GitRepo.init(tmp_path / "r.git")
    editor = git.editor(None)
    for path in ["a.txt", "d/x.txt", "d/e/y.txt", "z/w.txt"]:
        editor.put_file(path, git.write_blob(path.encode()))
    tree = editor.write(git.repo)
    first = git.write_commit(tree=tree, parents=[], author=AUTHOR, message="one")
    git.update_ref("refs/heads/main", first, message="one")
    commit = git.resolve("main")
    editor = git.editor(commit.tree)
    assert editor.delete("d", folder=True)
    assert not editor.delete("missing.txt", folder=False)
    assert not editor.delete("z", folder=False)  # a folder is not a file
    with pytest.raises(BadRequestError):
        editor.put_file("a.txt/inner", git.write_blob(b"x"))
    with pytest.raises(BadRequestError):
        editor.put_file("z", git.write_blob(b"x"))
    editor.put_file("new/file.txt", git.write_blob(b"n"))
    second = git.write_commit(tree=editor.write(git.repo), parents=[first], author=AUTHOR, message="two")
    git.update_ref("refs/heads/main", second, message="two")
    names = sorted(e.path for e in iter_entries(git, git.resolve("main"), "", recursive=True) if e.type == "file")
    assert names == ["a.txt", "new/file.txt", "z/w.txt"]
    assert git.resolve(str(second)[:7]).id == second
    with pytest.raises(RevisionNotFoundError):
        git.resolve("nope")
    _fsck(tmp_path / "r.git")


def test_pack_writer_objects_are_readable_and_git_accepts_them(tmp_path: Path) -> None:
    git = GitRepo.init(tmp_path / "p.git")
    writer = PackWriter(git.path)
    blobs = {f"f{i}.txt": (b"content %d " % i) * (i % 40 + 1) for i in range(3000)}
    oids = {path: writer.add_blob(data) for path, data in blobs.items()}
    writer.add_blob(blobs["f1.txt"])  # a duplicate is stored once
    assert len(writer) == 3000
    writer.finish()
    for path, data in list(blobs.items())[:50]:
        assert git.repo.get(oids[path]).data == data
        assert oids[path] == pygit2.hash(data)
    editor = git.editor(None)
    for path, oid in oids.items():
        editor.put_file(path, oid)
    commit = git.write_commit(tree=editor.write(git.repo), parents=[], author=AUTHOR, message="packed")
    git.update_ref("refs/heads/main", commit, message="packed")
    _fsck(git.path)
    verify = subprocess.run(
        ["git", "verify-pack", str(next((git.path / "objects/pack").glob("*.idx")))], capture_output=True
    )
    assert verify.returncode == 0


def test_blob_sink_switches_from_loose_to_pack(tmp_path: Path) -> None:
    git = GitRepo.init(tmp_path / "s.git")
    few = BlobSink(git.repo, git.path, max_loose=4)
    oids = [few.add(b"x%d" % i) for i in range(3)]
    few.finish()
    assert not list((git.path / "objects/pack").glob("*.pack"))
    assert all(git.repo.get(o) is not None for o in oids)
    many = BlobSink(git.repo, git.path, max_loose=4)
    oids = [many.add(b"y%d" % i) for i in range(10)]
    many.finish()
    assert len(list((git.path / "objects/pack").glob("*.pack"))) == 1
    assert [git.repo.get(o).data for o in oids] == [b"y%d" % i for i in range(10)]
    aborted = BlobSink(git.repo, git.path, max_loose=1)
    aborted.add(b"a")
    aborted.add(b"b")
    aborted.abort()
    assert not list((git.path / "objects/pack").glob("tmp_*"))


@pytest.mark.parametrize("recursive", [True, False])
def test_resuming_a_listing_after_any_entry_matches_the_full_walk(tmp_path: Path, recursive: bool) -> None:
    git = GitRepo.init(tmp_path / "walk.git")
    editor = git.editor(None)
    paths = ["a.txt", "a-b/x", "a/b/c/d.txt", "a/b/e.txt", "a/z", "b", "c/d/e/f/g", "c/h", "zz/top"]
    for path in paths:
        editor.put_file(path, git.write_blob(path.encode()))
    commit = git.write_commit(tree=editor.write(git.repo), parents=[], author=AUTHOR, message="tree")
    git.update_ref("refs/heads/main", commit, message="tree")
    head = git.resolve("main")
    for folder in ("", "a", "c"):
        full = [e.path for e in iter_entries(git, head, folder, recursive=recursive)]
        for index, entry in enumerate(full):
            resumed = [e.path for e in iter_entries(git, head, folder, recursive=recursive, after=entry)]
            assert resumed == full[index + 1 :], (folder, entry)
    with pytest.raises(BadRequestError):
        list(iter_entries(git, head, "", recursive=True, after="not/there"))

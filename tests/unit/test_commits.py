"""``hubstead.repos.commits`` on a real hub (git repos on disk, SQLite): NDJSON parsing refuses bad payloads in
words, ``prepare_commit``/``apply_commit`` move a branch by one commit, a stale ``parentCommit`` and an operation
that does not fit the tree move nothing, and an LFS object is referenced only with proof of its bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import pygit2
import pytest

from hubstead.auth import service as auth
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import (
    BadRequestError,
    EntryNotFoundError,
    HubError,
    LfsObjectMissingError,
    RevisionNotFoundError,
    StaleParentCommitError,
)
from hubstead.repos import commits
from hubstead.repos.git import GitRepo
from hubstead.repos.lfs.proofs import record_proof
from hubstead.repos.locks import repo_write_lock
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.service import create_repo, git_dir, open_git


def ndjson(*lines: Any) -> io.BytesIO:
    return io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


def header(summary: str = "update", **extra: Any) -> dict[str, Any]:
    return {"key": "header", "value": {"summary": summary, **extra}}


def add(path: str, data: bytes) -> dict[str, Any]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def lfs(path: str, oid: str, size: int | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"path": path, "algo": "sha256", "oid": oid}
    if size is not None:
        value["size"] = size
    return {"key": "lfsFile", "value": value}


class Writer:
    """A user with a write token and a repo of theirs, committing through the module under test."""

    def __init__(self, hub: Hub, name: str, repo_id: str, *, private: bool = False) -> None:
        self.hub = hub
        with hub.db.session() as s:
            user = auth.create_user(s, name=name)
            self.principal = Principal(user=user, token_role="write")
            repo, _ = create_repo(hub, s, self.principal, repo_id=repo_id, repo_type="model", private=private)
            self.repo_pk = repo.pk

    def commit(self, *lines: Any, ref: str = "refs/heads/main") -> commits.CommitResult:
        with self.hub.db.session() as s:
            repo = s.get(Repo, self.repo_pk)
            assert repo is not None
            prepared = commits.prepare_commit(self.hub, s, self.principal, repo=repo, body=ndjson(*lines))
            return commits.apply_commit(self.hub, s, repo=repo, prepared=prepared, ref=ref)

    def head(self, ref: str = "refs/heads/main") -> str:
        with self.hub.db.session() as s:
            repo = s.get(Repo, self.repo_pk)
            assert repo is not None
            return str(open_git(self.hub, repo).branch_head(ref))

    def read(self, path: str) -> bytes | None:
        with self.hub.db.session() as s:
            repo = s.get(Repo, self.repo_pk)
            assert repo is not None
            git = open_git(self.hub, repo)
            blob = git.entry(git.resolve("main"), path)
            return None if blob is None else git.read_blob(blob.id)


@pytest.fixture()
def alice(hub: Hub) -> Writer:
    return Writer(hub, "alice", "alice/model")


@pytest.fixture(scope="module")
def shared_writer(module_hub: Hub) -> Writer:
    return Writer(module_hub, "shared", "shared/model")


BAD_PAYLOADS: list[tuple[bytes, str]] = [
    (b"not json\n", "line 1 is not valid JSON"),
    (b'["key"]\n', "line 1 must be an object"),
    (json.dumps(header()).encode() + b"\n" + b'{"key": "file"}\n', "line 2 must be an object"),
    (json.dumps(header()).encode() + b'\n{"key": "nope", "value": {}}\n', "unknown key 'nope' on line 2"),
    (json.dumps(add("a.txt", b"x")).encode() + b"\n", "no header line"),
    (json.dumps(header()).encode() + b"\n", "no operations"),
    (b"", "no header line"),
    (json.dumps(header(parentCommit="abc")).encode() + b"\n", "Invalid parentCommit"),
    (json.dumps(header(parentCommit=12)).encode() + b"\n", "parentCommit must be a string"),
    (
        json.dumps(header()).encode() + b"\n"
        + json.dumps({"key": "file", "value": {"path": "a", "content": "!!!", "encoding": "base64"}}).encode(),
        "Invalid base64 content for 'a'",
    ),
    (
        json.dumps(header()).encode() + b"\n"
        + json.dumps({"key": "file", "value": {"path": "a", "content": "x", "encoding": "rot13"}}).encode(),
        "Unsupported encoding 'rot13'",
    ),
    (json.dumps(header()).encode() + b"\n" + json.dumps(lfs("w.bin", "xyz")).encode(), "expected a sha256 hex digest"),
    (json.dumps(header()).encode() + b"\n" + json.dumps(lfs("w.bin", "a" * 64, -1)).encode(), "Invalid LFS size"),
    (json.dumps(header()).encode() + b"\n" + json.dumps(lfs("w.bin", "a" * 64, True)).encode(), "Invalid LFS size"),
    (json.dumps(header()).encode() + b"\n" + json.dumps(add("../escape", b"x")).encode(), "'..' segments"),
    (json.dumps(header()).encode() + b"\n" + json.dumps(add(".git/config", b"x")).encode(), "'.git' is reserved"),
    (json.dumps(header()).encode() + b"\n" + json.dumps(add("/abs", b"x")).encode(), "Absolute paths"),
    (json.dumps(header()).encode() + b"\n" + b"[" * 100_000 + b"\n", "line 2 is"),
    (b'{"summary": "legacy", "files": "not a list"}', "must be an object"),
    (b"[1, 2", "is not valid JSON"),
]


@pytest.mark.parametrize(("body", "words"), BAD_PAYLOADS, ids=[words for _, words in BAD_PAYLOADS])
def test_bad_payloads_are_refused_in_words_and_move_nothing(shared_writer: Writer, body: bytes, words: str) -> None:
    """Each malformed commit body is a 4xx whose message names the problem, and the branch stays where it was."""
    hub = shared_writer.hub
    before = shared_writer.head()
    with hub.db.session() as s:
        repo = s.get(Repo, shared_writer.repo_pk)
        assert repo is not None
        with pytest.raises(HubError, match=words) as caught:
            commits.prepare_commit(hub, s, shared_writer.principal, repo=repo, body=io.BytesIO(body))
    assert 400 <= caught.value.status_code < 500
    assert shared_writer.head() == before


ODD_PATHS = [
    "../escape.txt",
    "a/../../b",
    "/abs.txt",
    ".git/config",
    "a/.git/hooks/x",
    "nul\u0000byte",
    "a//b",
    "./x",
    "a\\b",
    "x" * 300,
    "/".join(["d"] * 2000),
]


@pytest.mark.parametrize("path", ODD_PATHS, ids=[p[:20] for p in ODD_PATHS])
@pytest.mark.parametrize("line", ["file", "lfsFile", "deletedFile"])
def test_odd_paths_are_refused_with_422_and_move_nothing(shared_writer: Writer, path: str, line: str) -> None:
    """A path that escapes the repo, names ``.git``, holds NUL or a backslash, has empty or ``.`` segments, or is
    too long or too deep is refused as a 422 in every kind of commit line, and the branch stays put (these cases
    were once sent one by one to a live server in ``tests/integration/test_bad_input.py``)."""
    value: dict[str, Any] = {"path": path}
    if line == "file":
        value.update(content="eA==", encoding="base64")
    elif line == "lfsFile":
        value.update(algo="sha256", oid="a" * 64, size=1)
    before = shared_writer.head()
    with pytest.raises(HubError) as caught:
        shared_writer.commit(header(), {"key": line, "value": value})
    assert caught.value.status_code == 422 and str(caught.value)
    assert shared_writer.head() == before


def test_a_commit_adds_and_deletes_files_and_moves_main_once(alice: Writer) -> None:
    """A commit writes its files, deletes what it names, moves main by exactly one commit whose parent is the old
    head, uses the summary and description as the message, and the index row follows main."""
    first = alice.head()
    result = alice.commit(
        header("Add files", description="two of them"), add("a.txt", b"alpha"), add("dir/b.txt", b"beta")
    )
    assert result.parent == first and result.branch == "refs/heads/main" and alice.head() == result.commit_oid
    assert alice.read("a.txt") == b"alpha" and alice.read("dir/b.txt") == b"beta"
    second = alice.commit(header("Remove"), {"key": "deletedFolder", "value": {"path": "dir/"}},
                          {"key": "deletedFile", "value": {"path": "a.txt"}})
    assert second.parent == result.commit_oid
    assert alice.read("a.txt") is None and alice.read("dir/b.txt") is None
    with alice.hub.db.session() as s:
        repo = s.get(Repo, alice.repo_pk)
        assert repo is not None and repo.sha == second.commit_oid
        git = open_git(alice.hub, repo)
        assert git.commit(git.branch_head("refs/heads/main")).message == "Remove\n"  # type: ignore[arg-type]
        assert git.commit(git.resolve(result.commit_oid).id).message == "Add files\n\ntwo of them\n"


def test_the_legacy_json_body_is_still_understood(alice: Writer) -> None:
    """The single-object body older clients send (``summary``, ``files``) commits like the NDJSON one."""
    body = {"summary": "legacy", "files": [{"path": "old.txt", "content": "b2xk", "encoding": "base64"}]}
    with alice.hub.db.session() as s:
        repo = s.get(Repo, alice.repo_pk)
        assert repo is not None
        prepared = commits.prepare_commit(
            alice.hub, s, alice.principal, repo=repo, body=io.BytesIO(json.dumps(body).encode())
        )
        assert prepared.message == "legacy\n"
        commits.apply_commit(alice.hub, s, repo=repo, prepared=prepared, ref="refs/heads/main")
    assert alice.read("old.txt") == b"old"


def test_a_stale_parent_commit_is_refused_and_moves_nothing(alice: Writer) -> None:
    """A ``parentCommit`` that is no longer the head is a 412 with the Hub's words; the current head as parent
    commits."""
    old = alice.head()
    new = alice.commit(header("first"), add("a.txt", b"1")).commit_oid
    with pytest.raises(StaleParentCommitError, match="refresh and try again"):
        alice.commit(header("late", parentCommit=old), add("a.txt", b"2"))
    assert alice.head() == new and alice.read("a.txt") == b"1"
    assert alice.commit(header("on time", parentCommit=new), add("a.txt", b"3")).parent == new


def test_an_operation_that_does_not_fit_the_tree_moves_nothing(alice: Writer) -> None:
    """Deleting a file or folder the revision does not hold is a 404 naming it; nothing of the commit lands."""
    before = alice.head()
    with pytest.raises(EntryNotFoundError, match="'missing.txt'"):
        alice.commit(header(), add("new.txt", b"x"), {"key": "deletedFile", "value": {"path": "missing.txt"}})
    with pytest.raises(EntryNotFoundError, match="folder 'nowhere'"):
        alice.commit(header(), {"key": "deletedFolder", "value": {"path": "nowhere"}})
    assert alice.head() == before and alice.read("new.txt") is None


def test_commit_ref_accepts_branches_and_prs_only(alice: Writer) -> None:
    """Commits go to branches (``main``, ``refs/heads/x``) and pull requests; a tag, a commit id or another ref is
    a 400 saying so, and a branch that does not exist is a 404."""
    with alice.hub.db.session() as s:
        repo = s.get(Repo, alice.repo_pk)
        assert repo is not None
        git = open_git(alice.hub, repo)
        head = git.branch_head("refs/heads/main")
        assert head is not None
        git.update_ref("refs/tags/v1", head, message="tag")
        git.update_ref("refs/pr/1", head, message="pr")
        assert commits.commit_ref(git, "main") == "refs/heads/main"
        assert commits.commit_ref(git, "refs/heads/main") == "refs/heads/main"
        assert commits.commit_ref(git, "refs/pr/1") == "refs/pr/1"
        for revision in ("v1", str(head), str(head)[:7], "refs/tags/v1", "refs/notes/x"):
            with pytest.raises(BadRequestError, match="only branches accept commits|it is not a branch"):
                commits.commit_ref(git, revision)
        with pytest.raises(RevisionNotFoundError):
            commits.commit_ref(git, "no-such-branch")


def _store(hub: Hub, tmp_path: Path, data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    source = tmp_path / oid
    source.write_bytes(data)
    hub.blobs.put_file(oid, source)
    return oid


def test_lfs_objects_need_proof_of_their_bytes(hub: Hub, tmp_path: Path, alice: Writer) -> None:
    """An LFS object stored by the hub is refused to a caller who never sent its bytes here and cannot read a repo
    that holds it (same answer as for an object never uploaded, or a wrong size); with an upload proof it
    commits as a pointer and the repo records the object; then a reader of that public repo may copy it."""
    data = b"weights" * 100
    oid = _store(hub, tmp_path, data)
    never = "f" * 64
    for line in (lfs("w.bin", oid, len(data)), lfs("w.bin", never, 3)):
        with pytest.raises(LfsObjectMissingError, match="w.bin") as caught:
            alice.commit(header(), line)
        assert caught.value.status_code == 422
    with hub.db.session() as s:
        assert alice.principal.user is not None
        record_proof(s, repo_pk=alice.repo_pk, user_id=alice.principal.user.id, oid=oid, size=len(data))
    with pytest.raises(LfsObjectMissingError):
        alice.commit(header(), lfs("w.bin", oid, len(data) + 1))
    alice.commit(header(), lfs("w.bin", oid, len(data)))
    pointer = alice.read("w.bin")
    assert pointer is not None and f"oid sha256:{oid}".encode() in pointer and f"size {len(data)}".encode() in pointer
    with hub.db.session() as s:
        assert s.get(RepoLfsObject, (alice.repo_pk, oid)) is not None

    bob = Writer(hub, "bob", "bob/copy")
    bob.commit(header(), lfs("copied.bin", oid))  # no size: a copy of an object a readable repo holds
    assert bob.read("copied.bin") == pointer


def test_a_private_repos_object_cannot_be_claimed_by_its_hash(hub: Hub, tmp_path: Path) -> None:
    """Knowing the sha256 of a private repo's LFS file does not let another user reference it."""
    owner = Writer(hub, "owner", "owner/private", private=True)
    data = b"secret weights"
    oid = _store(hub, tmp_path, data)
    with hub.db.session() as s:
        assert owner.principal.user is not None
        record_proof(s, repo_pk=owner.repo_pk, user_id=owner.principal.user.id, oid=oid, size=len(data))
    owner.commit(header(), lfs("secret.bin", oid, len(data)))
    thief = Writer(hub, "thief", "thief/grab")
    with pytest.raises(LfsObjectMissingError):
        thief.commit(header(), lfs("secret.bin", oid, len(data)))
    assert thief.read("secret.bin") is None


def _in_thread(fn: Any) -> threading.Event:
    """Run ``fn`` in a thread of its own; the event is set when it returned."""
    done = threading.Event()

    def run() -> None:
        fn()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def test_commits_to_different_branches_go_on_at_once_and_to_one_branch_take_turns(hub: Hub, alice: Writer) -> None:
    """While a writer holds ``dev``'s lock (another commit to dev in flight; a thread's own descriptor excludes as
    another process's does), a commit to main lands at once; a second commit to dev waits for the first, and so
    does a writer of the whole repo (a push); both go on when it releases, and every commit is kept."""
    alice.commit(header(), add("a.txt", b"a"))
    with hub.db.session() as s:
        repo = s.get(Repo, alice.repo_pk)
        assert repo is not None
        path = git_dir(hub, repo)
    GitRepo(path).update_ref("refs/heads/dev", pygit2.Oid(hex=alice.head()), message="branch")
    held, release = threading.Event(), threading.Event()

    def other_dev_writer() -> None:
        with repo_write_lock(path, "refs/heads/dev"):
            held.set()
            release.wait(30)

    holder = _in_thread(other_dev_writer)
    assert held.wait(10)
    to_main = _in_thread(lambda: alice.commit(header(), add("main.txt", b"m")))
    assert to_main.wait(10), "a commit to main waited for a writer of dev"
    to_dev = _in_thread(lambda: alice.commit(header(), add("dev.txt", b"d"), ref="refs/heads/dev"))
    whole: list[str] = []
    whole_repo = _in_thread(lambda: _hold_whole(path, whole))
    assert not to_dev.wait(0.5) and not whole_repo.wait(0.2)  # both wait for dev's writer
    release.set()
    assert holder.wait(10) and to_dev.wait(10) and whole_repo.wait(10) and whole == ["held"]
    assert alice.read("main.txt") == b"m"
    git = GitRepo(path)
    assert git.entry(git.resolve("dev"), "dev.txt") is not None and git.entry(git.resolve("dev"), "main.txt") is None


def _hold_whole(path: Path, seen: list[str]) -> None:
    with repo_write_lock(path):
        seen.append("held")


def test_two_branches_may_name_the_same_lfs_object(hub: Hub, tmp_path: Path, alice: Writer) -> None:
    """Commits to two branches at once may both reference one LFS object: the repo's row for it is written once,
    and neither commit fails on the other's row."""
    data = b"shared weights"
    oid = _store(hub, tmp_path, data)
    with hub.db.session() as s:
        assert alice.principal.user is not None
        record_proof(s, repo_pk=alice.repo_pk, user_id=alice.principal.user.id, oid=oid, size=len(data))
    GitRepo(_path(hub, alice)).update_ref("refs/heads/dev", pygit2.Oid(hex=alice.head()), message="branch")
    alice.commit(header(), lfs("w.bin", oid, len(data)))
    alice.commit(header(), lfs("w.bin", oid, len(data)), ref="refs/heads/dev")
    with hub.db.session() as s:
        commits.record_lfs_objects(s, alice.repo_pk, {oid: 14})  # once more, as a concurrent commit would
        assert [(r.oid, r.size) for r in s.query(RepoLfsObject).filter_by(repo_pk=alice.repo_pk)] == [(oid, 14)]


def _path(hub: Hub, writer: Writer) -> Path:
    with hub.db.session() as s:
        repo = s.get(Repo, writer.repo_pk)
        assert repo is not None
        return git_dir(hub, repo)

"""``git push`` over smart HTTP: git's receive-pack protocol, with every ref checked the way the Hub API checks it.

The protocol is ours (pkt-line commands, report-status, side-band), the pack is git's: ``git index-pack`` unpacks it
into a quarantine object directory beside the repo's objects (``objects/incoming-*``), never into them. Before
any ref moves, every pushed ref is checked:

* its name and the pusher's right to it (``RefRule``: the route applies the API's rules, ``require_write`` and
  ``discussions.pulls.require_push`` for ``refs/pr/N``);
* the move: branches and PRs fast-forward only (the API rewrites no history), tags are never moved, main is
  never deleted, a PR ref is never created or deleted here (``create_pr`` does that), the old value is the
  ref's current one;
* the new objects (``git rev-list --objects NEW --not --all``, which also proves the pack complete): no file over
  the non-LFS limit (the Hub's message), every LFS pointer names an object the hub stores and this pusher may
  reference (``proofs.may_reference``, the API's rule), every README.md's card header within bounds.

Then, under the repo write lock, the refs are checked again against what the client saw, the quarantined pack
moves into the repo (fsynced, index last) and the refs move, each with ``undo_ref_on_rollback``; the index
(``on_main_moved``) and the webhook events follow in the caller's transaction. A push is all or nothing: one
refused ref refuses them all, and nothing is written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pygit2
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.config import LFS_THRESHOLD_BYTES
from hubstead.context import Hub
from hubstead.errors import BadRequestError, HubError
from hubstead.repos.cards import check_card_header
from hubstead.repos.commits import index_lagging_main, record_lfs_objects, undo_ref_on_rollback
from hubstead.repos.git import GitRepo
from hubstead.repos.index import on_main_moved
from hubstead.repos.lfs.objects import object_size
from hubstead.repos.lfs.pointers import MAX_POINTER_SIZE, parse_pointer
from hubstead.repos.lfs.proofs import may_reference
from hubstead.repos.locks import repo_write_lock
from hubstead.repos.models import Repo
from hubstead.repos.paths import validate_branch_name
from hubstead.repos.refs import announce_ref
from hubstead.repos.service import git_dir, require_write

ZERO = "0" * 40
CAPABILITIES = "report-status delete-refs side-band-64k quiet atomic ofs-delta object-format=sha1 agent=hubstead"
MAX_COMMANDS = 1000
_OID_RE = re.compile(r"^[0-9a-f]{40}$")
# The Hub's words for a file over the non-LFS limit pushed with git.
TOO_LARGE_MESSAGE = (
    "Your push was rejected because it contains files larger than 10 MiB.\n"
    "Please use https://git-lfs.github.com/ to store large files.\n"
    "See also: https://hf.co/docs/hub/repositories-getting-started#terminal\n"
)


class PushRefused(HubError):
    """One ref of a push refused: ``reason`` goes on its ``ng`` line, ``detail`` (several lines) to the side band."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


@dataclass
class RefUpdate:
    old: str
    new: str
    ref: str
    error: str | None = None

    @property
    def creates(self) -> bool:
        return self.old == ZERO

    @property
    def deletes(self) -> bool:
        return self.new == ZERO


@dataclass
class PushCommands:
    updates: list[RefUpdate]
    capabilities: set[str] = field(default_factory=set)


# A rule for refs the repos layer cannot judge alone (``refs/pr/N``: the pull request's state and author): raises
# a HubError to refuse. ``landed`` is told of each PR ref that moved (the thread records the commit).
RefRule = Callable[[RefUpdate], None]


def pkt_line(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data


def _read_pkt(body: IO[bytes]) -> bytes | None:
    """One pkt-line's payload, or None for a flush packet."""
    head = body.read(4)
    if len(head) < 4:
        raise BadRequestError("Invalid push: the command list ends early")
    try:
        length = int(head, 16)
    except ValueError as exc:
        raise BadRequestError("Invalid push: not a pkt-line") from exc
    if length == 0:
        return None
    if length < 4 or length > 65520:
        raise BadRequestError("Invalid push: bad pkt-line length")
    data = body.read(length - 4)
    if len(data) < length - 4:
        raise BadRequestError("Invalid push: the command list ends early")
    return data


def parse_commands(body: IO[bytes]) -> PushCommands:
    """Read the push's command list (``old new ref``, capabilities after a NUL on the first), up to its flush;
    ``body`` is left at the pack.

    Raises:
        BadRequestError: malformed lines, a shallow or signed push, too many refs.
    """
    commands = PushCommands(updates=[])
    while (data := _read_pkt(body)) is not None:
        line = data.rstrip(b"\n")
        if not commands.updates:
            line, _, caps = line.partition(b"\0")
            commands.capabilities = set(caps.decode("ascii", "replace").split())
        parts = line.decode("utf-8", "replace").split(" ")
        if len(parts) != 3 or not _OID_RE.match(parts[0]) or not _OID_RE.match(parts[1]):
            raise BadRequestError(
                "Invalid push: expected 'old-id new-id ref' commands (shallow and signed pushes are not accepted)"
            )
        commands.updates.append(RefUpdate(old=parts[0], new=parts[1], ref=parts[2]))
        if len(commands.updates) > MAX_COMMANDS:
            raise BadRequestError(f"Invalid push: more than {MAX_COMMANDS} refs in one push")
    if not commands.updates:
        raise BadRequestError("Invalid push: no commands")
    return commands


def advertisement(path: Path) -> bytes:
    """receive-pack's ref advertisement (after the ``# service`` line): branches, tags and PR refs, capabilities
    on the first line."""
    repo = pygit2.Repository(str(path))
    lines = []
    for name in sorted(repo.references):
        if name.startswith(("refs/heads/", "refs/tags/", "refs/pr/")):
            target = repo.references[name].target
            if isinstance(target, pygit2.Oid):
                lines.append((str(target), name))
    if not lines:
        lines.append((ZERO, "capabilities^{}"))
    out = [pkt_line(f"{oid} {name}\0{CAPABILITIES}\n".encode()) if i == 0 else pkt_line(f"{oid} {name}\n".encode())
           for i, (oid, name) in enumerate(lines)]  # fmt: skip
    return b"".join(out) + b"0000"


@contextmanager
def quarantine(path: Path) -> Iterator[Path]:
    """A temporary object directory inside the repo's ``objects`` (same file system, so the pack moves in by
    rename); removed on the way out, moved in or not."""
    directory = Path(tempfile.mkdtemp(prefix="incoming-", dir=path / "objects"))
    try:
        (directory / "pack").mkdir()
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _git_env(path: Path, objects: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GIT_DIR": str(path),
        "GIT_OBJECT_DIRECTORY": str(objects),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(path / "objects"),
    }


def unpack(path: Path, objects: Path, pack: IO[bytes]) -> str | None:
    """Index the pushed pack into the quarantine ``objects``; returns git's complaint, or None when it unpacked."""
    result = subprocess.run(
        ["git", "index-pack", "--stdin", "--fix-thin", "--strict"],
        stdin=pack,
        capture_output=True,
        env=_git_env(path, objects),
        cwd=path,
        timeout=3600,
    )
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        return (lines[-1] if lines else "index-pack failed").removeprefix("fatal: ")[:200]
    return None


def _new_objects(path: Path, objects: Path, new: str) -> list[tuple[str, str, int, str]]:
    """(id, type, size, path) of each object ``new`` reaches that no ref of the repo does; raises PushRefused if
    the pack left one out."""
    env = _git_env(path, objects)
    listed = subprocess.run(
        ["git", "rev-list", "--objects", new, "--not", "--all"], capture_output=True, env=env, cwd=path, timeout=600
    )
    if listed.returncode != 0:
        raise PushRefused("missing necessary objects")
    paths: dict[str, str] = {}
    for raw in listed.stdout.decode("utf-8", "replace").splitlines():
        oid, _, name = raw.partition(" ")
        paths.setdefault(oid, name)
    if not paths:
        return []
    checked = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
        input="\n".join(paths).encode() + b"\n",
        capture_output=True,
        env=env,
        cwd=path,
        timeout=600,
    )
    out = []
    for raw in checked.stdout.decode().splitlines():
        oid, kind, size = raw.split(" ")
        out.append((oid, kind, int(size), paths[oid]))
    return out


@dataclass
class _Checked:
    lfs: dict[str, int] = field(default_factory=dict)  # sha256 -> size, to record as referenced


def _check_objects(
    hub: Hub, session: Session, principal: Principal, repo: Repo, odb: pygit2.Repository, path: Path,
    objects: Path, update: RefUpdate, checked: _Checked,
) -> None:  # fmt: skip
    found = _new_objects(path, objects, update.new)
    too_large = [name for _, kind, size, name in found if kind == "blob" and size > LFS_THRESHOLD_BYTES]
    if too_large:
        offending = "".join(f"  - {name} (ref: {update.ref})\n" for name in too_large[:20])
        detail = TOO_LARGE_MESSAGE + "\nOffending files:\n" + offending
        raise PushRefused("files larger than 10 MiB; use git lfs", detail)
    new_blobs = {oid for oid, kind, _, _ in found if kind == "blob"}
    for oid, kind, size, name in found:
        if kind == "blob" and size <= MAX_POINTER_SIZE:
            pointer = parse_pointer(odb[oid].read_raw())
            if pointer is None:
                continue
            allowed = may_reference(session, principal, repo, pointer.oid)
            stored = object_size(hub, session, pointer.oid) if allowed else None
            if stored is None or stored != pointer.size:
                raise PushRefused(
                    f"LFS object {pointer.oid} for {name!r} was not uploaded to this repo",
                    "Upload LFS files through the LFS batch API first (git lfs push does; git push with git-lfs "
                    "installed does it for you)\n",
                )
            checked.lfs[pointer.oid] = stored
        elif kind == "commit":
            tree = odb[oid].peel(pygit2.Tree)
            if "README.md" in tree:
                entry = tree["README.md"]
                if str(entry.id) in new_blobs and isinstance(entry, pygit2.Blob):
                    try:
                        check_card_header(entry.read_raw())
                    except HubError as exc:
                        raise PushRefused(exc.message.splitlines()[0]) from exc


def _check_ref(
    session: Session, principal: Principal, repo: Repo, odb: pygit2.Repository, update: RefUpdate, rule: RefRule
) -> None:
    ref, namespace = update.ref, repo.namespace
    current = odb.references.get(ref)
    current_id = str(current.target) if current is not None else ZERO
    if current_id != update.old:
        raise PushRefused("stale info: the ref moved since you fetched; fetch first")
    if ref.startswith("refs/heads/"):
        require_write(session, principal, namespace)
        if update.deletes:
            if ref == "refs/heads/main":
                raise PushRefused("Cannot delete refs/heads/main")
            return
        if update.creates:
            validate_branch_name(ref.removeprefix("refs/heads/"))
    elif ref.startswith("refs/tags/"):
        require_write(session, principal, namespace)
        if update.deletes:
            return
        if not update.creates:
            raise PushRefused(f"Reference {ref} already exists")
        validate_branch_name(ref.removeprefix("refs/tags/"))
    elif ref.startswith("refs/pr/"):
        if update.creates or update.deletes:
            raise PushRefused("pull request refs are opened and closed through the Hub (create_pr), not by git push")
        rule(update)
    else:
        raise PushRefused("only branches, tags and open pull requests (refs/pr/N) can be pushed")
    target = odb.get(update.new)
    if target is None:
        raise PushRefused("missing necessary objects")
    try:
        commit = target.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError) as exc:
        raise PushRefused("a branch, tag or pull request must point at a commit") from exc
    if ref.startswith(("refs/heads/", "refs/pr/")) and not isinstance(target, pygit2.Commit):
        raise PushRefused("a branch must point at a commit")
    if not update.creates and not odb.descendant_of(commit.id, pygit2.Oid(hex=update.old)):
        raise PushRefused("non-fast-forward: force pushes are refused (the Hub rewrites no history)")


@dataclass
class PushOutcome:
    updates: list[RefUpdate]
    unpack_error: str | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.unpack_error is None and all(u.error is None for u in self.updates)


def receive(
    hub: Hub,
    session: Session,
    principal: Principal,
    *,
    repo: Repo,
    commands: PushCommands,
    pack: IO[bytes],
    pr_rule: RefRule,
    pr_landed: Callable[[RefUpdate], None],
) -> PushOutcome:
    """Unpack into a quarantine, check every ref and object, then move the refs (all or none)."""
    path = git_dir(hub, repo)
    outcome = PushOutcome(updates=commands.updates)
    with quarantine(path) as objects:
        if any(not u.deletes for u in commands.updates):
            outcome.unpack_error = unpack(path, objects, pack)
            if outcome.unpack_error is not None:
                for update in commands.updates:
                    update.error = "unpacker error"
                return outcome
        odb = pygit2.Repository(str(path))
        odb.odb.add_disk_alternate(str(objects))
        checked = _Checked()
        for update in commands.updates:
            try:
                _check_ref(session, principal, repo, odb, update, pr_rule)
                if not update.deletes:
                    _check_objects(hub, session, principal, repo, odb, path, objects, update, checked)
            except PushRefused as exc:
                update.error = exc.message
                if exc.detail:
                    outcome.messages.append(exc.detail)
            except HubError as exc:
                update.error = exc.message.splitlines()[0]
                outcome.messages.append(exc.message)
        if not outcome.ok:
            for update in commands.updates:
                update.error = update.error or "atomic push failed"
            return outcome
        _move_refs(hub, session, repo, path, objects, commands.updates, outcome)
    if not outcome.ok:
        return outcome
    record_lfs_objects(session, repo.pk, checked.lfs)
    git = GitRepo(path)
    for update in commands.updates:
        announce_ref(
            session, repo, principal, update.ref,
            old=None if update.creates else update.old, new=None if update.deletes else update.new,
        )  # fmt: skip
        if update.ref.startswith("refs/pr/"):
            pr_landed(update)
    if any(u.ref == "refs/heads/main" for u in commands.updates):
        on_main_moved(session, git, repo, git.commit(pygit2.Oid(hex=_main_new(commands.updates))))
    else:
        index_lagging_main(session, git, repo)
    session.flush()
    return outcome


def _main_new(updates: list[RefUpdate]) -> str:
    return next(u.new for u in updates if u.ref == "refs/heads/main")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _migrate(objects: Path, path: Path) -> None:
    """Move the quarantined pack into the repo: data first, its index last (git finds a pack by its index), each
    fsynced, then the folder."""
    target = path / "objects" / "pack"
    files = sorted((objects / "pack").iterdir(), key=lambda p: {".pack": 0, ".rev": 1, ".idx": 2}.get(p.suffix, 1))
    for file in files:
        if file.suffix not in (".pack", ".rev", ".idx"):
            continue
        _fsync(file)
        os.replace(file, target / file.name)
    _fsync(target)


def _move_refs(
    hub: Hub, session: Session, repo: Repo, path: Path, objects: Path, updates: list[RefUpdate], outcome: PushOutcome
) -> None:
    with repo_write_lock(path):
        git = GitRepo(path)
        for update in updates:  # the refs as the checks saw them, or nothing moves
            current = git.reference(update.ref)
            if (str(current.target) if current is not None else ZERO) != update.old:
                update.error = "stale info: the ref moved while the push was checked; fetch first"
        if not outcome.ok:
            for update in updates:
                update.error = update.error or "atomic push failed"
            return
        _migrate(objects, path)
        git = GitRepo(path)  # sees the new pack
        for update in updates:
            if update.deletes:
                git.delete_ref(update.ref)
                continue
            new = pygit2.Oid(hex=update.new)
            git.update_ref(update.ref, new, message="push")
            back_to = None if update.creates else pygit2.Oid(hex=update.old)
            undo_ref_on_rollback(hub, session, repo, update.ref, moved_to=new, back_to=back_to)


def report(outcome: PushOutcome, capabilities: set[str]) -> bytes:
    """The answer git prints: report-status (``unpack ok``, ``ok``/``ng`` per ref), inside side band 1 when asked,
    with the long messages on side band 2 (git shows them as ``remote: ...``)."""
    status = pkt_line(f"unpack {outcome.unpack_error or 'ok'}\n".encode())
    for update in outcome.updates:
        line = f"ok {update.ref}\n" if update.error is None else f"ng {update.ref} {_one_line(update.error)}\n"
        status += pkt_line(line.encode())
    status += b"0000"
    if "side-band-64k" not in capabilities:
        return status if "report-status" in capabilities else b""
    out = b""
    for message in outcome.messages:
        text = message if message.endswith("\n") else message + "\n"
        data = text.encode()
        for start in range(0, len(data), 65000):
            out += pkt_line(b"\x02" + data[start : start + 65000])
    if "report-status" in capabilities:
        for start in range(0, len(status), 65000):
            out += pkt_line(b"\x01" + status[start : start + 65000])
    return out + b"0000"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]

"""Pull requests as git refs: ``refs/pr/N`` in the repo's bare repository, N shared with discussions.

- ``commit`` is the one way a commit lands: on a branch (writers), into a new PR (``create_pr``: any signed-in
  reader), or onto an open PR's ref (its author, or a writer). ``require_push`` is the rule.
- ``open_draft`` opens a PR whose ref points at its base's head (no changes yet); the first push opens it.
- ``merge`` fast-forwards the base branch when it can, else writes a merge commit; conflicting files are listed
  and the merge refused. Crash safety: the planned commit is saved on the PR (``pending_merge``) and committed
  to the database before the branch moves; after the move the PR becomes ``merged``. If the process dies in
  between, ``reconcile_pending_merges`` (at start, and before any merge of the repo) looks at the branch: if it
  holds the planned commit the PR is merged, otherwise the plan is dropped. So the branch is on its old or its
  new commit and the PR's state matches it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import pygit2
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth import audit
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.discussions.models import Discussion
from hubstead.discussions.service import (
    add_comment,
    add_event,
    announce,
    create_thread,
    events_of,
    get_discussion,
    next_number,
    parse_num,
    require_participant,
    require_writer,
)
from hubstead.errors import BadRequestError, ConflictError, ForbiddenError, RevisionNotFoundError
from hubstead.repos.commits import CommitResult, PreparedCommit, apply_commit, commit_ref, prepare_commit
from hubstead.repos.git import GitRepo
from hubstead.repos.index import on_main_moved
from hubstead.repos.locks import repo_write_lock
from hubstead.repos.models import Repo
from hubstead.repos.refs import announce_ref
from hubstead.repos.service import author_for, can_write, git_dir, open_git, require_write

log = logging.getLogger(__name__)

MAX_DIFF_CHARS = 2 * 1024 * 1024
PR_PREFIX = "refs/pr/"


def pr_ref(num: int) -> str:
    return f"{PR_PREFIX}{num}"


def _pr_num(revision: str) -> int | None:
    if revision.startswith(PR_PREFIX):
        return parse_num(revision[len(PR_PREFIX) :])
    return None


def require_push(
    session: Session, principal: Principal, repo: Repo, *, revision: str, create_pr: bool
) -> Discussion | None:
    """Whether the caller may commit to ``revision`` of a repo they can read (the one rule; checked before a
    byte of the body is read, and again when the commit applies).

    Writers push anywhere. Any signed-in reader with a write token may open a pull request (``create_pr``) and
    push to an open pull request they authored, never to a branch. Returns the PR pushed to, if any.

    Raises:
        UnauthorizedError, ForbiddenError: as the Hub answers.
        NotFoundError: ``refs/pr/N`` with no such pull request.
    """
    num = None if create_pr else _pr_num(revision)
    pull = None
    if num is not None:
        pull = get_discussion(session, repo, num)
        if not pull.is_pull_request:
            raise BadRequestError(f"Discussion #{num} is not a pull request")
        if pull.status not in ("open", "draft"):
            raise ForbiddenError(f"Pull request #{num} is {pull.status}; commits can only be pushed to an open one")
    if can_write(session, principal, repo.namespace):
        return pull
    if create_pr:
        require_participant(session, principal, repo)
        return None
    if pull is not None and principal.user is not None and pull.author_user_id == principal.user.id:
        require_participant(session, principal, repo)
        return pull
    require_write(session, principal, repo.namespace)  # raises with the Hub's words
    return pull


def require_upload(session: Session, principal: Principal, repo: Repo) -> None:
    """Whether the caller may send file bytes (LFS, Xet) into a repo they can read: writers, and readers who may
    open a pull request. Bytes only become the uploader's proof (``repos.proofs``); the commit that names them
    is checked by ``require_push``, so an upload alone changes nothing anyone else sees."""
    if can_write(session, principal, repo.namespace):
        return
    if principal.user is None or not principal.can_write:
        require_write(session, principal, repo.namespace)  # raises with the Hub's words
    require_participant(session, principal, repo)


@dataclass
class CommitOutcome:
    result: CommitResult
    pull: Discussion | None  # the PR opened or pushed to


def commit(
    hub: Hub, session: Session, principal: Principal, *, repo: Repo, revision: str, body: IO[bytes], create_pr: bool
) -> CommitOutcome:
    """Apply an NDJSON commit to a branch, to a new pull request against it (``create_pr``), or to a PR's ref.

    Raises what ``require_push``, ``repos.commits.prepare_commit`` and ``apply_commit`` raise; a ``create_pr``
    against a missing branch or a commit id is a ``RevisionNotFoundError``.
    """
    return land(
        hub, session, principal, repo=repo, revision=revision, create_pr=create_pr,
        prepare=lambda: prepare_commit(hub, session, principal, repo=repo, body=body),
    )  # fmt: skip


def land(
    hub: Hub,
    session: Session,
    principal: Principal,
    *,
    repo: Repo,
    revision: str,
    create_pr: bool,
    prepare: Callable[[], PreparedCommit],
) -> CommitOutcome:
    """``commit`` for any source of a prepared commit (the API's NDJSON body, the web pages' files): checks
    ``require_push``, then calls ``prepare`` and lands it on the branch, a new PR or a PR's ref."""
    pull = require_push(session, principal, repo, revision=revision, create_pr=create_pr)
    git = open_git(hub, repo)
    if create_pr:
        base_ref = _base_branch(git, revision)
        prepared = prepare()
        base_head = git.branch_head(base_ref)
        if prepared.request.parent_commit:  # the client asks for a PR from this commit
            try:
                base_head = git.resolve(prepared.request.parent_commit).id
            except RevisionNotFoundError as exc:
                raise RevisionNotFoundError(f"Invalid parentCommit {prepared.request.parent_commit}") from exc
        assert base_head is not None
        num = next_number(session, repo)
        result = apply_commit(hub, session, repo=repo, prepared=prepared, ref=pr_ref(num), new_ref_from=base_head)
        pull = create_thread(
            session,
            principal,
            repo,
            title=prepared.request.summary.strip() or "Upload files",
            description=prepared.request.description,
            is_pull_request=True,
            base_ref=base_ref,
            num=num,
        )
        _record_commit(session, principal, pull, result, prepared.request.summary)
        _announce_refs(session, principal, repo, result, created=True)
        return CommitOutcome(result=result, pull=pull)
    ref = commit_ref(git, revision)
    prepared = prepare()
    result = apply_commit(hub, session, repo=repo, prepared=prepared, ref=ref)
    if pull is not None:
        _record_commit(session, principal, pull, result, prepared.request.summary)
        if pull.status == "draft":
            pull.status = "open"
            add_event(session, pull, type="status-change", author=principal.user, data={"status": "open"})
        announce(session, repo, pull, "update", principal)
    _announce_refs(session, principal, repo, result, created=False)
    return CommitOutcome(result=result, pull=pull)


def _base_branch(git: GitRepo, revision: str) -> str:
    """The branch a new PR targets: it must exist and be a branch (a commit id, tag or PR is refused)."""
    if revision.startswith(PR_PREFIX) or (revision.startswith("refs/") and not revision.startswith("refs/heads/")):
        raise RevisionNotFoundError(f"Invalid rev id: {revision} (a pull request targets a branch)")
    ref = revision if revision.startswith("refs/heads/") else f"refs/heads/{revision}"
    if git.branch_head(ref) is None:
        raise RevisionNotFoundError(f"Invalid rev id: {revision} (no such branch to open a pull request against)")
    return ref


def _record_commit(
    session: Session, principal: Principal, pull: Discussion, result: CommitResult, summary: str
) -> None:
    subject = summary.strip().splitlines()[0] if summary.strip() else "Upload files"
    add_event(session, pull, type="commit", author=principal.user, data={"subject": subject, "oid": result.commit_oid})


def _announce_refs(session: Session, principal: Principal, repo: Repo, result: CommitResult, *, created: bool) -> None:
    announce_ref(session, repo, principal, result.branch, old=None if created else result.parent, new=result.commit_oid)


def open_draft(
    hub: Hub, session: Session, principal: Principal, repo: Repo, *, title: object, description: object
) -> Discussion:
    """Open a draft pull request against main: ``refs/pr/N`` points at main's head until the first push."""
    require_participant(session, principal, repo)
    git = open_git(hub, repo)
    base_ref = "refs/heads/main"
    head = git.branch_head(base_ref)
    if head is None:
        raise BadRequestError("This repository has no main branch to open a pull request against")
    num = next_number(session, repo)
    with repo_write_lock(git_dir(hub, repo)):
        GitRepo(git.path).update_ref(pr_ref(num), head, message="pull request: draft")
    return create_thread(
        session,
        principal,
        repo,
        title=title,
        description=description,
        is_pull_request=True,
        status="draft",
        base_ref=base_ref,
        num=num,
    )


# --- comparing and merging ----------------------------------------------------------------------------------


@dataclass
class MergePlan:
    base_head: pygit2.Oid
    pr_head: pygit2.Oid
    fast_forward: bool
    up_to_date: bool  # the base already holds every commit of the PR
    conflicts: list[str]
    tree: pygit2.Oid | None  # the merged tree of a non-fast-forward merge


def plan_merge(git: GitRepo, pull: Discussion) -> MergePlan:
    base_ref = pull.base_ref or "refs/heads/main"
    base_head = git.branch_head(base_ref)
    if base_head is None:
        raise RevisionNotFoundError(f"The base branch {base_ref} of pull request #{pull.num} no longer exists")
    pr_head = git.branch_head(pr_ref(pull.num))
    if pr_head is None:
        raise RevisionNotFoundError(f"The ref {pr_ref(pull.num)} of pull request #{pull.num} is missing")
    repo = git.repo
    if pr_head == base_head or repo.descendant_of(base_head, pr_head):
        return MergePlan(base_head, pr_head, fast_forward=False, up_to_date=True, conflicts=[], tree=None)
    if repo.descendant_of(pr_head, base_head):
        return MergePlan(base_head, pr_head, fast_forward=True, up_to_date=False, conflicts=[], tree=None)
    index = repo.merge_commits(base_head, pr_head)
    if index.conflicts is not None:
        paths = sorted({entry.path for triple in index.conflicts for entry in triple if entry is not None})
        return MergePlan(base_head, pr_head, fast_forward=False, up_to_date=False, conflicts=paths, tree=None)
    return MergePlan(
        base_head, pr_head, fast_forward=False, up_to_date=False, conflicts=[], tree=index.write_tree(repo)
    )


def conflicting_files(git: GitRepo, pull: Discussion) -> list[str]:
    """Files that stop an open pull request from merging into its base (empty when it can merge)."""
    if not pull.is_pull_request or pull.status not in ("open", "draft"):
        return []
    try:
        return plan_merge(git, pull).conflicts
    except RevisionNotFoundError:
        return []


def pull_commits(session: Session, git: GitRepo, pull: Discussion) -> list[pygit2.Commit]:
    """The commits pushed to the PR (its ``commit`` events), newest first."""
    oids = [e.data.get("oid") for e in events_of(session, pull) if e.type == "commit"]
    found = []
    for oid in reversed(oids):
        try:
            found.append(git.resolve(str(oid)))
        except RevisionNotFoundError:
            continue
    return found


def pull_range(session: Session, git: GitRepo, pull: Discussion) -> tuple[pygit2.Oid, pygit2.Oid] | None:
    """The commits a PR's changes lie between (start, head): where it meets its base (open PRs), or the parent of
    its first commit (merged or closed ones); None when its ref is gone."""
    pr_head = git.branch_head(pr_ref(pull.num))
    if pr_head is None:
        return None
    start: pygit2.Oid | None = None
    base_head = git.branch_head(pull.base_ref or "refs/heads/main")
    if pull.status in ("open", "draft") and base_head is not None:
        start = git.repo.merge_base(base_head, pr_head)
    if start is None:
        commits = pull_commits(session, git, pull)
        first = commits[-1] if commits else None
        start = first.parents[0].id if first is not None and first.parents else pr_head
    return start, pr_head


def pull_diff(session: Session, git: GitRepo, pull: Discussion) -> str:
    """The PR's changes as a unified diff: against where it meets its base (open PRs), or against the parent of
    its first commit (merged or closed ones). Bounded: a diff past ``MAX_DIFF_CHARS`` is cut, with a note."""
    span = pull_range(session, git, pull)
    if span is None:
        return ""
    start, pr_head = span
    patch = git.repo.diff(git.commit(start), git.commit(pr_head)).patch or ""
    if len(patch) > MAX_DIFF_CHARS:
        patch = patch[:MAX_DIFF_CHARS] + f"\n... (diff cut at {MAX_DIFF_CHARS} characters)\n"
    return patch


def merge(
    hub: Hub, session: Session, principal: Principal, repo: Repo, pull: Discussion, *, comment: object = None
) -> Discussion:
    """Merge an open pull request into its base branch (writers only).

    Raises:
        BadRequestError: not a PR, or closed, merged, or a draft with no changes.
        ConflictError: files conflict (named in the message), or the base moved during the merge.
    """
    require_writer(session, principal, repo, "merge pull requests")
    reconcile_repo(hub, session, repo)
    if not pull.is_pull_request:
        raise BadRequestError(f"Discussion #{pull.num} is not a pull request")
    if pull.status == "merged":
        raise BadRequestError(f"Pull request #{pull.num} is already merged")
    if pull.status == "closed":
        raise BadRequestError(f"Pull request #{pull.num} is closed; reopen it before merging")
    if pull.status == "draft":
        raise BadRequestError(f"Pull request #{pull.num} is a draft with no changes yet; push a commit to it first")
    git = open_git(hub, repo)
    plan = plan_merge(git, pull)
    if plan.conflicts:
        raise ConflictError(
            f"Pull request #{pull.num} cannot be merged: these files conflict with {pull.base_ref}: "
            + ", ".join(plan.conflicts[:20])
            + (f" and {len(plan.conflicts) - 20} more" if len(plan.conflicts) > 20 else "")
            + ". Update the pull request so that it merges cleanly."
        )
    if plan.up_to_date:
        new_head = plan.base_head
    elif plan.fast_forward:
        new_head = plan.pr_head
    else:
        assert plan.tree is not None
        new_head = git.write_commit(
            tree=plan.tree,
            parents=[plan.base_head, plan.pr_head],
            author=author_for(hub, principal),
            message=f"Merge {pr_ref(pull.num)}: {pull.title}\n",
        )
    base_ref = pull.base_ref or "refs/heads/main"
    # 1. the plan is durable before the branch moves
    pull.pending_merge = str(new_head)
    session.commit()
    # 2. move the branch, if it is still where the plan started
    with repo_write_lock(git_dir(hub, repo)):
        fresh = GitRepo(git.path)
        if fresh.branch_head(base_ref) != plan.base_head:
            moved = True
        else:
            moved = False
            if new_head != plan.base_head:
                fresh.update_ref(base_ref, new_head, message=f"merge: pull request #{pull.num}")
    if moved:
        pull.pending_merge = None
        session.commit()
        raise ConflictError(f"{base_ref} moved while pull request #{pull.num} was merging; try again")
    # 3. the PR follows the branch
    if isinstance(comment, str) and comment.strip():
        assert principal.user is not None
        add_comment(session, pull, principal.user, comment)
    _mark_merged(hub, session, repo, pull, str(new_head), principal)
    audit.record(session, actor=principal, action="pull.merge", namespace=repo.namespace,
                 target=f"{repo.repo_id}#{pull.num}",
                 detail={"repoType": repo.repo_type, "title": pull.title[:200], "commit": str(new_head)})  # fmt: skip
    if new_head != plan.base_head:
        announce_ref(session, repo, principal, base_ref, old=str(plan.base_head), new=str(new_head))
    return pull


def _mark_merged(
    hub: Hub, session: Session, repo: Repo, pull: Discussion, head: str, principal: Principal | None
) -> None:
    pull.status = "merged"
    pull.merge_commit = head
    pull.pending_merge = None
    add_event(
        session, pull, type="status-change", author=principal.user if principal else None, data={"status": "merged"}
    )
    if (pull.base_ref or "refs/heads/main") == "refs/heads/main":
        git = open_git(hub, repo)
        on_main_moved(session, git, repo, git.commit(pygit2.Oid(hex=head)))
    announce(session, repo, pull, "update", principal)
    session.flush()


def reconcile_repo(hub: Hub, session: Session, repo: Repo) -> int:
    """Finish or drop merges a dead process left half-done in ``repo`` (see the module's docstring)."""
    pending = list(
        session.scalars(select(Discussion).where(Discussion.repo_pk == repo.pk, Discussion.pending_merge.is_not(None)))
    )
    if not pending:
        return 0
    git = open_git(hub, repo)
    for pull in pending:
        planned = pygit2.Oid(hex=pull.pending_merge or "")
        head = git.branch_head(pull.base_ref or "refs/heads/main")
        if head is not None and (head == planned or git.repo.descendant_of(head, planned)):
            log.warning("pull request #%d of %s: the branch holds its merge; marking it merged", pull.num, repo.repo_id)
            _mark_merged(hub, session, repo, pull, str(planned), None)
        else:
            log.warning("pull request #%d of %s: a merge did not finish; dropping it", pull.num, repo.repo_id)
            pull.pending_merge = None
    session.flush()
    return len(pending)


def reconcile_pending_merges(hub: Hub) -> int:
    """At start: settle every merge a killed process left between its plan and its end."""
    done = 0
    with hub.db.session() as session:
        repo_pks = set(session.scalars(select(Discussion.repo_pk).where(Discussion.pending_merge.is_not(None))))
        for repo_pk in repo_pks:
            repo = session.get(Repo, repo_pk)
            if repo is not None:
                done += reconcile_repo(hub, session, repo)
    return done


def get_pull(session: Session, repo: Repo, num: int) -> Discussion:
    pull = get_discussion(session, repo, num)
    if not pull.is_pull_request:
        raise BadRequestError(f"Discussion #{num} is not a pull request")
    return pull

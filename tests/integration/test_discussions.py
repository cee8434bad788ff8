"""Pull requests and discussions through the unchanged huggingface_hub client (the newest, in this venv):
two users working one PR to merge, every community call, conflicts, permissions, hostile input.
Old clients, the CLI and the libraries are in test_pr_clients.py, a merge killed halfway in test_crash_merge.py; the pages in tests/browser/test_community.py."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.community import DiscussionComment, DiscussionCommit, DiscussionStatusChange
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

from support import Account, LiveServer


def _api(server: LiveServer, account: Account) -> HfApi:
    return HfApi(endpoint=server.url, token=account.write_token)


def _repo(server: LiveServer, owner: Account, name: str = "pr") -> str:
    repo_id = f"{owner.name}/{server.unique(name)}"
    api = _api(server, owner)
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"line one\nline two\n", path_in_repo="notes.txt", repo_id=repo_id)
    return repo_id


def test_contributor_without_write_access_opens_a_pr_and_the_owner_merges_it(server: LiveServer) -> None:
    """The common path: a reader opens a PR with create_pr=True (inline and LFS files), pushes a second commit
    to refs/pr/N, comments; the owner reads the diff, merges; main moves, the PR is merged with its merge
    commit, its ref survives, and the index follows the new head."""
    owner, contributor = server.account("owner"), server.account("contrib")
    repo_id = _repo(server, owner)
    api, theirs = _api(server, owner), _api(server, contributor)

    with pytest.raises(HfHubHTTPError) as refused:  # a reader never pushes to a branch
        theirs.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert refused.value.response.status_code == 403

    weights = bytes(range(256)) * 200  # binary: goes through LFS
    info = theirs.create_commit(
        repo_id,
        [
            CommitOperationAdd("README.md", b"---\nlicense: mit\ntags: [from-pr]\n---\n# Card from a PR\n"),
            CommitOperationAdd("model.bin", weights),
        ],
        commit_message="Add a card and weights",
        commit_description="Please merge this.",
        create_pr=True,
    )
    assert info.pr_url is not None and info.pr_url.startswith(f"{server.url}/{repo_id}/discussions/")
    num = info.pr_num
    assert info.pr_revision == f"refs/pr/{num}"
    assert api.list_repo_files(repo_id) == [".gitattributes", "notes.txt"]  # main is untouched
    assert "model.bin" in api.list_repo_files(repo_id, revision=info.pr_revision)

    second = theirs.upload_file(
        path_or_fileobj=b"line one\nline two\nline three\n",
        path_in_repo="notes.txt",
        repo_id=repo_id,
        revision=info.pr_revision,
        commit_message="Extend the notes",
    )
    theirs.comment_discussion(repo_id, num, "I also extended the **notes**.")

    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    assert [r.ref for r in refs.pull_requests] == [f"refs/pr/{num}"]
    assert refs.pull_requests[0].target_commit == second.oid

    details = api.get_discussion_details(repo_id, num)
    assert details.is_pull_request and details.status == "open" and details.author == contributor.name
    assert details.title == "Add a card and weights" and details.target_branch == "refs/heads/main"
    assert details.conflicting_files == [] and details.merge_commit_oid is None
    kinds = [type(e) for e in details.events]
    assert kinds == [DiscussionComment, DiscussionCommit, DiscussionCommit, DiscussionComment]
    first_comment = details.events[0]
    assert isinstance(first_comment, DiscussionComment) and first_comment.content == "Please merge this."
    last = details.events[-1]
    assert isinstance(last, DiscussionComment) and "<strong>notes</strong>" in last.rendered
    assert details.diff is not None and "+line three" in details.diff and "README.md" in details.diff

    with pytest.raises(HfHubHTTPError) as not_theirs:  # merging is for writers
        theirs.merge_pull_request(repo_id, num)
    assert not_theirs.value.response.status_code == 403

    api.merge_pull_request(repo_id, num, comment="Thanks!")
    merged = api.get_discussion_details(repo_id, num)
    assert merged.status == "merged"
    head = api.repo_info(repo_id).sha
    assert merged.merge_commit_oid == head == second.oid  # main had not moved: a fast-forward
    assert isinstance(merged.events[-1], DiscussionStatusChange) and merged.events[-1].new_status == "merged"
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "README.md", "model.bin", "notes.txt"]
    assert "from-pr" in (api.model_info(repo_id).tags or [])  # the index followed main
    path = api.hf_hub_download(repo_id, "model.bin", revision=f"refs/pr/{num}", cache_dir=str(server.data_dir / "c"))
    assert open(path, "rb").read() == weights  # the PR's ref survives merging
    with pytest.raises(HfHubHTTPError) as again:
        api.merge_pull_request(repo_id, num)
    assert again.value.response.status_code == 400 and "already merged" in again.value.response.text


def test_merge_writes_a_merge_commit_when_main_moved_and_refuses_conflicts(server: LiveServer) -> None:
    """Non-fast-forward: main moved on another file, the merge is a commit with two parents. A PR whose file
    conflicts with main lists it in filesWithConflicts and its merge is refused in words (409)."""
    owner = server.account("owner")
    repo_id = _repo(server, owner)
    api = _api(server, owner)
    clean = api.upload_file(
        path_or_fileobj=b"new file\n", path_in_repo="other.txt", repo_id=repo_id, create_pr=True
    )
    clashing = api.upload_file(
        path_or_fileobj=b"line one\nchanged in the PR\n", path_in_repo="notes.txt", repo_id=repo_id, create_pr=True
    )
    api.upload_file(path_or_fileobj=b"line one\nchanged on main\n", path_in_repo="notes.txt", repo_id=repo_id)

    details = api.get_discussion_details(repo_id, clashing.pr_num)
    assert details.conflicting_files == ["notes.txt"]
    with pytest.raises(HfHubHTTPError) as conflict:
        api.merge_pull_request(repo_id, clashing.pr_num)
    assert conflict.value.response.status_code == 409 and "notes.txt" in conflict.value.response.text
    assert api.get_discussion_details(repo_id, clashing.pr_num).status == "open"

    before = api.repo_info(repo_id).sha
    api.merge_pull_request(repo_id, clean.pr_num)
    after = api.repo_info(repo_id).sha
    merge_commit = api.list_repo_commits(repo_id)[0]
    assert after != before and merge_commit.commit_id == after
    assert api.get_discussion_details(repo_id, clean.pr_num).merge_commit_oid == after
    assert set(api.list_repo_files(repo_id)) == {".gitattributes", "notes.txt", "other.txt"}
    r = httpx.get(f"{server.url}/api/models/{repo_id}/commits/main", headers={"authorization": f"Bearer {owner.write_token}"})
    assert r.status_code == 200


def test_every_community_call_of_the_client(server: LiveServer) -> None:
    """Discussions: create, list with filters and paging, details with events, comment, edit (history kept),
    hide (content erased), rename, close and reopen; a draft PR from create_pull_request becomes open on its
    first push."""
    owner, guest = server.account("owner"), server.account("guest")
    repo_id = _repo(server, owner)
    api, theirs = _api(server, owner), _api(server, guest)

    d = theirs.create_discussion(repo_id, "A question", description="Is this **finished**?")
    assert d.status == "open" and not d.is_pull_request and d.num == 1 and d.author == guest.name
    comment = api.comment_discussion(repo_id, d.num, "Not yet.")
    assert comment.content == "Not yet." and comment.author == owner.name

    edited = api.edit_discussion_comment(repo_id, d.num, comment.id, "Not yet, soon.")
    assert edited.edited and edited.content == "Not yet, soon." and edited.number_of_edits == 1
    with pytest.raises(HfHubHTTPError) as forbidden:  # someone else's comment
        theirs.edit_discussion_comment(repo_id, d.num, comment.id, "hijacked")
    assert forbidden.value.response.status_code == 403

    renamed = theirs.rename_discussion(repo_id, d.num, "A better question")
    assert (renamed.old_title, renamed.new_title) == ("A question", "A better question")
    closed = theirs.change_discussion_status(repo_id, d.num, "closed", comment="Answered, thanks")
    assert closed.new_status == "closed"
    assert api.change_discussion_status(repo_id, d.num, "open").new_status == "open"

    spam = theirs.comment_discussion(repo_id, d.num, "buy things at example.com")
    with pytest.raises(HfHubHTTPError):
        theirs.hide_discussion_comment(repo_id, d.num, spam.id)  # hiding is for writers
    hidden = api.hide_discussion_comment(repo_id, d.num, spam.id)
    assert hidden.hidden and "example.com" not in hidden.content
    details = api.get_discussion_details(repo_id, d.num)
    assert "example.com" not in str(details.events[-1]._event)

    draft = theirs.create_pull_request(repo_id, "Draft work")
    assert draft.is_pull_request and draft.status == "draft" and draft.git_reference == f"refs/pr/{draft.num}"
    assert draft.num == d.num + 1  # one sequence for discussions and PRs
    theirs.upload_file(path_or_fileobj=b"draft\n", path_in_repo="d.txt", repo_id=repo_id, revision=draft.git_reference)
    assert api.get_discussion_details(repo_id, draft.num).status == "open"

    for i in range(3):
        theirs.create_discussion(repo_id, f"extra {i}")
    everything = list(api.get_repo_discussions(repo_id))
    assert [x.num for x in everything] == sorted((x.num for x in everything), reverse=True)
    assert len(everything) == 5
    assert [x.num for x in api.get_repo_discussions(repo_id, discussion_type="pull_request")] == [draft.num]
    assert len(list(api.get_repo_discussions(repo_id, author=owner.name))) == 0
    assert len(list(api.get_repo_discussions(repo_id, author=guest.name))) == 5
    api.change_discussion_status(repo_id, 4, "closed")
    assert 4 not in [x.num for x in api.get_repo_discussions(repo_id, discussion_status="open")]
    assert [x.num for x in api.get_repo_discussions(repo_id, discussion_status="closed")] == [4]


def test_paging_walks_every_discussion(server: LiveServer) -> None:
    """The client pages with p=0,1,... until start + len >= count (50 a page)."""
    owner = server.account("owner")
    repo_id = _repo(server, owner)
    api = _api(server, owner)
    headers = {"authorization": f"Bearer {owner.write_token}"}
    for i in range(53):
        r = httpx.post(f"{server.url}/api/models/{repo_id}/discussions", json={"title": f"t{i}"}, headers=headers)
        assert r.status_code == 200, r.text
    page = httpx.get(f"{server.url}/api/models/{repo_id}/discussions", params={"p": 1}).json()
    assert page["count"] == 53 and page["start"] == 50 and len(page["discussions"]) == 3
    assert len(list(api.get_repo_discussions(repo_id))) == 53


def test_permissions_private_repos_and_disabled_discussions(server: LiveServer) -> None:
    """Private repos' discussions are as invisible as their files; anonymous and read-token callers cannot
    write; an admin can turn discussions off (existing threads stay readable, nothing new opens); a PR against
    a missing branch or a commit id is a RevisionNotFound; nobody pushes to someone else's PR."""
    owner, guest, other = server.account("owner"), server.account("guest"), server.account("other")
    repo_id = _repo(server, owner)
    api, theirs = _api(server, owner), _api(server, guest)
    base = f"{server.url}/api/models/{repo_id}/discussions"

    assert httpx.post(base, json={"title": "anon"}).status_code == 401
    r = httpx.post(base, json={"title": "read"}, headers={"authorization": f"Bearer {guest.read_token}"})
    assert r.status_code == 403

    pr = theirs.upload_file(path_or_fileobj=b"mine\n", path_in_repo="g.txt", repo_id=repo_id, create_pr=True)
    with pytest.raises(HfHubHTTPError) as not_yours:
        _api(server, other).upload_file(
            path_or_fileobj=b"theirs\n", path_in_repo="o.txt", repo_id=repo_id, revision=f"refs/pr/{pr.pr_num}"
        )
    assert not_yours.value.response.status_code == 403
    with pytest.raises(RevisionNotFoundError):
        theirs.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, revision="nope", create_pr=True)
    head = api.repo_info(repo_id).sha
    r = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/{head}?create_pr=1",
        content=b'{"key":"header","value":{"summary":"s"}}\n{"key":"file","value":{"path":"a","content":"YQ=="}}\n',
        headers={"authorization": f"Bearer {guest.write_token}", "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"
    theirs.change_discussion_status(repo_id, pr.pr_num, "closed")
    with pytest.raises(HfHubHTTPError) as closed_pr:  # a closed PR takes no pushes
        theirs.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, revision=f"refs/pr/{pr.pr_num}")
    assert closed_pr.value.response.status_code == 403

    api.update_repo_settings(repo_id, private=True)
    for url in (base, f"{base}/{pr.pr_num}"):
        r = httpx.get(url, headers={"authorization": f"Bearer {guest.write_token}"})
        assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    assert httpx.post(f"{base}/{pr.pr_num}/comment", json={"comment": "hi"}).status_code == 404
    api.update_repo_settings(repo_id, private=False)

    r = httpx.put(
        f"{server.url}/api/models/{repo_id}/settings",
        json={"discussionsDisabled": True},
        headers={"authorization": f"Bearer {owner.write_token}"},
    )
    assert r.status_code == 200 and r.json()["discussionsDisabled"] is True
    with pytest.raises(HfHubHTTPError) as disabled:
        theirs.create_discussion(repo_id, "closed for business")
    assert disabled.value.response.status_code == 403 and "disabled" in disabled.value.response.text
    with pytest.raises(HfHubHTTPError):
        theirs.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, create_pr=True)
    assert [d.num for d in api.get_repo_discussions(repo_id)] == [pr.pr_num]


def test_bad_input_is_a_clear_4xx_and_changes_nothing(server: LiveServer) -> None:
    """Missing discussion, empty or huge titles and comments, a bad status, merging a discussion, a hostile
    comment rendered without scripts, event handlers or javascript: links."""
    owner = server.account("owner")
    repo_id = _repo(server, owner)
    api = _api(server, owner)
    headers = {"authorization": f"Bearer {owner.write_token}"}
    base = f"{server.url}/api/models/{repo_id}/discussions"
    assert httpx.get(f"{base}/99").status_code == 404
    assert httpx.get(f"{base}/abc").status_code == 404
    assert httpx.post(f"{base}/99/comment", json={"comment": "hi"}, headers=headers).status_code == 404
    assert httpx.post(base, json={"title": "  "}, headers=headers).status_code == 400
    assert httpx.post(base, json={"title": "t" * 300}, headers=headers).status_code == 400
    assert httpx.post(base, json=["not", "an", "object"], headers=headers).status_code == 400
    d = api.create_discussion(repo_id, "hostile")
    assert httpx.post(f"{base}/{d.num}/comment", json={"comment": ""}, headers=headers).status_code == 400
    big = {"comment": "x" * 70000}
    assert httpx.post(f"{base}/{d.num}/comment", json=big, headers=headers).status_code == 400
    assert httpx.post(f"{base}/{d.num}/status", json={"status": "merged"}, headers=headers).status_code == 400
    assert httpx.post(f"{base}/{d.num}/merge", headers=headers).status_code == 400
    hostile = (
        '<script>alert(1)</script><img src=x onerror="alert(2)"> [click](javascript:alert(3)) '
        '<a href="javascript:alert(4)">x</a>'
    )
    event = api.comment_discussion(repo_id, d.num, hostile)
    html = event.rendered.lower()
    assert "<script" not in html and "onerror" not in html and "href=\"javascript" not in html
    after = api.get_discussion_details(repo_id, d.num)
    assert len(after.events) == 2  # the client's default description and the comment: refused calls wrote nothing
    with pytest.raises(HfHubHTTPError):
        api.create_commit(
            repo_id, [CommitOperationDelete("missing.txt")], commit_message="x", create_pr=True
        )
    assert [x.num for x in api.get_repo_discussions(repo_id)] == [d.num]  # no PR from a failed commit


def test_a_gated_repo_shows_threads_but_a_pr_diff_only_to_those_with_file_access(server: LiveServer) -> None:
    """The thread and its events are public as on the Hub; the diff is file content, so it follows the gate."""
    owner, stranger = server.account("owner"), server.account("stranger")
    repo_id = _repo(server, owner)
    api = _api(server, owner)
    pr = api.upload_file(path_or_fileobj=b"secret weights\n", path_in_repo="s.txt", repo_id=repo_id, create_pr=True)
    api.update_repo_settings(repo_id, gated="manual")
    theirs = _api(server, stranger).get_discussion_details(repo_id, pr.pr_num)
    assert theirs.is_pull_request and theirs.diff is None
    mine = api.get_discussion_details(repo_id, pr.pr_num)
    assert mine.diff is not None and "+secret weights" in mine.diff

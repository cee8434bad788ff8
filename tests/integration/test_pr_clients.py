"""Pull requests and discussions through the clients people use, beyond the newest ``HfApi`` (which
test_discussions.py covers): the oldest (0.30.2) and a 1.x (1.33.0) ``huggingface_hub`` in their own venvs (no
hf_xet, so weights go over the LFS batch API), the ``hf upload --create-pr`` CLI, ``metadata_update(create_pr=True)``,
transformers' and datasets' ``push_to_hub(create_pr=True)``, and PRs on dataset and space repos.

Each client step runs in a fresh process against the live session server (SQLite and PostgreSQL).
"""

from __future__ import annotations

import pytest

from client_venvs import client_python
from support import LiveServer, last_json, run_client

pytestmark = pytest.mark.slow

VERSIONS = ["0.30.2", "1.33.0"]

# The whole contributor flow, for a client of any generation: two users (the owner, and a contributor with
# read access only), every community call, an LFS file in a PR, a push to refs/pr/N, refs and downloads.
OLD_CLIENT_SCRIPT = """
import importlib.util, json
import huggingface_hub
from huggingface_hub import HfApi, hf_hub_download, CommitOperationAdd
assert huggingface_hub.__version__ == {version!r}, huggingface_hub.__version__
assert importlib.util.find_spec("hf_xet") is None

def outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as exc:
        response = getattr(exc, "response", None)
        return [type(exc).__name__, getattr(response, "status_code", None)]

owner, contrib = HfApi(token={owner_token!r}), HfApi(token={contrib_token!r})
repo = {repo!r}
out = {{}}
owner.create_repo(repo)
owner.upload_file(path_or_fileobj=b"line one\\n", path_in_repo="notes.txt", repo_id=repo)

# --- a discussion: create, comment, edit, hide, rename, close, reopen, details
d = contrib.create_discussion(repo, "A question", description="Is this **finished**?")
out["discussion"] = [d.num, d.status, d.is_pull_request, d.author, d.title]
c = owner.comment_discussion(repo, d.num, "Not yet.")
out["comment"] = [c.content, c.author]
e = owner.edit_discussion_comment(repo, d.num, c.id, "Not yet, soon.")
out["edited"] = [e.edited, e.content, e.number_of_edits]
out["edit_someone_elses"] = outcome(lambda: contrib.edit_discussion_comment(repo, d.num, c.id, "hijacked"))
spam = contrib.comment_discussion(repo, d.num, "buy things at example.com")
out["hide_by_reader"] = outcome(lambda: contrib.hide_discussion_comment(repo, d.num, spam.id))
h = owner.hide_discussion_comment(repo, d.num, spam.id)
out["hidden"] = [h.hidden, "example.com" in h.content]
r = contrib.rename_discussion(repo, d.num, "A better question")
out["renamed"] = [r.old_title, r.new_title]
out["closed"] = contrib.change_discussion_status(repo, d.num, "closed", comment="Answered").new_status
out["reopened"] = owner.change_discussion_status(repo, d.num, "open").new_status
details = owner.get_discussion_details(repo, d.num)
out["details"] = [details.title, details.status, details.is_pull_request,
                  [type(ev).__name__ for ev in details.events]]
out["rendered"] = details.events[0].rendered

# --- a draft PR, then a PR from create_commit(create_pr=True) with an LFS file, by the read-only contributor
draft = contrib.create_pull_request(repo, "Draft work", description="wip")
out["draft"] = [draft.num, draft.status, draft.is_pull_request, draft.git_reference]
big = bytes(range(256)) * 4096
card = b"---\\nlicense: mit\\ntags: [from-pr]\\n---\\n# Card from a PR\\n"
info = contrib.create_commit(repo, [CommitOperationAdd("model.bin", big), CommitOperationAdd("README.md", card)],
                             commit_message="Add weights", commit_description="Please merge.", create_pr=True)
out["pr"] = [info.pr_url, info.pr_num, info.pr_revision]
out["main_untouched"] = sorted(owner.list_repo_files(repo))
tree = {{x.path: x for x in owner.list_repo_tree(repo, revision=info.pr_revision)}}
lfs = getattr(tree["model.bin"], "lfs", None)
out["lfs"] = [lfs is not None, getattr(lfs, "size", None)]
second = contrib.upload_file(path_or_fileobj=b"line one\\nline two\\n", path_in_repo="notes.txt", repo_id=repo,
                             revision=info.pr_revision, commit_message="Extend the notes")
out["second"] = second.oid
contrib.upload_file(path_or_fileobj=b"draft\\n", path_in_repo="draft.txt", repo_id=repo,
                    revision=draft.git_reference, commit_message="First draft push")
out["draft_after_push"] = owner.get_discussion_details(repo, draft.num).status
out["push_to_main"] = outcome(lambda: contrib.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo))
out["push_to_others_pr"] = outcome(lambda: HfApi(token={other_token!r}).upload_file(
    path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, revision=info.pr_revision))

refs = owner.list_repo_refs(repo, include_pull_requests=True)
out["pr_refs"] = sorted([x.ref, x.target_commit] for x in refs.pull_requests)
out["branches"] = [x.ref for x in refs.branches]
out["no_pr_refs"] = owner.list_repo_refs(repo).pull_requests
path = hf_hub_download(repo, "model.bin", revision=info.pr_revision, token={contrib_token!r})
out["download_ok"] = open(path, "rb").read() == big
out["pr_files"] = sorted(owner.list_repo_files(repo, revision=info.pr_revision))

# --- listing with filters
out["all"] = [x.num for x in owner.get_repo_discussions(repo)]
out["prs"] = [x.num for x in owner.get_repo_discussions(repo, discussion_type="pull_request")]
out["discussions"] = [x.num for x in owner.get_repo_discussions(repo, discussion_type="discussion")]
out["by_contrib"] = [x.num for x in owner.get_repo_discussions(repo, author={contrib_name!r})]
out["by_owner"] = [x.num for x in owner.get_repo_discussions(repo, author={owner_name!r})]
owner.change_discussion_status(repo, draft.num, "closed")
out["closed_list"] = [x.num for x in owner.get_repo_discussions(repo, discussion_status="closed")]
out["open_list"] = [x.num for x in owner.get_repo_discussions(repo, discussion_status="open")]

# --- merge
out["merge_by_reader"] = outcome(lambda: contrib.merge_pull_request(repo, info.pr_num))
out["merge_closed"] = outcome(lambda: owner.merge_pull_request(repo, draft.num))
out["merge"] = owner.merge_pull_request(repo, info.pr_num, comment="Thanks!")
merged = owner.get_discussion_details(repo, info.pr_num)
out["merged"] = [merged.status, merged.merge_commit_oid, merged.conflicting_files, merged.target_branch,
                 "+line two" in (merged.diff or ""), [type(ev).__name__ for ev in merged.events]]
out["main_sha"] = owner.repo_info(repo).sha
out["main_files"] = sorted(owner.list_repo_files(repo))
out["tags"] = owner.model_info(repo).tags or []
out["ref_after_merge"] = sorted(x.ref for x in owner.list_repo_refs(repo, include_pull_requests=True).pull_requests)
print(json.dumps(out))
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_old_clients_work_a_pr_from_a_reader_to_merge(server: LiveServer, env_for, version: str) -> None:
    """0.30.2 and 1.33.0: every community call, a PR with an LFS file from create_commit(create_pr=True) by a user
    without write access (the LFS batch path: no hf_xet), a push to refs/pr/N, list_repo_refs with PRs,
    hf_hub_download from refs/pr/N, filters, merge; readers cannot push to main, another's PR, or merge."""
    python = client_python(version)
    owner, contrib, other = server.account("oown"), server.account("ocon"), server.account("ooth")
    repo = f"{owner.name}/{server.unique('oldpr')}"
    script = OLD_CLIENT_SCRIPT.format(
        version=version,
        owner_token=owner.write_token,
        contrib_token=contrib.write_token,
        other_token=other.write_token,
        owner_name=owner.name,
        contrib_name=contrib.name,
        repo=repo,
    )
    out = last_json(run_client(script, env_for(None), python=python))
    assert isinstance(out, dict)
    assert out["discussion"] == [1, "open", False, contrib.name, "A question"]
    assert out["comment"] == ["Not yet.", owner.name]
    assert out["edited"] == [True, "Not yet, soon.", 1]
    assert out["edit_someone_elses"] == ["HfHubHTTPError", 403]
    assert out["hide_by_reader"][1] == 403
    assert out["hidden"] == [True, False]
    assert out["renamed"] == ["A question", "A better question"]
    assert (out["closed"], out["reopened"]) == ("closed", "open")
    title, status, is_pr, events = out["details"]
    assert (title, status, is_pr) == ("A better question", "open", False)
    assert events[0] == "DiscussionComment" and "DiscussionTitleChange" in events
    assert events.count("DiscussionStatusChange") == 2
    assert "<strong>finished</strong>" in out["rendered"]

    assert out["draft"] == [2, "draft", True, "refs/pr/2"]
    pr_url, num, revision = out["pr"]
    assert pr_url == f"{server.url}/{repo}/discussions/3" and num == 3 and revision == "refs/pr/3"
    assert out["main_untouched"] == [".gitattributes", "notes.txt"]
    assert out["lfs"] == [True, 256 * 4096]
    assert out["draft_after_push"] == "open"
    assert out["push_to_main"][1] == 403
    assert out["push_to_others_pr"][1] == 403
    assert [r for r, _ in out["pr_refs"]] == ["refs/pr/2", "refs/pr/3"]
    assert dict(out["pr_refs"])["refs/pr/3"] == out["second"]
    assert out["branches"] == ["refs/heads/main"] and out["no_pr_refs"] in (None, [])
    assert out["download_ok"] is True
    assert out["pr_files"] == [".gitattributes", "README.md", "model.bin", "notes.txt"]

    assert out["all"] == [3, 2, 1]
    assert out["prs"] == [3, 2] and out["discussions"] == [1]
    assert out["by_contrib"] == [3, 2, 1] and out["by_owner"] == []
    assert out["closed_list"] == [2] and out["open_list"] == [3, 1]

    assert out["merge_by_reader"][1] == 403
    assert out["merge_closed"][1] == 400
    assert out["merge"] is None  # the client returns nothing
    status, merge_oid, conflicts, target, has_diff, events = out["merged"]
    assert (status, conflicts, target, has_diff) == ("merged", [], "refs/heads/main", True)
    assert merge_oid == out["main_sha"] == out["second"]  # main had not moved: a fast-forward
    assert events[-1] == "DiscussionStatusChange" and events.count("DiscussionCommit") == 2
    assert out["main_files"] == [".gitattributes", "README.md", "model.bin", "notes.txt"]
    assert "from-pr" in out["tags"]
    assert out["ref_after_merge"] == ["refs/pr/2", "refs/pr/3"]  # a PR's ref survives merging and closing

"""Pull requests and discussions through the clients people use, beyond the newest ``HfApi`` (which
test_discussions.py covers): the oldest (0.30.2) and a 1.x (1.33.0) ``huggingface_hub`` in their own venvs (no
hf_xet, so weights go over the LFS batch API), the ``hf upload --create-pr`` CLI, ``metadata_update(create_pr=True)``,
transformers' and datasets' ``push_to_hub(create_pr=True)``, and PRs on dataset and space repos.

Each client step runs in a fresh process against the live session server (SQLite and PostgreSQL).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from client_venvs import client_python
from support import Account, LiveServer, last_json, run_client

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


def _api(server: LiveServer, account: Account) -> HfApi:
    return HfApi(endpoint=server.url, token=account.write_token)


@pytest.mark.parametrize("repo_type", ["dataset", "space"])
def test_a_pr_on_a_dataset_or_space_repo_works_like_on_a_model(server: LiveServer, repo_type: str) -> None:
    """repo_type="dataset"/"space": a reader's PR (URL under /datasets/ or /spaces/), a push to refs/pr/N, its ref
    listed and downloadable, discussions listed, merge fast-forwards the repo's main."""
    owner, contrib = server.account("town"), server.account("tcon")
    api, theirs = _api(server, owner), _api(server, contrib)
    repo = f"{owner.name}/{server.unique(repo_type)}"
    api.create_repo(repo, repo_type=repo_type, space_sdk="static" if repo_type == "space" else None)
    api.upload_file(path_or_fileobj=b"base\n", path_in_repo="base.txt", repo_id=repo, repo_type=repo_type)
    info = theirs.upload_file(
        path_or_fileobj=b"<h1>from a PR</h1>\n", path_in_repo="index.html", repo_id=repo, repo_type=repo_type,
        create_pr=True, commit_message="Add a page",
    )  # fmt: skip
    num = info.pr_num
    assert num is not None and info.pr_url == f"{server.url}/{repo_type}s/{repo}/discussions/{num}"
    second = theirs.upload_file(
        path_or_fileobj=b"more\n", path_in_repo="more.txt", repo_id=repo, repo_type=repo_type,
        revision=info.pr_revision,
    )  # fmt: skip
    theirs.comment_discussion(repo, num, "Ready.", repo_type=repo_type)
    listed = list(api.get_repo_discussions(repo, repo_type=repo_type, discussion_type="pull_request"))
    assert [(d.num, d.author, d.status) for d in listed] == [(num, contrib.name, "open")]
    refs = api.list_repo_refs(repo, repo_type=repo_type, include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests or []] == [(info.pr_revision, second.oid)]
    assert sorted(api.list_repo_files(repo, repo_type=repo_type)) == [".gitattributes", "base.txt"]
    path = api.hf_hub_download(
        repo, "index.html", repo_type=repo_type, revision=info.pr_revision, cache_dir=str(server.data_dir / "c")
    )
    assert open(path, "rb").read() == b"<h1>from a PR</h1>\n"
    details = api.get_discussion_details(repo, num, repo_type=repo_type)
    assert details.diff is not None and "+<h1>from a PR</h1>" in details.diff
    api.merge_pull_request(repo, num, repo_type=repo_type)
    merged = api.get_discussion_details(repo, num, repo_type=repo_type)
    assert merged.status == "merged" and merged.merge_commit_oid == second.oid
    assert api.repo_info(repo, repo_type=repo_type).sha == second.oid
    assert sorted(api.list_repo_files(repo, repo_type=repo_type)) == [
        ".gitattributes", "base.txt", "index.html", "more.txt",
    ]  # fmt: skip


def test_hf_upload_create_pr_and_metadata_update_create_pr(server: LiveServer, env_for, tmp_path: Path) -> None:
    """The newest client's CLI, ``hf upload --create-pr``, by a reader opens a PR and prints its URL; then
    ``metadata_update(create_pr=True)`` (the eval-results path: the card is validated with validate-yaml, then a
    PR changes README.md's model-index) opens a second PR; main is untouched until the owner merges both."""
    owner, contrib = server.account("cown"), server.account("ccon")
    api = _api(server, owner)
    repo = f"{owner.name}/{server.unique('cli')}"
    api.create_repo(repo)
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n# A model\n", path_in_repo="README.md", repo_id=repo
    )
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "notes.txt").write_text("from the CLI\n")
    env = env_for(contrib.write_token)
    hf = str(Path(sys.executable).parent / "hf")
    up = subprocess.run(
        [hf, "upload", repo, str(folder), ".", "--create-pr", "--commit-message", "Upload from the CLI"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    cli_pr = api.get_discussion_details(repo, 1)
    assert cli_pr.is_pull_request and cli_pr.author == contrib.name and cli_pr.title == "Upload from the CLI"
    assert f"{server.url}/{repo}" in up.stdout
    assert sorted(api.list_repo_files(repo, revision="refs/pr/1")) == [
        ".gitattributes", "README.md", "notes.txt", "weights.bin",
    ]  # fmt: skip

    result = run_client(
        f"""
        import json
        from huggingface_hub import metadata_eval_result, metadata_update
        meta = metadata_eval_result(
            model_pretty_name="A model", task_pretty_name="Text Classification", task_id="text-classification",
            metrics_pretty_name="Accuracy", metrics_id="accuracy", metrics_value=0.875,
            dataset_pretty_name="Rows", dataset_id="{owner.name}/rows",
        )
        info = metadata_update("{repo}", meta, create_pr=True, commit_message="Add evaluation results")
        out = {{"pr_url": info.pr_url, "commit_url": str(info)}}
        try:
            metadata_update("{repo}", {{"license": "not-a-license"}}, create_pr=True, overwrite=True)
            out["invalid"] = "accepted"
        except Exception as exc:
            out["invalid"] = [type(exc).__name__, str(exc)[:300]]
        print(json.dumps(out))
        """,
        env,
    )
    out = last_json(result)
    assert isinstance(out, dict)
    assert out["pr_url"] == f"{server.url}/{repo}/discussions/2"  # upload_file's CommitInfo
    assert out["commit_url"].startswith(f"{server.url}/{repo}/commit/")
    assert out["invalid"][0] == "ValueError" and '"license" must be one of' in out["invalid"][1], out["invalid"]
    # validate-yaml refused it: the client uploaded nothing and opened no PR
    assert [d.num for d in api.get_repo_discussions(repo)] == [2, 1]
    eval_pr = api.get_discussion_details(repo, 2)
    assert eval_pr.diff is not None and "model-index" in eval_pr.diff and "+++ b/README.md" in eval_pr.diff
    card = api.model_info(repo).card_data
    assert card is not None and card.get("model-index") is None  # main untouched so far
    api.merge_pull_request(repo, 2)
    api.merge_pull_request(repo, 1)
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "README.md", "notes.txt", "weights.bin"]
    info = api.model_info(repo)
    results = info.card_data.eval_results if info.card_data else None
    assert results and results[0].metric_value == 0.875 and results[0].dataset_type == f"{owner.name}/rows"
    assert info.card_data is not None and info.card_data.license == "mit"


def test_transformers_and_datasets_push_to_hub_create_pr(server: LiveServer, env_for, tmp_path: Path) -> None:
    """A contributor without write access runs transformers' ``model.push_to_hub(create_pr=True)`` (a tiny BERT
    built from a config) and datasets' ``Dataset.push_to_hub(create_pr=True)`` against the owner's repos: each
    opens a PR holding the library's files and leaves main alone; after the owner merges, a fresh process loads
    the model (same weights) with ``from_pretrained`` and the rows with ``load_dataset`` from main."""
    owner, contrib = server.account("lown"), server.account("lcon")
    api = _api(server, owner)
    model_repo, data_repo = f"{owner.name}/{server.unique('tiny')}", f"{owner.name}/{server.unique('rows')}"
    api.create_repo(model_repo)
    api.create_repo(data_repo, repo_type="dataset")
    rows = [{"idx": i, "text": f"row {i}", "score": i * 0.5} for i in range(30)]

    pushed = last_json(
        run_client(
            f"""
        import json, torch
        from datasets import Dataset
        from transformers import BertConfig, BertModel
        torch.manual_seed(7)
        config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=20, max_position_embeddings=32)
        model = BertModel(config).eval()
        out = {{"checksum": float(sum(p.double().sum() for p in model.parameters()))}}
        info = model.push_to_hub("{model_repo}", create_pr=True, commit_message="Add a tiny model")
        out["model_pr"] = [info.pr_url, info.pr_revision]
        info = Dataset.from_list({rows!r}).push_to_hub("{data_repo}", create_pr=True, commit_message="Add rows")
        out["data_pr"] = [info.pr_url, info.pr_revision]
        print(json.dumps(out))
        """,
            env_for(contrib.write_token),
        )
    )
    assert isinstance(pushed, dict)
    model_url, model_rev = pushed["model_pr"]
    data_url, data_rev = pushed["data_pr"]
    assert model_url == f"{server.url}/{model_repo}/discussions/1" and model_rev == "refs/pr/1"
    assert data_url == f"{server.url}/datasets/{data_repo}/discussions/1" and data_rev == "refs/pr/1"
    assert api.list_repo_files(model_repo) == [".gitattributes"]
    assert api.list_repo_files(data_repo, repo_type="dataset") == [".gitattributes"]
    model_files = set(api.list_repo_files(model_repo, revision=model_rev))
    assert {"config.json", "model.safetensors"} <= model_files
    data_files = api.list_repo_files(data_repo, repo_type="dataset", revision=data_rev)
    assert "README.md" in data_files and any(f.startswith("data/train-") and f.endswith(".parquet") for f in data_files)
    details = api.get_discussion_details(model_repo, 1)
    assert details.author == contrib.name and details.title == "Add a tiny model"

    api.merge_pull_request(model_repo, 1)
    api.merge_pull_request(data_repo, 1, repo_type="dataset")
    loaded = last_json(
        run_client(
            f"""
        import json, torch
        from datasets import load_dataset
        from transformers import AutoModel
        model = AutoModel.from_pretrained("{model_repo}")
        out = {{"checksum": float(sum(p.double().sum() for p in model.parameters())), "class": type(model).__name__}}
        out["rows"] = load_dataset("{data_repo}", split="train").to_list()
        print(json.dumps(out))
        """,
            env_for(owner.read_token, HF_HOME=str(tmp_path / "load-home")),
        )
    )
    assert isinstance(loaded, dict)
    assert loaded["class"] == "BertModel" and abs(loaded["checksum"] - pushed["checksum"]) < 1e-9
    assert loaded["rows"] == rows

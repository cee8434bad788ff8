"""The rest of ``HfApi`` that a self-hosted hub can serve (issue 17, "go through HfApi method by method"), through
the real ``huggingface_hub`` client: a gated repo's access requests, the tags by type, user and organization
overviews, comment attachments, copies between repos and ``duplicate_repo``, and one compact test of the methods
that had only a hand check. The newest client runs in this process; where an older client builds its requests
differently it runs the same calls from its own venv (``test_old_clients_*``).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from seed import auth
from support import LiveServer, last_json, run_client

# --- 1. gated access requests ------------------------------------------------------------------------------


def test_access_requests_lifecycle(server: LiveServer, tmp_path: Path) -> None:
    """A manual gate's requests are listed by status and moved between lists by the client's calls: accept, reject
    (with a reason), cancel (back to pending, access lost), grant (to a user who never asked). Only those who may
    write to the namespace list or handle them; an unknown user, a missing request or a request already in the
    asked-for list is a 404; a repo that is not gated a 400."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    owner, ann, ben, cid = (server.account(p) for p in ("gateown", "gateann", "gateben", "gatecid"))
    repo_id = f"{owner.name}/gated"
    api = HfApi(endpoint=server.url, token=owner.write_token)
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as not_gated:
        list(api.list_pending_access_requests(repo_id))
    assert not_gated.value.response.status_code == 400 and "not gated" in str(not_gated.value)
    api.update_repo_settings(repo_id, gated="manual")
    for user in (ann, ben):
        asked = httpx.post(f"{server.url}/api/models/{repo_id}/ask-access", headers=auth(user.write_token))
        assert asked.json() == {"status": "pending"}

    pending = list(api.list_pending_access_requests(repo_id))
    assert [r.username for r in pending] == [ann.name, ben.name]
    assert all(r.status == "pending" and r.request_id and r.timestamp.tzinfo for r in pending)
    assert list(api.list_accepted_access_requests(repo_id)) == list(api.list_rejected_access_requests(repo_id)) == []

    ann_api, cid_api = HfApi(endpoint=server.url, token=ann.write_token), HfApi(endpoint=server.url, token=cid.write_token)
    with pytest.raises(GatedRepoError):
        ann_api.auth_check(repo_id)
    api.accept_access_request(repo_id, ann.name)
    ann_api.auth_check(repo_id)
    assert ann_api.hf_hub_download(repo_id, "config.json", cache_dir=tmp_path)
    api.reject_access_request(repo_id, request_id=pending[1].request_id, rejection_reason="Not for this project")
    assert [r.username for r in api.list_accepted_access_requests(repo_id)] == [ann.name]
    rejected = httpx.get(f"{server.url}/api/models/{repo_id}/user-access-request/rejected", headers=auth(owner.write_token))
    assert [(r["user"]["user"], r["rejectionReason"], r["handledBy"]) for r in rejected.json()] == [
        (ben.name, "Not for this project", owner.name)
    ]

    # Errors in the client's documented statuses.
    for call, status in (
        (lambda: api.accept_access_request(repo_id, ann.name), 404),  # already accepted
        (lambda: api.accept_access_request(repo_id, cid.name), 404),  # no request
        (lambda: api.accept_access_request(repo_id, "no-such-user-x"), 404),
        (lambda: api.grant_access(repo_id, ann.name), 400),  # has access already
        (lambda: list(ann_api.list_pending_access_requests(repo_id)), 403),  # a reader
        (lambda: list(HfApi(endpoint=server.url, token=owner.read_token).list_pending_access_requests(repo_id)), 403),
        (lambda: cid_api.grant_access(repo_id, cid.name), 403),
    ):
        with pytest.raises(HfHubHTTPError) as info:
            call()
        assert info.value.response.status_code == status, (status, str(info.value))

    api.cancel_access_request(repo_id, ann.name)  # back to pending: access is gone
    with pytest.raises(GatedRepoError):
        ann_api.auth_check(repo_id)
    assert {r.username for r in api.list_pending_access_requests(repo_id)} == {ann.name}
    api.grant_access(repo_id, cid.name)  # never asked
    cid_api.auth_check(repo_id)
    accepted = list(api.list_accepted_access_requests(repo_id))
    assert [(r.username, r.status) for r in accepted] == [(cid.name, "accepted")]
    bad = httpx.post(f"{server.url}/api/models/{repo_id}/user-access-request/handle", headers=auth(owner.write_token),
                     json={"user": ann.name, "status": "accepted", "rejectionReason": "x"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]
    assert [r.username for r in api.list_pending_access_requests(repo_id)] == [ann.name]  # nothing changed


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.30.2", "1.33.0"])
def test_old_clients_access_requests(server: LiveServer, env_for, version: str) -> None:
    """The oldest client we claim and a 1.x one build these URLs from ``HF_ENDPOINT``: the same calls work."""
    from huggingface_hub import HfApi

    from client_venvs import client_python

    owner, asker = server.account("oldgate"), server.account("oldgateb")
    repo_id = f"{owner.name}/gated"
    HfApi(endpoint=server.url, token=owner.write_token).create_repo(repo_id)
    HfApi(endpoint=server.url, token=owner.write_token).update_repo_settings(repo_id, gated="manual")
    httpx.post(f"{server.url}/api/models/{repo_id}/ask-access", headers=auth(asker.write_token))
    result = run_client(
        f"""
        import json
        import huggingface_hub
        from huggingface_hub import HfApi
        assert huggingface_hub.__version__ == {version!r}
        api = HfApi()
        out = {{"pending": [r.username for r in api.list_pending_access_requests("{repo_id}")]}}
        api.reject_access_request("{repo_id}", "{asker.name}", rejection_reason="no")
        out["rejected"] = [r.username for r in api.list_rejected_access_requests("{repo_id}")]
        api.accept_access_request("{repo_id}", "{asker.name}")
        out["accepted"] = [r.username for r in api.list_accepted_access_requests("{repo_id}")]
        api.cancel_access_request("{repo_id}", "{asker.name}")
        api.grant_access("{repo_id}", "{asker.name}")
        out["granted"] = [r.status for r in api.list_accepted_access_requests("{repo_id}")]
        print(json.dumps(out))
        """,
        env_for(owner.write_token),
        python=client_python(version),
    )
    assert last_json(result) == {"pending": [asker.name], "rejected": [asker.name], "accepted": [asker.name],
                                 "granted": ["accepted"]}  # fmt: skip


# --- 2. tags by type ---------------------------------------------------------------------------------------


def _card(**fields: object) -> bytes:
    import yaml

    return f"---\n{yaml.safe_dump(fields)}---\n# card\n".encode()


def test_model_and_dataset_tags_by_type(server: LiveServer) -> None:
    """``get_model_tags`` / ``get_dataset_tags`` group the tags the hub's visible repos use by type (task with its
    modality, library, language, license, dataset, other), each ``{id, label, type}``; a private repo's tags show
    to nobody else."""
    from huggingface_hub import HfApi

    owner = server.account("tagown")
    word, secret = server.unique("tagword"), server.unique("tagsecret")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    public, private, data = f"{owner.name}/tagged", f"{owner.name}/hidden", f"{owner.name}/tagdata"
    api.create_repo(public)
    api.upload_file(path_or_fileobj=_card(pipeline_tag="token-classification", library_name="flair", license="mit",
                                          language=["ja"], datasets=["conll2003"], tags=[word]),
                    path_in_repo="README.md", repo_id=public)  # fmt: skip
    api.create_repo(private, private=True)
    api.upload_file(path_or_fileobj=_card(tags=[secret], license="cc-by-nc-4.0"), path_in_repo="README.md", repo_id=private)
    api.create_repo(data, repo_type="dataset")
    api.upload_file(path_or_fileobj=_card(task_categories=["summarization"], license="mit",
                                          language=["fr"], tags=[word]),
                    path_in_repo="README.md", repo_id=data, repo_type="dataset")  # fmt: skip

    tags = HfApi(endpoint=server.url).get_model_tags()  # anonymous, as the client calls it
    by_id = {(kind, item["id"]): item for kind, items in tags.items() for item in items}
    assert all(item["type"] == kind for kind, items in tags.items() for item in items)
    assert by_id[("pipeline_tag", "token-classification")] == {
        "id": "token-classification", "label": "Token classification", "type": "pipeline_tag",
        "subType": "natural language processing"}  # fmt: skip
    assert by_id[("library", "flair")]["label"] == "flair"
    assert by_id[("language", "ja")]["label"] == "ja"
    assert by_id[("license", "license:mit")]["label"] == "mit"
    assert by_id[("dataset", "dataset:conll2003")]["label"] == "conll2003"
    assert by_id[("other", word)]["label"] == word
    assert not any(secret in item["id"] for items in tags.values() for item in items)
    mine = httpx.get(f"{server.url}/api/models-tags-by-type", headers=auth(owner.read_token)).json()
    assert any(item["id"] == secret for item in mine["other"])  # the owner sees their private repo's tags

    dtags = HfApi(endpoint=server.url).get_dataset_tags()
    dby_id = {(kind, item["id"]) for kind, items in dtags.items() for item in items}
    assert {("task_categories", "task_categories:summarization"), ("license", "license:mit"), ("language", "language:fr"),
            ("other", word)} <= dby_id
    assert ("pipeline_tag", "token-classification") not in dby_id


# --- 3. users and organizations ----------------------------------------------------------------------------


def test_user_and_organization_overview_and_members(server: LiveServer) -> None:
    """``get_user_overview`` counts the user's repos, likes and discussions as far as the caller may see them
    (private repos only for those who may read them) and lists their orgs; ``get_organization_overview`` counts
    members and repos; ``list_organization_members`` lists every member (roles only to members); an unknown name is
    a 404, and follower lists are a 404 that says this hub has no follows."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    alice, bob = server.account("ovalice"), server.account("ovbob")
    org = server.unique("ovorg")
    server.cli("orgs", "create", org, "--owner", alice.name)
    server.cli("orgs", "add-member", org, bob.name, "--role", "read")
    api = HfApi(endpoint=server.url, token=alice.write_token)
    api.create_repo(f"{alice.name}/m1")
    api.create_repo(f"{alice.name}/m2", private=True)
    api.create_repo(f"{alice.name}/d1", repo_type="dataset")
    api.create_repo(f"{org}/s1", repo_type="space", space_sdk="static")
    api.create_repo(f"{org}/m3", private=True)
    assert httpx.post(f"{server.url}/api/models/{alice.name}/m1/like", headers=auth(alice.write_token)).status_code == 200
    api.create_discussion(f"{alice.name}/m1", title="A question")

    own = api.get_user_overview(alice.name)
    assert (own.username, own.num_models, own.num_datasets, own.num_spaces) == (alice.name, 2, 1, 0)
    assert (own.num_likes, own.num_discussions, own.is_pro, own.user_type) == (1, 1, False, "user")
    assert [o.name for o in own.orgs] == [org]
    seen = HfApi(endpoint=server.url, token=bob.write_token).get_user_overview(alice.name)
    assert (seen.num_models, seen.num_datasets) == (1, 1)  # the private model is not bob's to see

    anonymous = HfApi(endpoint=server.url)
    overview = anonymous.get_organization_overview(org)
    assert (overview.name, overview.num_users, overview.num_models, overview.num_spaces) == (org, 2, 0, 1)
    assert bob and HfApi(endpoint=server.url, token=bob.write_token).get_organization_overview(org).num_models == 1
    members = list(anonymous.list_organization_members(org))
    assert sorted(m.username for m in members) == sorted([alice.name, bob.name])
    assert not any(hasattr(m, "role") for m in members)
    roles = {m.username: m.role for m in api.list_organization_members(org)}  # type: ignore[attr-defined]
    assert roles == {alice.name: "admin", bob.name: "read"}
    paged = httpx.get(f"{server.url}/api/organizations/{org}/members?limit=1")
    assert len(paged.json()) == 1 and "next" in paged.links

    for call in (lambda: anonymous.get_user_overview("no-such-user-q"), lambda: anonymous.get_organization_overview("no-such-org-q"),
                 lambda: list(anonymous.list_user_followers(alice.name))):  # fmt: skip
        with pytest.raises(HfHubHTTPError) as info:
            call()
        assert info.value.response.status_code == 404
    followers = httpx.get(f"{server.url}/api/users/{alice.name}/followers")
    assert followers.status_code == 404 and "no follows" in followers.json()["error"]


# --- 6. the methods that had only a hand check -------------------------------------------------------------


def test_methods_checked_by_hand_before(server: LiveServer, tmp_path: Path) -> None:
    """Each call the coverage page listed as "hand", once, checked against what it should answer: deleting a file,
    several files and a folder; ``preupload_lfs_files`` then a commit naming the uploaded object; dataset and space
    listings by author; ``space_info``; ``list_repo_likers``; ``resolve_revision``; ``verify_repo_checksums`` of a
    download; ``get_safetensors_metadata`` (read by range requests); ``run_as_future``."""
    import json
    import struct

    from huggingface_hub import CommitOperationAdd, HfApi, snapshot_download

    owner, fan = server.account("handown"), server.account("handfan")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/handmodel"
    api.create_repo(repo_id)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                         "__metadata__": {"format": "pt"}}).encode()  # fmt: skip
    weights = struct.pack("<Q", len(header)) + header + bytes(16)
    api.create_commit(repo_id, commit_message="files", operations=[
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=b"x") for p in ("a.txt", "b.txt", "c.txt", "d/e.txt", "d/f.txt")
    ] + [CommitOperationAdd(path_in_repo="model.safetensors", path_or_fileobj=weights)])  # fmt: skip

    api.delete_file("a.txt", repo_id)
    api.delete_files(repo_id, delete_patterns=["b.txt", "c.txt"])
    api.delete_folder("d", repo_id)
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "model.safetensors"]

    big = CommitOperationAdd(path_in_repo="big.bin", path_or_fileobj=bytes(range(256)) * 50000)  # 12.8 MB: LFS
    api.preupload_lfs_files(repo_id, additions=[big])
    assert big._is_uploaded and big._upload_mode == "lfs"
    api.create_commit(repo_id, operations=[big], commit_message="big")
    assert api.get_paths_info(repo_id, ["big.bin"])[0].lfs.size == 12_800_000  # type: ignore[union-attr]

    meta = api.get_safetensors_metadata(repo_id)
    assert meta.files_metadata["model.safetensors"].metadata == {"format": "pt"} and meta.parameter_count == {"F32": 4}

    resolved = api.resolve_revision(repo_id)
    assert resolved == "main" and resolved.resolved == api.repo_info(repo_id).sha
    local = snapshot_download(repo_id, endpoint=server.url, token=owner.write_token, local_dir=tmp_path / "snap",
                              allow_patterns=["*.safetensors", ".gitattributes"])  # fmt: skip
    check = api.verify_repo_checksums(repo_id, local_dir=local)
    assert check.checked_count == 2 and not check.mismatches and check.missing_paths == ["big.bin"]

    api.create_repo(f"{owner.name}/handdata", repo_type="dataset")
    api.create_repo(f"{owner.name}/handspace", repo_type="space", space_sdk="static")
    assert [d.id for d in api.list_datasets(author=owner.name)] == [f"{owner.name}/handdata"]
    assert [s.id for s in api.list_spaces(author=owner.name)] == [f"{owner.name}/handspace"]
    space = api.space_info(f"{owner.name}/handspace")
    assert space.id == f"{owner.name}/handspace" and space.sdk == "static"

    assert httpx.post(f"{server.url}/api/models/{repo_id}/like", headers=auth(fan.write_token)).status_code == 200
    assert [u.username for u in api.list_repo_likers(repo_id)] == [fan.name]

    future = api.run_as_future(api.model_info, repo_id)
    assert future.result(timeout=60).id == repo_id


# --- 5. duplicate_repo and copy_files ----------------------------------------------------------------------


def test_duplicate_repo(server: LiveServer, tmp_path: Path) -> None:
    """``duplicate_repo`` makes a repo of the caller's with the source's main files (LFS objects referenced, not
    sent again: the copy downloads them), private as asked; a model, a dataset and a space; an existing target is a
    409 that ``exist_ok`` accepts; a private source is a 404 to others and a gated one a 403 without access."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    owner, other = server.account("dupown"), server.account("dupother")
    api, other_api = HfApi(endpoint=server.url, token=owner.write_token), HfApi(endpoint=server.url, token=other.write_token)
    weights = bytes(range(256)) * 4000
    for kind in ("model", "dataset", "space"):
        source = f"{owner.name}/src-{kind}"
        api.create_repo(source, repo_type=kind, space_sdk="static" if kind == "space" else None)
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="sub/a.txt", repo_id=source, repo_type=kind)
        api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=source, repo_type=kind)
        url = other_api.duplicate_repo(source, repo_type=kind, private=True)
        copy = f"{other.name}/src-{kind}"
        assert url.repo_id == copy and url.repo_type == kind and url.files_copy_pending is False
        info = other_api.repo_info(copy, repo_type=kind)
        assert info.private and sorted(other_api.list_repo_files(copy, repo_type=kind)) == [".gitattributes", "sub/a.txt", "w.bin"]
        path = hf_hub_download(copy, "w.bin", repo_type=kind, endpoint=server.url, token=other.write_token,
                               cache_dir=tmp_path / kind)  # fmt: skip
        assert Path(path).read_bytes() == weights
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=server.url).repo_info(copy, repo_type=kind)  # private as asked
    listed = {f.filename: f.oid for f in other_api.list_lfs_files(f"{other.name}/src-model")}
    assert set(listed) == {"w.bin"}  # the copy references the object (repo_lfs_objects)

    named = api.duplicate_repo(f"{owner.name}/src-model", to_id=f"{owner.name}/renamed")
    assert named.repo_id == f"{owner.name}/renamed" and not api.repo_info(f"{owner.name}/renamed").private
    with pytest.raises(HfHubHTTPError) as exists:
        api.duplicate_repo(f"{owner.name}/src-model", to_id=f"{owner.name}/renamed")
    assert exists.value.response.status_code == 409
    assert api.duplicate_repo(f"{owner.name}/src-model", to_id=f"{owner.name}/renamed", exist_ok=True).repo_id == named.repo_id

    api.create_repo(f"{owner.name}/secret", private=True)
    with pytest.raises(RepositoryNotFoundError):
        other_api.duplicate_repo(f"{owner.name}/secret")
    api.update_repo_settings(f"{owner.name}/src-dataset", repo_type="dataset", gated="manual")
    with pytest.raises(GatedRepoError):
        other_api.duplicate_repo(f"{owner.name}/src-dataset", to_id=f"{other.name}/gated-copy", repo_type="dataset")
    assert not other_api.repo_exists(f"{other.name}/gated-copy", repo_type="dataset")  # nothing half-made
    with pytest.raises(HfHubHTTPError) as foreign:
        other_api.duplicate_repo(f"{owner.name}/src-model", to_id=f"{owner.name}/not-yours")
    assert foreign.value.response.status_code == 403


def test_copy_files_between_repos(server: LiveServer, tmp_path: Path) -> None:
    """``copy_files`` from one repo to another: small files are copied by content, large ones by reference (the
    client asks the source's ``lfs-files/duplicate`` first, then commits ``lfsFile`` lines); the copy downloads
    the same bytes. A source the caller cannot read stays a 404, and a file the source does not reference is
    reported as failed, never made available."""
    from huggingface_hub import HfApi, hf_hub_download

    owner, other = server.account("cpown"), server.account("cpother")
    api, other_api = HfApi(endpoint=server.url, token=owner.write_token), HfApi(endpoint=server.url, token=other.write_token)
    source, target = f"{owner.name}/cpsrc", f"{other.name}/cpdst"
    api.create_repo(source)
    weights = bytes(range(256)) * 4000
    api.upload_file(path_or_fileobj=b"small", path_in_repo="dir/small.txt", repo_id=source)
    api.upload_file(path_or_fileobj=weights, path_in_repo="dir/w.bin", repo_id=source)
    other_api.create_repo(target)
    other_api.copy_files(f"hf://{source}/dir/", f"hf://{target}/copied/")
    assert sorted(other_api.list_repo_files(target)) == [".gitattributes", "copied/small.txt", "copied/w.bin"]
    path = hf_hub_download(target, "copied/w.bin", endpoint=server.url, token=other.write_token, cache_dir=tmp_path)
    assert Path(path).read_bytes() == weights
    oid = other_api.get_paths_info(target, ["copied/w.bin"])[0].lfs.sha256  # type: ignore[union-attr]

    def ask(token: str, repo: str, sha: str) -> httpx.Response:
        body = {"target": {"type": "model", "name": target}, "files": [{"sha256": sha, "filename": "x"}]}
        return httpx.post(f"{server.url}/api/models/{repo}/lfs-files/duplicate", json=body, headers=auth(token))

    assert ask(other.write_token, source, oid).json() == {"failed": []}
    unknown = ask(other.write_token, source, "0" * 64).json()["failed"]
    assert [f["sha256"] for f in unknown] == ["0" * 64] and "no LFS file" in unknown[0]["error"]
    api.update_repo_settings(source, private=True)
    assert ask(other.write_token, source, oid).status_code == 404  # the source is not the caller's to read
    assert ask(owner.write_token, source, oid).json() == {"failed": []}  # a reader may open a PR on the target
    assert ask(owner.read_token, source, oid).status_code == 403  # a read token sends nothing
    other_api.update_repo_settings(target, private=True)
    assert ask(owner.write_token, source, oid).status_code == 404  # nor into a target the caller cannot see


# --- 4. comment attachments --------------------------------------------------------------------------------


def test_upload_attachment(server: LiveServer, tmp_path: Path) -> None:
    """``upload_attachment`` stores an image and answers its URL on this hub, which serves the same bytes with the
    sniffed type, ``nosniff``, an inline ``Content-Disposition`` and a sandboxing CSP; bytes that are not the type
    claimed (HTML named .png), an unsupported type, an oversized file, an anonymous caller or a read token are
    refused in words."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    user = server.account("attach")
    api = HfApi(endpoint=server.url, token=user.write_token)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
    (tmp_path / "shot.png").write_bytes(png)
    url = api.upload_attachment(tmp_path / "shot.png")
    assert url.startswith(f"{server.url}/attachments/") and url.endswith(".png")
    served = httpx.get(url)
    assert served.status_code == 200 and served.content == png
    assert served.headers["content-type"] == "image/png" and served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"].startswith("inline") and "sandbox" in served.headers["content-security-policy"]
    assert api.upload_attachment(tmp_path / "shot.png") == url  # stored once, by content

    (tmp_path / "evil.png").write_bytes(b"<html><script>alert(1)</script></html>")
    with pytest.raises(HfHubHTTPError) as spoofed:
        api.upload_attachment(tmp_path / "evil.png")
    assert spoofed.value.response.status_code == 400 and "not image/png" in str(spoofed.value)
    (tmp_path / "big.gif").write_bytes(b"GIF89a" + bytes(10_000_001))
    with pytest.raises(HfHubHTTPError) as big:
        api.upload_attachment(tmp_path / "big.gif")
    assert big.value.response.status_code == 413
    html = httpx.post(f"{server.url}/uploads", content=b"<html></html>", headers={**auth(user.write_token), "content-type": "text/html"})
    assert html.status_code == 400 and "Unsupported attachment type" in html.json()["error"]
    assert httpx.post(f"{server.url}/uploads", content=png, headers={"content-type": "image/png"}).status_code == 401
    with pytest.raises(HfHubHTTPError) as read_only:
        HfApi(endpoint=server.url, token=user.read_token).upload_attachment(tmp_path / "shot.png")
    assert read_only.value.response.status_code == 403
    assert httpx.get(f"{server.url}/attachments/{'0' * 64}.png").status_code == 404
    assert httpx.get(f"{server.url}/attachments/..%2F..%2Fhubstead.db").status_code == 404

"""huggingface_hub against a live server: every HfApi call the hub answers, in fresh client processes."""

from __future__ import annotations

from support import LiveServer, last_json, run_client


def test_repo_lifecycle_upload_download_and_listing(server: LiveServer, env_for) -> None:
    alice = server.account("alice")
    repo = f"{alice.name}/lifecycle"
    result = run_client(
        f"""
        import json, os, hashlib
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download, CommitOperationAdd, \\
            CommitOperationDelete, CommitOperationCopy
        api = HfApi()
        out = {{}}
        out["whoami"] = api.whoami()["name"]
        url = api.create_repo("{repo}")
        out["url"] = str(url)
        out["url_again"] = str(api.create_repo("{repo}", exist_ok=True))
        card = "---\\nlicense: mit\\npipeline_tag: text-classification\\ntags: [demo]\\nlanguage: [en]\\n---\\n# Demo\\n"
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="{repo}")
        big = os.urandom(2_000_000)
        open("big.safetensors.bin", "wb").write(big)
        ops = [
            CommitOperationAdd("weights/model.bin", "big.safetensors.bin"),
            CommitOperationAdd("config.json", json.dumps({{"model_type": "bert"}}).encode()),
            CommitOperationAdd("nested/a/b/c.txt", b"deep"),
        ]
        info = api.create_commit("{repo}", ops, commit_message="add files", commit_description="longer text")
        out["commit_oid"] = info.oid
        api.create_commit("{repo}", [CommitOperationCopy("weights/model.bin", "weights/copy.bin"),
                                     CommitOperationCopy("config.json", "config-copy.json")], commit_message="copy")
        out["files"] = sorted(api.list_repo_files("{repo}"))
        path = hf_hub_download("{repo}", "weights/copy.bin")
        out["copy_ok"] = open(path, "rb").read() == big
        snap = snapshot_download("{repo}")
        out["snapshot"] = sorted(os.path.relpath(os.path.join(d, f), snap) for d, _, fs in os.walk(snap) for f in fs)
        mi = api.model_info("{repo}", files_metadata=True)
        out["pipeline_tag"] = mi.pipeline_tag
        out["tags"] = mi.tags
        out["card_license"] = mi.card_data.license
        sib = {{s.rfilename: s for s in mi.siblings}}
        out["lfs_sha"] = sib["weights/model.bin"].lfs.sha256
        out["expected_sha"] = hashlib.sha256(big).hexdigest()
        out["listed"] = [m.id for m in api.list_models(search="lifecycle", author="{alice.name}")]
        out["by_filter"] = [m.id for m in api.list_models(filter="demo", author="{alice.name}")]
        out["by_pipeline"] = [m.id for m in api.list_models(pipeline_tag="text-classification", author="{alice.name}")]
        api.create_commit("{repo}", [CommitOperationDelete("nested/", is_folder=True),
                                     CommitOperationDelete("config-copy.json")], commit_message="cleanup")
        out["after_delete"] = sorted(api.list_repo_files("{repo}"))
        out["history"] = [c.title for c in api.list_repo_commits("{repo}")]
        print(json.dumps(out))
        """,
        env_for(alice.write_token),
    )
    out = last_json(result)
    assert out["whoami"] == alice.name
    assert out["url"] == f"{server.url}/{repo}" and out["url_again"] == out["url"]
    assert len(out["commit_oid"]) == 40
    assert out["files"] == sorted(
        [
            ".gitattributes",
            "README.md",
            "config.json",
            "config-copy.json",
            "nested/a/b/c.txt",
            "weights/model.bin",
            "weights/copy.bin",
        ]
    )
    assert out["copy_ok"] is True
    assert out["snapshot"] == out["files"]
    assert out["pipeline_tag"] == "text-classification"
    assert {"demo", "license:mit", "en", "bert"} <= set(out["tags"])
    assert out["card_license"] == "mit"
    assert out["lfs_sha"] == out["expected_sha"]
    assert out["listed"] == [repo] and out["by_filter"] == [repo] and out["by_pipeline"] == [repo]
    assert out["after_delete"] == sorted(
        [".gitattributes", "README.md", "config.json", "weights/model.bin", "weights/copy.bin"]
    )
    assert out["history"][:3] == ["cleanup", "copy", "add files"]
    assert out["history"][-1] == "initial commit"


def test_refs_branches_tags_and_revisions(server: LiveServer, env_for) -> None:
    bob = server.account("bob")
    repo = f"{bob.name}/refs"
    result = run_client(
        f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import RevisionNotFoundError, EntryNotFoundError
        api = HfApi()
        api.create_repo("{repo}")
        first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="{repo}").oid
        api.create_branch("{repo}", branch="dev")
        api.create_branch("{repo}", branch="dev", exist_ok=True)
        api.upload_file(path_or_fileobj=b"v2-dev", path_in_repo="f.txt", repo_id="{repo}", revision="dev")
        api.create_tag("{repo}", tag="v1.0", revision=first, tag_message="first release")
        api.create_branch("{repo}", branch="from-tag", revision="v1.0")
        out = {{}}
        refs = api.list_repo_refs("{repo}")
        out["branches"] = sorted(b.name for b in refs.branches)
        out["tags"] = [t.name for t in refs.tags]
        out["tag_target"] = refs.tags[0].target_commit == first
        read = lambda rev: open(hf_hub_download("{repo}", "f.txt", revision=rev), "rb").read().decode()
        out["main"], out["dev"], out["tag"], out["short"] = read("main"), read("dev"), read("v1.0"), read(first[:7])
        try:
            hf_hub_download("{repo}", "f.txt", revision="nope")
        except RevisionNotFoundError:
            out["bad_rev"] = "RevisionNotFoundError"
        try:
            hf_hub_download("{repo}", "missing.txt")
        except EntryNotFoundError:
            out["missing"] = "EntryNotFoundError"
        out["rev_exists"] = [api.revision_exists("{repo}", "dev"), api.revision_exists("{repo}", "zzz")]
        out["dev_info_sha"] = api.model_info("{repo}", revision="dev").sha == refs.branches[[b.name for b in refs.branches].index("dev")].target_commit
        api.delete_branch("{repo}", branch="dev")
        api.delete_tag("{repo}", tag="v1.0")
        refs = api.list_repo_refs("{repo}")
        out["after"] = [sorted(b.name for b in refs.branches), [t.name for t in refs.tags]]
        api.super_squash_history("{repo}", commit_message="squashed")
        out["squashed"] = [c.title for c in api.list_repo_commits("{repo}")]
        print(json.dumps(out))
        """,
        env_for(bob.write_token),
    )
    out = last_json(result)
    assert out["branches"] == ["dev", "from-tag", "main"]
    assert out["tags"] == ["v1.0"] and out["tag_target"]
    assert (out["main"], out["dev"], out["tag"], out["short"]) == ("v1", "v2-dev", "v1", "v1")
    assert out["bad_rev"] == "RevisionNotFoundError" and out["missing"] == "EntryNotFoundError"
    assert out["rev_exists"] == [True, False]
    assert out["dev_info_sha"] is True
    assert out["after"] == [["from-tag", "main"], []]
    assert out["squashed"] == ["squashed"]


def test_permissions_private_read_only_and_cross_namespace(server: LiveServer, env_for) -> None:
    owner = server.account("owner")
    other = server.account("other")
    repo = f"{owner.name}/secret"
    run_client(
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("{repo}", private=True)
        api.upload_file(path_or_fileobj=b"classified", path_in_repo="s.txt", repo_id="{repo}")
        api.create_repo("{owner.name}/public")
        """,
        env_for(owner.write_token),
    )
    result = run_client(
        f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import RepositoryNotFoundError, HfHubHTTPError
        api = HfApi()
        out = {{}}
        def attempt(name, fn):
            try:
                fn()
                out[name] = "ok"
            except RepositoryNotFoundError:
                out[name] = "RepositoryNotFoundError"
            except HfHubHTTPError as e:
                out[name] = e.response.status_code
        attempt("info", lambda: api.model_info("{repo}"))
        attempt("download", lambda: hf_hub_download("{repo}", "s.txt"))
        attempt("exists", lambda: out.__setitem__("exists_value", api.repo_exists("{repo}")))
        attempt("write_other_ns", lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="{owner.name}/public"))
        attempt("create_other_ns", lambda: api.create_repo("{owner.name}/mine"))
        attempt("delete_other", lambda: api.delete_repo("{owner.name}/public"))
        out["listed"] = [m.id for m in api.list_models(author="{owner.name}")]
        print(json.dumps(out))
        """,
        env_for(other.write_token),
    )
    out = last_json(result)
    assert out["info"] == "RepositoryNotFoundError"
    assert out["download"] == "RepositoryNotFoundError"
    assert out["exists_value"] is False
    assert out["write_other_ns"] == 403
    assert out["create_other_ns"] == 403
    assert out["delete_other"] == 403
    assert out["listed"] == [f"{owner.name}/public"]

    result = run_client(
        f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError
        api = HfApi()
        out = {{"read": open(hf_hub_download("{repo}", "s.txt"), "rb").read().decode()}}
        try:
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="{repo}")
        except HfHubHTTPError as e:
            out["write"] = e.response.status_code
        try:
            api.create_repo("{owner.name}/by-read-token")
        except HfHubHTTPError as e:
            out["create"] = e.response.status_code
        out["role"] = api.whoami()["auth"]["accessToken"]["role"]
        print(json.dumps(out))
        """,
        env_for(owner.read_token),
    )
    out = last_json(result)
    assert out == {"read": "classified", "write": 403, "create": 403, "role": "read"}


def test_org_roles(server: LiveServer, env_for) -> None:
    admin = server.account("orgadmin")
    writer = server.account("writer")
    reader = server.account("reader")
    org = server.unique("team")
    server.cli("orgs", "create", org, "--owner", admin.name)
    server.cli("orgs", "add-member", org, writer.name, "--role", "write")
    server.cli("orgs", "add-member", org, reader.name, "--role", "read")
    run_client(
        f"""
        from huggingface_hub import HfApi
        HfApi().create_repo("{org}/shared", private=True)
        """,
        env_for(admin.write_token),
    )
    script = f"""
        import json
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError
        api = HfApi()
        out = {{"orgs": [o["name"] for o in api.whoami()["orgs"]]}}
        out["can_read"] = api.repo_exists("{org}/shared")
        try:
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="{org}/shared")
            out["write"] = "ok"
        except HfHubHTTPError as e:
            out["write"] = e.response.status_code
        print(json.dumps(out))
    """
    assert last_json(run_client(script, env_for(writer.write_token))) == {
        "orgs": [org],
        "can_read": True,
        "write": "ok",
    }
    assert last_json(run_client(script, env_for(reader.write_token))) == {"orgs": [org], "can_read": True, "write": 403}


def test_move_settings_likes_and_errors(server: LiveServer, env_for) -> None:
    carol = server.account("carol")
    repo = f"{carol.name}/before"
    result = run_client(
        f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import RepositoryNotFoundError
        api = HfApi()
        out = {{}}
        api.create_repo("{repo}", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"a,b\\n1,2\\n", path_in_repo="data.csv", repo_id="{repo}", repo_type="dataset")
        api.move_repo("{repo}", "{carol.name}/after", repo_type="dataset")
        out["moved_info"] = api.dataset_info("{carol.name}/after").id
        out["old_id_download"] = open(hf_hub_download("{repo}", "data.csv", repo_type="dataset"), "rb").read().decode()
        api.update_repo_settings("{carol.name}/after", private=True, repo_type="dataset")
        out["private"] = api.dataset_info("{carol.name}/after").private
        api.update_repo_settings("{carol.name}/after", gated="manual", repo_type="dataset")
        out["gated"] = api.dataset_info("{carol.name}/after").gated
        api.delete_repo("{carol.name}/after", repo_type="dataset")
        api.delete_repo("{carol.name}/after", repo_type="dataset", missing_ok=True)
        try:
            api.dataset_info("{carol.name}/after")
        except RepositoryNotFoundError:
            out["deleted"] = True
        print(json.dumps(out))
        """,
        env_for(carol.write_token),
    )
    out = last_json(result)
    assert out == {
        "moved_info": f"{carol.name}/after",
        "old_id_download": "a,b\n1,2\n",
        "private": True,
        "gated": "manual",
        "deleted": True,
    }


def test_likes_and_download_counter(server: LiveServer, env_for) -> None:
    dave = server.account("dave")
    repo = f"{dave.name}/popular"
    result = run_client(
        f"""
        import json, httpx, os
        from huggingface_hub import HfApi, hf_hub_download
        api = HfApi()
        api.create_repo("{repo}")
        api.upload_file(path_or_fileobj=b'{{"model_type": "gpt2"}}', path_in_repo="config.json", repo_id="{repo}")
        headers = {{"authorization": "Bearer " + os.environ["HF_TOKEN"]}}
        httpx.post(os.environ["HF_ENDPOINT"] + "/api/models/{repo}/like", headers=headers).raise_for_status()
        hf_hub_download("{repo}", "config.json")
        hf_hub_download("{repo}", "config.json", force_download=True)
        info = api.model_info("{repo}")
        out = {{"likes": info.likes, "downloads": info.downloads}}
        out["liked"] = list(api.list_liked_repos("{dave.name}").models)
        out["top"] = [m.id for m in api.list_models(author="{dave.name}", sort="likes")]
        api.unlike("{repo}")
        out["after_unlike"] = api.model_info("{repo}").likes
        print(json.dumps(out))
        """,
        env_for(dave.write_token),
    )
    out = last_json(result)
    assert out["likes"] == 1
    assert out["downloads"] == 2
    assert out["liked"] == [repo]
    assert out["top"] == [repo]
    assert out["after_unlike"] == 0


def test_hf_cli_upload_and_download(server: LiveServer, env_for, tmp_path) -> None:
    erin = server.account("erin")
    src = tmp_path / "folder"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    env = env_for(erin.write_token)
    import subprocess
    import sys
    from pathlib import Path

    hf = str(Path(sys.executable).parent / "hf")
    up = subprocess.run([hf, "upload", f"{erin.name}/cli-repo", str(src), "."], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    assert f"{server.url}/{erin.name}/cli-repo" in up.stdout
    dest = tmp_path / "out"
    down = subprocess.run(
        [hf, "download", f"{erin.name}/cli-repo", "--local-dir", str(dest)], env=env, capture_output=True, text=True
    )
    assert down.returncode == 0, down.stderr
    assert (dest / "a.txt").read_text() == "alpha"
    assert (dest / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 100
    branch = subprocess.run(
        [hf, "upload", f"{erin.name}/cli-repo", str(src / "a.txt"), "a.txt", "--revision", "feature"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert branch.returncode == 0, branch.stderr


def test_hffilesystem_reads_ranges_and_globs(server: LiveServer, env_for) -> None:
    frank = server.account("frank")
    repo = f"{frank.name}/fs"
    result = run_client(
        f"""
        import json, os
        from huggingface_hub import HfApi, HfFileSystem
        api = HfApi()
        api.create_repo("{repo}", repo_type="dataset")
        payload = os.urandom(3_000_000)
        api.upload_file(path_or_fileobj=payload, path_in_repo="data/part-0.parquet", repo_id="{repo}", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"x" * 100, path_in_repo="data/part-1.txt", repo_id="{repo}", repo_type="dataset")
        fs = HfFileSystem()
        out = {{}}
        out["ls"] = sorted(fs.ls("datasets/{repo}/data", detail=False))
        out["glob"] = fs.glob("datasets/{repo}/**/*.parquet")
        with fs.open("datasets/{repo}/data/part-0.parquet", "rb") as f:
            f.seek(1_000_000)
            chunk = f.read(1000)
        out["range_ok"] = chunk == payload[1_000_000:1_001_000]
        out["size"] = fs.info("datasets/{repo}/data/part-0.parquet")["size"]
        out["exists"] = [fs.exists("datasets/{repo}/data/part-1.txt"), fs.exists("datasets/{repo}/nope")]
        print(json.dumps(out))
        """,
        env_for(frank.write_token),
    )
    out = last_json(result)
    assert out["ls"] == [f"datasets/{repo}/data/part-0.parquet", f"datasets/{repo}/data/part-1.txt"]
    assert out["glob"] == [f"datasets/{repo}/data/part-0.parquet"]
    assert out["range_ok"] is True and out["size"] == 3_000_000
    assert out["exists"] == [True, False]


def test_tree_pagination_and_link_host(server: LiveServer, env_for) -> None:
    gina = server.account("gina")
    repo = f"{gina.name}/many"
    result = run_client(
        f"""
        import json, httpx, os
        from huggingface_hub import HfApi, CommitOperationAdd
        api = HfApi()
        api.create_repo("{repo}")
        api.create_commit("{repo}", [CommitOperationAdd(f"d{{i % 7}}/f{{i}}.txt", str(i).encode()) for i in range(2500)],
                          commit_message="many")
        files = api.list_repo_files("{repo}")
        r = httpx.get(os.environ["HF_ENDPOINT"].replace("127.0.0.1", "localhost") + "/api/models/{repo}/tree/main?recursive=true")
        print(json.dumps({{"count": len(files), "link": r.headers.get("link", "")}}))
        """,
        env_for(gina.write_token),
    )
    out = last_json(result)
    assert out["count"] == 2501
    assert (
        out["link"].startswith(f"<http://localhost:{server.port}/api/models/{repo}/tree/main?")
        and 'rel="next"' in out["link"]
    )


def test_info_at_a_revision_reads_that_revisions_card(server: LiveServer, env_for) -> None:
    hana = server.account("hana")
    repo = f"{hana.name}/revcard"
    out = last_json(
        run_client(
            f"""
            import json
            from huggingface_hub import HfApi
            api = HfApi()
            api.create_repo("{repo}")
            api.upload_file(path_or_fileobj=b"---\\npipeline_tag: fill-mask\\nlicense: mit\\n---\\n", path_in_repo="README.md", repo_id="{repo}")
            api.create_branch("{repo}", branch="next")
            api.upload_file(path_or_fileobj=b"---\\npipeline_tag: text-generation\\nlicense: apache-2.0\\n---\\n",
                            path_in_repo="README.md", repo_id="{repo}", revision="next")
            main, nxt = api.model_info("{repo}"), api.model_info("{repo}", revision="next")
            print(json.dumps([main.pipeline_tag, main.card_data.license, nxt.pipeline_tag, nxt.card_data.license]))
            """,
            env_for(hana.write_token),
        )
    )
    assert out == ["fill-mask", "mit", "text-generation", "apache-2.0"]

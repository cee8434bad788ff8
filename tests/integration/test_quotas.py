"""Storage quotas (issue 23, docs/quotas.md) through huggingface_hub on the shared SQLite server: an upload over
the namespace's limit is refused with the used, allowed and needed sizes, nothing of it kept, and accepted once a
site admin raises the limit; the same LFS file in two repos counts once; public and private repos have their own
limits; the CLI, the API and the settings page show the same numbers."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import LiveServer, client_env, last_json, run_client, web_session

SCRIPT = r"""
import hashlib, json, os, sys
import httpx
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

api = HfApi()
user, admin_token, hub = sys.argv[1], os.environ["ADMIN_TOKEN"], os.environ["HF_ENDPOINT"]
admin = {"Authorization": f"Bearer {admin_token}"}
out = {}

def put_quota(**body):
    r = httpx.put(f"{hub}/api/admin/quotas/{user}", json=body, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()

def commits(repo):
    return [c.commit_id for c in api.list_repo_commits(repo)]

def refused(repo, path, data):
    before = commits(repo)
    try:
        api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo)
    except HfHubHTTPError as exc:
        assert commits(repo) == before  # no commit
        assert not api.file_exists(repo, path)
        return [exc.response.status_code, exc.server_message or str(exc)]
    raise AssertionError(f"{path} was accepted")

put_quota(publicBytes=3000, privateBytes=2500)
one, two, secret = (f"{user}/one", f"{user}/two", f"{user}/secret")
api.create_repo(one); api.create_repo(two); api.create_repo(secret, private=True)
weights, more = os.urandom(2000), os.urandom(2000)
api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=one)
api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=two)  # the same object: counted once
out["lfs_refused"] = refused(one, "more.bin", more)
out["regular_refused"] = refused(one, "notes.txt", b"n" * 1500)  # small files kept in git count too
api.upload_file(path_or_fileobj=more, path_in_repo="more.bin", repo_id=secret)  # the private pool: its own limit
out["private_refused"] = refused(secret, "w.bin", weights)  # in public repos, but new to the private pool
out["more_oid"] = hashlib.sha256(more).hexdigest()
out["after_raise"] = put_quota(publicBytes=10_000)
api.upload_file(path_or_fileobj=more, path_in_repo="more.bin", repo_id=one)
api.upload_file(path_or_fileobj=b"n" * 1500, path_in_repo="notes.txt", repo_id=one)
out["own"] = httpx.get(f"{hub}/api/quotas/{user}", headers={"Authorization": f"Bearer {os.environ['HF_TOKEN']}"}).json()
print(json.dumps(out))
"""


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_quota_refuses_then_accepts_and_counts_each_object_once(server: LiveServer, hf_home) -> None:  # type: ignore[no-untyped-def]
    admin = server.account("qadmin", admin=True)
    user = server.account("quser", password="quota-pass-1234")
    env = client_env(server, user.write_token, hf_home, ADMIN_TOKEN=admin.write_token)
    out = last_json(run_client(SCRIPT.replace("sys.argv[1]", json.dumps(user.name)), env))
    assert isinstance(out, dict)
    assert out["lfs_refused"] == [
        403, f"Storage quota exceeded for {user.name} (public repos): 2 KB used of 3 KB allowed; this upload needs 2 KB"
    ]
    assert out["regular_refused"][0] == 403
    assert out["regular_refused"][1].endswith("2 KB used of 3 KB allowed; this upload needs 1.5 KB")
    assert out["private_refused"] == [
        403, f"Storage quota exceeded for {user.name} (private repos): 2 KB used of 2.5 KB allowed; this upload needs 2 KB"
    ]
    # The refused LFS upload sent no byte to a public repo: the object is stored once, for the private repo.
    assert out["after_raise"]["public"] == {"usedBytes": 2000, "limitBytes": 10_000}
    assert out["own"]["public"] == {"usedBytes": 4000, "limitBytes": 10_000}  # LFS objects: 2 distinct
    assert out["own"]["private"] == {"usedBytes": 2000, "limitBytes": 2500}
    assert out["own"]["override"] == {"publicBytes": 10_000, "privateBytes": 2500}

    # The site admin's CLI reads and sets the same rows; "default" goes back to the site default (no limit here).
    shown = json.loads(server.cli("quotas", "set", user.name, "--private-bytes", "default", "--json").stdout)
    assert shown["private"] == {"usedBytes": 2000, "limitBytes": None}
    assert shown["public"] == out["own"]["public"]
    # Only site admins set quotas; only the namespace's admins (and site admins) read its usage.
    stranger = server.account("qstranger")
    for token in (user.write_token, stranger.write_token):
        r = httpx.put(f"{server.url}/api/admin/quotas/{user.name}", json={"publicBytes": 1},
                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 403, r.text
    r = httpx.get(f"{server.url}/api/quotas/{user.name}", headers={"Authorization": f"Bearer {stranger.write_token}"})
    assert r.status_code == 403
    r = httpx.put(f"{server.url}/api/admin/quotas/{user.name}", json={"publicBytes": -5},
                  headers={"Authorization": f"Bearer {admin.write_token}"})  # fmt: skip
    assert r.status_code == 400 and "Invalid publicBytes" in r.json()["error"]

    # The settings page shows the numbers with a bar.
    browser, _csrf = web_session(server, user.name, "quota-pass-1234")
    assert 'hx-get="/settings/storage"' in browser.get("/settings/profile").text
    fragment = browser.get("/settings/storage").text
    assert "4 KB used of 10 KB allowed" in fragment and 'aria-valuenow="40"' in fragment
    assert "2 KB used of no limit" in fragment

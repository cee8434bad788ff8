"""Storage quotas (issue 23, docs/quotas.md) through huggingface_hub on the shared SQLite server: an upload over
the namespace's limit is refused with the used, allowed and needed sizes, nothing of it kept, and accepted once a
site admin raises the limit; the same LFS file in two repos counts once; public and private repos have their own
limits; the CLI, the API and the settings page show the same numbers."""

from __future__ import annotations

import json

import httpx
import pytest

from support import LiveServer, client_env, last_json, run_client, web_session

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
weights, more, lost = os.urandom(2000), os.urandom(2000), os.urandom(2000)
api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=one)
api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=two)  # the same object: counted once
out["lfs_refused"] = refused(one, "lost.bin", lost)
out["lost_oid"] = hashlib.sha256(lost).hexdigest()
out["regular_refused"] = refused(one, "notes.txt", b"n" * 1500)  # small files kept in git count too
api.upload_file(path_or_fileobj=more, path_in_repo="more.bin", repo_id=secret)  # the private pool: its own limit
out["private_refused"] = refused(secret, "w.bin", weights)  # in public repos, but new to the private pool
out["after_raise"] = put_quota(publicBytes=10_000)
api.upload_file(path_or_fileobj=more, path_in_repo="more.bin", repo_id=one)
api.upload_file(path_or_fileobj=b"n" * 1500, path_in_repo="notes.txt", repo_id=one)
out["own"] = httpx.get(f"{hub}/api/quotas/{user}", headers={"Authorization": f"Bearer {os.environ['HF_TOKEN']}"}).json()
print(json.dumps(out))
"""


XET_SCRIPT = r"""
import os, sys
import hf_xet  # noqa: F401 - the Xet path
from huggingface_hub import HfApi

api, repo = HfApi(), sys.argv[1] + "/one"
before = [c.commit_id for c in api.list_repo_commits(repo)]
try:
    api.upload_file(path_or_fileobj=os.urandom(3000), path_in_repo="xet.bin", repo_id=repo)
except Exception as exc:
    assert [c.commit_id for c in api.list_repo_commits(repo)] == before and not api.file_exists(repo, "xet.bin")
    print("XET-REFUSED", type(exc).__name__, exc)
"""


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_quota_refuses_then_accepts_and_counts_each_object_once(server: LiveServer, hf_home) -> None:  # type: ignore[no-untyped-def]
    admin, user = server.unique("qadmin"), server.unique("quser")  # one token each: each CLI call costs seconds
    server.cli("users", "create", admin, "--admin", "--password", "quota-admin-1234")
    server.cli("users", "create", user, "--password", "quota-pass-1234")
    admin_token, user_token = (server.cli("tokens", "create", name, "--role", "write").stdout.split()[-1]
                               for name in (admin, user))  # fmt: skip
    env = client_env(server, user_token, hf_home, ADMIN_TOKEN=admin_token)
    out = last_json(run_client(SCRIPT.replace("sys.argv[1]", json.dumps(user)), env))
    assert isinstance(out, dict)
    assert out["lfs_refused"] == [
        403, f"Storage quota exceeded for {user} (public repos): 2 KB used of 3 KB allowed; this upload needs 2 KB"
    ]
    assert out["regular_refused"][0] == 403
    assert out["regular_refused"][1].endswith("2 KB used of 3 KB allowed; this upload needs 1.5 KB")
    assert out["private_refused"] == [
        403, f"Storage quota exceeded for {user} (private repos): 2 KB used of 2.5 KB allowed; this upload needs 2 KB"
    ]
    assert not server.has_blob(out["lost_oid"])  # refused at the LFS batch: not a byte of it was sent
    assert out["after_raise"]["public"] == {"usedBytes": 2000, "limitBytes": 10_000}
    assert out["own"]["public"] == {"usedBytes": 4000, "limitBytes": 10_000}  # LFS objects: 2 distinct
    assert out["own"]["private"] == {"usedBytes": 2000, "limitBytes": 2500}
    assert out["own"]["override"] == {"publicBytes": 10_000, "privateBytes": 2500}

    # The site admin's CLI reads and sets the same rows; "default" goes back to the site default (no limit here).
    shown = json.loads(server.cli("quotas", "set", user, "--private-bytes", "default", "--json").stdout)
    assert shown["private"] == {"usedBytes": 2000, "limitBytes": None}
    assert shown["public"] == out["own"]["public"]
    # Only site admins set quotas; only the namespace's admins (and site admins) read its usage.
    r = httpx.put(f"{server.url}/api/admin/quotas/{user}", json={"publicBytes": 1},
                  headers={"Authorization": f"Bearer {user_token}"})  # fmt: skip
    assert r.status_code == 403, r.text
    r = httpx.get(f"{server.url}/api/quotas/{admin}", headers={"Authorization": f"Bearer {user_token}"})
    assert r.status_code == 403, r.text
    assert httpx.get(f"{server.url}/api/quotas/{user}").status_code == 401
    r = httpx.put(f"{server.url}/api/admin/quotas/{user}", json={"publicBytes": -5},
                  headers={"Authorization": f"Bearer {admin_token}"})  # fmt: skip
    assert r.status_code == 400 and "Invalid publicBytes" in r.json()["error"]

    # Xet uploads (hf_xet, HF_HUB_DISABLE_XET removed): refused when the shard registers the new file, so the
    # commit never names it.
    server.cli("quotas", "set", user, "--bytes", "4KB")
    xet_env = {k: v for k, v in env.items() if k != "HF_HUB_DISABLE_XET"}
    xet = run_client(XET_SCRIPT.replace("sys.argv[1]", json.dumps(user)), xet_env, expect_ok=False)
    # hf_xet words the refusal itself ("HTTP status client error (403 Forbidden) ... /shards"): the hub's message
    # is lost in the client; the status stays.
    assert "XET-REFUSED" in xet.stdout and "403" in xet.stdout, xet.stdout[-3000:] + xet.stderr[-3000:]

    # The settings page shows the numbers with a bar.
    browser, _csrf = web_session(server, user, "quota-pass-1234")
    assert 'hx-get="/settings/storage"' in browser.get("/settings/profile").text
    fragment = browser.get("/settings/storage").text
    assert "4 KB used of 4 KB allowed" in fragment and 'quota-bar full' in fragment and 'aria-valuenow="100"' in fragment
    assert "2 KB used of no limit" in fragment
    assert browser.get("/settings/storage", params={"namespace": admin}).status_code == 403  # not theirs
    # The site admin's page for the user loads the same fragment, which a site admin may read for anyone.
    admin_browser, _csrf = web_session(server, admin, "quota-admin-1234")
    assert f'hx-get="/settings/storage?namespace={user}"' in admin_browser.get(f"/admin/users/{user}").text
    assert "4 KB used of 4 KB allowed" in admin_browser.get("/settings/storage", params={"namespace": user}).text

"""Account administration (issue 23): site admins list, search, disable, delete (with what happens to the repos
said first), reset passwords and make admins, and list and revoke tokens, through the CLI (real subprocesses on
the server's data dir), the admin API and the admin pages; one password rule everywhere. SQLite only: the work
is in the domain functions, which do not depend on the backend."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from support import LiveServer, web_session

PASSWORD = "accounts-pass-1"
pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)


def _cli(server: LiveServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hubstead.cli", *args], env=server.env(), input=stdin,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _sign_in(server: LiveServer, name: str, password: str) -> httpx.Response:
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/login")
    csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert csrf
    return client.post("/login", data={"username": name, "password": password, "login_csrf": csrf.group(1)})


_ADMINS: dict[str, tuple[str, str]] = {}


def _site_admin(server: LiveServer) -> tuple[str, str]:
    """A site admin (name, write token) for this server, made once: the CLI is the slow part of these tests."""
    if server.url not in _ADMINS:
        name = server.unique("siteadmin")
        server.cli("users", "create", name, "--admin", "--password", PASSWORD)
        _ADMINS[server.url] = (name, _web_token(server, name, PASSWORD))
    return _ADMINS[server.url]


def _web_token(server: LiveServer, name: str, password: str, role: str = "write", label: str = "t") -> str:
    """A new access token, made on the settings page as a person would (no CLI process)."""
    client, csrf = web_session(server, name, password)
    page = client.post("/settings/tokens", data={"name": label, "role": role, "csrf_token": csrf})
    found = re.search(r'<pre id="new-token">([^<]+)</pre>', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def _new_user(server: LiveServer, prefix: str, *, password: str = PASSWORD) -> tuple[str, str]:
    """A user made through the admin API, with a write token."""
    name = server.unique(prefix)
    made = httpx.post(f"{server.url}/api/admin/users", json={"name": name, "password": password},
                      headers=_bearer(_site_admin(server)[1]), timeout=30)  # fmt: skip
    assert made.status_code == 200, made.text
    return name, _web_token(server, name, password)


def test_cli_manages_users_and_tokens_with_one_password_rule(server: LiveServer) -> None:
    name = server.unique("cliacct")
    short = _cli(server, "users", "create", name, "--password", "seven77")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    made = _cli(server, "users", "create", name, "--password", PASSWORD, "--email", f"{name}@example.org")
    assert made.returncode == 0, made.stderr
    token = _web_token(server, name, PASSWORD, label="laptop")

    listed = json.loads(server.cli("users", "list", "--search", f"{name}@EXAMPLE", "--json").stdout)
    assert [(u["name"], u["email"], u["isAdmin"], u["disabled"], u["tokens"]) for u in listed] == [
        (name, f"{name}@example.org", False, False, 1)
    ]

    assert _sign_in(server, name, PASSWORD).status_code == 303
    changed = _cli(server, "users", "set-password", name, "--password-stdin", stdin="a-new-password-2\n")
    assert changed.returncode == 0, changed.stderr
    assert _sign_in(server, name, PASSWORD).status_code == 401
    assert _sign_in(server, name, "a-new-password-2").status_code == 303

    assert "now a site admin" in server.cli("users", "make-admin", name).stdout
    assert HfApi(endpoint=server.url, token=token).whoami()["isAdmin"] is True

    listing = server.cli("tokens", "list", "--user", name, "--json").stdout
    assert token not in listing  # never the secret
    tokens = json.loads(listing)
    assert [(t["user"], t["name"], t["role"]) for t in tokens] == [(name, "laptop", "write")]
    assert tokens[0]["lastUsedAt"] is not None  # whoami used it
    assert "Revoked token" in server.cli("tokens", "revoke", str(tokens[0]["id"])).stdout
    with pytest.raises(HfHubHTTPError) as gone:
        HfApi(endpoint=server.url, token=token).whoami()
    assert gone.value.response.status_code == 401


def test_disabled_user_is_refused_everywhere_but_their_public_repos_stay(server: LiveServer) -> None:
    name, token = _new_user(server, "disabled")
    api = HfApi(endpoint=server.url, token=token)
    repo_id = f"{name}/kept"
    api.create_repo(repo_id)
    browser, _ = web_session(server, name, PASSWORD)

    assert "is now disabled" in server.cli("users", "disable", name).stdout
    with pytest.raises(HfHubHTTPError) as refused:
        api.whoami()
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers.get("x-error-message")  # the Hub's error shape
    with pytest.raises(HfHubHTTPError) as push:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert push.value.response.status_code == 401
    signed_out = browser.get("/settings/tokens")  # the open browser session ended
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")
    denied = _sign_in(server, name, PASSWORD)
    assert denied.status_code == 403 and "disabled" in denied.text
    assert HfApi(endpoint=server.url).model_info(repo_id).id == repo_id  # their public repo stays readable
    admin_view = httpx.get(f"{server.url}/api/admin/users", params={"search": name},
                           headers=_bearer(_site_admin(server)[1]))  # fmt: skip
    assert admin_view.json()[0]["disabled"] is True

    server.cli("users", "enable", name)
    assert api.whoami()["name"] == name  # their tokens come back with them
    assert _sign_in(server, name, PASSWORD).status_code == 303


def test_delete_says_what_happens_to_repos_then_transfers_or_deletes_them(server: LiveServer) -> None:
    admin = HfApi(endpoint=server.url, token=_site_admin(server)[1])  # a site admin may create in any namespace
    leaving, leaving_token = _new_user(server, "leaving")
    heir, _ = _new_user(server, "heir")
    clashing, _ = _new_user(server, "clashing")
    for repo in ("one", "two"):
        admin.create_repo(f"{leaving}/{repo}", private=repo == "two")
    admin.create_repo(f"{clashing}/two")

    refused = _cli(server, "users", "delete", leaving, "--yes")
    assert refused.returncode == 2
    assert f"model {leaving}/one" in refused.stdout and "owns 2 repositories" in refused.stdout
    clash = _cli(server, "users", "delete", leaving, "--repos", f"transfer:{clashing}", "--yes")
    assert clash.returncode == 2 and f"{clashing}/two already exists" in clash.stdout
    assert HfApi(endpoint=server.url, token=leaving_token).whoami()["name"] == leaving  # nothing done

    done = _cli(server, "users", "delete", leaving, "--repos", f"transfer:{heir}", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"moves to {heir}" in done.stdout  # the plan, printed first
    assert admin.model_info(f"{heir}/one").id == f"{heir}/one"
    assert admin.model_info(f"{heir}/two").private is True
    assert httpx.get(f"{server.url}/api/users/{leaving}/overview").status_code == 404
    assert httpx.get(f"{server.url}/api/whoami-v2", headers=_bearer(leaving_token)).status_code == 401

    gone, _ = _new_user(server, "gone")
    admin.create_repo(f"{gone}/bye")
    server.cli("users", "delete", gone, "--repos", "delete", "--yes")
    with pytest.raises(HfHubHTTPError) as missing:
        admin.model_info(f"{gone}/bye")
    assert missing.value.response.status_code == 404
    listing = server.cli("repos", "list", "--sort", "updated", "--limit", "1000", "--json").stdout
    ids = {row["id"] for row in json.loads(listing)}
    assert f"{heir}/one" in ids and f"{gone}/bye" not in ids


def test_admin_api_is_for_site_admins_only(server: LiveServer) -> None:
    admin_name, admin_token = _site_admin(server)
    other, other_token = _new_user(server, "apiother")
    url = f"{server.url}/api/admin/users"
    write = _bearer(admin_token)
    assert httpx.get(url).status_code == 401
    forbidden = httpx.get(url, headers=_bearer(other_token))
    assert forbidden.status_code == 403 and forbidden.headers.get("x-error-message")
    assert httpx.post(f"{url}/{other}/disable", headers=_bearer(other_token)).status_code == 403

    found = httpx.get(url, params={"search": other}, headers=write).json()
    assert [u["name"] for u in found] == [other]
    name = server.unique("apimade")
    short = httpx.post(url, json={"name": name, "password": "1234567"}, headers=write)
    assert short.status_code == 400 and "8 characters" in short.json()["error"]
    assert httpx.get(url, params={"search": name}, headers=write).json() == []  # nothing half-made
    made = httpx.post(url, json={"name": name, "password": PASSWORD, "email": "m@example.org"}, headers=write)
    assert made.status_code == 200 and made.json()["email"] == "m@example.org"

    assert httpx.post(f"{url}/{other}/disable", headers=write).json()["disabled"] is True
    assert httpx.get(f"{server.url}/api/whoami-v2", headers=_bearer(other_token)).status_code == 401
    assert httpx.post(f"{url}/{other}/enable", headers=write).json()["disabled"] is False
    assert httpx.post(f"{url}/{other}/password", json={"password": "short"}, headers=write).status_code == 400
    assert httpx.post(f"{url}/{other}/password", json={"password": PASSWORD}, headers=write).status_code == 200
    assert httpx.post(f"{url}/{other}/admin", json={"admin": True}, headers=write).json()["isAdmin"] is True
    assert httpx.post(f"{url}/{other}/admin", json={"admin": False}, headers=write).json()["isAdmin"] is False
    assert httpx.post(f"{url}/{admin_name}/disable", headers=write).status_code == 400  # not yourself

    tokens = httpx.get(f"{url}/{other}/tokens", headers=write).json()
    assert [t["role"] for t in tokens] == ["write"] and all(other_token not in json.dumps(t) for t in tokens)
    token_id = tokens[0]["id"]
    assert httpx.delete(f"{server.url}/api/admin/tokens/{token_id}", headers=write).json()["user"] == other
    assert httpx.get(f"{server.url}/api/whoami-v2", headers=_bearer(other_token)).status_code == 401
    assert httpx.delete(f"{server.url}/api/admin/tokens/{token_id}", headers=write).status_code == 404

    HfApi(endpoint=server.url, token=admin_token).create_repo(f"{other}/owned")
    plan = httpx.delete(f"{url}/{other}", params={"dry_run": "1"}, headers=write).json()
    assert plan["allowed"] is False and plan["repos"][0]["id"] == f"{other}/owned"
    assert httpx.delete(f"{url}/{other}", headers=write).status_code == 409
    deleted = httpx.delete(f"{url}/{other}", params={"repos": "delete"}, headers=write)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert httpx.get(f"{url}/{other}/tokens", headers=write).status_code == 404


def test_web_forms_use_the_same_password_rule(server: LiveServer) -> None:
    admin_name, _ = _site_admin(server)
    client, csrf = web_session(server, admin_name, PASSWORD)
    page = client.get("/admin/users")
    assert page.status_code == 200 and admin_name in page.text
    name = server.unique("webmade")
    short = client.post("/admin/users", data={"name": name, "password": "1234567", "csrf_token": csrf})
    assert short.status_code == 400 and "at least 8 characters" in short.text
    made = client.post("/admin/users", data={"name": name, "password": PASSWORD, "csrf_token": csrf})
    assert made.status_code == 303 and made.headers["location"].startswith(f"/admin/users/{name}")
    assert client.post("/admin/users", data={"name": server.unique("x"), "password": PASSWORD}).status_code == 403
    reset = client.post(f"/admin/users/{name}/password", data={"password": "1234567", "csrf_token": csrf})
    assert reset.status_code == 400 and "at least 8 characters" in reset.text

    other, _ = web_session(server, name, PASSWORD)
    assert other.get("/admin/users").status_code == 404  # not a site admin: the page is not revealed
    plan = client.get(f"/admin/users/{name}", params={"repos": "delete"})
    assert "They own no repositories." in plan.text

    visitor = httpx.Client(base_url=server.url, timeout=30)
    form = visitor.get("/join")
    if form.status_code == 200:  # sign-up on: its form refuses what the CLI refuses
        login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert login_csrf
        joined = visitor.post("/join", data={"username": server.unique("joiner"), "password": "1234567",
                                             "login_csrf": login_csrf.group(1)})  # fmt: skip
        assert joined.status_code == 400 and "at least 8 characters" in joined.text

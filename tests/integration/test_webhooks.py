"""Webhooks through the real client and a receiver on loopback: every ``HfApi`` webhook call (newest and
oldest client), the Hub's payload field by field, the secret header, retries, access rules at delivery time,
the URL rule (no loopback, link-local or private addresses without ``--webhooks-allow-private``), one user
never reaching another's hooks, and a hanging receiver not slowing a commit. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub._webhooks_payload import WebhookPayload

from client_venvs import client_python
from support import LiveServer, client_env, run_client, web_session


class Receiver:
    """A small HTTP server that records each POST; it can answer 500 a few times first, or hang."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = 0
        self.hang = threading.Event()  # set: each request waits until ``release`` (at most 30 s)
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1 if failing else 0
                if receiver.hang.is_set():
                    receiver.release.wait(30)
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def payloads(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received if r["path"] == path]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def api_for(server: LiveServer, token: str) -> HfApi:
    return HfApi(endpoint=server.url, token=token)


def test_every_client_webhook_call_newest(server: LiveServer, receiver: Receiver) -> None:
    """create/get/list/update/disable/enable/delete_webhook of the newest client answer the shapes it parses;
    names are checked (a missing repo is a 404), a deleted hook is gone."""
    alice = server.account("hooka")
    api = api_for(server, alice.write_token)
    repo = f"{alice.name}/watched"
    api.create_repo(repo)
    hook = api.create_webhook(url=receiver.url(), watched=[{"type": "model", "name": repo}], secret="s3cret")
    assert re.fullmatch(r"[0-9a-f]{24}", hook.id)
    assert hook.url == receiver.url() and hook.secret == "s3cret" and hook.disabled is False
    assert [(w.type, w.name) for w in hook.watched] == [("model", repo)]
    assert hook.domains == ["repo", "discussion"]
    assert api.get_webhook(hook.id) == hook
    assert [h.id for h in api.list_webhooks()] == [hook.id]
    updated = api.update_webhook(hook.id, url=receiver.url("/other"), domains=["discussion"],
                                 watched=[{"type": "user", "name": alice.name}])  # fmt: skip
    assert updated.url == receiver.url("/other") and updated.domains == ["discussion"]
    assert [(w.type, w.name) for w in updated.watched] == [("user", alice.name)]
    kept = api.update_webhook(hook.id, secret="new")  # watched=[] from the client leaves watched alone
    assert kept.secret == "new" and [(w.type, w.name) for w in kept.watched] == [("user", alice.name)]
    assert api.disable_webhook(hook.id).disabled is True
    assert api.enable_webhook(hook.id).disabled is False
    with pytest.raises(Exception) as missing:
        api.create_webhook(url=receiver.url(), watched=[{"type": "model", "name": f"{alice.name}/nope"}])
    assert missing.value.response.status_code == 404  # type: ignore[attr-defined]
    with pytest.raises(Exception) as bad_type:
        api.create_webhook(url=receiver.url(), watched=[{"type": "bucket", "name": repo}])
    assert bad_type.value.response.status_code == 422  # type: ignore[attr-defined]
    api.delete_webhook(hook.id)
    assert api.list_webhooks() == []
    with pytest.raises(Exception) as gone:
        api.get_webhook(hook.id)
    assert gone.value.response.status_code == 404  # type: ignore[attr-defined]
    # A read token may not manage hooks (their answers carry secrets); no token is a 401.
    assert httpx.get(f"{server.url}/api/settings/webhooks",
                     headers={"authorization": f"Bearer {alice.read_token}"}).status_code == 403  # fmt: skip
    assert httpx.get(f"{server.url}/api/settings/webhooks").status_code == 401


def test_every_client_webhook_call_oldest(server: LiveServer, receiver: Receiver, tmp_path: Any) -> None:
    """The oldest client we claim (0.30.2, which sends null for fields it leaves alone on update) runs every
    webhook call against the hub."""
    alice = server.account("hookold")
    api_for(server, alice.write_token).create_repo(f"{alice.name}/old")
    script = f"""
import json, huggingface_hub
from huggingface_hub import HfApi
assert huggingface_hub.__version__ == "0.30.2"
api = HfApi()
h = api.create_webhook(url="{receiver.url()}", watched=[{{"type": "model", "name": "{alice.name}/old"}}],
                       domains=["repo"], secret="x")
out = {{"created": [h.url, h.secret, h.domains, h.disabled, [w.name for w in h.watched]]}}
out["get"] = api.get_webhook(h.id).id == h.id
out["list"] = [w.id for w in api.list_webhooks()] == [h.id]
u = api.update_webhook(h.id, url="{receiver.url('/two')}")
out["updated"] = [u.url, u.secret, u.domains, [w.name for w in u.watched]]
out["disabled"] = api.disable_webhook(h.id).disabled
out["enabled"] = api.enable_webhook(h.id).disabled
api.delete_webhook(h.id)
out["after"] = len(api.list_webhooks())
print(json.dumps(out))
"""
    result = run_client(script, client_env(server, alice.write_token, tmp_path), python=client_python("0.30.2"))
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["created"] == [receiver.url(), "x", ["repo"], False, [f"{alice.name}/old"]]
    assert out["get"] and out["list"]
    assert out["updated"] == [receiver.url("/two"), "x", ["repo"], [f"{alice.name}/old"]]
    assert out["disabled"] is True and out["enabled"] is False and out["after"] == 0


def test_payloads_match_the_hub_shape(server: LiveServer, receiver: Receiver) -> None:
    """A commit and a discussion with a comment reach the hook as the Hub's payloads (parsed by
    ``huggingface_hub``'s ``WebhookPayload`` and compared field by field), with ``X-Webhook-Secret``."""
    alice = server.account("hookp")
    api = api_for(server, alice.write_token)
    repo = f"{alice.name}/payload"
    api.create_repo(repo)
    hook = api.create_webhook(url=receiver.url("/p"), watched=[{"type": "user", "name": alice.name}], secret="xyz")
    commit = api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id=repo)
    discussion = api.create_discussion(repo, title="Question", description="first words")
    api.comment_discussion(repo, discussion.num, "a second comment")
    got = wait_for(lambda: (p := receiver.payloads("/p")) and len(p) >= 3 and p)
    assert all(r["headers"].get("X-Webhook-Secret") == "xyz" for r in receiver.received)
    assert all(r["headers"].get("Content-Type") == "application/json" for r in receiver.received)
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for payload in got:
        WebhookPayload.model_validate(payload)  # the client's own model of the payload accepts it
        by_scope.setdefault(payload["event"]["scope"], []).append(payload)
    content = by_scope["repo.content"][0]
    assert content["event"] == {"action": "update", "scope": "repo.content"}
    assert content["webhook"] == {"id": hook.id, "version": 3}
    info = api.model_info(repo)
    assert content["repo"] == {
        "type": "model", "name": repo, "id": content["repo"]["id"], "private": False,
        "url": {"web": f"{server.url}/{repo}", "api": f"{server.url}/api/models/{repo}"},
        "owner": {"id": content["repo"]["owner"]["id"]}, "headSha": commit.oid,
    }  # fmt: skip
    assert content["repo"]["id"] == info.id or re.fullmatch(r"[0-9a-f]{24}", content["repo"]["id"])
    assert content["updatedRefs"] == [{"ref": "refs/heads/main", "oldSha": content["updatedRefs"][0]["oldSha"],
                                       "newSha": commit.oid}]  # fmt: skip
    created = [p for p in by_scope["discussion"] if p["event"]["action"] == "create"][0]
    d = created["discussion"]
    assert (d["num"], d["title"], d["isPullRequest"], d["status"]) == (discussion.num, "Question", False, "open")
    assert d["url"] == {"web": f"{server.url}/{repo}/discussions/{discussion.num}",
                        "api": f"{server.url}/api/models/{repo}/discussions/{discussion.num}"}  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{24}", d["id"]) and re.fullmatch(r"[0-9a-f]{24}", d["author"]["id"])
    comments = [p for p in by_scope["discussion.comment"] if p["comment"]["content"] == "a second comment"]
    assert len(comments) == 1
    comment = comments[0]["comment"]
    assert comment["hidden"] is False and comment["author"] == d["author"]
    assert comment["url"] == {"web": f"{d['url']['web']}#{comment['id']}"}
    assert comments[0]["discussion"]["num"] == discussion.num


def test_retries_with_backoff_and_the_delivery_log(server: LiveServer, receiver: Receiver) -> None:
    """A receiver that answers 500 twice then 200 gets the same payload three times; the delivery log (API and
    settings page) shows one delivery, delivered after 3 attempts, HTTP 200."""
    alice = server.account("hookr", password="pw-hookr-1")
    api = api_for(server, alice.write_token)
    repo = f"{alice.name}/retry"
    api.create_repo(repo)
    hook = api.create_webhook(url=receiver.url("/r"), watched=[{"type": "model", "name": repo}], domains=["repo"])
    receiver.fail_first = 2
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    headers = {"authorization": f"Bearer {alice.write_token}"}

    def log() -> list[dict[str, Any]]:
        return httpx.get(f"{server.url}/api/settings/webhooks/{hook.id}/deliveries", headers=headers).json()

    entries = wait_for(lambda: (rows := log()) and rows[0]["status"] == "delivered" and rows)
    assert len(entries) == 1
    assert entries[0]["attempts"] == 3 and entries[0]["httpStatus"] == 200 and entries[0]["error"] is None
    assert entries[0]["event"] == {"scope": "repo.content", "action": "update", "repo": repo, "type": "model"}
    bodies = receiver.payloads("/r")
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    web, _ = web_session(server, alice.name, "pw-hookr-1")
    page = web.get(f"/settings/webhooks/{hook.id}")
    assert page.status_code == 200 and receiver.url("/r") in page.text
    row = re.search(r'<table class="files" id="deliveries">(.*?)</table>', page.text, re.S)
    assert row and "repo.content update" in row.group(1) and "delivered" in row.group(1) and "200" in row.group(1)


def test_private_repo_events_only_while_the_owner_can_read(server: LiveServer, receiver: Receiver) -> None:
    """Bob's hook on Alice's public repo gets its commits; once Alice makes it private, Bob's hook gets nothing
    more (checked when sending), while Alice's own hook on the same repo still does. Bob cannot watch a private
    repo he cannot read (404, as if missing)."""
    alice, bob = server.account("hookpa"), server.account("hookpb")
    alice_api, bob_api = api_for(server, alice.write_token), api_for(server, bob.write_token)
    repo = f"{alice.name}/soon-private"
    alice_api.create_repo(repo)
    bob_api.create_webhook(url=receiver.url("/bob"), watched=[{"type": "model", "name": repo}], domains=["repo"])
    alice_api.create_webhook(url=receiver.url("/alice"), watched=[{"type": "user", "name": alice.name}],
                             domains=["repo"])  # fmt: skip
    alice_api.upload_file(path_or_fileobj=b"1", path_in_repo="1.txt", repo_id=repo)
    wait_for(lambda: len(receiver.payloads("/bob")) == 1 and len(receiver.payloads("/alice")) == 1)
    alice_api.update_repo_settings(repo, private=True)
    second = alice_api.upload_file(path_or_fileobj=b"2", path_in_repo="2.txt", repo_id=repo)
    wait_for(lambda: any(p["repo"].get("headSha") == second.oid for p in receiver.payloads("/alice")))
    time.sleep(0.5)  # the same sender tick handled Bob's delivery of the same event
    assert len(receiver.payloads("/bob")) == 1
    assert all(p["repo"]["private"] is False for p in receiver.payloads("/bob"))
    with pytest.raises(Exception) as hidden:
        bob_api.create_webhook(url=receiver.url("/bob"), watched=[{"type": "model", "name": repo}])
    assert hidden.value.response.status_code == 404  # type: ignore[attr-defined]


def test_one_user_cannot_reach_anothers_hook(server: LiveServer, receiver: Receiver) -> None:
    """Bob cannot read, update, enable, disable, delete or read the log of Alice's hook: each is a 404."""
    alice, bob = server.account("hookoa"), server.account("hookob")
    api_for(server, alice.write_token).create_repo(f"{alice.name}/mine")
    hook = api_for(server, alice.write_token).create_webhook(
        url=receiver.url(), watched=[{"type": "model", "name": f"{alice.name}/mine"}]
    )
    base = f"{server.url}/api/settings/webhooks/{hook.id}"
    bob_headers = {"authorization": f"Bearer {bob.write_token}"}
    answers = [
        httpx.get(base, headers=bob_headers),
        httpx.post(base, headers=bob_headers, json={"url": receiver.url("/stolen")}),
        httpx.post(f"{base}/enable", headers=bob_headers),
        httpx.post(f"{base}/disable", headers=bob_headers),
        httpx.get(f"{base}/deliveries", headers=bob_headers),
        httpx.delete(base, headers=bob_headers),
    ]
    assert [a.status_code for a in answers] == [404] * 6
    assert all("secret" not in a.text for a in answers)
    assert api_for(server, bob.write_token).list_webhooks() == []
    still = api_for(server, alice.write_token).get_webhook(hook.id)
    assert still.url == receiver.url() and still.disabled is False


def test_hanging_receiver_does_not_slow_commits(server: LiveServer, receiver: Receiver) -> None:
    """With five hooks whose receiver hangs (sleeps up to 30 s), commits return as fast as without them."""
    alice = server.account("hookh")
    api = api_for(server, alice.write_token)
    repo = f"{alice.name}/hang"
    api.create_repo(repo)
    started = time.perf_counter()
    api.upload_file(path_or_fileobj=b"0", path_in_repo="0.txt", repo_id=repo)
    baseline = time.perf_counter() - started
    receiver.hang.set()
    hooks = [api.create_webhook(url=receiver.url(f"/h{i}"), watched=[{"type": "model", "name": repo}])
             for i in range(5)]  # fmt: skip
    api.upload_file(path_or_fileobj=b"1", path_in_repo="1.txt", repo_id=repo)
    wait_for(lambda: len(receiver.received) >= 5)  # the sender is now stuck on the receiver
    timings = []
    for i in range(3):
        started = time.perf_counter()
        api.upload_file(path_or_fileobj=str(i).encode(), path_in_repo=f"more/{i}.txt", repo_id=repo)
        timings.append(time.perf_counter() - started)
    assert max(timings) < baseline + 1.0, (baseline, timings)
    receiver.release.set()
    for hook in hooks:
        api.delete_webhook(hook.id)


def test_urls_that_reach_inside_are_refused(own_server: LiveServer) -> None:
    """Without ``--webhooks-allow-private`` a hook may not point at loopback (by address or by a name that
    resolves to it), link-local (cloud metadata), private or unspecified addresses, nor use another scheme:
    each is a 422 that says why, and no hook is made."""
    alice = own_server.account("hookurl")
    api = api_for(own_server, alice.write_token)
    api.create_repo(f"{alice.name}/r")
    watched = [{"type": "model", "name": f"{alice.name}/r"}]
    headers = {"authorization": f"Bearer {alice.write_token}"}
    refused = {
        "http://127.0.0.1:9/hook": "loopback",
        "http://localhost:9/hook": "loopback",
        "http://169.254.169.254/latest/meta-data/": "link-local",
        "http://10.0.0.1/hook": "private",
        "http://192.168.1.10/hook": "private",
        "http://[::1]/hook": "loopback",
        "http://[::ffff:10.0.0.1]/hook": "private",
        "http://0.0.0.0/hook": "unspecified",
        "ftp://example.com/hook": "http:// or https://",
        "http:///nohost": "no host",
    }
    for url, why in refused.items():
        answer = httpx.post(f"{own_server.url}/api/settings/webhooks", headers=headers,
                            json={"url": url, "watched": watched})  # fmt: skip
        assert answer.status_code == 422, (url, answer.status_code, answer.text)
        assert why in answer.json()["error"], (url, answer.json())
    with pytest.raises(Exception) as by_client:
        api.create_webhook(url="http://127.0.0.1:8080/x", watched=watched)
    assert by_client.value.response.status_code == 422  # type: ignore[attr-defined]
    assert api.list_webhooks() == []


def test_settings_page_manages_hooks(server: LiveServer, receiver: Receiver) -> None:
    """A person adds a hook on /settings/webhooks (CSRF-checked form), sees it listed, disables, enables and
    deletes it; a refused URL re-shows the form with the reason; a form without the CSRF token changes nothing."""
    alice = server.account("hookweb", password="pw-hookweb-1")
    api = api_for(server, alice.write_token)
    api.create_repo(f"{alice.name}/site")
    web, csrf = web_session(server, alice.name, "pw-hookweb-1")
    assert 'href="/settings/webhooks"' in web.get("/settings/tokens").text
    form = {"url": receiver.url("/web"), "watched": f"model:{alice.name}/site, user:{alice.name}",
            "domain_repo": "1", "csrf_token": csrf}  # fmt: skip
    assert web.post("/settings/webhooks", data={**form, "csrf_token": "wrong"}).status_code == 403
    assert api.list_webhooks() == []
    made = web.post("/settings/webhooks", data=form)
    assert made.status_code == 303
    (hook,) = api.list_webhooks()
    assert made.headers["location"] == f"/settings/webhooks/{hook.id}"
    assert hook.domains == ["repo"] and [(w.type, w.name) for w in hook.watched] == [
        ("model", f"{alice.name}/site"), ("user", alice.name)]  # fmt: skip
    page = web.get(f"/settings/webhooks/{hook.id}")
    assert page.status_code == 200 and receiver.url("/web") in page.text and "Nothing sent yet" in page.text
    assert web.post(f"/settings/webhooks/{hook.id}/disable", data={"csrf_token": csrf}).status_code == 303
    assert api.get_webhook(hook.id).disabled is True
    assert web.post(f"/settings/webhooks/{hook.id}/enable", data={"csrf_token": csrf}).status_code == 303
    assert api.get_webhook(hook.id).disabled is False
    bad = web.post("/settings/webhooks", data={**form, "url": "gopher://example.com/"})
    assert bad.status_code == 422 and "http:// or https://" in bad.text
    assert web.post(f"/settings/webhooks/{hook.id}/delete", data={"csrf_token": csrf}).status_code == 303
    assert api.list_webhooks() == []
    assert web.get(f"/settings/webhooks/{hook.id}").status_code == 404


def test_url_rule_checks_every_address_and_connects_to_the_checked_one() -> None:
    """``urls.check_url``: a literal address is its own target; a name is resolved once and the target is that
    address (the sender connects there, sending the name as Host and SNI); reserved and shared addresses and
    IPv4 inside IPv6 are refused, public ones pass."""
    from hubstead.webhooks.urls import WebhookUrlError, check_url, refusal

    target = check_url("https://93.184.216.34:8443/hook?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port, target.address, target.path) == (
        "https", "93.184.216.34", 8443, "93.184.216.34", "/hook?x=1")  # fmt: skip
    assert target.connect_url == "https://93.184.216.34:8443/hook?x=1" and target.host_header == "93.184.216.34:8443"
    local = check_url("http://localhost:8080/x", allow_private=True)
    assert local.address in ("127.0.0.1", "::1") and local.host_header == "localhost:8080"
    assert local.connect_url.startswith(("http://127.0.0.1:8080/x", "http://[::1]:8080/x"))
    import ipaddress

    for text in ("100.64.0.1", "240.0.0.1", "224.0.0.1", "::ffff:127.0.0.1", "2002:0a00:0001::1", "fd00::1", "fe80::1"):
        assert refusal(ipaddress.ip_address(text)) is not None, text
    for text in ("93.184.216.34", "2606:4700::1111"):
        assert refusal(ipaddress.ip_address(text)) is None, text
    for url in ("http://user:pw@93.184.216.34/", "http://93.184.216.34/" + "a" * 2100, "http://exa mple.com/"):
        with pytest.raises(WebhookUrlError):
            check_url(url, allow_private=False)

"""Issue 16, resource limits and brute force, reproduced through HTTP: YAML alias bombs in a card header, gzip
bombs on git-upload-pack, bodies read before authentication, sign-in without a limit, an open /metrics, and
error messages that make an invalid header.

Tests that count failures per address connect from their own loopback address (127.x.y.z: Linux answers
the whole 127/8), so the shared server's budget for 127.0.0.1, which every other test uses, is never spent.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import statistics
import time
import zlib

import httpx
import pytest

from support import Account, LiveServer

_ADDRESSES = itertools.count(10)


def _own_address() -> str:
    """A loopback source address no other test uses."""
    n = next(_ADDRESSES)
    return f"127.0.{n // 250 + 16}.{n % 250 + 2}"


def _client(source: str | None = None, **kwargs: object) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source or _own_address())
    return httpx.Client(transport=transport, timeout=60, **kwargs)  # type: ignore[arg-type]


def _auth(account: Account) -> dict[str, str]:
    return {"authorization": f"Bearer {account.write_token}"}


def _make_repo(server: LiveServer, account: Account, name: str, *, private: bool = False) -> str:
    repo = f"{account.name}/{name}"
    r = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": repo, "type": "model", "private": private},
        headers=_auth(account),
    )
    assert r.status_code == 200, r.text
    return repo


def _commit_file(server: LiveServer, account: Account, repo: str, path: str, data: bytes) -> httpx.Response:
    lines = [
        {"key": "header", "value": {"summary": "add " + path, "description": ""}},
        {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}},
    ]
    return httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content=("\n".join(json.dumps(line) for line in lines) + "\n").encode(),
        headers={**_auth(account), "content-type": "application/x-ndjson"},
        timeout=60,
    )


def _head(server: LiveServer, repo: str, account: Account) -> str:
    r = httpx.get(f"{server.url}/api/models/{repo}/refs", headers=_auth(account))
    return r.json()["branches"][0]["targetCommit"]


# --- 1. YAML alias bombs -----------------------------------------------------------------------------------


def _alias_bomb(levels: int, width: int = 9) -> bytes:
    lines = ["---", f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines += ["---", "# card"]
    return ("\n".join(lines) + "\n").encode()


def test_yaml_alias_bomb_in_card_is_refused_at_commit(server: LiveServer) -> None:
    """Finding: a 395-byte README header expanded to 131 MB of card JSON. The commit is refused (400, in
    words), nothing is written, and the index row and API answers stay small and fast."""
    account = server.account("yamlbomb")
    repo = _make_repo(server, account, "bomb")
    before = _head(server, repo, account)
    bomb = _alias_bomb(6)  # 9**6 = 531,441 strings from a few hundred bytes
    assert len(bomb) < 400
    r = _commit_file(server, account, repo, "README.md", bomb)
    assert r.status_code == 400, r.text
    assert "alias" in r.json()["error"].lower()
    assert r.headers["x-error-message"]
    assert _head(server, repo, account) == before  # nothing written
    info = httpx.get(f"{server.url}/api/models/{repo}", headers=_auth(account), timeout=10)
    assert info.status_code == 200 and len(info.content) < 10_000

    # A self-referencing alias (a cycle) and a deep nest are refused the same way.
    cycle = b"---\na: &a [*a]\n---\n"
    assert _commit_file(server, account, repo, "README.md", cycle).status_code == 400
    deep = b"---\nx: " + b"[" * 200 + b"]" * 200 + b"\n---\n"
    r = _commit_file(server, account, repo, "README.md", deep)
    assert r.status_code == 400 and "deep" in r.json()["error"].lower(), r.text
    # A normal card with an alias or two still commits.
    fine = b"---\nlicense: mit\nbase: &b bert\nbase_model: *b\ntags: [a, b]\n---\n# hello\n"
    r = _commit_file(server, account, repo, "README.md", fine)
    assert r.status_code == 200, r.text
    info = httpx.get(f"{server.url}/api/models/{repo}", headers=_auth(account)).json()
    assert info["cardData"]["base_model"] == "bert"


def test_card_loader_never_expands_an_oversized_header() -> None:
    """Finding: old commits with a bomb (written before the check) must never be expanded when read: the one
    card loader gives no card for them instead of building 531,441 strings."""
    from hubstead.repos.cards import CardHeaderError, check_card_header, parse_card_yaml

    bomb = _alias_bomb(9).decode()  # 387 million strings if expanded
    started = time.perf_counter()
    assert parse_card_yaml(bomb) is None
    with pytest.raises(CardHeaderError):
        check_card_header(bomb.encode())
    assert time.perf_counter() - started < 1.0


def test_a_bomb_expanded_by_an_older_hub_is_reindexed_at_start(own_server: LiveServer) -> None:
    """Finding: index rows already holding a bomb's expanded card (131 MB, written before the bound) kept making
    model_info and the lists slow. At start the hub re-indexes any row whose stored card is larger than any card
    the loader accepts, from the README at main's head."""
    import sqlite3

    account = own_server.account("oldbomb")
    repo = _make_repo(own_server, account, "old")
    r = _commit_file(own_server, account, repo, "README.md", b"---\nlicense: mit\n---\n# fine\n")
    assert r.status_code == 200, r.text
    own_server.kill()
    expanded = json.dumps({"license": "mit", "bomb": [["lol" * 1000] * 1000] * 4})  # 12 MB, as an old hub stored
    with sqlite3.connect(own_server.data_dir / "hubstead.db") as db:
        cursor = db.execute("UPDATE repos SET card_data = ? WHERE id_key = ?", (expanded, repo.lower()))
        assert cursor.rowcount == 1
    own_server.start()
    info = httpx.get(f"{own_server.url}/api/models/{repo}", headers=_auth(account), timeout=30)
    assert info.status_code == 200 and len(info.content) < 10_000, len(info.content)
    assert info.json()["cardData"] == {"license": "mit"}


# --- 2. gzip bombs -----------------------------------------------------------------------------------------


def _gzip_of_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    out = [packer.compress(block) for _ in range(size // len(block))]
    out.append(packer.flush())
    return b"".join(out)


def test_gzip_bomb_on_upload_pack_is_refused(server: LiveServer) -> None:
    """Finding: git-upload-pack decompressed a gzip body without a bound (1 MB in, 2 GB of memory), for
    anyone, on any public repo. 100 MiB of zeros (100 KB gzipped) now stops at the bound with a 413."""
    account = server.account("gzipbomb")
    repo = _make_repo(server, account, "clone-me")
    body = _gzip_of_zeros(100 * 1024 * 1024)
    assert len(body) < 200_000
    r = httpx.post(
        f"{server.url}/{repo}.git/git-upload-pack",
        content=body,
        headers={"content-type": "application/x-git-upload-pack-request", "content-encoding": "gzip"},
        timeout=60,
    )
    assert r.status_code == 413, r.text
    assert "decompress" in r.headers["x-error-message"].lower()
    # Invalid gzip is a clear 400, not a 500.
    r = httpx.post(
        f"{server.url}/{repo}.git/git-upload-pack",
        content=b"not gzip at all",
        headers={"content-type": "application/x-git-upload-pack-request", "content-encoding": "gzip"},
    )
    assert r.status_code == 400, r.text


# --- 3. bodies read before authentication -------------------------------------------------------------------


def _answer_after_partial_body(server: LiveServer, head: str, sent: int = 1024 * 1024) -> tuple[int, str]:
    """Send the request line and headers, then ``sent`` bytes of body (of a body announced as much larger or
    chunked), and read the answer without sending the rest. Returns the status and the raw answer head."""
    chunked = "transfer-encoding: chunked" in head.lower()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(_own_address(), 0)) as sock:
        sock.sendall(head.encode() + b"\r\n")
        payload = b"x" * sent
        try:
            if chunked:
                sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            else:
                sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all: fine
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                data = sock.recv(65536)
            except TimeoutError as exc:  # the server is still waiting for the rest of the body
                raise AssertionError(f"no answer after {sent} bytes of body: {head.splitlines()[0]}") from exc
            if not data:
                break
            answer += data
    text = answer.decode("latin-1")
    return int(text.split(" ", 2)[1]), text


def _request_head(method: str, path: str, *headers: str) -> str:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "host: 127.0.0.1", *headers, ""])


def test_oversized_inference_body_is_refused_before_it_is_read(server: LiveServer) -> None:
    """Finding: an anonymous 400 MB POST /v1/embeddings was received in full before any answer. A
    Content-Length over the route's limit is a 413 after the first megabyte, on the direct inference path
    and through FastAPI alike."""
    for path in ("/v1/embeddings", "/models/someone/some-model", "/v1/chat/completions"):
        head = _request_head("POST", path, "content-type: application/json", f"content-length: {400 * 2**20}")
        status, text = _answer_after_partial_body(server, head)
        assert status == 413, text


def test_chunked_inference_body_is_cut_off_at_the_limit(server: LiveServer) -> None:
    """Finding: a chunked body has no Content-Length to refuse: it is cut off at the route's limit (413)."""
    head = _request_head("POST", "/v1/embeddings", "content-type: application/json", "transfer-encoding: chunked")
    status, text = _answer_after_partial_body(server, head, sent=40 * 2**20)
    assert status == 413, text


def test_bad_token_is_refused_before_the_body_is_read(server: LiveServer) -> None:
    """Finding: with an invalid token, the 401 came only after the whole body (embeddings, commit)."""
    account = server.account("bodyauth")
    repo = _make_repo(server, account, "target")
    bad = "authorization: Bearer hs_not_a_real_token"
    cases = [
        _request_head("POST", "/v1/embeddings", bad, "content-type: application/json", "transfer-encoding: chunked"),
        _request_head("POST", "/models/someone/some-model", bad, "transfer-encoding: chunked"),
        _request_head("POST", f"/api/models/{repo}/commit/main", bad, f"content-length: {200 * 2**20}"),
        _request_head("POST", f"/{repo}.git/info/lfs/objects/batch", bad, "transfer-encoding: chunked"),
        _request_head("POST", f"/{repo}.git/info/lfs/objects/verify", bad, "transfer-encoding: chunked"),
    ]
    for head in cases:
        status, text = _answer_after_partial_body(server, head)
        assert status == 401, text


def test_anonymous_commit_is_refused_before_the_body_is_read(server: LiveServer) -> None:
    """Finding: an anonymous 200 MB commit body was spooled to disk in full before the 401/404."""
    account = server.account("bodyanon")
    repo = _make_repo(server, account, "target")
    head = _request_head("POST", f"/api/models/{repo}/commit/main", f"content-length: {200 * 2**20}")
    status, text = _answer_after_partial_body(server, head)
    assert status == 401, text
    # Preupload (the commit's first call) likewise.
    head = _request_head("POST", f"/api/models/{repo}/preupload/main", f"content-length: {10 * 2**20}")
    status, text = _answer_after_partial_body(server, head)
    assert status == 401, text
    # A read token cannot write: refused as early.
    head = _request_head(
        "POST", f"/api/models/{repo}/commit/main", f"authorization: Bearer {account.read_token}",
        "transfer-encoding: chunked",
    )  # fmt: skip
    status, text = _answer_after_partial_body(server, head)
    assert status == 403, text
    # LFS verify confirms an upload into the repo: a caller who cannot write it is refused as early.
    head = _request_head("POST", f"/{repo}.git/info/lfs/objects/verify", "transfer-encoding: chunked")
    status, text = _answer_after_partial_body(server, head)
    assert status == 401, text


def test_json_api_body_is_bounded(server: LiveServer) -> None:
    """Finding: every POST/PUT route reads its body with a bound fit for what it needs: a JSON API call (here
    repo creation) is not a way to make the server hold hundreds of megabytes."""
    account = server.account("bodyjson")
    head = _request_head(
        "POST", "/api/repos/create", f"authorization: Bearer {account.write_token}", "content-type: application/json",
        f"content-length: {300 * 2**20}",
    )  # fmt: skip
    status, text = _answer_after_partial_body(server, head)
    assert status == 413, text


# --- 4. sign-in and token brute force ---------------------------------------------------------------------


def _user_with_password(server: LiveServer, prefix: str, password: str = "correct horse 1") -> str:
    name = server.unique(prefix)
    server.cli("users", "create", name, "--password", password)
    return name


def _sign_in(client: httpx.Client, server: LiveServer, name: str, password: str) -> httpx.Response:
    client.cookies.set("hubstead_login_csrf", "t")
    return client.post(
        f"{server.url}/login",
        data={"username": name, "password": password, "login_csrf": "t", "next": "/"},
        follow_redirects=False,
    )


def test_sign_in_locks_an_account_after_repeated_failures(server: LiveServer) -> None:
    """Finding: 60 wrong passwords in 1.8 s, no limit. After 10 failures the account is locked for a while:
    429 with Retry-After and words saying so, even with the right password, even from another address."""
    name = _user_with_password(server, "locked")
    with _client() as client:
        for _ in range(10):
            assert _sign_in(client, server, name, "wrong password").status_code == 401
        r = _sign_in(client, server, name, "wrong password")
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) > 0
        assert "too many" in r.text.lower()
    with _client() as other:
        r = _sign_in(other, server, name, "correct horse 1")
        assert r.status_code == 429, r.text
    # Another account is not affected.
    other_name = _user_with_password(server, "unlocked")
    with _client() as client:
        assert _sign_in(client, server, other_name, "correct horse 1").status_code == 303


def test_sign_in_is_limited_per_address(server: LiveServer) -> None:
    """Finding: one address may try many accounts; past the per-address budget it gets 429 too."""
    from hubstead.auth.throttle import DEFAULT_SIGNIN_PER_ADDRESS

    with _client() as client:
        statuses = [
            _sign_in(client, server, f"nobody-{i}", "x").status_code for i in range(DEFAULT_SIGNIN_PER_ADDRESS + 1)
        ]
    assert statuses[:-1] == [401] * DEFAULT_SIGNIN_PER_ADDRESS
    assert statuses[-1] == 429


def test_unknown_user_answers_as_slowly_as_a_real_one(server: LiveServer) -> None:
    """Finding: an unknown user name answered in 2 ms, a real one in 30 ms (user enumeration). The answer now
    takes the same work (scrypt against a dummy hash): medians within a factor of 3."""
    name = _user_with_password(server, "timing")

    def median(user: str, client: httpx.Client) -> float:
        times = []
        for _ in range(8):  # under the lockout threshold of 10
            started = time.perf_counter()
            assert _sign_in(client, server, user, "wrong password").status_code == 401
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    with _client() as client:
        _sign_in(client, server, "warm-up", "x")  # open the connection
        real = median(name, client)
        unknown = median(server.unique("nosuchuser"), client)
    ratio = max(real, unknown) / min(real, unknown)
    print(f"sign-in medians: real user {real * 1000:.1f} ms, unknown user {unknown * 1000:.1f} ms")
    assert ratio < 3, (real, unknown)


def test_repeated_invalid_tokens_get_429(server: LiveServer) -> None:
    """Finding: invalid bearer tokens could be tried without limit. Past a per-address budget the answer is
    429 with Retry-After; a valid token from another address still works."""
    from hubstead.auth.throttle import DEFAULT_TOKEN_FAILURES_PER_ADDRESS

    account = server.account("tokens")
    with _client() as client:
        for i in range(DEFAULT_TOKEN_FAILURES_PER_ADDRESS):
            r = client.get(f"{server.url}/api/whoami-v2", headers={"authorization": f"Bearer hs_guess{i}"})
            assert r.status_code == 401, r.text
        r = client.get(f"{server.url}/api/whoami-v2", headers={"authorization": "Bearer hs_guess-last"})
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) > 0
        # Inference routes count the same failures.
        r = client.post(f"{server.url}/v1/embeddings", json={}, headers={"authorization": "Bearer hs_x"})
        assert r.status_code == 429, r.text
    with _client() as client:
        r = client.get(f"{server.url}/api/whoami-v2", headers=_auth(account))
        assert r.status_code == 200


# --- 5. /metrics --------------------------------------------------------------------------------------------


def test_metrics_need_a_token_and_hide_private_models(server: LiveServer) -> None:
    """Finding: /metrics was open to anyone and named private models. Anonymous: 401. An admin's token: every
    series. Another user's token: only series of models that user can read."""
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    owner = server.account("metricsowner")
    private = _make_repo(server, owner, "secret-model", private=True)
    # A call on the private model puts it in the series (no files: the load fails, the call is counted).
    r = httpx.post(f"{server.url}/models/{private}/pipeline/feature-extraction", json={"inputs": "x"},
                   headers=_auth(owner), timeout=60)  # fmt: skip
    assert r.status_code >= 400
    # The inference series are the serving process's: in a deployment, the compute process's own scrape target.
    services = server.services_url()
    assert httpx.get(f"{services}/metrics").status_code == 401
    admin = server.account("metricsadmin", admin=True)
    r = httpx.get(f"{services}/metrics", headers=_auth(admin))
    assert r.status_code == 200 and private in r.text
    stranger = server.account("metricsstranger")
    r = httpx.get(f"{services}/metrics", headers=_auth(stranger))
    assert r.status_code == 200 and "hubstead_request_count" in r.text
    assert private not in r.text
    r = httpx.get(f"{services}/metrics", headers=_auth(owner))
    assert r.status_code == 200 and private in r.text


# --- 6. error messages as headers ---------------------------------------------------------------------------


def test_error_message_with_newlines_is_a_valid_header(server: LiveServer) -> None:
    """Finding: an error message with a newline made X-Error-Message an invalid header and the connection
    dropped with no answer. A model id with a newline and non-latin-1 text is echoed in the error: the answer
    comes, the header is one line, and the body keeps the message."""
    r = httpx.post(f"{server.url}/v1/embeddings", json={"model": "evil/x\r\nSet-Cookie: a=b ☃", "input": "x"})
    assert r.status_code == 404, r.text
    header = r.headers["x-error-message"]
    assert "\n" not in header and "\r" not in header and "set-cookie" not in {k.lower() for k in r.headers if k != "x-error-message"}
    assert "evil/x" in header


def test_error_header_value_is_always_valid() -> None:
    """Finding (unit): the one function that writes X-Error-Message makes any message a valid header value."""
    from hubstead.errors import error_header_value

    value = error_header_value("load failed:\nTraceback\r\n\x00\x7f é ☃ " + "y" * 5000)
    assert all(32 <= ord(c) < 256 and ord(c) != 127 for c in value), value
    assert len(value) <= 1000
    assert "é" in value and "\\u2603" in value
    value.encode("latin-1")

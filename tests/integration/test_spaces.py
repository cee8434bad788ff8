"""Spaces through the real clients: the space calls of huggingface_hub (oldest, a 1.x and the newest we claim),
a Gradio space pushed and called with gradio_client (predict, the queue, streaming), secrets that reach the app
but never the API, sleep and wake.

A static space needs no environment build, so the client-version tests use one; the Gradio tests share one
uv-built environment (gradio pinned: every Gradio space here has the same key, built once per server).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from client_venvs import client_python
from support import Account, LiveServer, last_json, run_client, web_session

pytestmark = pytest.mark.slow

GRADIO_VERSION = "6.31.0"
VERSIONS = ["0.30.2", "1.33.0", "newest"]

STATIC_README = "---\ntitle: Static demo\nemoji: 🧪\ncolorFrom: blue\ncolorTo: green\nsdk: static\n---\n# Static\n"

CLIENT_SCRIPT = """
import json, time
import huggingface_hub
from huggingface_hub import HfApi
api = HfApi(token={token!r})
repo = {repo!r}
out = {{"version": huggingface_hub.__version__}}

def outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as exc:
        response = getattr(exc, "response", None)
        return [type(exc).__name__, getattr(response, "status_code", None)]

api.create_repo(repo, repo_type="space", space_sdk="static",
                space_secrets=[{{"key": "API_KEY", "value": "s3cret-value"}}],
                space_variables=[{{"key": "MODEL", "value": "tiny"}}])
api.upload_file(path_or_fileobj={readme!r}.encode(), path_in_repo="README.md", repo_id=repo, repo_type="space")
api.upload_file(path_or_fileobj=b"<h1>hello from a static space</h1>", path_in_repo="index.html", repo_id=repo,
                repo_type="space")
deadline = time.time() + 60
while time.time() < deadline:
    runtime = api.get_space_runtime(repo)
    if runtime.stage not in ("BUILDING", "APP_STARTING"):
        break
    time.sleep(0.3)
out["stage"] = runtime.stage
out["error"] = runtime.raw.get("errorMessage")
out["hardware"] = [runtime.hardware, runtime.requested_hardware]
info = api.space_info(repo)
out["info"] = [info.sdk, getattr(info, "host", None), getattr(info, "subdomain", None),
               info.runtime.stage if info.runtime else None]
out["variables"] = {{k: v.value for k, v in api.get_space_variables(repo).items()}}
api.add_space_variable(repo, "TEMPERATURE", "0.5", description="sampling")
api.delete_space_variable(repo, "MODEL")
out["variables_after"] = {{k: [v.value, v.description] for k, v in api.get_space_variables(repo).items()}}
api.add_space_secret(repo, "OTHER", "another-secret")
api.delete_space_secret(repo, "OTHER")
if hasattr(api, "get_space_secrets"):
    out["secrets"] = sorted(api.get_space_secrets(repo))
out["bad_secret"] = outcome(lambda: api.add_space_secret(repo, "PATH", "x"))
out["sleep"] = api.set_space_sleep_time(repo, 3600).sleep_time
out["hardware_bad"] = outcome(lambda: api.request_space_hardware(repo, "a100-large"))
out["hardware_up"] = api.request_space_hardware(repo, "cpu-upgrade").requested_hardware
out["paused"] = api.pause_space(repo).stage
out["restarted"] = api.restart_space(repo).stage
deadline = time.time() + 60
while time.time() < deadline and api.get_space_runtime(repo).stage != "RUNNING":
    time.sleep(0.3)
out["after_restart"] = api.get_space_runtime(repo).stage
if hasattr(api, "list_spaces_hardware"):
    out["offered"] = [h.name for h in api.list_spaces_hardware()]
copy = repo + "-copy"
if hasattr(api, "duplicate_repo"):
    api.duplicate_repo(repo, to_id=copy, repo_type="space")
else:
    api.duplicate_space(repo, to_id=copy)
out["copy_variables"] = sorted(api.get_space_variables(copy))
copy2 = repo + "-copy2"
if hasattr(api, "duplicate_repo"):
    api.duplicate_repo(repo, to_id=copy2, repo_type="space", space_secrets=[{{"key": "NEW", "value": "n"}}],
                       space_variables=[{{"key": "EXTRA", "value": "e"}}])
    out["copy2_variables"] = sorted(api.get_space_variables(copy2))
    out["copy2_secrets"] = sorted(api.get_space_secrets(copy2))
if hasattr(api, "get_space_secrets"):
    out["copy_secrets"] = sorted(api.get_space_secrets(copy))
out["reader_restart"] = outcome(lambda: HfApi(token={reader_token!r}).restart_space(repo))
out["reader_runtime"] = HfApi(token={reader_token!r}).get_space_runtime(repo).stage
print(json.dumps(out))
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_space_calls_with_each_client_generation(server: LiveServer, env_for, version: str) -> None:
    """create_repo with secrets and variables, the runtime stages, variables and secrets (values never shown),
    sleep time, hardware (refused when this host does not offer it), pause, restart, duplicate (variables come
    along, secrets do not), with huggingface_hub 0.30.2, 1.33.0 and the newest; a reader sees the runtime but may
    not restart."""
    owner, reader = server.account("spown"), server.account("sprdr")
    repo = f"{owner.name}/{server.unique('static')}"
    python = sys.executable if version == "newest" else client_python(version)
    script = CLIENT_SCRIPT.format(token=owner.write_token, repo=repo, readme=STATIC_README,
                                  reader_token=reader.write_token)  # fmt: skip
    out = last_json(run_client(script, env_for(None), python=python))
    assert isinstance(out, dict)
    assert out["stage"] == "RUNNING", out
    assert out["info"][0] == "static" and out["info"][3] == "RUNNING"
    if version != "0.30.2":  # 0.30.2's SpaceInfo has no host field
        assert out["info"][1].endswith(f"/spaces/{repo}/app/")
    assert out["variables"] == {"MODEL": "tiny"}
    assert out["variables_after"] == {"TEMPERATURE": ["0.5", "sampling"]}
    if "secrets" in out:
        assert out["secrets"] == ["API_KEY"]
    assert out["bad_secret"][1] == 400
    assert out["sleep"] == 3600
    assert out["hardware_bad"][1] == 400
    assert out["hardware_up"] == "cpu-upgrade"
    assert out["paused"] == "PAUSED"
    assert out["restarted"] in ("BUILDING", "APP_STARTING", "RUNNING")
    assert out["after_restart"] == "RUNNING"
    if "offered" in out:
        assert out["offered"][:2] == ["cpu-basic", "cpu-upgrade"]
    assert out["copy_variables"] == ["TEMPERATURE"]
    assert out.get("copy_secrets", []) == []
    if "copy2_variables" in out:
        assert out["copy2_variables"] == ["EXTRA", "TEMPERATURE"] and out["copy2_secrets"] == ["NEW"]
    assert out["reader_restart"][1] in (401, 403)
    assert out["reader_runtime"] in ("RUNNING", "BUILDING", "APP_STARTING")
    page = httpx.get(f"{server.url}/spaces/{repo}/app/", timeout=30)
    assert page.status_code == 200 and "hello from a static space" in page.text
    # Deleting a copy stops it and removes its folder.
    copy_api = HfApi(endpoint=server.url, token=owner.write_token)
    auth = {"authorization": f"Bearer {owner.write_token}"}
    copy_pk = int(httpx.get(f"{server.url}/api/spaces/{repo}-copy", headers=auth, timeout=30).json()["_id"], 16)
    folder = server.data_dir / "spaces" / str(copy_pk)
    assert wait_for_stage(copy_api, f"{repo}-copy", ("RUNNING",), timeout=60).stage == "RUNNING"
    assert folder.is_dir()
    copy_api.delete_repo(f"{repo}-copy", repo_type="space")
    deadline = time.monotonic() + 10
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists()
    # The secret's value is in no API answer.
    api = HfApi(endpoint=server.url, token=owner.write_token)
    for path in ("runtime", "secrets", "variables"):
        assert "s3cret-value" not in httpx.get(
            f"{server.url}/api/spaces/{repo}/{path}", headers={"authorization": f"Bearer {owner.write_token}"}
        ).text
    assert "s3cret-value" not in json.dumps(api.space_info(repo).__dict__, default=str)


GRADIO_APP = '''
import os, time
import gradio as gr

def reverse(text):
    return text[::-1]

def count(n):
    for i in range(int(n)):
        time.sleep(0.05)
        yield f"step {i + 1}"

def env(name):
    value = os.environ.get(name)
    return "unset" if value is None else f"set:{len(value)}:{value[:2]}"

def whoami():
    from huggingface_hub import HfApi
    return HfApi().whoami()["name"]

with gr.Blocks() as demo:
    t = gr.Textbox(); o = gr.Textbox()
    gr.Button("reverse").click(reverse, t, o, api_name="reverse")
    n = gr.Number(); s = gr.Textbox()
    gr.Button("count").click(count, n, s, api_name="count")
    k = gr.Textbox(); v = gr.Textbox()
    gr.Button("env").click(env, k, v, api_name="env")
    w = gr.Textbox()
    gr.Button("whoami").click(whoami, None, w, api_name="whoami")

demo.queue().launch()
'''


def gradio_readme(title: str) -> str:
    return f"---\ntitle: {title}\nemoji: 🔁\nsdk: gradio\nsdk_version: {GRADIO_VERSION}\napp_file: app.py\n---\n"


def wait_for_stage(api: HfApi, repo: str, stages: tuple[str, ...], timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    runtime = api.get_space_runtime(repo)
    while runtime.stage not in stages and time.monotonic() < deadline:
        time.sleep(0.5)
        runtime = api.get_space_runtime(repo)
    return runtime


def push_gradio_space(server: LiveServer, owner: Account, name: str, **create: Any) -> str:
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/{name}"
    api.create_repo(repo, repo_type="space", space_sdk="gradio", **create)
    api.upload_file(path_or_fileobj=gradio_readme(name).encode(), path_in_repo="README.md", repo_id=repo,
                    repo_type="space")  # fmt: skip
    api.upload_file(path_or_fileobj=GRADIO_APP.encode(), path_in_repo="app.py", repo_id=repo, repo_type="space")
    runtime = wait_for_stage(api, repo, ("RUNNING", "BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR"))
    assert runtime.stage == "RUNNING", (runtime.stage, runtime.raw.get("errorMessage"))
    return repo


@pytest.fixture(scope="module")
def gradio_space(server: LiveServer) -> Iterator[tuple[str, Account]]:
    owner = server.account("grown")
    repo = push_gradio_space(
        server, owner, server.unique("gradio"), space_secrets=[{"key": "API_KEY", "value": "xy-very-secret"}]
    )
    yield repo, owner


GRADIO_CLIENT_SCRIPT = """
import json
from gradio_client import Client
client = Client({repo!r}, token={token!r}, verbose=False)
out = {{}}
out["reverse"] = client.predict("hubstead", api_name="/reverse")
job = client.submit(3, api_name="/count")
out["stream"] = [x for x in job]
out["final"] = job.result()
out["secret"] = client.predict("API_KEY", api_name="/env")
out["hub_secret_key"] = client.predict("HUBSTEAD_SECRET_KEY", api_name="/env")
out["whoami"] = client.predict(api_name="/whoami")
print(json.dumps(out))
"""


def test_gradio_client_calls_a_space_pushed_to_the_hub(server: LiveServer, env_for, gradio_space) -> None:
    """gradio_client.Client("owner/name") with HF_ENDPOINT at the hub finds the space (space_info's host), and
    predict, the queue and streaming outputs work through the hub's proxy; the app has its secret, not the hub's
    key, and its HF_TOKEN acts as its owner."""
    repo, owner = gradio_space
    script = GRADIO_CLIENT_SCRIPT.format(repo=repo, token=owner.write_token)
    out = last_json(run_client(script, env_for(owner.write_token), timeout=180))
    assert isinstance(out, dict)
    assert out["reverse"] == "daetsbuh"
    assert out["stream"][-1] == "step 3" and out["final"] == "step 3"
    assert out["secret"] == "set:14:xy"
    assert out["hub_secret_key"] == "unset"
    assert out["whoami"] == owner.name


def test_space_templates_seed_a_new_space(server: LiveServer) -> None:
    """list_space_templates lists this hub's templates; create_repo(space_template=...) starts the space from one
    (its files committed, its SDK taken from it), and it runs; an unknown template is refused before anything is
    made."""
    owner = server.account("tplown")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    templates = {t.name: t for t in api.list_space_templates()}
    assert {"Static HTML", "Gradio: chat", "Gradio: embeddings", "Streamlit: hello"} <= set(templates)
    repo = f"{owner.name}/{server.unique('fromtpl')}"
    api.create_repo(repo, repo_type="space", space_template="Static HTML")
    assert sorted(api.list_repo_files(repo, repo_type="space")) == [".gitattributes", "README.md", "index.html"]
    assert api.space_info(repo).sdk == "static"
    assert wait_for_stage(api, repo, ("RUNNING",), timeout=60).stage == "RUNNING"
    refused = httpx.post(f"{server.url}/api/repos/create", headers={"authorization": f"Bearer {owner.write_token}"},
                         json={"name": "nope", "type": "space", "sdk": "gradio", "template": "no-such"}, timeout=30)  # fmt: skip
    assert refused.status_code == 400 and "no-such" in refused.json()["error"]
    assert not api.repo_exists(f"{owner.name}/nope", repo_type="space")


def test_a_docker_space_says_why_it_does_not_run_here(server: LiveServer) -> None:
    """A docker space on a host that cannot run containers gets CONFIG_ERROR naming the reason, not a silent wait."""
    owner = server.account("dkown")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/{server.unique('docker')}"
    api.create_repo(repo, repo_type="space", space_sdk="docker")
    readme = b"---\ntitle: d\nsdk: docker\napp_port: 7860\n---\n"
    api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=repo, repo_type="space")
    api.upload_file(path_or_fileobj=b"FROM scratch\n", path_in_repo="Dockerfile", repo_id=repo, repo_type="space")
    # The README commit alone is NO_APP_FILE; the Dockerfile commit follows it (the supervisor may be busy with
    # other spaces on a loaded machine: a generous bound, only spent when it is).
    runtime = wait_for_stage(api, repo, ("CONFIG_ERROR", "RUNNING", "BUILD_ERROR"), timeout=150)
    assert runtime.stage == "CONFIG_ERROR"
    assert "Docker spaces need podman or docker" in runtime.raw["errorMessage"]


def test_a_renamed_space_runs_under_its_new_name(server: LiveServer) -> None:
    """move_repo of a running space: it restarts under the new id (new app address, subdomain, SPACE_ID)."""
    owner = server.account("mvown")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    old, new = f"{owner.name}/{server.unique('before')}", f"{owner.name}/{server.unique('after')}"
    api.create_repo(old, repo_type="space", space_sdk="static")
    api.upload_file(path_or_fileobj=b"<p>moving</p>", path_in_repo="index.html", repo_id=old, repo_type="space")
    assert wait_for_stage(api, old, ("RUNNING",), timeout=60).stage == "RUNNING"
    api.move_repo(old, new, repo_type="space")
    assert wait_for_stage(api, new, ("RUNNING",), timeout=60).stage == "RUNNING"
    info = api.space_info(new)
    assert info.subdomain == new.replace("/", "-").lower() and info.host.endswith(f"/spaces/{new}/app/")
    answer = httpx.get(f"{server.url}/spaces/{new}/app/", timeout=60)
    assert answer.status_code == 200 and "moving" in answer.text


def test_logs_wait_and_the_spaces_that_use_a_model(server: LiveServer, gradio_space) -> None:
    """fetch_space_logs gives the build log (the environment's making) and the run log (the app's own output)
    as the Hub's server-sent events; wait_for_space returns the running runtime; a space whose header names a
    model shows in that model's info (``spaces``)."""
    repo, owner = gradio_space
    api = HfApi(endpoint=server.url, token=owner.write_token)
    build = "".join(api.fetch_space_logs(repo, build=True))
    assert "==> Build" in build or "==> Using the cached environment" in build
    run = "".join(api.fetch_space_logs(repo))
    assert "Running on local URL" in run and "==> Running on port" in run
    assert api.wait_for_space(repo, timeout=30).stage == "RUNNING"
    model, dataset = f"{owner.name}/{server.unique('used')}", f"{owner.name}/{server.unique('data')}"
    api.create_repo(model)
    api.create_repo(dataset, repo_type="dataset")
    readme = f"---\ntitle: uses\nsdk: static\nmodels:\n- {model}\ndatasets:\n- {dataset}\n---\n"
    using = f"{owner.name}/{server.unique('user')}"
    api.create_repo(using, repo_type="space", space_sdk="static")
    api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=using, repo_type="space")
    assert using in (api.model_info(model).spaces or [])
    for page in (f"/{model}", f"/datasets/{dataset}"):  # "Spaces using it" on both pages
        html = httpx.get(server.url + page, timeout=30).text
        assert "Spaces using it" in html and f"/spaces/{using}" in html


def test_a_private_space_needs_the_viewers_token_and_never_sees_it(server: LiveServer, env_for) -> None:
    """A private space answers 404 to strangers; its owner's token opens it; in a browser under the hub's own
    address (where apps run sandboxed, their own requests without a session) the owner gets a page saying it opens
    on its own domain, not a broken app."""
    owner, stranger = server.account("prown", password="owner-pass-1"), server.account("prstr")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/{server.unique('private')}"
    api.create_repo(repo, repo_type="space", space_sdk="static", private=True)
    api.upload_file(path_or_fileobj=STATIC_README.encode(), path_in_repo="README.md", repo_id=repo, repo_type="space")
    api.upload_file(path_or_fileobj=b"<p>private</p>", path_in_repo="index.html", repo_id=repo, repo_type="space")
    assert wait_for_stage(api, repo, ("RUNNING",), timeout=60).stage == "RUNNING"
    url = f"{server.url}/spaces/{repo}/app/"
    assert httpx.get(url, timeout=30).status_code == 404
    assert httpx.get(url, headers={"authorization": f"Bearer {stranger.write_token}"}, timeout=30).status_code == 404
    opened = httpx.get(url, headers={"authorization": f"Bearer {owner.read_token}"}, timeout=30)
    assert opened.status_code == 200 and "private" in opened.text
    browser, _ = web_session(server, owner.name, "owner-pass-1")
    page = browser.get(f"/spaces/{repo}/app/", headers={"accept": "text/html"})
    browser.close()
    assert page.status_code == 403 and "data-private-space" in page.text and "--spaces-domain" in page.text


def test_a_space_sleeps_without_visitors_and_wakes_on_the_next(own_server_with) -> None:
    """With a short sleep time, a running space goes to SLEEPING (its process gone: no memory held), and the next
    visit wakes it: a browser gets the waking page, an API client waits and gets the app's answer."""
    server = own_server_with({"HUBSTEAD_SPACES_DEFAULT_SLEEP": "3"})
    owner = server.account("slown")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/{server.unique('sleepy')}"
    api.create_repo(repo, repo_type="space", space_sdk="static")
    api.upload_file(path_or_fileobj=STATIC_README.encode(), path_in_repo="README.md", repo_id=repo, repo_type="space")
    api.upload_file(path_or_fileobj=b"<p>awake</p>", path_in_repo="index.html", repo_id=repo, repo_type="space")
    assert wait_for_stage(api, repo, ("RUNNING",), timeout=60).stage == "RUNNING"
    url = f"{server.url}/spaces/{repo}/app/"
    assert httpx.get(url, timeout=30).status_code == 200
    asleep = wait_for_stage(api, repo, ("SLEEPING",), timeout=30)
    assert asleep.stage == "SLEEPING"
    page = httpx.get(url, headers={"accept": "text/html"}, timeout=30)
    assert page.status_code == 503 and "waking" in page.text.lower()
    answer = httpx.get(url, timeout=60)
    assert answer.status_code == 200 and "awake" in answer.text
    assert api.get_space_runtime(repo).stage == "RUNNING"


def test_spaces_domain_serves_each_space_on_its_own_host(own_server_with) -> None:
    """With --spaces-domain, ``{owner}-{name}.{domain}`` is the app (space_info's host says so); a private space
    there opens with a token, or with the signed link the hub's page gives a signed-in viewer (which becomes a
    cookie on that host only); a forged or other-space link opens nothing; the hub's own host is unchanged."""
    from hubstead.spaces.runtime import sign_app_access

    server = own_server_with({"HUBSTEAD_SPACES_DOMAIN": "spaces.test"})
    owner, stranger = server.account("dmown"), server.account("dmstr")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    name = server.unique("site")
    repo = f"{owner.name}/{name}"
    api.create_repo(repo, repo_type="space", space_sdk="static", private=True)
    api.upload_file(path_or_fileobj=STATIC_README.encode(), path_in_repo="README.md", repo_id=repo, repo_type="space")
    api.upload_file(path_or_fileobj=b"<p>on its own host</p>", path_in_repo="index.html", repo_id=repo,
                    repo_type="space")  # fmt: skip
    assert wait_for_stage(api, repo, ("RUNNING",), timeout=60).stage == "RUNNING"
    info = api.space_info(repo)
    subdomain = f"{owner.name}-{name}".lower()
    assert info.subdomain == subdomain and info.host == f"http://{subdomain}.spaces.test"
    host = {"host": f"{subdomain}.spaces.test"}
    assert httpx.get(server.url + "/", headers=host, timeout=30).status_code == 404
    opened = httpx.get(server.url + "/", headers={**host, "authorization": f"Bearer {owner.read_token}"}, timeout=30)
    assert opened.status_code == 200 and "own host" in opened.text
    secret_key = (server.data_dir / "secret.key").read_text().strip()
    with sqlite3.connect(server.data_dir / "hubstead.db") as db:  # the owner's user id
        owner_id = db.execute("select id from users where name = ?", (owner.name,)).fetchone()[0]
    signed = httpx.get(server.url + "/?__sign=" + sign_app_access(secret_key, subdomain, owner_id), headers=host,
                       timeout=30)  # fmt: skip
    assert signed.status_code == 200 and "own host" in signed.text
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Domain" not in cookie
    again = httpx.get(server.url + "/", headers={**host, "cookie": cookie.split(";")[0]}, timeout=30)
    assert again.status_code == 200
    other = sign_app_access(secret_key, "someone-else", owner_id)
    assert httpx.get(server.url + "/?__sign=" + other, headers=host, timeout=30).status_code == 404
    assert httpx.get(server.url + "/?__sign=1.2.3", headers=host, timeout=30).status_code == 404
    bad = httpx.get(server.url + "/", headers={**host, "authorization": f"Bearer {stranger.write_token}"}, timeout=30)
    assert bad.status_code == 404
    assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200


def test_the_hosts_memory_budget_puts_the_least_recently_visited_space_to_sleep(own_server_with) -> None:
    """With a budget smaller than any two running spaces use, starting a second puts the one visited least
    recently to sleep (never the last one running); visiting it again wakes it and puts the other to sleep."""
    server = own_server_with({"HUBSTEAD_SPACES_MEMORY_BUDGET": "1MiB"})
    owner = server.account("bdown")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repos = []
    for label in ("first", "second"):
        repo = f"{owner.name}/{server.unique(label)}"
        api.create_repo(repo, repo_type="space", space_sdk="static")
        api.upload_file(path_or_fileobj=STATIC_README.encode(), path_in_repo="README.md", repo_id=repo,
                        repo_type="space")  # fmt: skip
        api.upload_file(path_or_fileobj=f"<p>{label}</p>".encode(), path_in_repo="index.html", repo_id=repo,
                        repo_type="space")  # fmt: skip
        assert wait_for_stage(api, repo, ("RUNNING",), timeout=60).stage == "RUNNING"
        repos.append(repo)
    first, second = repos
    assert api.get_space_runtime(first).stage == "SLEEPING"
    answer = httpx.get(f"{server.url}/spaces/{first}/app/", timeout=60)
    assert answer.status_code == 200 and "first" in answer.text
    assert wait_for_stage(api, second, ("SLEEPING",), timeout=30).stage == "SLEEPING"


def test_a_hub_that_does_not_run_spaces_says_so(own_server_with) -> None:
    """Started with spaces off, a hub stores space repos; their runtime is STOPPED with the reason, and the app's
    address answers at once (503), never waiting for a build that will not come."""
    server = own_server_with({"HUBSTEAD_SPACES": "0"})
    owner = server.account("offown")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/{server.unique('off')}"
    api.create_repo(repo, repo_type="space", space_sdk="static")
    api.upload_file(path_or_fileobj=b"<p>x</p>", path_in_repo="index.html", repo_id=repo, repo_type="space")
    runtime = api.get_space_runtime(repo)
    assert runtime.stage == "STOPPED" and "--no-spaces" in runtime.raw["errorMessage"]
    started = time.monotonic()
    assert httpx.get(f"{server.url}/spaces/{repo}/app/", timeout=30).status_code == 503
    assert time.monotonic() - started < 5


WEBSOCKET_APP = """
import os
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()

@app.websocket("/echo")
async def echo(ws: WebSocket):
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message.get("text") is not None:
                await ws.send_text("echo:" + message["text"] + ":" + ws.headers.get("authorization", "none"))
            elif message.get("bytes") is not None:
                await ws.send_bytes(message["bytes"][::-1])
            else:
                return
    except WebSocketDisconnect:
        return

uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
"""


def test_websockets_pass_through_the_proxy_and_a_flood_is_cut_off(server: LiveServer) -> None:
    """An app's WebSocket works through the hub (text and binary, the viewer's token not forwarded); a client that
    floods it with messages is disconnected with 1008, and the hub keeps answering."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    owner = server.account("wsown")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/{server.unique('ws')}"
    api.create_repo(repo, repo_type="space", space_sdk="gradio")
    readme = f"---\ntitle: ws\nsdk: gradio\nsdk_version: {GRADIO_VERSION}\napp_file: app.py\n---\n"
    for path, content in (("README.md", readme), ("requirements.txt", "websockets\n"), ("app.py", WEBSOCKET_APP)):
        api.upload_file(path_or_fileobj=content.encode(), path_in_repo=path, repo_id=repo, repo_type="space")
    runtime = wait_for_stage(api, repo, ("RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"))
    assert runtime.stage == "RUNNING", runtime.raw.get("errorMessage")
    url = server.url.replace("http://", "ws://") + f"/spaces/{repo}/app/echo"

    async def talk() -> tuple[str, bytes, int | None, str]:
        headers = {"authorization": f"Bearer {owner.read_token}"}
        async with connect(url, additional_headers=headers) as ws:
            await ws.send("hi")
            text = await ws.recv()
            await ws.send(b"abc")
            data = await ws.recv()
        code, reason = None, ""
        async with connect(url) as ws:
            try:
                for i in range(5000):
                    await ws.send(f"m{i}")
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=10)
            except ConnectionClosed as closed:
                code, reason = closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""
        return str(text), bytes(data), code, reason

    # In a thread of its own: a browser test earlier in the session may leave an event loop on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        text, data, code, reason = pool.submit(asyncio.run, talk()).result()
    assert text == "echo:hi:none"
    assert data == b"cba"
    assert code == 1008 and "flood" in reason
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    assert api.get_space_runtime(repo).stage == "RUNNING"


_ = (os, subprocess)

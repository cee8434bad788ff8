"""Spaces that go wrong, through the real huggingface_hub client against a live hub: bad headers, missing files,
builds that fail, apps that crash, hang, eat memory or fork endlessly, apps that try to leave their sandbox, the
space's own token, and a hub restart.

Each fault is a ``gradio`` space whose ``app.py`` does not import gradio (it is plain Python: the stage machine and
the sandbox do not care), with ``sdk_version`` pinned, so every space here shares ONE uv-built environment (built
once per server from the warm uv cache). Each test asserts the stage AND the reason's words.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from support import Account, LiveServer

pytestmark = pytest.mark.slow

GRADIO_VERSION = "6.31.0"
SETTLED = ("RUNNING", "NO_APP_FILE", "CONFIG_ERROR", "BUILD_ERROR", "RUNTIME_ERROR", "PAUSED", "SLEEPING")
FAILED = ("NO_APP_FILE", "CONFIG_ERROR", "BUILD_ERROR", "RUNTIME_ERROR")


def readme(header: str = "") -> str:
    return f"---\ntitle: fault\nsdk: gradio\nsdk_version: {GRADIO_VERSION}\napp_file: app.py\n{header}---\n"


# A plain-Python app: runs ``BODY`` (which fills ``RESULT``), then answers every GET with RESULT as JSON on $PORT.
SERVE = '''
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
RESULT = {{}}
{body}
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        data = json.dumps(RESULT).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
print("serving", flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


def plain_app(body: str = "") -> str:
    return SERVE.format(body=textwrap.dedent(body))


def wait_for_stage(api: HfApi, repo: str, stages: tuple[str, ...] = SETTLED, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    runtime = api.get_space_runtime(repo)
    while runtime.stage not in stages and time.monotonic() < deadline:
        time.sleep(0.3)
        runtime = api.get_space_runtime(repo)
    return runtime


def push(server: LiveServer, owner: Account, files: dict[str, str], *, prefix: str = "fault", wait: tuple[str, ...]
         = SETTLED, namespace: str | None = None, timeout: float = 240, **create: Any) -> tuple[HfApi, str, Any]:  # fmt: skip
    """Create a gradio space and push ``files`` in one commit; the runtime once it reaches one of ``wait``."""
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{namespace or owner.name}/{server.unique(prefix)}"
    api.create_repo(repo, repo_type="space", space_sdk="gradio", **create)
    operations = [CommitOperationAdd(path, content.encode()) for path, content in files.items()]
    api.create_commit(repo, operations, commit_message="space", repo_type="space")
    return api, repo, wait_for_stage(api, repo, wait, timeout)


def error_of(runtime: Any) -> str:
    return str(runtime.raw.get("errorMessage") or "")


def run_log(api: HfApi, repo: str, build: bool = False) -> str:
    return "".join(api.fetch_space_logs(repo, build=build))


def raw_log(server: LiveServer, owner: Account, repo: str, kind: str = "run") -> str:
    """The log's lines so far, read from the SSE stream until it goes quiet (fetch_space_logs without follow stops
    at the first event stamped after the answer's Date header, and sometimes yields nothing here: see the report)."""
    lines: list[str] = []
    headers = {"authorization": f"Bearer {owner.write_token}"}
    try:
        with httpx.stream("GET", f"{server.url}/api/spaces/{repo}/logs/{kind}", headers=headers,
                          timeout=httpx.Timeout(30, read=3)) as answer:  # fmt: skip
            for line in answer.iter_lines():
                if line.startswith("data: {"):
                    lines.append(json.loads(line[6:])["data"])
    except httpx.ReadTimeout:
        pass
    return "".join(lines)


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Account:
    return server.account("fault")


# -- the configuration, before anything is built -------------------------------------------------------------------
def test_no_app_file(server: LiveServer, owner: Account) -> None:
    """A space whose header names app.py but has no such file stops at NO_APP_FILE, the reason naming the file."""
    _, _, runtime = push(server, owner, {"README.md": readme()})
    assert runtime.stage == "NO_APP_FILE", error_of(runtime)
    assert "app.py" in error_of(runtime)


@pytest.mark.parametrize(
    ("header", "words"),
    [("sdk: cobol\n", "Unknown `sdk: cobol`"), ("app_port: 5\n", "`app_port` must be a port number")],
)
def test_a_header_that_cannot_run_is_a_config_error(server: LiveServer, owner: Account, header: str,
                                                    words: str) -> None:  # fmt: skip
    """`sdk: cobol` and `app_port: 5` in the README header stop the space at CONFIG_ERROR with the reason."""
    text = readme(header).replace("sdk: gradio\n", "") if "sdk:" in header else readme(header)
    _, _, runtime = push(server, owner, {"README.md": text, "app.py": plain_app()})
    assert runtime.stage == "CONFIG_ERROR", error_of(runtime)
    assert words in error_of(runtime)


def test_packages_the_host_lacks_are_a_config_error(server: LiveServer, owner: Account) -> None:
    """packages.txt naming a Debian package this host does not have: CONFIG_ERROR naming the package (the hub
    installs no system packages)."""
    files = {"README.md": readme(), "app.py": plain_app(), "packages.txt": "coreutils\nhubstead-no-such-deb\n"}
    api, repo, runtime = push(server, owner, files)
    assert runtime.stage == "CONFIG_ERROR", error_of(runtime)
    assert "hubstead-no-such-deb" in error_of(runtime) and "coreutils" not in error_of(runtime)
    assert "hubstead-no-such-deb" in run_log(api, repo, build=True)


def test_a_requirement_that_cannot_install_is_a_build_error(server: LiveServer, owner: Account) -> None:
    """A requirement no index has: BUILD_ERROR, and the build log shows uv's reason naming the package."""
    files = {"README.md": readme(), "app.py": plain_app(),
             "requirements.txt": "this-package-does-not-exist-hubstead==1.0\n"}  # fmt: skip
    api, repo, runtime = push(server, owner, files)
    assert runtime.stage == "BUILD_ERROR", error_of(runtime)
    assert "could not be built" in error_of(runtime) and "build log" in error_of(runtime)
    log = run_log(api, repo, build=True)
    assert "this-package-does-not-exist-hubstead" in log
    assert "==> BUILD_ERROR" in log


# -- the app's process ---------------------------------------------------------------------------------------------
def test_a_syntax_error_is_a_runtime_error_with_the_traceback(server: LiveServer, owner: Account) -> None:
    """An app.py that does not parse: RUNTIME_ERROR, the reason ends with the traceback's last lines, and the run
    log has the SyntaxError."""
    api, repo, runtime = push(server, owner, {"README.md": readme(), "app.py": "def broken(:\n    pass\n"})
    assert runtime.stage == "RUNTIME_ERROR", error_of(runtime)
    assert "exit code 1" in error_of(runtime) and "SyntaxError" in error_of(runtime)
    assert "SyntaxError" in run_log(api, repo)


def test_a_crash_after_start_is_a_runtime_error(server: LiveServer, owner: Account) -> None:
    """An app that opens its port, then exits with status 3: RUNNING first, then RUNTIME_ERROR naming the exit
    code, with the app's last words."""
    body = """
    import threading
    def crash():
        print("about to crash", flush=True)
        os._exit(3)
    threading.Timer(2.0, crash).start()
    """
    api, repo, runtime = push(server, owner, {"README.md": readme(), "app.py": plain_app(body)},
                              wait=("RUNNING", *FAILED))  # fmt: skip
    assert runtime.stage == "RUNNING", error_of(runtime)
    runtime = wait_for_stage(api, repo, FAILED, timeout=60)
    assert runtime.stage == "RUNTIME_ERROR", error_of(runtime)
    assert "ended with exit code 3" in error_of(runtime) and "about to crash" in error_of(runtime)


class Watch:
    """Polls the hub's /healthz and another space's runtime from a thread; the slowest answer of each."""

    def __init__(self, server: LiveServer, api: HfApi, other: str) -> None:
        self.server, self.api, self.other = server, api, other
        self.slowest = {"healthz": 0.0, "runtime": 0.0}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for what, call in (("healthz", lambda: httpx.get(self.server.url + "/healthz", timeout=30)),
                               ("runtime", lambda: self.api.get_space_runtime(self.other))):  # fmt: skip
                started = time.monotonic()
                try:
                    answer: Any = call()
                    if what == "healthz" and answer.status_code != 200:
                        self.failures.append(f"healthz {answer.status_code}")
                    if what == "runtime" and answer.stage != "RUNNING":
                        self.failures.append(f"other space {answer.stage}")
                except Exception as exc:  # noqa: BLE001 - recorded and asserted on
                    self.failures.append(f"{what}: {exc!r}")
                self.slowest[what] = max(self.slowest[what], time.monotonic() - started)
            time.sleep(0.2)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture(scope="module")
def bystander(server: LiveServer, owner: Account) -> str:
    """A running space that must keep running while its neighbours misbehave."""
    _, repo, runtime = push(server, owner, {"README.md": readme(), "app.py": plain_app('RESULT["ok"] = 1')},
                            prefix="bystander")  # fmt: skip
    assert runtime.stage == "RUNNING", error_of(runtime)
    return repo


def test_memory_past_the_limit_stops_the_space(server: LiveServer, owner: Account, bystander: str) -> None:
    """A cpu-basic space (2 GiB) that allocates and touches 3 GiB: RUNTIME_ERROR "out of memory (limit 2 GiB)";
    /healthz and another space's runtime answer throughout, none slower than 5 s."""
    body = """
    print("allocating", flush=True)
    hog = []
    for _ in range(3 * 1024 // 64):
        hog.append(bytearray(b"x" * (64 * 2**20)))
    print("survived", flush=True)
    """
    api = HfApi(endpoint=server.url, token=owner.write_token)
    with Watch(server, api, bystander) as watch:
        api, repo, runtime = push(server, owner, {"README.md": readme(), "app.py": plain_app(body)},
                                  wait=FAILED, prefix="hog")  # fmt: skip
    assert runtime.stage == "RUNTIME_ERROR", error_of(runtime)
    assert "out of memory (limit 2 GiB)" in error_of(runtime)
    assert "survived" not in run_log(api, repo)
    assert not watch.failures, watch.failures
    assert max(watch.slowest.values()) < 5, watch.slowest


def test_a_fork_bomb_is_stopped_at_the_process_limit(server: LiveServer, owner: Account, bystander: str) -> None:
    """An app that forks endlessly (ignoring fork's failures) is stopped: RUNTIME_ERROR naming the 512-process
    limit, its processes gone (the host's process count back near where it was); the hub and another space keep
    answering, none slower than 5 s."""
    before = _process_count()
    body = """
    import time
    print("forking", flush=True)
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)
    """
    api = HfApi(endpoint=server.url, token=owner.write_token)
    with Watch(server, api, bystander) as watch:
        api, repo, runtime = push(server, owner, {"README.md": readme(), "app.py": plain_app(body)},
                                  wait=FAILED, prefix="forks", timeout=120)  # fmt: skip
    assert runtime.stage == "RUNTIME_ERROR", error_of(runtime)
    assert "more than 512 processes" in error_of(runtime)
    assert _process_count() < before + 50
    assert not watch.failures, watch.failures
    assert max(watch.slowest.values()) < 5, watch.slowest


def _process_count() -> int:
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit())


# -- the sandbox ---------------------------------------------------------------------------------------------------
ESCAPES = """
import glob

def attempt(name, fn):
    try:
        RESULT[name] = ["ok", str(fn())[:4000]]
    except Exception as exc:
        RESULT[name] = ["refused", type(exc).__name__]

def read(path):
    with open(path, "rb") as f:
        return f.read().decode("latin-1")

def write(path):
    with open(path, "w") as f:
        f.write("escaped")
    return "written"

def walk(root):
    seen = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            try:
                seen.append(path + "=" + read(path)[:200])
            except Exception as exc:
                seen.append(path + "!" + type(exc).__name__)
    return seen

data = os.environ["HUB_DATA"]
attempt("data_dir", lambda: os.listdir(data))
attempt("data_walk", lambda: walk(data))
attempt("secret_key", lambda: read(os.path.join(data, "secret.key")))
attempt("database", lambda: read(os.path.join(data, "hubstead.db")))
attempt("victim_home", lambda: walk(os.environ["VICTIM_HOME"]))
attempt("hub_environ", lambda: read("/proc/%s/environ" % os.environ["HUB_PID"]))
attempt("all_environ", lambda: [read(p) for p in glob.glob("/proc/[0-9]*/environ")])
attempt("processes", lambda: sorted(glob.glob("/proc/[0-9]*")))
attempt("write_data", lambda: write(os.path.join(data, "escaped.txt")))
attempt("write_secret_key", lambda: write(os.path.join(data, "secret.key")))
attempt("write_victim", lambda: write(os.path.join(os.environ["VICTIM_HOME"], "app", "escaped.txt")))
attempt("write_usr", lambda: write("/usr/escaped.txt"))
attempt("write_env", lambda: write(os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "escaped.txt")))
attempt("write_home", lambda: write(os.path.expanduser("~/mine.txt")))
attempt("home_users", lambda: os.listdir("/home"))
RESULT["own_secret"] = os.environ.get("MY_SECRET")
RESULT["hub_vars"] = sorted(k for k in os.environ if k.startswith("HUBSTEAD"))
"""


def _space_folder(server: LiveServer, title: str) -> Path:
    """The host folder of the space whose README has ``title`` (its files are exported under home/app)."""
    for folder in (server.data_dir / "spaces").iterdir():
        card = folder / "home" / "app" / "README.md"
        if folder.name.isdigit() and card.exists() and f"title: {title}\n" in card.read_text():
            return folder
    raise AssertionError(f"no folder for the space titled {title}")


def test_sandbox_escapes_are_refused(server: LiveServer, owner: Account) -> None:
    """An app that tries to read the hub's data dir, its database and secret.key, another space's home, the hub's
    /proc environ, and to write outside its home: every read finds nothing (an empty tmpfs or no such process),
    every write outside its home fails or lands in a throw-away tmpfs; nothing of the hub or the other space
    reaches the app's answer; its own secret is in its environment while no API answer carries the value."""
    victim_readme = readme().replace("title: fault", "title: victim-space")
    _, victim, runtime = push(server, owner, {"README.md": victim_readme, "app.py": plain_app()}, prefix="victim",
                              space_secrets=[{"key": "VICTIM_SECRET", "value": "victim-secret-8812"}])  # fmt: skip
    assert runtime.stage == "RUNNING", error_of(runtime)
    victim_home = _space_folder(server, "victim-space") / "home"
    key_before = (server.data_dir / "secret.key").read_text()
    assert server.process is not None
    variables = [{"key": "HUB_DATA", "value": str(server.data_dir)}, {"key": "HUB_PID", "value": str(server.process.pid)},
                 {"key": "VICTIM_HOME", "value": str(victim_home)}]  # fmt: skip
    api, repo, runtime = push(
        server, owner, {"README.md": readme(), "app.py": plain_app(ESCAPES)}, prefix="escape",
        space_secrets=[{"key": "MY_SECRET", "value": "mine-secret-4471"}], space_variables=variables,
    )  # fmt: skip
    assert runtime.stage == "RUNNING", error_of(runtime)
    answer = httpx.get(f"{server.url}/spaces/{repo}/app/", timeout=30)
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    text = answer.text
    for name in ("data_dir", "data_walk"):
        assert "hubstead.db" not in seen[name][1] and "secret.key" not in seen[name][1], seen[name]
    assert seen["secret_key"][0] == "refused" and seen["database"][0] == "refused"
    assert (server.data_dir / "secret.key").read_text().strip() not in text
    assert "victim-secret-8812" not in text and "victim-space" not in text
    assert seen["hub_environ"][0] == "refused"
    assert "HUBSTEAD_" not in text.replace('"hub_vars"', "") and seen["hub_vars"] == []
    assert len(json.loads(seen["processes"][1].replace("'", '"'))) <= 3  # its own PID namespace
    for name in ("write_usr", "write_env", "write_victim"):
        assert seen[name][0] == "refused", (name, seen[name])
    # Writes under the data dir's path land in the sandbox's own empty tmpfs, never in the hub's files.
    assert (server.data_dir / "secret.key").read_text() == key_before
    assert seen["write_home"] == ["ok", "written"]
    assert not (server.data_dir / "escaped.txt").exists()
    assert not (victim_home / "app" / "escaped.txt").exists()
    assert seen["own_secret"] == "mine-secret-4471"
    for path in ("runtime", "secrets", "variables"):
        body = httpx.get(f"{server.url}/api/spaces/{repo}/{path}",
                         headers={"authorization": f"Bearer {owner.write_token}"}).text  # fmt: skip
        assert "mine-secret-4471" not in body
    assert "mine-secret-4471" not in json.dumps(api.space_info(repo).__dict__, default=str)
    assert "mine-secret-4471" not in run_log(api, repo)


# -- the space's own token -----------------------------------------------------------------------------------------
TOKEN_PROBE = """
import urllib.request, urllib.error

def call(method, path, body=None):
    request = urllib.request.Request(os.environ["HF_ENDPOINT"] + path, data=body, method=method,
                                     headers={"authorization": "Bearer " + os.environ["HF_TOKEN"],
                                              "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code

commit = json.dumps({"summary": "from a space", "files": [{"path": "x.txt", "content": "eA==", "encoding": "base64"}]})
for key, repo in json.loads(os.environ["PROBES"]).items():
    RESULT["read:" + key] = call("GET", "/api/models/" + repo)
    RESULT["write:" + key] = call("POST", "/api/models/" + repo + "/commit/main", commit.encode())
"""


def test_a_space_token_reads_what_its_owner_may_and_never_writes(server: LiveServer) -> None:
    """A user's space: its HF_TOKEN (through HF_ENDPOINT) reads its owner's private model but a push is refused.
    An org's space: its token reads the org's private model, not another org's (even one its admin belongs to)
    nor the admin user's own private model, and writes nothing."""
    person, admin = server.account("tokown"), server.account("tokadm")
    org, other_org = server.unique("tokorg"), server.unique("tokoth")
    server.cli("orgs", "create", org, "--owner", admin.name)
    server.cli("orgs", "create", other_org, "--owner", admin.name)
    def private_model(account: Account, namespace: str) -> str:
        repo = f"{namespace}/{server.unique('secretmodel')}"
        HfApi(endpoint=server.url, token=account.write_token).create_repo(repo, private=True)
        return repo

    mine = private_model(person, person.name)
    probes = {"mine": mine}
    _, repo, runtime = push(server, person, {"README.md": readme(), "app.py": plain_app(TOKEN_PROBE)}, prefix="tok",
                            space_variables=[{"key": "PROBES", "value": json.dumps(probes)}])  # fmt: skip
    assert runtime.stage == "RUNNING", error_of(runtime)
    seen = httpx.get(f"{server.url}/spaces/{repo}/app/", timeout=30).json()
    assert seen["read:mine"] == 200
    assert seen["write:mine"] in (401, 403)

    probes = {"org": private_model(admin, org), "other_org": private_model(admin, other_org),
              "admin": private_model(admin, admin.name)}  # fmt: skip
    _, repo, runtime = push(server, admin, {"README.md": readme(), "app.py": plain_app(TOKEN_PROBE)}, prefix="otok",
                            namespace=org, space_variables=[{"key": "PROBES", "value": json.dumps(probes)}])  # fmt: skip
    assert runtime.stage == "RUNNING", error_of(runtime)
    seen = httpx.get(f"{server.url}/spaces/{repo}/app/", timeout=30).json()
    assert seen["read:org"] == 200, seen
    assert seen["read:other_org"] in (401, 403, 404) and seen["read:admin"] in (401, 403, 404), seen
    assert all(seen[f"write:{key}"] in (401, 403, 404) for key in probes), seen


# -- a hub of its own: a short start timeout, and a restart ----------------------------------------------------------
@pytest.fixture(scope="module")
def quick_server(own_server_with) -> LiveServer:  # type: ignore[no-untyped-def]
    """A private SQLite hub whose spaces must open their port within 10 s."""
    return own_server_with({"HUBSTEAD_SPACES_START_TIMEOUT": "10"})


def test_an_app_that_never_opens_its_port(quick_server: LiveServer) -> None:
    """An app that runs but never listens: RUNTIME_ERROR after the start timeout, the reason naming the timeout
    and $PORT, and the app's process stopped (its stage does not stay APP_STARTING)."""
    owner = quick_server.account("silent")
    app = "import time\nprint('not listening', flush=True)\nwhile True:\n    time.sleep(1)\n"
    started = time.monotonic()
    api, repo, runtime = push(quick_server, owner, {"README.md": readme(), "app.py": app}, prefix="silent",
                              timeout=120)  # fmt: skip
    assert runtime.stage == "RUNTIME_ERROR", error_of(runtime)
    assert "did not open its port within 10 s" in error_of(runtime) and "$PORT" in error_of(runtime)
    assert time.monotonic() - started < 90
    assert "not listening" in raw_log(quick_server, owner, repo)


def test_a_hub_restart_brings_a_running_space_back(quick_server: LiveServer) -> None:
    """A RUNNING space, the hub stopped (its space stops with it) and started again on the same data dir: the
    space is RUNNING again, serving the same app through the proxy."""
    owner = quick_server.account("again")
    api, repo, runtime = push(quick_server, owner, {"README.md": readme(), "app.py": plain_app('RESULT["v"] = 7')},
                              prefix="again")  # fmt: skip
    assert runtime.stage == "RUNNING", error_of(runtime)
    url = f"{quick_server.url}/spaces/{repo}/app/"
    assert httpx.get(url, timeout=30).json() == {"v": 7}
    quick_server.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=5)
    quick_server.start()
    runtime = wait_for_stage(api, repo, ("RUNNING", *FAILED), timeout=120)
    assert runtime.stage == "RUNNING", error_of(runtime)
    assert httpx.get(url, timeout=30).json() == {"v": 7}

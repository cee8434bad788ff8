"""The first hour on a fresh hub, as README.md's quick start tells it, in a fresh shell.

One hub for the module, started by the README's own ``serve`` line under ``env -i`` (only PATH and HOME, HOME a
temporary directory, the working directory a temporary one holding a link to the checkout's ``.venv``): so the
data dir is the per-user default under that HOME, whatever the working directory. The install step is skipped
(the venv exists); the serve line gets ``--port`` with a free port, the client block has ``:8000`` replaced by it.

The tests run in file order on that one hub: a sign-up as the very first user (not an admin), the README's client
commands, then serve's one-time setup link (works once, refused after) and a restart that prints no link because
an admin now exists.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hubstead.auth import sessions

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_LINK = re.compile(r"(http://127\.0\.0\.1:\d+/setup\?token=[A-Za-z0-9_\-]+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quick_start_blocks() -> tuple[list[str], str]:
    """The quick start's two bash blocks: the first's lines (install and serve, the tests) and the second's text
    (the clients)."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, "the quick start has a server block and a client block"
    return [line for line in blocks[0].splitlines() if line.strip()], blocks[1]


def fresh_env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home)}


@dataclass
class Hub:
    cwd: Path
    home: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / ".local" / "share" / "hubstead"

    def start(self, serve_line: str, name: str) -> str:
        """Run ``serve_line`` (the README's) on this hub's port in a fresh shell; its output once it answers."""
        self.log = self.cwd / f"{name}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(["bash", "-c", f"exec {serve_line} --port {self.port}"], cwd=self.cwd,
                                            env=fresh_env(self.home), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited:\n{self.log.read_text()}"
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self.log.read_text()
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer within 60 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # serve and the processes it started: its own session
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def is_admin(self, name: str) -> bool | None:
        with sqlite3.connect(self.data_dir / "hubstead.db") as db:
            row = db.execute("SELECT is_admin FROM users WHERE name_key = ?", (name.lower(),)).fetchone()
        return None if row is None else bool(row[0])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, str]]:
    root = tmp_path_factory.mktemp("first-hour")
    (root / "home").mkdir()
    (root / "work").mkdir()
    (root / "work" / ".venv").symlink_to(REPO_ROOT / ".venv")
    lines, _ = quick_start_blocks()
    install, serve_line = (part.strip() for part in lines[0].split("#")[0].split("&&"))
    assert install.startswith("bash scripts/install"), "the quick start begins with the install step"
    assert serve_line == ".venv/bin/hubstead serve"
    test_command = lines[1].split("#")[0].strip()  # the second command runs the tests, as CI runs them
    assert len(lines) == 2 and test_command in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    live = Hub(cwd=root / "work", home=root / "home", port=_free_port())
    output = live.start(serve_line, "serve")
    try:
        yield live, output
    finally:
        live.stop()


def _form(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_serve_prints_data_dir_url_and_setup_link(hub: tuple[Hub, str]) -> None:
    live, output = hub
    assert f"Data dir: {live.data_dir}" in output
    assert f"Open {live.url}/ in a browser" in output
    assert len(SETUP_LINK.findall(output)) == 1
    assert (live.data_dir / "hubstead.db").exists()
    assert not (live.cwd / "hubstead-data").exists()  # nothing lands in the working directory


def test_signup_keeps_what_was_typed_and_never_makes_an_admin(hub: tuple[Hub, str]) -> None:
    live, _ = hub
    with httpx.Client(base_url=live.url) as client:
        csrf = _form(client, "/join")
        typed = {"username": "first-comer", "email": "first@example.org", "login_csrf": csrf}
        short = client.post("/join", data={**typed, "password": "short"})
        assert short.status_code == 400
        assert 'value="first-comer"' in short.text and 'value="first@example.org"' in short.text
        assert "short" not in short.text.split("Create an account", 1)[1]  # the password is not sent back
        bad_email = client.post("/join", data={**typed, "email": "not an email", "password": "a long passphrase"})
        assert bad_email.status_code == 400 and 'value="not an email"' in bad_email.text
        assert live.is_admin("first-comer") is None  # refused forms wrote nothing
        done = client.post("/join", data={**typed, "password": "a long passphrase"}, follow_redirects=False)
        assert done.status_code == 303
    # The hub's very first user: signed up, with the email, and not an admin.
    assert live.is_admin("first-comer") is False
    with sqlite3.connect(live.data_dir / "hubstead.db") as db:
        assert db.execute("SELECT email FROM users WHERE name_key = 'first-comer'").fetchone() == ("first@example.org",)


def test_readme_client_commands_in_a_fresh_shell(hub: tuple[Hub, str]) -> None:
    live, _ = hub
    _, clients = quick_start_blocks()
    assert "127.0.0.1:8000" in clients
    script = clients.replace("127.0.0.1:8000", f"127.0.0.1:{live.port}")
    result = subprocess.run(["bash", "-e", "-c", script], cwd=live.cwd, env=fresh_env(live.home),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    # every hubstead command said which data dir it used: the one serve uses, from another shell
    assert result.stderr.count(f"hubstead: data dir {live.data_dir}") == 2
    assert "alice/my-model" in result.stdout
    assert (live.cwd / "my-model-copy" / "README.md").read_text() == (live.cwd / "my-model" / "README.md").read_text()
    assert live.is_admin("alice") is False


def test_setup_link_works_once_and_goes_once_an_admin_exists(hub: tuple[Hub, str]) -> None:
    live, output = hub
    link = SETUP_LINK.findall(output)[0]
    token = link.split("token=", 1)[1]
    with httpx.Client(base_url=live.url) as client:
        assert client.get("/setup?token=wrong").status_code == 403
        csrf = _form(client, f"/setup?token={token}")
        form = {"token": token, "username": "boss", "email": "boss@example.org", "login_csrf": csrf}
        taken = client.post("/setup", data={**form, "username": "alice", "password": "a long passphrase"})
        assert taken.status_code == 409 and 'value="alice"' in taken.text  # the name is taken; the link still works
        made = client.post("/setup", data={**form, "password": "a long passphrase"}, follow_redirects=False)
        assert made.status_code == 303
        assert made.cookies.get(sessions.COOKIE)  # signed in as the new admin
        again = client.post("/setup", data={**form, "username": "boss2", "password": "a long passphrase"})
        assert again.status_code == 403
        assert client.get(f"/setup?token={token}").status_code == 403
    assert live.is_admin("boss") is True and live.is_admin("boss2") is None
    assert not (live.data_dir / "setup-token").exists()
    # With an admin, a restart prints no setup link (one process this time: the quicker start).
    live.stop()
    restarted = live.start(".venv/bin/hubstead serve --workers 1", "restart")
    assert "setup?token=" not in restarted and f"Data dir: {live.data_dir}" in restarted
    assert httpx.get(f"{live.url}/setup?token={token}").status_code == 403

"""Processes for the space proxy's tests and benchmark: uvicorn serving ``proxy_apps`` (the stand-in app, the
front that mounts ``SpaceProxy``), and a real Gradio app in its own uv-built environment (kept across runs under
``~/.cache/hubstead-tests/``), each on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from support import REPO_ROOT

ROOT = "/spaces/o/n/app"
TESTS = REPO_ROOT / "tests"
GRADIO_VERSION = "6.31.0"
GRADIO_ENV = Path.home() / ".cache" / "hubstead-tests" / f"proxy-gradio-{GRADIO_VERSION}"
GRADIO_APP = '''
import os, time
import gradio as gr

def reverse(text):
    return text[::-1]

def count(n):
    for i in range(int(n)):
        time.sleep(0.05)
        yield f"step {i + 1}"

with gr.Blocks() as demo:
    box = gr.Textbox(label="Text")
    out = gr.Textbox(label="Reversed")
    gr.Button("Reverse").click(reverse, box, out, api_name="reverse")
    n = gr.Number(label="N", value=3)
    steps = gr.Textbox(label="Steps")
    gr.Button("Count").click(count, n, steps, api_name="count")

demo.queue(default_concurrency_limit=None).launch(server_name="127.0.0.1", server_port=int(os.environ["PORT"]))
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A process listening on ``127.0.0.1:port``, started and waited for; ``stop()`` ends it."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, *, wait: float = 60) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(argv, env=env, cwd=REPO_ROOT)
        deadline = time.monotonic() + wait
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{argv} exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve_app(app: str, **env: str) -> Served:
    """uvicorn serving ``proxy_apps:<app>`` (``upstream`` or ``front``; the front reads ``PROXY_*``)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(TESTS), "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log", "--no-proxy-headers"]  # fmt: skip
    return Served(argv, {**os.environ, **env}, port)


def gradio_python() -> Path:
    """The Python of an environment with Gradio, built with uv once and reused (seconds when uv's cache is warm)."""
    python = GRADIO_ENV / "bin" / "python"
    marker = GRADIO_ENV / ".complete"
    if not marker.exists():
        uv = str(REPO_ROOT / ".venv" / "bin" / "uv")
        subprocess.run([uv, "venv", "-q", "--allow-existing", str(GRADIO_ENV)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "-p", str(python), f"gradio=={GRADIO_VERSION}"], check=True)
        marker.write_text("ok")
    return python


def serve_gradio(root_path: str, workdir: Path) -> Served:
    """The Gradio app above, told that it is served under ``root_path`` (``GRADIO_ROOT_PATH``)."""
    port = free_port()
    app = workdir / "gradio_app.py"
    app.write_text(GRADIO_APP)
    env = {**os.environ, "PORT": str(port), "GRADIO_ROOT_PATH": root_path, "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(workdir / "tmp"), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    return Served([str(gradio_python()), str(app)], env, port, wait=120)

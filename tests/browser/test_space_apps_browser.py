"""Space apps in a real Chromium, through the hub's proxy: a Gradio app (its page, a click, the queue's answer)
and a Streamlit app (which talks to its server over a WebSocket), each opened at its ``/spaces/{o}/{n}/app/``
address. Screenshots go to ``test-screenshots/`` (look at them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi

from support import LiveServer

pytestmark = pytest.mark.slow

STREAMLIT_VERSION = "1.52.2"
STREAMLIT_APP = """
import os
import streamlit as st
st.title("Hello from a Streamlit space")
name = st.text_input("Your name", "hub")
st.write(f"Greetings, {name[::-1]}!")
st.write("space:", os.environ.get("SPACE_ID"))
"""
GRADIO_APP = """
import gradio as gr
gr.Interface(lambda s: s[::-1], gr.Textbox(label="Text"), gr.Textbox(label="Reversed"), api_name="reverse").launch()
"""


def _push(server: LiveServer, sdk: str, version: str, app: str) -> tuple[str, HfApi]:
    owner = server.account(f"b{sdk[:3]}")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/{server.unique(sdk)}"
    api.create_repo(repo, repo_type="space", space_sdk=sdk)
    readme = f"---\ntitle: {sdk} demo\nsdk: {sdk}\nsdk_version: {version}\napp_file: app.py\n---\n"
    api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=repo, repo_type="space")
    api.upload_file(path_or_fileobj=app.encode(), path_in_repo="app.py", repo_id=repo, repo_type="space")
    runtime = api.wait_for_space(repo, timeout=600)
    assert runtime.stage == "RUNNING", (runtime.stage, runtime.raw.get("errorMessage"))
    return repo, api


def test_a_streamlit_space_runs_in_chromium_through_the_proxy(server: LiveServer, page, shots_dir: Path) -> None:
    """The Streamlit app renders (its script runs over the WebSocket the proxy pumps), reacts to input, and sees
    its SPACE_ID."""
    if server.backend != "sqlite":
        pytest.skip("one backend is enough for the browser")
    repo, _ = _push(server, "streamlit", STREAMLIT_VERSION, STREAMLIT_APP)
    page.goto(f"{server.url}/spaces/{repo}/app/")
    page.get_by_text("Hello from a Streamlit space").wait_for(timeout=60_000)
    page.get_by_text(f"space: {repo}").wait_for()
    box = page.get_by_label("Your name")
    box.fill("abc")
    box.press("Enter")
    page.get_by_text("Greetings, cba!").wait_for(timeout=30_000)
    page.screenshot(path=str(shots_dir / "space-streamlit.png"))


def test_a_gradio_space_answers_a_click_in_chromium(server: LiveServer, page, shots_dir: Path) -> None:
    """The Gradio app's page loads under its root path, and a submit goes through the queue (server-sent events
    through the proxy) and shows the answer."""
    if server.backend != "sqlite":
        pytest.skip("one backend is enough for the browser")
    repo, _ = _push(server, "gradio", "6.31.0", GRADIO_APP)
    page.goto(f"{server.url}/spaces/{repo}/app/")
    page.get_by_label("Text").fill("hubstead")
    page.get_by_role("button", name="Submit").click()
    page.locator("textarea").nth(1).wait_for()
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('textarea')).some(t => t.value === 'daetsbuh')", timeout=30_000
    )
    page.screenshot(path=str(shots_dir / "space-gradio.png"))

"""Starting points for a new space ("Create a new space" and ``GET /api/spaces/templates``): each a README header
and the files of a small app that works on this hub as is (the chat and embeddings demos call this hub's own
OpenAI-compatible API with the space's token)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.errors import BadRequestError
from hubstead.repos.commits import commit_files
from hubstead.repos.git import Author
from hubstead.repos.models import Repo
from hubstead.repos.service import open_git

GRADIO_VERSION = "6.31.0"
STREAMLIT_VERSION = "1.52.2"


@dataclass(frozen=True)
class SpaceTemplate:
    key: str
    title: str
    description: str
    sdk: str
    sdk_version: str | None
    emoji: str
    files: dict[str, str] = field(default_factory=dict)

    def readme(self, name: str) -> str:
        version = f"sdk_version: {self.sdk_version}\n" if self.sdk_version else ""
        app_file = "index.html" if self.sdk == "static" else "app.py"
        return (
            f"---\ntitle: {name}\nemoji: {self.emoji}\ncolorFrom: indigo\ncolorTo: blue\nsdk: {self.sdk}\n{version}"
            f"app_file: {app_file}\npinned: false\nshort_description: {self.description}\n---\n\n# {name}\n\n"
            f"{self.description}\n"
        )


_CHAT = '''import os

import gradio as gr
from openai import OpenAI

client = OpenAI(base_url=os.environ["HF_ENDPOINT"] + "/v1", api_key=os.environ.get("HF_TOKEN", "-"))
MODEL = os.environ.get("MODEL", "")  # set the MODEL variable in the space's settings to a chat model on this hub


def respond(message, history):
    messages = [*history, {"role": "user", "content": message}]
    reply = ""
    for chunk in client.chat.completions.create(model=MODEL, messages=messages, stream=True, max_tokens=256):
        reply += chunk.choices[0].delta.content or ""
        yield reply


gr.ChatInterface(respond, title="Chat with a model on this hub").launch()
'''

_EMBEDDINGS = '''import os

import gradio as gr
from openai import OpenAI

client = OpenAI(base_url=os.environ["HF_ENDPOINT"] + "/v1", api_key=os.environ.get("HF_TOKEN", "-"))
MODEL = os.environ.get("MODEL", "")  # set the MODEL variable to a sentence-embedding model on this hub


def similarity(a, b):
    vectors = [d.embedding for d in client.embeddings.create(model=MODEL, input=[a, b]).data]
    dot = sum(x * y for x, y in zip(*vectors))
    norms = (sum(x * x for x in vectors[0]) ** 0.5) * (sum(y * y for y in vectors[1]) ** 0.5)
    return round(dot / norms, 4)


gr.Interface(similarity, [gr.Textbox(label="First"), gr.Textbox(label="Second")], gr.Number(label="Cosine"),
             title="Sentence similarity").launch()
'''

_REQS = "# Packages app.py needs, one a line (the SDK itself comes from sdk_version in README.md)\n"

TEMPLATES: dict[str, SpaceTemplate] = {
    t.key: t
    for t in (
        SpaceTemplate("gradio-blank", "Gradio: blank", "A Gradio app to start from", "gradio", GRADIO_VERSION, "🚀",
                      {"app.py": 'import gradio as gr\n\n\ndef greet(name):\n    return f"Hello, {name}!"\n\n\n'
                                 'gr.Interface(greet, "text", "text").launch()\n',
                       "requirements.txt": _REQS}),  # fmt: skip
        SpaceTemplate("gradio-chat", "Gradio: chat", "A chat app calling this hub's /v1/chat/completions", "gradio",
                      GRADIO_VERSION, "💬", {"app.py": _CHAT, "requirements.txt": "openai>=1.40\n"}),  # fmt: skip
        SpaceTemplate("gradio-embeddings", "Gradio: embeddings", "Sentence similarity with this hub's /v1/embeddings",
                      "gradio", GRADIO_VERSION, "🧭",
                      {"app.py": _EMBEDDINGS, "requirements.txt": "openai>=1.40\n"}),  # fmt: skip
        SpaceTemplate("streamlit-hello", "Streamlit: hello", "A Streamlit app to start from", "streamlit",
                      STREAMLIT_VERSION, "🎈",
                      {"app.py": 'import streamlit as st\n\nst.title("Hello")\nname = st.text_input("Your name")\n'
                                 'if name:\n    st.write(f"Hello, {name}!")\n',
                       "requirements.txt": _REQS}),  # fmt: skip
        SpaceTemplate("static-html", "Static HTML", "A page of HTML, CSS and JavaScript", "static", None, "📄",
                      {"index.html": "<!doctype html>\n<html><head><meta charset='utf-8'><title>Hello</title></head>\n"
                                     "<body><h1>Hello from a static space</h1></body></html>\n"}),  # fmt: skip
    )
}


def template_files(key: str, name: str) -> dict[str, str]:
    """The files a new space made from template ``key`` starts with (KeyError for an unknown key)."""
    template = TEMPLATES[key]
    return {"README.md": template.readme(name), **template.files}


def templates_json() -> list[dict[str, object]]:
    """``GET /api/spaces/templates`` (``list_space_templates``): ``repoId`` is the key ``create_repo`` sends back
    as ``template`` (these are built in, not repos)."""
    return [{"name": t.title, "repoId": t.key, "sdk": t.sdk, "preferredPrivate": False} for t in TEMPLATES.values()]


def seed(hub: Hub, session: Session, repo: Repo, key: str, *, author: Author, actor_user_id: int | None) -> None:
    """Commit template ``key``'s files to the new space's main (BadRequest for an unknown key)."""
    if key not in TEMPLATES:
        raise BadRequestError(f"Unknown space template {key!r}; this hub has: {', '.join(TEMPLATES)}")
    git = open_git(hub, repo)
    files = [(path, git.repo.create_blob(text.encode())) for path, text in template_files(key, repo.name).items()]
    commit_files(hub, session, repo=repo, branch="main", files=files, lfs_objects={},
                 message=f"Start from the {TEMPLATES[key].title} template", author=author,
                 actor_user_id=actor_user_id)  # fmt: skip

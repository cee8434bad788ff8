"""'Use this model': code generated from a repo's library and task, pointing at this hub."""

from __future__ import annotations

from dataclasses import dataclass

from hubstead.tasks import canonical_task

_AUTO_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "fill-mask": "AutoModelForMaskedLM",
    "text-generation": "AutoModelForCausalLM",
    "summarization": "AutoModelForSeq2SeqLM",
    "translation": "AutoModelForSeq2SeqLM",
    "image-classification": "AutoModelForImageClassification",
    "automatic-speech-recognition": "AutoModelForSpeechSeq2Seq",
    "feature-extraction": "AutoModel",
}


@dataclass(frozen=True)
class Snippet:
    title: str
    language: str
    code: str


def snippets(*, repo_id: str, repo_type: str, library: str | None, task: str | None, hub_url: str) -> list[Snippet]:
    """The snippets that apply to this repo, most specific first."""
    task = canonical_task(task)
    env = f'import os\nos.environ["HF_ENDPOINT"] = "{hub_url}"\n'
    out: list[Snippet] = []
    if repo_type == "dataset":
        out.append(
            Snippet("datasets", "python", f'{env}from datasets import load_dataset\n\nds = load_dataset("{repo_id}")\n')
        )
    elif library == "sentence-transformers":
        out.append(
            Snippet(
                "sentence-transformers",
                "python",
                f"{env}from sentence_transformers import SentenceTransformer\n\n"
                f'model = SentenceTransformer("{repo_id}")\n'
                'embeddings = model.encode(["The weather is lovely today.", "It is sunny outside."])\n',
            )
        )
    if repo_type == "model" and library in (None, "transformers"):
        if task:
            out.append(
                Snippet(
                    "transformers: pipeline",
                    "python",
                    f'{env}from transformers import pipeline\n\npipe = pipeline("{task}", model="{repo_id}")\n',
                )
            )
        auto = _AUTO_CLASSES.get(task or "", "AutoModel")
        out.append(
            Snippet(
                "transformers: Auto classes",
                "python",
                f"{env}from transformers import AutoTokenizer, {auto}\n\n"
                f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n'
                f'model = {auto}.from_pretrained("{repo_id}")\n',
            )
        )
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    type_flag = "" if repo_type == "model" else f" --repo-type {repo_type}"
    out.append(Snippet("hf download", "bash", f"HF_ENDPOINT={hub_url} hf download {repo_id}{type_flag}\n"))
    out.append(Snippet("git clone", "bash", f"git lfs install\ngit clone {hub_url}/{prefix}{repo_id}\n"))
    return out

"""What the model page's inference widget needs: the task it shows, and how the model is served."""

from __future__ import annotations

from typing import Any

from hubstead.inference.protocol import SERVED_TASKS

# The widget kind for each task: how the page asks and how it shows the answer.
WIDGETS = {
    "text-classification": "labels",
    "zero-shot-classification": "labels",
    "image-classification": "image",
    "token-classification": "entities",
    "question-answering": "answer",
    "fill-mask": "candidates",
    "feature-extraction": "similarity",
    "sentence-similarity": "similarity",
    "text-ranking": "ranking",
    "summarization": "text",
    "translation": "text",
    "text2text-generation": "text",
    "text-generation": "chat",
    "automatic-speech-recognition": "audio",
}

EXAMPLES = {
    "text-classification": "I like you. I love you.",
    "zero-shot-classification": "I have a problem with my iphone that needs to be resolved asap!",
    "token-classification": "My name is Sarah and I live in London",
    "question-answering": "Where do I live?",
    "fill-mask": "Paris is the [MASK] of France.",
    "feature-extraction": "That is a happy person",
    "sentence-similarity": "That is a happy person",
    "text-ranking": "What is the capital of France?",
    "summarization": "The tower is 324 metres tall, about the same height as an 81-storey building.",
    "translation": "My name is Wolfgang and I live in Berlin",
    "text2text-generation": "Translate to German: My name is Wolfgang",
    "text-generation": "What is the capital of France?",
}


def widget_for(service: Any, repo: Any) -> dict[str, Any] | None:
    if service is None or repo.repo_type != "model":
        return None
    task = repo.pipeline_tag or _adapter_base_task(repo)
    if task not in SERVED_TASKS:
        return None
    config = service.config_for(repo.repo_id)
    served: dict[str, Any] = {"engine": config.engine_url} if config.engine_url else {}
    if not config.engine_url:
        from hubstead.inference.service import group_for

        # an adapter is served by PyTorch on its base, whatever the site's encoder runtime
        served["runtime"] = "pytorch" if _adapter_card(repo) else service.runtime_for(repo.repo_id, group_for(task))
        for status in service.status():
            if status["repo_id"] == repo.repo_id and status["state"] == "ready":
                served.update(
                    form=status["form"], form_reason=status["form_reason"], memory_bytes=status["memory_bytes"]
                )
    example = EXAMPLES.get(task, "")
    return {
        "task": task,
        "kind": WIDGETS[task],
        "example": example,
        "served": served,
        "url": f"/models/{repo.repo_id}",
        "chat_url": f"/models/{repo.repo_id}/v1/chat/completions",
    }


def _adapter_base_task(repo: Any) -> str | None:
    """An adapter whose card names no ``pipeline_tag`` is served with its base's task (``inference.adapters``):
    the base's, read when the base is a public repo here (a private base's card is not shown on this page)."""
    if not _adapter_card(repo):
        return None
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    from hubstead.repos.models import Repo

    session = object_session(repo)
    if session is None:
        return None
    base = session.scalar(
        select(Repo).where(Repo.repo_type == "model", Repo.id_key == str(repo.base_models[0]).lower())
    )
    if base is None or base.private:
        return None
    return base.pipeline_tag


def _adapter_card(repo: Any) -> bool:
    """Whether the card says this is an adapter on a base (as the model tree reads it)."""
    card = repo.card_data or {}
    return bool(repo.base_models) and (card.get("base_model_relation") == "adapter" or repo.library_name == "peft")

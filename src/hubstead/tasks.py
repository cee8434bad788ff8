"""The task taxonomy (../shared/docs/tasks.md), one for the whole hub: task ids grouped by modality, the
synonyms cards and clients use for them, and how a task is named on pages.

Inference resolves a requested task with ``normalize_task`` (synonyms only: ``text2text-generation`` stays a
task of its own there, served by sequence-to-sequence models); pages and snippets file a card's
``pipeline_tag`` with ``canonical_task``, which also lists ``text2text-generation`` under text generation and
``translation_xx_to_yy`` under translation, as the Hub's task pages do.
"""

from __future__ import annotations

MODALITIES: dict[str, list[str]] = {
    "Multimodal": [
        "audio-text-to-text", "image-text-to-text", "visual-question-answering", "document-question-answering",
        "video-text-to-text", "visual-document-retrieval", "any-to-any",
    ],
    "Computer Vision": [
        "depth-estimation", "image-classification", "object-detection", "image-segmentation", "text-to-image",
        "image-to-text", "image-to-image", "image-to-video", "unconditional-image-generation",
        "video-classification", "text-to-video", "zero-shot-image-classification", "mask-generation",
        "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
        "keypoint-detection", "video-to-video",
    ],
    "Natural Language Processing": [
        "text-classification", "token-classification", "table-question-answering", "question-answering",
        "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
        "fill-mask", "sentence-similarity", "text-ranking",
    ],
    "Audio": [
        "text-to-speech", "text-to-audio", "automatic-speech-recognition", "audio-to-audio",
        "audio-classification", "voice-activity-detection",
    ],
    "Tabular": ["tabular-classification", "tabular-regression", "time-series-forecasting"],
    "Reinforcement Learning": ["reinforcement-learning", "robotics"],
    "Other": ["graph-ml"],
}  # fmt: skip

TASK_MODALITY = {task: modality for modality, tasks in MODALITIES.items() for task in tasks}

# Other names for a task (cards' pipeline_tag values, and the task overrides the Hub's inference API accepts).
ALIASES = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
    "conversational": "text-generation",
    "reranking": "text-ranking",
    "asr": "automatic-speech-recognition",
}
# Tasks that pages list under another one (the Hub's task pages fold these in).
LISTED_UNDER = {"text2text-generation": "text-generation"}


def normalize_task(task: str) -> str:
    """The task id for ``task`` or one of its synonyms (``ner`` → ``token-classification``)."""
    return ALIASES.get(task, task)


def canonical_task(task: str | None) -> str | None:
    """The taxonomy id a page files a card's ``pipeline_tag`` under (synonyms, ``translation_xx_to_yy`` and
    folded tasks resolved)."""
    if not task:
        return None
    task = task.strip().lower()
    if task.startswith("translation_"):
        return "translation"
    task = normalize_task(task)
    return LISTED_UNDER.get(task, task)


def task_label(task: str) -> str:
    return task.replace("-", " ").capitalize()

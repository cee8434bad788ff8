"""The task taxonomy (../shared/docs/tasks.md): task ids grouped by modality, and the aliases cards use."""

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

ALIASES = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
    "text2text-generation": "text-generation",
    "conversational": "text-generation",
}

TASK_MODALITY = {task: modality for modality, tasks in MODALITIES.items() for task in tasks}


def canonical_task(task: str | None) -> str | None:
    """The taxonomy id for a card's ``pipeline_tag`` (aliases and ``translation_xx_to_yy`` resolved)."""
    if not task:
        return None
    task = task.strip().lower()
    if task.startswith("translation_"):
        return "translation"
    return ALIASES.get(task, task)


def task_label(task: str) -> str:
    return task.replace("-", " ").capitalize()

"""Model and dataset cards: the YAML header of README.md and the index fields it implies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml


def parse_card_yaml(readme: str) -> dict[str, Any] | None:
    """The YAML mapping between the leading ``---`` lines of a card, or None if there is none or it is invalid."""
    text = readme.lstrip("\ufeff")
    if not text.startswith("---"):
        return None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            try:
                data = yaml.safe_load("\n".join(lines[1:index]))
            except yaml.YAMLError:
                return None
            return data if isinstance(data, dict) else None
    return None


def validate_card_yaml(content: str) -> list[str]:
    """Problems with a card's YAML header, as the Hub's ``validate-yaml`` endpoint reports them."""
    try:
        data = yaml.safe_load(content) if content.strip() else {}
    except yaml.YAMLError as exc:
        return [f"Invalid YAML: {exc}"]
    if data is not None and not isinstance(data, dict):
        return ["The YAML header must be a mapping"]
    return []


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [str(value)]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int | float)]
    return []


@dataclass
class IndexFields:
    """What the repo index row keeps from a revision's files."""

    card_data: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    license: str | None = None
    languages: list[str] = field(default_factory=list)
    base_models: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    model_config: dict[str, Any] | None = None


_FILE_TAGS = {
    ".safetensors": "safetensors",
    ".gguf": "gguf",
    ".onnx": "onnx",
    ".bin": "pytorch",
    ".h5": "tf",
    ".msgpack": "jax",
    ".parquet": "parquet",
    ".csv": "csv",
    ".jsonl": "json",
    ".arrow": "arrow",
}


def index_fields(
    *, repo_type: str, readme: str | None, config_json: bytes | None, root_files: list[str]
) -> IndexFields:
    """Derive the index fields from the card, ``config.json`` and the file names at the root."""
    card = parse_card_yaml(readme) if readme else None
    fields = IndexFields(card_data=card)
    tags: list[str] = []
    if card:
        fields.pipeline_tag = card.get("pipeline_tag") if isinstance(card.get("pipeline_tag"), str) else None
        fields.library_name = card.get("library_name") if isinstance(card.get("library_name"), str) else None
        license_value = _as_list(card.get("license"))
        fields.license = license_value[0] if license_value else None
        fields.languages = _as_list(card.get("language"))
        fields.base_models = _as_list(card.get("base_model"))
        fields.datasets = _as_list(card.get("datasets"))
        tags += _as_list(card.get("tags"))
        if repo_type == "dataset":
            tags += [f"task_categories:{t}" for t in _as_list(card.get("task_categories"))]
        if repo_type == "space":
            tags += [f"model:{m}" for m in _as_list(card.get("models"))]
    config: dict[str, Any] | None = None
    if config_json:
        try:
            parsed = json.loads(config_json)
            config = parsed if isinstance(parsed, dict) else None
        except ValueError:
            config = None
    if config is not None:
        fields.model_config = {key: config[key] for key in ("architectures", "model_type") if key in config}
        if not fields.library_name and repo_type == "model" and ("model_type" in config or "architectures" in config):
            fields.library_name = "transformers"
        if isinstance(config.get("model_type"), str):
            tags.append(config["model_type"])
    if repo_type == "model":
        if "modules.json" in root_files or "config_sentence_transformers.json" in root_files:
            fields.library_name = fields.library_name or "sentence-transformers"
            tags.append("sentence-transformers")
    for name in root_files:
        for suffix, tag in _FILE_TAGS.items():
            if name.endswith(suffix):
                tags.append(tag)
    if fields.library_name:
        tags.append(fields.library_name)
    if fields.pipeline_tag:
        tags.append(fields.pipeline_tag)
    tags += fields.languages
    if fields.license:
        tags.append(f"license:{fields.license}")
    tags += [f"dataset:{d}" for d in fields.datasets]
    tags += [f"base_model:{b}" for b in fields.base_models]
    fields.tags = [t for t in dict.fromkeys(tags) if t][:200]
    return fields

"""Model and dataset cards: the YAML header of README.md and the index fields it implies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from hubstead.errors import BadRequestError

# Bounds of a card's YAML header. A real card (even a long model-index) is far inside them; an alias bomb
# (a few hundred bytes naming an anchor nine times, nine levels deep) is far outside: 395 bytes expanded
# to 131 MB of card JSON before these bounds.
MAX_CARD_HEADER_BYTES = 256 * 1024
MAX_CARD_ALIASES = 64
MAX_CARD_DEPTH = 32
MAX_CARD_VALUES = 100_000  # scalars and collections, each alias counted as what it expands to
MAX_CARD_EXPANDED_BYTES = 4 * 1024 * 1024  # scalar text, aliases expanded

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CardHeaderError(BadRequestError):
    """A README's YAML header over the bounds (size, aliases, nesting, expanded size)."""


def _refuse(reason: str) -> CardHeaderError:
    return CardHeaderError(f"The YAML header of README.md {reason}")


def _check_events(text: str) -> None:
    """Walk the YAML events (libyaml's parser is iterative: no recursion, nothing expanded) and refuse a header
    over the bounds. An alias counts as the size of what it names, so the expanded size is known without
    expanding anything; an alias to a node still open (a cycle) is refused."""
    values = text_bytes = aliases = 0
    stack: list[tuple[str | None, int, int]] = []
    anchors: dict[str, tuple[int, int]] = {}
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent):
            values += 1
            text_bytes += len(event.value)
            if event.anchor:
                anchors[event.anchor] = (1, len(event.value))
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_CARD_DEPTH:
                raise _refuse(f"nests deeper than {MAX_CARD_DEPTH} levels")
            stack.append((event.anchor, values, text_bytes))
            values += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, values_before, bytes_before = stack.pop()
            if anchor:
                anchors[anchor] = (values - values_before, text_bytes - bytes_before)
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_CARD_ALIASES:
                raise _refuse(f"uses more than {MAX_CARD_ALIASES} aliases")
            if any(anchor == event.anchor for anchor, _, _ in stack):
                raise _refuse(f"has an alias (*{event.anchor}) inside the value it names")
            count, size = anchors.get(event.anchor or "", (1, 0))
            values += count
            text_bytes += size
        if values > MAX_CARD_VALUES or text_bytes > MAX_CARD_EXPANDED_BYTES:
            raise _refuse(
                f"expands (aliases included) to more than {MAX_CARD_VALUES:,} values or "
                f"{MAX_CARD_EXPANDED_BYTES // 2**20} MiB of text"
            )


def load_card_header(text: str) -> Any:
    """The one loader of card YAML: checks the bounds, then parses. Raises CardHeaderError over the bounds,
    ``yaml.YAMLError`` when it does not parse."""
    if len(text.encode("utf-8", "replace")) > MAX_CARD_HEADER_BYTES:
        raise _refuse(f"is over {MAX_CARD_HEADER_BYTES // 1024} KiB")
    _check_events(text)
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)


def card_header(readme: str) -> str | None:
    """The text between the leading ``---`` lines of a card, or None if there is no header."""
    text = readme.lstrip("\ufeff")
    if not text.startswith("---"):
        return None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "\n".join(lines[1:index])
    return None


def parse_card_yaml(readme: str) -> dict[str, Any] | None:
    """The YAML mapping of a card's header, or None if there is none, it is invalid or over the bounds
    (cards committed before the bounds existed are never expanded)."""
    header = card_header(readme)
    if header is None:
        return None
    try:
        data = load_card_header(header)
    except (yaml.YAMLError, CardHeaderError):
        return None
    return data if isinstance(data, dict) else None


def check_card_header(readme: bytes) -> None:
    """Refuse (CardHeaderError, a 400) a README.md whose YAML header is over the bounds: called when a
    commit writes README.md, before anything is written. Invalid YAML is left to the card's readers."""
    header = card_header(readme.decode("utf-8", "replace"))
    if header is None:
        return
    try:
        load_card_header(header)
    except yaml.YAMLError:
        return


# The licenses the Hub accepts in a card (its own list, in its order; "array" in its message means a list of them).
HUB_LICENSES = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research",
    "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0",
    "openmdw-1.1", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr",
    "deepfloyd-if-license", "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2",
    "llama3.3", "llama4", "grok2-community", "gemma", "unknown", "other",
)  # fmt: skip
_LICENSE_SET = frozenset(HUB_LICENSES)
EMPTY_METADATA_WARNING = "Empty or missing yaml metadata in repo card"
# Fields that hold a string or a list of strings, and fields that hold one string. A scalar YAML 1.1 reads as
# something else (``language: [no]`` is False, ``sdk_version: 3.10`` a float) passes: the Hub reads YAML 1.2.
_STRINGS_OR_LISTS = ("tags", "datasets", "language", "base_model", "metrics", "new_version", "task_categories",
                     "task_ids", "size_categories", "source_datasets", "language_creators", "annotations_creators",
                     "multilinguality", "models")  # fmt: skip
_STRINGS = ("pipeline_tag", "library_name", "license_name", "license_link")


@dataclass
class CardValidation:
    """What ``POST /api/validate-yaml`` answers: ``errors`` (the client refuses to commit) and ``warnings`` (it
    shows them and commits)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def validate_card(content: str) -> CardValidation:
    """Check a whole README (header and text) as the Hub's ``validate-yaml`` does: no header, or an empty one, is a
    warning; a header that does not parse, is over the loader's bounds, or whose known fields have the wrong shape
    (a license the Hub does not list, tags that are not strings, a model-index without task type, dataset or
    metric values) is an error, worded as the Hub words it (``"license" must be one of [...]``)."""
    header = card_header(content)
    if header is None:
        return CardValidation(warnings=[EMPTY_METADATA_WARNING])
    try:
        data = load_card_header(header) if header.strip() else None
    except CardHeaderError as exc:
        return CardValidation(errors=[exc.message])
    except yaml.YAMLError as exc:
        return CardValidation(errors=[f"Invalid YAML in the card metadata: {exc}"])
    if data is None or data == {}:
        return CardValidation(warnings=[EMPTY_METADATA_WARNING])
    if not isinstance(data, dict):
        return CardValidation(errors=['"value" must be of type object'])
    return CardValidation(errors=_metadata_errors(data))


def _metadata_errors(data: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    license_value = data.get("license")
    licenses = license_value if isinstance(license_value, list) else [license_value]
    if "license" in data and (not licenses or any(item not in _LICENSE_SET for item in licenses)):
        errors.append(f'"license" must be one of [{", ".join(HUB_LICENSES)}, array]')
    for key in _STRINGS_OR_LISTS:
        value = data.get(key)
        if key in data and value is not None and not _is_string_or_strings(value):
            errors.append(f'"{key}" must be a string or an array of strings')
    for key in _STRINGS:
        if key in data and data[key] is not None and not isinstance(data[key], str | int | float | bool):
            errors.append(f'"{key}" must be a string')
    if "model-index" in data:
        errors += _model_index_errors(data["model-index"])
    return errors


def _is_string_or_strings(value: Any) -> bool:
    scalar = str | int | float | bool
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(item, scalar) for item in value))


def _model_index_errors(model_index: Any) -> list[str]:
    """The model-index shape the client's ``model_index_to_eval_results`` reads: a list of {name, results: [{task:
    {type}, dataset: {name, type}, metrics: [{type, value}]}]}."""
    if not isinstance(model_index, list):
        return ['"model-index" must be an array']
    errors: list[str] = []

    def need(where: str, value: Any, key: str, kind: type | None = str) -> Any:
        item = value.get(key) if isinstance(value, dict) else None
        if item is None:
            errors.append(f'"{where}.{key}" is required')
        elif kind is not None and not isinstance(item, kind):
            errors.append(f'"{where}.{key}" must be {"a string" if kind is str else "an array"}')
        return item

    for i, entry in enumerate(model_index):
        where = f"model-index[{i}]"
        if not isinstance(entry, dict):
            errors.append(f'"{where}" must be of type object')
            continue
        need(where, entry, "name")
        results = need(where, entry, "results", list)
        for j, result in enumerate(results if isinstance(results, list) else []):
            at = f"{where}.results[{j}]"
            need(f"{at}.task", result.get("task") if isinstance(result, dict) else None, "type")
            dataset = result.get("dataset") if isinstance(result, dict) else None
            need(f"{at}.dataset", dataset, "name")
            need(f"{at}.dataset", dataset, "type")
            metrics = need(at, result, "metrics", list)
            for k, metric in enumerate(metrics if isinstance(metrics, list) else []):
                need(f"{at}.metrics[{k}]", metric, "type")
                need(f"{at}.metrics[{k}]", metric, "value", None)
        if len(errors) > 20:
            break
    return errors[:20]


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
            # A space's SDK is its "library" (the lists' SDK facet; a tag, as on the Hub: list_spaces(filter="gradio")).
            sdk = card.get("sdk")
            if isinstance(sdk, str) and sdk in ("gradio", "streamlit", "static", "docker"):
                fields.library_name = sdk
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

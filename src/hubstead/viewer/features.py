"""Arrow types as `datasets` features (``{"dtype": "int64", "_type": "Value"}``, ``ClassLabel``, ``Image``...).

The features are written into each Parquet file's ``huggingface`` schema metadata too, as `datasets`
does, so loading the converted branch gives the same ClassLabel and Image columns as the original.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

MEDIA_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def value_dtype(arrow_type: pa.DataType) -> str:
    if pa.types.is_large_string(arrow_type) or pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_large_binary(arrow_type):
        return "large_binary"
    if pa.types.is_timestamp(arrow_type):
        unit = arrow_type.unit
        return f"timestamp[{unit}, tz={arrow_type.tz}]" if arrow_type.tz else f"timestamp[{unit}]"
    if pa.types.is_null(arrow_type):
        return "null"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_float16(arrow_type):
        return "float16"
    if pa.types.is_float32(arrow_type):
        return "float32"
    if pa.types.is_float64(arrow_type):
        return "float64"
    return str(arrow_type)


def feature_of(arrow_type: pa.DataType) -> dict[str, Any]:
    if pa.types.is_struct(arrow_type):
        return {arrow_type.field(i).name: feature_of(arrow_type.field(i).type) for i in range(arrow_type.num_fields)}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return {"feature": feature_of(arrow_type.value_type), "_type": "List"}
    if pa.types.is_dictionary(arrow_type):
        return feature_of(arrow_type.value_type)
    return {"dtype": value_dtype(arrow_type), "_type": "Value"}


def features_of(
    schema: pa.Schema, *, labels: dict[str, list[str]] | None = None, media: dict[str, str] | None = None
) -> dict[str, Any]:
    """Features for ``schema``; ``labels`` names ClassLabel columns, ``media`` Image/Audio ones."""
    existing = existing_features(schema)
    out: dict[str, Any] = {}
    for field in schema:
        if media and field.name in media:
            out[field.name] = {"_type": media[field.name]}
        elif labels and field.name in labels:
            out[field.name] = {"names": labels[field.name], "_type": "ClassLabel"}
        elif existing and field.name in existing:
            out[field.name] = existing[field.name]
        else:
            out[field.name] = feature_of(field.type)
    return out


def existing_features(schema: pa.Schema) -> dict[str, Any] | None:
    """Features a Parquet/Arrow file written by `datasets` already declares in its metadata."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        features = json.loads(raw).get("info", {}).get("features")
    except (json.JSONDecodeError, AttributeError):
        return None
    return features if isinstance(features, dict) else None


def with_features(schema: pa.Schema, features: dict[str, Any]) -> pa.Schema:
    metadata = dict(schema.metadata or {})
    metadata[b"huggingface"] = json.dumps({"info": {"features": features}}).encode()
    return schema.with_metadata(metadata)


def kind_of(feature: Any) -> str:
    """A short word for the viewer: int, float, bool, string, class_label, image, audio, list, struct, other."""
    if not isinstance(feature, dict):
        return "other"
    kind = feature.get("_type")
    if kind == "ClassLabel":
        return "class_label"
    if kind in ("Image", "Audio"):
        return kind.lower()
    if kind in ("List", "Sequence", "LargeList"):
        return "list"
    if kind == "Value":
        dtype = str(feature.get("dtype", ""))
        if dtype.startswith(("int", "uint")):
            return "int"
        if dtype.startswith("float"):
            return "float"
        if dtype == "bool":
            return "bool"
        if dtype in ("string", "large_string"):
            return "string"
        if dtype.startswith(("timestamp", "date")):
            return "datetime"
        return "other"
    return "struct" if "_type" not in feature else "other"

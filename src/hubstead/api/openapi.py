"""The OpenAPI schema, completed from the routes' own path templates.

Many repo handlers take the bare ``Request`` and split the raw path themselves (a revision may hold
``%2F``), so FastAPI declares none of their path parameters. ``complete_schema`` declares every ``{name}``
of every path from the route's template, in one place: a route added later is covered too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# What each convertor (the part after ``:`` in a route's template) lets through.
_CONVERTOR_SCHEMAS: dict[str | None, dict[str, Any]] = {
    None: {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
    "path": {"type": "string", "minLength": 1},
    "repotype": {"type": "string", "enum": ["models", "datasets", "spaces"]},
}

_DESCRIPTIONS = {
    "plural": "The repo type: models, datasets or spaces.",
    "ns": "The repo's namespace: a user or organization name.",
    "namespace": "The repo's namespace: a user or organization name.",
    "name": "The repo's name within its namespace.",
    "rest": (
        "A revision (branch, tag, full ref or commit id; a '/' inside it is sent as %2F), then, for the "
        "routes that name a file or folder, '/' and its path in the repo."
    ),
    "mode": "What to check: read or write.",
    "feature": "A repo feature this hub does not provide (answered 501 with the Hub's error shape).",
    "task": "A pipeline task name.",
    "config": "A dataset configuration name.",
    "split": "A dataset split name.",
    "filename": "A Parquet file name.",
    "prefix": "The Xet CAS prefix (default).",
    "xorb_hash": "A xorb's merkle hash (64 hex digits).",
    "chunk_hash": "A chunk's hash (64 hex digits).",
    "file_hash": "A Xet file hash (64 hex digits).",
    "repo_pk": "The repo's number in a signed upload or download URL.",
    "oid": "An LFS object id (sha256, 64 hex digits).",
    "username": "A user name.",
}


def template_parameters(template: str) -> list[tuple[str, str | None]]:
    """``(name, convertor)`` of each ``{name}`` / ``{name:convertor}`` in a route template, in order."""
    return [(match.group(1), match.group(2)) for match in _PARAM.finditer(template)]


def _templates(routes: Iterable[BaseRoute]) -> dict[str, str]:
    """Schema path (convertors stripped, as FastAPI writes it) → the route's own template."""
    found: dict[str, str] = {}
    for context in iter_route_contexts(list(routes)):
        path = getattr(context, "path", None)
        path_format = getattr(context, "path_format", None)
        if isinstance(path, str) and isinstance(path_format, str):
            found.setdefault(path_format, path)
    return found


def path_parameter(name: str, convertor: str | None) -> dict[str, Any]:
    schema = dict(_CONVERTOR_SCHEMAS.get(convertor, _CONVERTOR_SCHEMAS[None]))
    parameter: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": schema}
    description = _DESCRIPTIONS.get(name)
    if description:
        parameter["description"] = description
    return parameter


def complete_schema(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """Declare every path parameter the schema's paths template but their operations leave out, and make
    operation ids unique (a GET+HEAD route gives both methods the same id). Changes ``schema`` in place."""
    templates = _templates(routes)
    for path, item in schema.get("paths", {}).items():
        params = template_parameters(templates.get(path, path))
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            declared = operation.setdefault("parameters", [])
            names = {p.get("name") for p in declared if p.get("in") == "path"}
            missing = [path_parameter(name, conv) for name, conv in params if name not in names]
            declared[:0] = missing
            if not declared:
                del operation["parameters"]
    operations = [(m, op) for item in schema.get("paths", {}).values() for m, op in item.items() if m in _METHODS]
    counts = Counter(op.get("operationId") for _, op in operations)
    for method, operation in operations:
        base = operation.get("operationId")
        if base and counts[base] > 1:
            # FastAPI ends a route's id with its first method; end each method's own id with that method.
            stem = re.sub(rf"_(?:{'|'.join(_METHODS)})$", "", base)
            operation["operationId"] = f"{stem}_{method}"
    return schema

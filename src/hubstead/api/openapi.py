"""The OpenAPI schema, completed from the routes' own path templates and the bodies the Hub's clients send.

Many repo handlers take the bare ``Request`` and split the raw path themselves (a revision may hold
``%2F``), so FastAPI declares none of their path parameters. ``complete_schema`` declares every ``{name}``
of every path from the route's template, in one place: a route added later is covered too. Those handlers
read their bodies themselves as well, so the bodies are declared here (``REQUEST_BODIES``: what
``huggingface_hub``, ``git lfs`` and the OpenAI client send), which is what lets a schema fuzzer send them.
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
    "webhook_id": "A webhook's id (24 hex digits).",
}


def _json(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"content": {"application/json": {"schema": schema}}, "required": True}


def _raw(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {media_type: {"schema": schema}}, "required": True}


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_REPO_TYPE = {"type": "string", "enum": ["model", "dataset", "space"]}
_OID = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_SIZE = {"type": "integer", "minimum": 0}
_BINARY = _raw("application/octet-stream", {"type": "string", "format": "binary"})
_INFERENCE = _json({"inputs": {}, "parameters": {"type": "object"}, "options": {"type": "object"}})
_MESSAGES = {"type": "array", "items": _json({"role": _STR, "content": _STR})["content"]["application/json"]["schema"]}

# (schema path, method) → the body its handler reads. A route that reads a body but is missing here gets none
# in the schema (and so none from the fuzzer): add it here with the route.
REQUEST_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/repos/create", "post"): _json(
        {"name": _STR, "organization": _STR, "type": _REPO_TYPE, "private": _BOOL, "sdk": _STR}, ("name",)
    ),
    ("/api/repos/delete", "delete"): _json({"name": _STR, "organization": _STR, "type": _REPO_TYPE}, ("name",)),
    ("/api/repos/move", "post"): _json({"fromRepo": _STR, "toRepo": _STR, "type": _REPO_TYPE}, ("fromRepo", "toRepo")),
    ("/api/{plural}/{ns}/{name}/settings", "put"): _json(
        {"private": _BOOL, "gated": {"enum": [False, "auto", "manual"]}, "discussionsDisabled": _BOOL}
    ),
    ("/api/{plural}/{ns}/{name}/branch/{rest}", "post"): _json({"startingPoint": _STR, "emptyBranch": _BOOL}),
    ("/api/{plural}/{ns}/{name}/tag/{rest}", "post"): _json({"tag": _STR, "message": _STR}, ("tag",)),
    ("/api/{plural}/{ns}/{name}/super-squash/{rest}", "post"): _json({"message": _STR}),
    ("/api/{plural}/{ns}/{name}/preupload/{rest}", "post"): _json(
        {
            "files": {"type": "array", "items": {"type": "object", "properties": {
                "path": _STR, "size": _SIZE, "sample": _STR}, "required": ["path", "size", "sample"]}},
            "gitIgnore": _STR,
        },
        ("files",),
    ),  # fmt: skip
    # NDJSON: a header line, then one line per operation (see repos/commits.py); each item is one line.
    ("/api/{plural}/{ns}/{name}/commit/{rest}", "post"): _raw(
        "application/x-ndjson",
        {"type": "array", "items": {"type": "object", "properties": {
            "key": {"enum": ["header", "file", "lfsFile", "deletedFile", "deletedFolder", "copyFile"]},
            "value": {"type": "object", "properties": {
                "summary": _STR, "description": _STR, "parentCommit": _STR, "path": _STR, "content": _STR,
                "encoding": {"type": "string", "enum": ["base64"]}, "algo": {"type": "string", "enum": ["sha256"]},
                "oid": _OID, "size": _SIZE, "srcRevision": _STR, "srcPath": _STR}}},
            "required": ["key", "value"]}},
    ),  # fmt: skip
    ("/api/{plural}/{ns}/{name}/paths-info/{rest}", "post"): _json(
        {"paths": {"type": "array", "items": _STR}, "expand": _BOOL}, ("paths",)
    ),
    ("/api/{plural}/{ns}/{name}/discussions", "post"): _json(
        {"title": _STR, "description": _STR, "pullRequest": _BOOL}, ("title",)
    ),
    ("/api/{plural}/{ns}/{name}/discussions/{num}/comment", "post"): _json({"comment": _STR}, ("comment",)),
    ("/api/{plural}/{ns}/{name}/discussions/{num}/title", "post"): _json({"title": _STR}, ("title",)),
    ("/api/{plural}/{ns}/{name}/discussions/{num}/status", "post"): _json(
        {"status": {"type": "string", "enum": ["open", "closed"]}, "comment": _STR}, ("status",)
    ),
    ("/api/{plural}/{ns}/{name}/discussions/{num}/merge", "post"): _json({"comment": _STR}),
    ("/api/{plural}/{ns}/{name}/discussions/{num}/comment/{comment_id}/edit", "post"): _json(
        {"content": _STR}, ("content",)
    ),
    **{
        key: _json({
            "url": _STR, "secret": _STR,
            "watched": {"type": "array", "items": {"type": "object", "properties": {
                "type": {"enum": ["model", "dataset", "space", "user", "org"]}, "name": _STR},
                "required": ["type", "name"]}},
            "domains": {"type": "array", "items": {"enum": ["repo", "discussion"]}}},
            ("url", "watched") if key[0].endswith("webhooks") else ())
        for key in (("/api/settings/webhooks", "post"), ("/api/settings/webhooks/{webhook_id}", "post"))
    },  # fmt: skip
    ("/api/validate-yaml", "post"): _json({"content": _STR, "repoType": _REPO_TYPE}, ("content",)),
    ("/api/lfs/upload/{repo_pk}/{oid}", "put"): _BINARY,
    ("/api/lfs/part/{repo_pk}/{oid}", "put"): _BINARY,
    ("/xet-cas/v1/xorbs/{prefix}/{xorb_hash}", "post"): _BINARY,
    ("/xet-cas/v1/shards", "post"): _BINARY,
    ("/xet-cas/v2/shards", "post"): _BINARY,
    ("/models/{namespace}/{name}", "post"): _INFERENCE,
    ("/models/{namespace}/{name}/pipeline/{task}", "post"): _INFERENCE,
    **{
        (f"{prefix}/v1/chat/completions", "post"): _json(
            {"model": _STR, "messages": _MESSAGES, "max_tokens": {"type": "integer"}, "stream": _BOOL}, ("messages",)
        )
        for prefix in ("", "/models/{namespace}/{name}")
    },
    **{
        (f"{prefix}/v1/completions", "post"): _json(
            {"model": _STR, "prompt": _STR, "max_tokens": {"type": "integer"}, "stream": _BOOL}, ("prompt",)
        )
        for prefix in ("", "/models/{namespace}/{name}")
    },
    **{
        (f"{prefix}/v1/embeddings", "post"): _json(
            {"model": _STR, "input": {"anyOf": [_STR, {"type": "array", "items": _STR}]}}, ("input",)
        )
        for prefix in ("", "/models/{namespace}/{name}")
    },
    **{
        (f"{prefix}/info/lfs/objects/batch", "post"): _json(
            {
                "operation": {"type": "string", "enum": ["upload", "download"]},
                "transfers": {"type": "array", "items": _STR},
                "objects": {"type": "array", "items": {"type": "object", "properties": {"oid": _OID, "size": _SIZE},
                                                       "required": ["oid", "size"]}},
                "hash_algo": _STR,
            },
            ("operation", "objects"),
        )
        for prefix in ("/{ns}/{name}", "/datasets/{ns}/{name}", "/spaces/{ns}/{name}")
    },  # fmt: skip
    **{
        (f"{prefix}/info/lfs/objects/verify", "post"): _json({"oid": _OID, "size": _SIZE}, ("oid", "size"))
        for prefix in ("/{ns}/{name}", "/datasets/{ns}/{name}", "/spaces/{ns}/{name}")
    },
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
            body = REQUEST_BODIES.get((path, method))
            if body is not None and "requestBody" not in operation:
                operation["requestBody"] = body
    operations = [(m, op) for item in schema.get("paths", {}).values() for m, op in item.items() if m in _METHODS]
    counts = Counter(op.get("operationId") for _, op in operations)
    for method, operation in operations:
        base = operation.get("operationId")
        if base and counts[base] > 1:
            # FastAPI ends a route's id with its first method; end each method's own id with that method.
            stem = re.sub(rf"_(?:{'|'.join(_METHODS)})$", "", base)
            operation["operationId"] = f"{stem}_{method}"
    return schema

"""The layering of ``src/hubstead`` as a checked rule (docs/ARCHITECTURE.md, "Layers").

From the bottom: config/db/errors/storage → auth → repos (core) → xet, search, discussions → viewer, inference,
jobs, webhooks → HTTP routes and web pages → app and CLI. A module may import from its own layer or below,
never from above; and the packages (a domain's core and its routes counted apart) never import each other in a
loop. Imports are read from the source (every ``import``, also those inside functions), so a lazy import that
points up a layer is caught too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "hubstead"

LAYERS = ["base", "auth", "repos", "xet-search-discussions", "domains", "routes", "app"]
BASE = {
    "hubstead", "config", "db", "errors", "storage", "decompress", "gc_policy", "context", "tasks", "names",
    "downloads", "dates", "coordination", "images",
}  # fmt: skip
SCHEMA = {"models", "migrations", "devtools"}  # assembles every domain's tables / development tools: not layered
# Sub-packages that are storage, whatever their parent's layer: Xet's formats, store and file index.
STORAGE_SUBPACKAGES = ("hubstead.xet.cas",)
DOMAIN_LAYER = {
    "auth": "auth",
    "repos": "repos",
    "xet": "xet-search-discussions",
    "search": "xet-search-discussions",
    "discussions": "xet-search-discussions",
    "collections": "xet-search-discussions",
    "viewer": "domains",
    "inference": "domains",
    "jobs": "domains",
    "webhooks": "domains",
    "runner": "domains",
    "spaces": "domains",
    "compute": "domains",
    "train": "domains",
    "buckets": "domains",
    "evals": "domains",
    "ops": "domains",
}


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def imports_of(name: str, path: Path) -> set[str]:
    """The hubstead modules ``name`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "hubstead")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "hubstead":
                continue
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.add(child if child in MODULES else module)
    return found


def is_route_module(name: str) -> bool:
    parts = name.split(".")
    return (
        len(parts) > 1
        and (parts[1] in ("api", "web") or any(part.startswith("routes") for part in parts[2:]))
    )


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else "hubstead"
    if top in SCHEMA:
        return None
    if top in ("app", "cli", "cli_admin", "cli_quotas", "wiring"):
        return "app"
    if is_route_module(name):
        return "routes"
    if top in BASE or name.startswith(STORAGE_SUBPACKAGES):
        return "base"
    return DOMAIN_LAYER[top]


def unit_of(name: str) -> str:
    """The package a module counts in for the loop check: its top package, a domain's routes apart."""
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else "hubstead"
    if top in BASE or name.startswith(STORAGE_SUBPACKAGES):
        return "base"
    return f"{top} (routes)" if is_route_module(name) and top not in ("api", "web") else top


def graph() -> dict[str, set[str]]:
    return {name: imports_of(name, path) for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    """A new top-level package has to be placed in the layer table before it can land."""
    unknown = [name for name in MODULES if layer_of(name) is None and name.split(".")[1] not in SCHEMA]
    assert unknown == []


def test_no_module_imports_from_a_layer_above_it() -> None:
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = []
    for name, targets in sorted(graph().items()):
        mine = layer_of(name)
        if mine is None:
            continue
        for target in sorted(targets):
            theirs = layer_of(target)
            if theirs is not None and rank[theirs] > rank[mine]:
                upward.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert upward == [], "\n".join(upward)


def test_packages_do_not_import_each_other_in_a_loop() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, targets in graph().items():
        if layer_of(name) is None:
            continue
        for target in targets:
            if layer_of(target) is not None and unit_of(name) != unit_of(target):
                edges[unit_of(name)].add(unit_of(target))
    loops = []
    # A loop exists where a unit reaches itself again; report each strongly connected group once.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        on_stack.add(unit)
        for nxt in edges.get(unit, ()):
            if nxt not in index:
                visit(nxt)
                low[unit] = min(low[unit], low[nxt])
            elif nxt in on_stack:
                low[unit] = min(low[unit], index[nxt])
        if low[unit] == index[unit]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == unit:
                    break
            if len(group) > 1:
                loops.append(" ↔ ".join(sorted(group)))

    for unit in sorted(edges):
        if unit not in index:
            visit(unit)
    assert loops == [], "\n".join(loops)

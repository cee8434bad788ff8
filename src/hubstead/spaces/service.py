"""What the API and the pages do to a space: its runtime row, restart, pause, sleep time, hardware, variables and
secrets, visits (and waking), duplication. Each operation writes the desired state; the supervisor
(``spaces.supervisor``) makes the processes follow.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.dates import iso
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.repos.models import Repo
from hubstead.runner.hardware import DEFAULT_FLAVOR, flavors
from hubstead.spaces import secrets
from hubstead.spaces.models import SpaceRuntime, SpaceSetting
from hubstead.spaces.runtime import subdomain_of
from hubstead.spaces.templates import TEMPLATES

KINDS = ("variable", "secret")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Names the hub sets for every space; a variable or secret may not replace them (HF_TOKEN may: the owner's own).
RESERVED = frozenset({
    "PATH", "HOME", "PORT", "LANG", "HF_ENDPOINT", "HF_HOME", "SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME",
    "SPACE_REPO_NAME", "SPACE_TITLE", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "GRADIO_ROOT_PATH", "LD_PRELOAD",
    "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH",
})  # fmt: skip
MAX_VALUE_BYTES = 64 * 1024
MAX_SETTINGS = 100
VISIT_WRITE_SECONDS = 30  # a visit is written at most this often per space


def ensure_runtime(session: Session, repo: Repo) -> SpaceRuntime:
    """The space's runtime row, made on first need (a space created before spaces ran gets one too)."""
    row = session.get(SpaceRuntime, repo.pk)
    if row is None:
        row = SpaceRuntime(
            repo_pk=repo.pk,
            stage="BUILDING" if repo.sha else "NO_APP_FILE",
            subdomain=_free_subdomain(session, subdomain_of(repo.namespace, repo.name), repo.pk),
            hardware=DEFAULT_FLAVOR,
            paused=False,
            wanted_sha=repo.sha,
            generation=0,
            factory_generation=0,
            built_factory=0,
        )
        session.add(row)
        session.flush()
    return row


def _free_subdomain(session: Session, wanted: str, repo_pk: int) -> str:
    taken = session.scalar(select(SpaceRuntime.repo_pk).where(SpaceRuntime.subdomain == wanted))
    return wanted if taken is None or taken == repo_pk else f"{wanted[:190]}-{repo_pk}"


def check_new_space(payload: dict[str, Any]) -> dict[str, Any]:
    """The space fields of a ``create_repo`` body (``hardware``, ``sleepTimeSeconds``, ``variables``, ``secrets``),
    checked before anything is created; returns them for ``configure_new``."""
    hardware, sleep_time = payload.get("hardware"), payload.get("sleepTimeSeconds")
    template = payload.get("template")
    if template is not None and template not in TEMPLATES:
        raise BadRequestError(f"Unknown space template {template!r}; this hub has: {', '.join(TEMPLATES)}")
    out: dict[str, Any] = {
        "hardware": _flavor(hardware) if hardware is not None else None,
        "sleep_time": _sleep_seconds(sleep_time) if sleep_time is not None else None,
    }
    for kind, field in (("variable", "variables"), ("secret", "secrets")):
        items = payload.get(field) or []
        if not isinstance(items, list) or len(items) > MAX_SETTINGS:
            raise BadRequestError(f"'{field}' must be a list of at most {MAX_SETTINGS} {{key, value}} objects")
        for item in items:
            if not isinstance(item, dict) or "value" not in item:
                raise BadRequestError(f"Each space {kind} needs a key and a value")
            _check_setting(kind, item.get("key"), item.get("value"), item.get("description"))
        out[field] = items
    return out


def configure_new(hub: Hub, session: Session, repo: Repo, fields: dict[str, Any]) -> None:
    """What ``create_repo(repo_type="space", space_hardware=..., space_sleep_time=..., space_variables=...,
    space_secrets=...)`` sets on the new space (``fields`` from ``check_new_space``)."""
    row = ensure_runtime(session, repo)
    if fields["hardware"] is not None:
        row.requested_hardware = row.hardware = fields["hardware"]
    if fields["sleep_time"] is not None:
        row.sleep_time = fields["sleep_time"]
    for kind, field in (("variable", "variables"), ("secret", "secrets")):
        for item in fields[field]:
            set_setting(hub, session, repo, kind, item["key"], item["value"], item.get("description"))


def after_move(session: Session, repo: Repo) -> None:
    """A space renamed or moved: its subdomain follows the new id, and a running space restarts under its new
    address (its root path, ``SPACE_ID`` and ``SPACE_HOST`` changed)."""
    if repo.repo_type != "space":
        return
    row = ensure_runtime(session, repo)
    row.subdomain = _free_subdomain(session, subdomain_of(repo.namespace, repo.name), repo.pk)
    _restart_if_running(session, repo)


def follow_main(session: Session, repo: Repo, commit_id: str) -> None:
    """A space's main moved: it should run the new commit (built again unless paused)."""
    if repo.repo_type != "space":
        return
    row = ensure_runtime(session, repo)
    row.wanted_sha = commit_id
    if not row.paused:
        row.stage, row.error, row.stage_changed_at = "BUILDING", None, utcnow()


def restart(session: Session, repo: Repo, *, factory: bool) -> SpaceRuntime:
    row = ensure_runtime(session, repo)
    row.generation += 1
    if factory:
        row.factory_generation += 1
    row.paused = False
    row.wanted_sha = repo.sha
    row.stage = "BUILDING" if repo.sha else "NO_APP_FILE"
    row.error, row.stage_changed_at = None, utcnow()
    return row


def pause(session: Session, repo: Repo) -> SpaceRuntime:
    row = ensure_runtime(session, repo)
    row.paused = True
    row.stage, row.error, row.stage_changed_at, row.host, row.port, row.pid = "PAUSED", None, utcnow(), None, None, None
    return row


def _sleep_seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (value < 0 and value != -1):
        raise BadRequestError("The sleep time is a number of seconds, or -1 to never sleep")
    if 0 <= value < 60:
        raise BadRequestError("The sleep time is at least 60 seconds (or -1 to never sleep)")
    return value


def set_sleep_time(session: Session, repo: Repo, seconds: Any) -> SpaceRuntime:
    row = ensure_runtime(session, repo)
    row.sleep_time = _sleep_seconds(seconds)
    return row


def _flavor(name: Any) -> str:
    if not isinstance(name, str) or name not in flavors():
        offered = ", ".join(flavors())
        raise BadRequestError(f"This hub does not offer the hardware {name!r}; it offers: {offered}")
    return name


def request_hardware(session: Session, repo: Repo, flavor: Any, sleep_time: Any = None) -> SpaceRuntime:
    """A new flavour takes effect at once: the space restarts on it."""
    row = ensure_runtime(session, repo)
    name = _flavor(flavor)
    if sleep_time is not None:
        row.sleep_time = _sleep_seconds(sleep_time)
    if name != row.hardware or row.requested_hardware not in (None, name):
        row.requested_hardware = name
        row.hardware = name
        if not row.paused and row.stage not in ("NO_APP_FILE",):
            row.generation += 1
            row.stage, row.error, row.stage_changed_at = "BUILDING", None, utcnow()
    return row


def set_setting(
    hub: Hub, session: Session, repo: Repo, kind: str, key: Any, value: Any, description: Any = None
) -> None:
    """Add or replace a variable or secret. Takes effect at the space's next start (as on the Hub, a change
    restarts a running space)."""
    _check_setting(kind, key, value, description)
    stored = secrets.seal(hub.settings.secret_key, value) if kind == "secret" else value
    existing = session.scalar(
        select(SpaceSetting).where(SpaceSetting.repo_pk == repo.pk, SpaceSetting.kind == kind, SpaceSetting.key == key)
    )
    if existing is None:
        count = len(list_settings(session, repo, kind))
        if count >= MAX_SETTINGS:
            raise BadRequestError(f"A space has at most {MAX_SETTINGS} {kind}s")
        session.add(SpaceSetting(repo_pk=repo.pk, kind=kind, key=key, value=stored, description=description))
    else:
        existing.value, existing.updated_at = stored, utcnow()
        if description is not None:
            existing.description = description
    session.flush()
    _restart_if_running(session, repo)


def _check_setting(kind: str, key: Any, value: Any, description: Any) -> None:
    assert kind in KINDS
    if not isinstance(key, str) or not _KEY.match(key):
        raise BadRequestError(f"A {kind} key is letters, digits and underscores, not starting with a digit")
    if key.upper() in RESERVED:
        raise BadRequestError(f"{key} is set by the hub for every space and cannot be a {kind}")
    if not isinstance(value, str):
        raise BadRequestError(f"A {kind}'s value must be a string")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise BadRequestError(f"A {kind}'s value is at most {MAX_VALUE_BYTES // 1024} KiB")
    if description is not None and (not isinstance(description, str) or len(description) > 1000):
        raise BadRequestError("A description is a string of at most 1000 characters")


def delete_setting(session: Session, repo: Repo, kind: str, key: Any) -> None:
    if not isinstance(key, str):
        raise BadRequestError("key must be a string")
    existing = session.scalar(
        select(SpaceSetting).where(SpaceSetting.repo_pk == repo.pk, SpaceSetting.kind == kind, SpaceSetting.key == key)
    )
    if existing is None:
        raise NotFoundError(f"No {kind} named {key} in this space")
    session.delete(existing)
    session.flush()
    _restart_if_running(session, repo)


def _restart_if_running(session: Session, repo: Repo) -> None:
    row = session.get(SpaceRuntime, repo.pk)
    if row is not None and row.stage in ("RUNNING", "APP_STARTING", "BUILDING") and not row.paused:
        row.generation += 1
        row.stage, row.stage_changed_at = "APP_STARTING" if row.stage == "RUNNING" else row.stage, utcnow()


def list_settings(session: Session, repo: Repo, kind: str) -> list[SpaceSetting]:
    return list(
        session.scalars(
            select(SpaceSetting)
            .where(SpaceSetting.repo_pk == repo.pk, SpaceSetting.kind == kind)
            .order_by(SpaceSetting.key)
        )
    )


def variables_json(session: Session, repo: Repo) -> dict[str, Any]:
    return {
        v.key: {"value": v.value, "description": v.description, "updatedAt": iso(v.updated_at)}
        for v in list_settings(session, repo, "variable")
    }


def secrets_json(session: Session, repo: Repo) -> dict[str, Any]:
    """Keys, descriptions and dates: never values."""
    return {
        s.key: {"key": s.key, "description": s.description, "updatedAt": iso(s.updated_at)}
        for s in list_settings(session, repo, "secret")
    }


def copy_variables(session: Session, source: Repo, target: Repo) -> None:
    """``duplicate_repo`` of a space: its variables come along, its secrets do not."""
    source_row, target_row = ensure_runtime(session, source), ensure_runtime(session, target)
    target_row.hardware, target_row.sleep_time = source_row.hardware, source_row.sleep_time
    for variable in list_settings(session, source, "variable"):
        session.add(SpaceSetting(repo_pk=target.pk, kind="variable", key=variable.key, value=variable.value,
                                 description=variable.description))  # fmt: skip
    session.flush()


def record_visit(session: Session, repo_pk: int) -> str | None:
    """A visit through the proxy: the sleep clock restarts, and a sleeping space wakes. Returns the stage."""
    row = session.get(SpaceRuntime, repo_pk)
    if row is None:
        return None
    now = utcnow()
    if row.last_request_at is None or now - row.last_request_at > timedelta(seconds=VISIT_WRITE_SECONDS):
        row.last_request_at = now
    if row.stage == "SLEEPING" and not row.paused:
        session.execute(
            update(SpaceRuntime)
            .where(SpaceRuntime.repo_pk == repo_pk, SpaceRuntime.stage == "SLEEPING")
            .values(stage="APP_STARTING", stage_changed_at=now, last_request_at=now)
        )
        return "APP_STARTING"
    return row.stage

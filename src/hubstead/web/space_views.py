"""What the space pages show: the runtime (stage, badge, reason), the app's address for the iframe, the README
header's look (emoji, colours), and for writers the settings (sleep time, hardware, variables, secret keys)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.config import Settings
from hubstead.repos.models import Repo
from hubstead.runner.hardware import flavors
from hubstead.spaces import service as spaces
from hubstead.spaces.config import COLORS, SpaceConfigError, parse_config
from hubstead.spaces.models import SpaceRuntime
from hubstead.spaces.runtime import iframe_url

BADGES = {
    "RUNNING": ("Running", "ok"),
    "BUILDING": ("Building", "busy"),
    "APP_STARTING": ("Starting", "busy"),
    "SLEEPING": ("Sleeping", "idle"),
    "PAUSED": ("Paused", "idle"),
    "STOPPED": ("Stopped", "idle"),
    "NO_APP_FILE": ("No app file", "error"),
    "CONFIG_ERROR": ("Config error", "error"),
    "BUILD_ERROR": ("Build error", "error"),
    "RUNTIME_ERROR": ("Runtime error", "error"),
}
SLEEP_CHOICES = [(300, "5 minutes"), (900, "15 minutes"), (3600, "1 hour"), (48 * 3600, "48 hours"), (-1, "Never")]


def look(repo: Repo) -> dict[str, str]:
    """Emoji, title, description and gradient colours from the README header (defaults where it has none)."""
    card = repo.card_data or {}
    try:
        config = parse_config(card, repo_sdk=repo.sdk)
        emoji, title, description = config.emoji, config.title, config.short_description
        color_from, color_to = config.color_from, config.color_to
    except SpaceConfigError:
        emoji = title = description = color_from = color_to = None
    return {
        "emoji": emoji or "🚀",
        "title": title or repo.name,
        "description": description or "",
        "from": color_from if color_from in COLORS else "indigo",
        "to": color_to if color_to in COLORS else "blue",
    }


def badge(stage: str, settings: Settings) -> dict[str, str]:
    if not settings.spaces_enabled:
        stage = "STOPPED"
    label, kind = BADGES.get(stage, (stage.replace("_", " ").title(), "idle"))
    return {"stage": stage, "label": label, "kind": kind}


def stages_of(session: Session, repos: list[Repo]) -> dict[int, str]:
    """The stage of each space in a list (one query for a page of cards)."""
    pks = [r.pk for r in repos if r.repo_type == "space"]
    if not pks:
        return {}
    rows = session.execute(select(SpaceRuntime.repo_pk, SpaceRuntime.stage).where(SpaceRuntime.repo_pk.in_(pks)))
    return {pk: stage for pk, stage in rows}


def app_context(session: Session, settings: Settings, repo: Repo, user_id: int | None) -> dict[str, Any]:
    row = spaces.ensure_runtime(session, repo)
    private_in_path_mode = repo.private and not settings.spaces_domain
    return {
        "space": {
            "look": look(repo),
            "badge": badge(row.stage, settings),
            "error": row.error,
            "running": row.stage == "RUNNING" and settings.spaces_enabled,
            "waking": row.stage in ("SLEEPING", "APP_STARTING", "BUILDING") and settings.spaces_enabled,
            "iframe": iframe_url(settings, repo.namespace, repo.name, row.subdomain, user_id),
            "private_in_path_mode": private_in_path_mode,
            # On its own domain the app has its own origin (it may keep it in the iframe); under the hub's, never.
            "own_origin": bool(settings.spaces_domain),
            "hardware": row.hardware,
        }
    }


def settings_context(session: Session, settings: Settings, repo: Repo) -> dict[str, Any]:
    row = spaces.ensure_runtime(session, repo)
    return {
        "space_settings": {
            "sleep_time": row.sleep_time if row.sleep_time is not None else settings.spaces_default_sleep,
            "sleep_choices": SLEEP_CHOICES,
            "hardware": row.hardware,
            "flavors": list(flavors().values()),
            "variables": spaces.list_settings(session, repo, "variable"),
            "secrets": [s.key for s in spaces.list_settings(session, repo, "secret")],
            "paused": row.paused,
            "stage": row.stage,
        }
    }

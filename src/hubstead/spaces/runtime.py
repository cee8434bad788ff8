"""What a space's app is started with, and what the API answers about its runtime.

``app_env`` is the one place that decides a space process's command line and environment: ``HF_ENDPOINT`` (this
hub), ``HF_TOKEN`` (a read token scoped to what the space's owner may read), ``SPACE_ID``, ``SPACE_HOST``,
``SPACE_AUTHOR_NAME``, ``SPACE_REPO_NAME``, ``SPACE_TITLE``, ``PORT``, the space's variables and its decrypted
secrets; nothing of the hub's own environment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth import service as auth
from hubstead.auth.models import Membership, Org, Token, User
from hubstead.config import Settings
from hubstead.context import Hub
from hubstead.repos.models import Repo
from hubstead.runner.backends import HOST, PORT
from hubstead.runner.hardware import flavors
from hubstead.runner.sandbox import SANDBOX_HOME
from hubstead.spaces import secrets
from hubstead.spaces.config import SpaceConfig
from hubstead.spaces.logs import space_dir
from hubstead.spaces.models import SpaceRuntime, SpaceSetting

__all__ = ["ACTIVE_STAGES", "app_env", "runtime_json", "space_dir", "subdomain_of", "app_root_path"]

# Stages in which the space should have a process (the supervisor starts one when it has none).
ACTIVE_STAGES = frozenset({"BUILDING", "APP_STARTING", "RUNNING"})
TOKEN_KIND = "token"  # the space's own HF_TOKEN, sealed, in space_settings (never listed)


def subdomain_of(namespace: str, name: str) -> str:
    """The Hub's subdomain: ``{owner}-{name}``, lower-cased, runs of other characters as one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", f"{namespace}-{name}".lower()).strip("-")[:200]


def app_root_path(namespace: str, name: str) -> str:
    """Where the hub serves the space's app under its own address (the app's root path)."""
    return f"/spaces/{namespace}/{name}/app"


def app_url(settings: Settings, namespace: str, name: str, subdomain: str) -> str:
    """The app's public base URL (``space_info().host``): the subdomain when the hub has a spaces domain. It ends
    with a slash under the hub's address, since gradio_client joins relative paths (``config``) onto it."""
    if settings.spaces_domain:
        scheme = settings.external_url.split("://", 1)[0]
        return f"{scheme}://{subdomain}.{settings.spaces_domain}"
    return settings.external_url + app_root_path(namespace, name) + "/"


ACCESS_COOKIE = "hubstead_space_access"  # set on a space's own subdomain from a signed link; never forwarded
ACCESS_TTL_SECONDS = 12 * 3600


def sign_app_access(secret_key: str, subdomain: str, user_id: int, *, now: float | None = None) -> str:
    """A short-lived proof that ``user_id`` may open the space at ``subdomain``: the hub's page puts it in the
    iframe's URL (``?__sign=``) when the space is served on its own domain, where the hub's session cookie is not
    sent. ``{expiry}.{user}.{hmac}``."""
    expiry = int((now or time.time()) + ACCESS_TTL_SECONDS)
    body = f"{expiry}.{user_id}"
    mac = hmac.new(secret_key.encode(), f"space-access|{subdomain}|{body}".encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def check_app_access(secret_key: str, subdomain: str, token: str, *, now: float | None = None) -> int | None:
    """The user id a ``sign_app_access`` token was made for, if it is for this subdomain and not expired."""
    try:
        expiry_text, user_text, mac = token.split(".")
        expiry, user_id = int(expiry_text), int(user_text)
    except ValueError:
        return None
    body = f"{expiry}.{user_id}"
    wanted = hmac.new(secret_key.encode(), f"space-access|{subdomain}|{body}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(wanted, mac) or expiry < (now or time.time()):
        return None
    return user_id


def iframe_url(settings: Settings, namespace: str, name: str, subdomain: str, user_id: int | None) -> str:
    """Where the space page's iframe points: the app under the hub, or on its own subdomain with a signed access
    proof for a signed-in viewer (so a private space opens there too)."""
    url = app_url(settings, namespace, name, subdomain)
    if settings.spaces_domain and user_id is not None:
        return url + "/?__sign=" + sign_app_access(settings.secret_key, subdomain, user_id)
    return url


def runtime_json(settings: Settings, row: SpaceRuntime, repo: Repo) -> dict[str, Any]:
    requested = row.requested_hardware
    domain = app_url(settings, repo.namespace, repo.name, row.subdomain).split("://", 1)[1].rstrip("/")
    flavor = flavors().get(row.hardware)
    answer: dict[str, Any] = {
        "stage": row.stage,
        "hardware": {
            "current": row.hardware if row.stage == "RUNNING" else None,
            "requested": requested or row.hardware,
        },
        "gcTimeout": row.sleep_time if row.sleep_time is not None else settings.spaces_default_sleep,
        "storage": None,
        "devMode": False,
        "replicas": {"current": 1 if row.stage == "RUNNING" else 0, "requested": 1},
        "domains": [{"domain": domain, "stage": "READY"}],
        "sha": row.running_sha,
    }
    if flavor is not None:
        answer["resources"] = {"cpu": flavor.cpus, "memoryBytes": flavor.memory_bytes}
    if row.error:
        answer["errorMessage"] = row.error
    if not settings.spaces_enabled:
        answer["stage"] = "STOPPED"
        answer["errorMessage"] = "This hub stores spaces but does not run them (it was started with --no-spaces)"
    return answer


def _space_token(hub: Hub, session: Session, repo: Repo) -> str | None:
    """The space's read token: created once (for the owner, or for an admin of the owning org with the token
    scoped to that org), sealed in the database, revoked with the space."""
    stored = session.scalar(
        select(SpaceSetting).where(SpaceSetting.repo_pk == repo.pk, SpaceSetting.kind == TOKEN_KIND)
    )
    if stored is not None:
        token = secrets.unseal(hub.settings.secret_key, stored.value)
        if token is not None and auth.principal_for_token(session, token) is not None:
            return token
        session.delete(stored)
        session.flush()
    name = f"{auth.SPACE_TOKEN_PREFIX}{repo.namespace}/{repo.name}"
    user = session.scalar(select(User).where(User.name_key == repo.namespace.lower()))
    if user is None:
        user = session.scalar(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .join(Org, Org.id == Membership.org_id)
            .where(Org.name_key == repo.namespace.lower(), Membership.role == "admin")
            .order_by(Membership.id)
            .limit(1)
        )
        if user is None:
            return None
        name += f"@{repo.namespace.lower()}"
    token = auth.create_token(session, user=user, role="read", name=name)
    session.add(SpaceSetting(repo_pk=repo.pk, kind=TOKEN_KIND, key="HF_TOKEN",
                             value=secrets.seal(hub.settings.secret_key, token)))  # fmt: skip
    session.flush()
    return token


def sealed_space_token(session: Session, repo_pk: int) -> str | None:
    """The space's sealed token (read before the repo is deleted, so the token can die with it)."""
    return session.scalar(
        select(SpaceSetting.value).where(SpaceSetting.repo_pk == repo_pk, SpaceSetting.kind == TOKEN_KIND)
    )


def revoke_sealed_token(hub: Hub, session: Session, sealed: str) -> None:
    token = secrets.unseal(hub.settings.secret_key, sealed)
    if token is not None:
        row = session.scalar(select(Token).where(Token.token_hash == auth.hash_token(token)))
        if row is not None:
            session.delete(row)


def app_env(
    hub: Hub, session: Session, repo_pk: int, config: SpaceConfig, *, env_dir: Path | None, home: str = SANDBOX_HOME,
) -> tuple[dict[str, str], list[str]]:
    """(environment, argv) of the space's app process, with its home as the app sees it (``/home/user`` inside
    the sandbox). The address it listens on is ``runner.backends``' placeholders (``HOST``, ``PORT``), which the
    backend fills in where it runs the app."""
    settings = hub.settings
    repo = session.get(Repo, repo_pk)
    assert repo is not None
    row = session.get(SpaceRuntime, repo_pk)
    subdomain = row.subdomain if row is not None else subdomain_of(repo.namespace, repo.name)
    root_path = app_root_path(repo.namespace, repo.name)
    python = str(env_dir / "bin" / "python") if env_dir is not None else sys.executable
    env: dict[str, str] = {}
    for setting in session.scalars(select(SpaceSetting).where(SpaceSetting.repo_pk == repo_pk)):
        if setting.kind == "variable":
            env[setting.key] = setting.value
    for setting in session.scalars(
        select(SpaceSetting).where(SpaceSetting.repo_pk == repo_pk, SpaceSetting.kind == "secret")
    ):
        value = secrets.unseal(settings.secret_key, setting.value)
        if value is not None:
            env[setting.key] = value
    token = _space_token(hub, session, repo)
    bin_dir = f"{env_dir}/bin:" if env_dir is not None else ""
    env.update({
        "PATH": f"{bin_dir}/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PORT": PORT,
        "HF_ENDPOINT": settings.external_url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": f"{home}/.cache/huggingface",
        "SPACE_ID": f"{repo.namespace}/{repo.name}",
        "SPACE_HOST": app_url(settings, repo.namespace, repo.name, subdomain).split("://", 1)[1].rstrip("/"),
        "SPACE_AUTHOR_NAME": repo.namespace,
        "SPACE_REPO_NAME": repo.name,
        "SPACE_TITLE": config.title or repo.name,
        "GRADIO_SERVER_NAME": HOST,
        "GRADIO_SERVER_PORT": PORT,
        "GRADIO_ROOT_PATH": root_path,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": f"{home}/.gradio",
    })  # fmt: skip
    if token is not None:
        env["HF_TOKEN"] = token
    app = f"{home}/app/{config.app_file}"
    if config.sdk == "gradio":
        argv = [python, app]
    elif config.sdk == "streamlit":
        argv = [
            python, "-m", "streamlit", "run", app, "--server.port", PORT, "--server.address", HOST,
            "--server.baseUrlPath", root_path.lstrip("/"), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.enableXsrfProtection", "false",
            "--server.enableCORS", "false", "--server.fileWatcherType", "none",
        ]  # fmt: skip
    else:  # static: the app file's folder, served as files
        folder = str(Path(app).parent)
        argv = [sys.executable, "-I", "-m", "http.server", PORT, "--bind", HOST, "--directory", folder]
    return env, argv

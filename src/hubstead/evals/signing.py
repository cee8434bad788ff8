"""The hub's signature on a result it measured: the ``verifyToken`` of an ``.eval_results`` entry.

An evaluation job's results are written by the hub with a token that binds the score to the model repo (its
stable key, so a copy into another repo is not verified), the benchmark dataset and task, the value, the commit of
the model that was evaluated and the job that measured it, under an HMAC keyed by the hub's secret key. An entry
is "verified" exactly when its token checks against the entry it sits in; an entry a user wrote or edited by hand
(a changed value, a copied file) is "self-reported".

The token is ``hs1.<base64url JSON claims>.<base64url HMAC-SHA256>``: the claims are readable (the model commit
tells the index whether a result has gone stale), the signature is what proves them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

PREFIX = "hs1"
_CONTEXT = b"hubstead eval results v1"


@dataclass(frozen=True)
class Claims:
    """What the hub vouches for: ``value`` of ``task_id`` of ``dataset_id`` measured on ``model_repo_pk``
    (``model_id`` at the time) at ``model_sha`` by compute job ``job_id``."""

    model_repo_pk: int
    model_id: str
    model_sha: str
    dataset_id: str
    task_id: str
    value: float
    job_id: str
    date: str

    def as_json(self) -> dict[str, Any]:
        return {
            "repo": self.model_repo_pk, "model": self.model_id, "sha": self.model_sha, "dataset": self.dataset_id,
            "task": self.task_id, "value": self.value, "job": self.job_id, "date": self.date,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), _CONTEXT, hashlib.sha256).digest()


def sign(secret_key: str, claims: Claims) -> str:
    payload = json.dumps(claims.as_json(), sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(_key(secret_key), payload, hashlib.sha256).digest()
    return f"{PREFIX}.{_b64(payload)}.{_b64(mac)}"


def read(secret_key: str, token: Any) -> Claims | None:
    """The claims of a token this hub signed, or None (not a string, not ours, tampered, or signed under another
    secret key)."""
    if not isinstance(token, str) or len(token) > 4096:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        payload, mac = _unb64(parts[1]), _unb64(parts[2])
    except (ValueError, TypeError):
        return None
    expected = hmac.new(_key(secret_key), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(payload)
        return Claims(
            model_repo_pk=int(data["repo"]), model_id=str(data["model"]), model_sha=str(data["sha"]),
            dataset_id=str(data["dataset"]), task_id=str(data["task"]), value=float(data["value"]),
            job_id=str(data["job"]), date=str(data["date"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def verifies(secret_key: str, token: Any, *, model_repo_pk: int, dataset_id: str, task_id: str,
             value: Any) -> Claims | None:
    """The claims when ``token`` vouches for this very entry (same repo, dataset, task and value), else None."""
    claims = read(secret_key, token)
    if claims is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    same = (claims.model_repo_pk == model_repo_pk and claims.dataset_id == dataset_id
            and claims.task_id == task_id and math.isclose(claims.value, number, rel_tol=0, abs_tol=1e-12))
    return claims if same else None

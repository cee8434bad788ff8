"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the hub's secret key.

A secret's value is written encrypted and only decrypted to go into its space's process environment; the API and
the pages list keys, descriptions and dates, never values."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


def _fernet(secret_key: str) -> Fernet:
    key = hmac.new(secret_key.encode(), b"hubstead space secrets v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, value: str) -> str:
    return _fernet(secret_key).encrypt(value.encode()).decode()


def unseal(secret_key: str, token: str) -> str | None:
    """The value, or None when the hub's secret key changed since it was sealed (the space then lacks it)."""
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        return None

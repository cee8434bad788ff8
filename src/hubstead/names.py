"""The one rule for names people choose: users, organizations and repos (the Hub's rules)."""

from __future__ import annotations

import re

from hubstead.errors import InvalidRepoIdError

_NAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")


def validate_name(name: str, *, what: str = "name") -> str:
    """Check a namespace or repo name against the Hub's rules (letters, digits, ``-``, ``_``, ``.``)."""
    if not _NAME_RE.match(name) or "--" in name or ".." in name or name.endswith(".git"):
        raise InvalidRepoIdError(
            f"Invalid {what} {name!r}: use letters, digits, '-', '_' or '.', at most 96 characters, "
            "starting and ending with a letter, digit or '_', with no '--' or '..'"
        )
    return name

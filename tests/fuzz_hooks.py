"""schemathesis hooks for the schema fuzz (``SCHEMATHESIS_HOOKS=fuzz_hooks``): how to put the bodies the schema
declares with media types schemathesis does not know on the wire."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """A commit body: each item of the generated list is one JSON line (anything else is sent as one line)."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()

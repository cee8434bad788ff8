"""``hubstead quotas set|show NAMESPACE`` (a site admin's per-namespace storage limits, ``repos/quotas``) and the
``hubstead serve`` flags for the site defaults. ``cli.build_parser`` registers them with its storage flags and
hub factory, as it does ``cli_admin``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from hubstead.config import parse_size

AddFlags = Callable[[argparse.ArgumentParser], None]
HubFactory = Callable[[argparse.Namespace], Any]


def settings_flags(args: argparse.Namespace) -> dict[str, object]:
    """What ``load_settings(quotas=...)`` takes from ``hubstead serve``'s quota flags."""
    return {name: getattr(args, f"quota_{name}", None) for name in ("user", "user_private", "org", "org_private")}


def add_serve_flags(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("storage quotas (docs/quotas.md; a site admin overrides them per namespace)")
    for name, what in (("user", "each user's public repos"), ("user-private", "each user's private repos"),
                       ("org", "each org's public repos"), ("org-private", "each org's private repos")):  # fmt: skip
        group.add_argument(f"--quota-{name}", metavar="SIZE", help=f"the bytes {what} may hold (default: no limit)")


def _limit(text: str | None) -> int | None:
    if text is None or text.strip().lower() == "default":
        return None
    return parse_size(text)


def register(commands: Any, *, add_storage_flags: AddFlags, hub: HubFactory) -> None:
    """Add ``hubstead quotas set`` and ``hubstead quotas show``."""

    def show(args: argparse.Namespace) -> int:
        from hubstead.repos.quotas import format_bytes, usage

        h = hub(args)
        with h.db.session() as session:
            answer: dict[str, Any] = usage(h, session, args.namespace)
        if args.json:
            print(json.dumps(answer, indent=2))
            return 0
        print(f"{answer['namespace']} ({answer['type']})")
        for pool in ("public", "private"):
            used, limit = answer[pool]["usedBytes"], answer[pool]["limitBytes"]
            allowed = "no limit" if limit is None else f"{format_bytes(limit)} allowed"
            print(f"  {pool:8} {format_bytes(used)} used of {allowed}")
        return 0

    def set_(args: argparse.Namespace) -> int:
        from hubstead.repos.quotas import set_quota

        changes: dict[str, object] = {}
        if args.bytes is not None:
            changes["publicBytes"] = _limit(args.bytes)
        if args.private_bytes is not None:
            changes["privateBytes"] = _limit(args.private_bytes)
        if not changes:
            raise SystemExit("hubstead quotas set: give --bytes and/or --private-bytes")
        with hub(args).db.session() as session:
            set_quota(session, args.namespace, changes)
        return show(args)

    quotas = commands.add_parser("quotas", help="storage quotas per user or org").add_subparsers(
        dest="action", required=True
    )
    show_parser = quotas.add_parser("show", help="a namespace's storage used and allowed")
    show_parser.add_argument("namespace")
    show_parser.add_argument("--json", action="store_true")
    add_storage_flags(show_parser)
    show_parser.set_defaults(func=show)
    set_parser = quotas.add_parser("set", help="override a namespace's limits ('default': the site default)")
    set_parser.add_argument("namespace")
    set_parser.add_argument("--bytes", metavar="SIZE", help="limit for its public repos (10GB, 512MiB, default)")
    set_parser.add_argument("--private-bytes", metavar="SIZE", help="limit for its private repos")
    set_parser.add_argument("--json", action="store_true")
    add_storage_flags(set_parser)
    set_parser.set_defaults(func=set_)

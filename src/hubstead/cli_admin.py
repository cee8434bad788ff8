"""The site admin's commands: ``hubstead users list|disable|enable|delete|set-password|make-admin``,
``hubstead tokens list|revoke`` and ``hubstead repos list``. ``cli.build_parser`` registers them (``register``)
and hands over its storage flags and hub factory, so they find the data dir as every other command does."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from hubstead.errors import BadRequestError

AddFlags = Callable[[argparse.ArgumentParser], None]
HubFactory = Callable[[argparse.Namespace], Any]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Again: "):
        raise BadRequestError("The two passwords differ")
    return first


def register(
    users: Any, tokens: Any, commands: Any, *, add_storage_flags: AddFlags, hub: HubFactory
) -> None:  # argparse's _SubParsersAction is private: typed Any
    """Add the admin commands to ``hubstead users``, ``hubstead tokens`` and a new ``hubstead repos``."""

    def users_list(args: argparse.Namespace) -> int:
        from hubstead.auth.accounts import list_users

        with hub(args).db.session() as session:
            rows = list_users(session, search=args.search, limit=args.limit)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        _table(
            [[r["name"], r["email"] or "", "admin" if r["isAdmin"] else "", "disabled" if r["disabled"] else "active",
              str(r["tokens"]), r["createdAt"][:10]] for r in rows],
            ["NAME", "EMAIL", "ADMIN", "STATE", "TOKENS", "CREATED"],
        )  # fmt: skip
        return 0

    def users_disable(args: argparse.Namespace, disabled: bool) -> int:
        from hubstead.auth.accounts import find_user, set_disabled

        with hub(args).db.session() as session:
            user = set_disabled(session, find_user(session, args.name), disabled)
            print(f"{user.name} is now {'disabled' if disabled else 'enabled'}")
        return 0

    def users_delete(args: argparse.Namespace) -> int:
        from hubstead.auth.accounts import find_user
        from hubstead.repos.owners import delete_user, deletion_plan

        the_hub = hub(args)
        with the_hub.db.session() as session:
            user = find_user(session, args.name)
            plan = deletion_plan(session, user, args.repos)
            print("\n".join(plan.lines()))
            if not plan.allowed:
                return 2
            if not args.yes:
                if not sys.stdin.isatty():
                    print("Not deleted: run again with --yes to confirm", file=sys.stderr)
                    return 2
                if input(f"Type {user.name} to delete: ").strip() != user.name:
                    print("Not deleted")
                    return 1
            delete_user(the_hub, session, user, repos=args.repos)
        print(f"Deleted user {args.name}")
        return 0

    def users_set_password(args: argparse.Namespace) -> int:
        from hubstead.auth.accounts import find_user, set_password

        password = _read_password(args)
        with hub(args).db.session() as session:
            user = set_password(session, find_user(session, args.name), password)
            print(f"Password of {user.name} changed; their browser sessions were ended")
        return 0

    def users_make_admin(args: argparse.Namespace) -> int:
        from hubstead.auth.accounts import find_user, set_admin

        with hub(args).db.session() as session:
            user = set_admin(session, find_user(session, args.name), not args.revoke)
            print(f"{user.name} is {'now' if user.is_admin else 'no longer'} a site admin")
        return 0

    def tokens_list(args: argparse.Namespace) -> int:
        from hubstead.auth.accounts import find_user, token_rows

        with hub(args).db.session() as session:
            rows = token_rows(session, find_user(session, args.user) if args.user else None)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        _table(
            [[str(r["id"]), r["user"], r["name"], r["role"], r["createdAt"][:19], (r["lastUsedAt"] or "never")[:19]]
             for r in rows],
            ["ID", "USER", "NAME", "ROLE", "CREATED", "LAST USED"],
        )  # fmt: skip
        return 0

    def tokens_revoke(args: argparse.Namespace) -> int:
        from hubstead.auth.accounts import revoke_any_token

        with hub(args).db.session() as session:
            gone = revoke_any_token(session, args.id)
        print(f"Revoked token {gone['id']} ({gone['name'] or 'unnamed'}, {gone['role']}) of {gone['user']}")
        return 0

    def repos_list(args: argparse.Namespace) -> int:
        from hubstead.repos.owners import list_repos

        with hub(args).db.session() as session:
            rows = list_repos(session, sort=args.sort, limit=args.limit)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        _table(
            [[r["type"], r["id"], "private" if r["private"] else "public", _size(r["usedStorage"]),
              str(r["downloads"]), r["lastModified"][:10]] for r in rows],
            ["TYPE", "REPO", "VISIBILITY", "SIZE", "DOWNLOADS", "UPDATED"],
        )  # fmt: skip
        return 0

    def command(group: Any, name: str, help: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(name, help=help)
        add_storage_flags(parser)
        parser.set_defaults(func=func)
        return parser

    p = command(users, "list", "list users (name, email, admin, state, tokens)", users_list)
    p.add_argument("--search", help="only users whose name, full name or email contains this")
    p.add_argument("--limit", type=int, default=500)
    p.add_argument("--json", action="store_true")
    p = command(users, "disable", "refuse a user's sign-in, tokens and sessions", lambda a: users_disable(a, True))
    p.add_argument("name")
    p = command(users, "enable", "let a disabled user back in", lambda a: users_disable(a, False))
    p.add_argument("name")
    p = command(users, "delete", "delete a user (prints what happens to their repos first)", users_delete)
    p.add_argument("name")
    p.add_argument("--repos", metavar="delete|transfer:NAMESPACE", help="what to do with the repos they own")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = command(users, "set-password", "set a user's password (asked twice, or one line on stdin)", users_set_password)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p = command(users, "make-admin", "make a user a site admin", users_make_admin)
    p.add_argument("name")
    p.add_argument("--revoke", action="store_true", help="take site admin away instead")

    p = command(tokens, "list", "list access tokens (never their secret)", tokens_list)
    p.add_argument("--user", help="only this user's tokens")
    p.add_argument("--json", action="store_true")
    p = command(tokens, "revoke", "revoke an access token by its id (see tokens list)", tokens_revoke)
    p.add_argument("id", type=int)

    repos = commands.add_parser("repos", help="the site's repositories").add_subparsers(dest="action", required=True)
    p = command(repos, "list", "every repo, largest (or most downloaded, newest) first", repos_list)
    p.add_argument("--sort", choices=["size", "downloads", "updated"], default="size")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")

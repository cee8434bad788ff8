"""``hubstead.auth.service`` against a real database: users, orgs, memberships, tokens, passwords, namespace
roles and the name rules, with no server in front."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hubstead.auth import service
from hubstead.auth.models import Token
from hubstead.context import Hub
from hubstead.errors import BadRequestError, ConflictError, InvalidRepoIdError, NotFoundError


def test_user_names_are_unique_across_case_users_orgs_and_reserved_words(backend_hub: Hub) -> None:
    """A name is one namespace: a user, an org, a differently-cased copy and a URL word all collide, on both
    databases; lookups fold case."""
    with backend_hub.db.session() as s:
        alice = service.create_user(s, name="Alice")
        service.create_org(s, name="Acme", owner=alice)
        for taken in ("alice", "ALICE", "acme", "Acme", "api", "Datasets", "settings", "Jobs", "Buckets"):
            with pytest.raises(ConflictError, match="already taken"):
                service.create_user(s, name=taken)
            with pytest.raises(ConflictError, match="already taken"):
                service.create_org(s, name=taken, owner=alice)
        assert service.get_user(s, "aLiCe").id == alice.id
        assert service.get_org(s, "ACME").name == "Acme"
        assert service.find_account(s, "acme").name == "Acme"  # type: ignore[union-attr]
        assert service.find_account(s, "ALICE") is alice
        assert service.find_account(s, "nobody") is None
        with pytest.raises(NotFoundError):
            service.get_user(s, "acme")  # an org is not a user
        with pytest.raises(NotFoundError):
            service.get_org(s, "alice")


@pytest.mark.parametrize(
    "name", ["", "-lead", "trail-", "a--b", "a..b", "x.git", "sp ace", "sl/ash", "é", "a" * 97, "dot."]
)
def test_bad_names_are_refused_in_words(hub: Hub, name: str) -> None:
    """Names outside the Hub's rules are refused with a message that says the rule, for users and orgs alike."""
    with hub.db.session() as s:
        with pytest.raises(InvalidRepoIdError, match="letters, digits"):
            service.create_user(s, name=name)
        owner = service.create_user(s, name="owner")
        with pytest.raises(InvalidRepoIdError, match="organization name"):
            service.create_org(s, name=name, owner=owner)


def test_good_names_are_accepted(hub: Hub) -> None:
    """The edges of the rule are allowed: one character, 96 characters, dots, underscores at the ends."""
    with hub.db.session() as s:
        for name in ("a", "_x_", "v1.2-b_c", "a" * 96):
            assert service.create_user(s, name=name).name_key == name.lower()


def test_passwords_are_salted_scrypt_and_checked(hub: Hub) -> None:
    """A password is stored salted (two hashes of one password differ), verifies only itself, and sign-in by
    name ignores case and surrounding spaces; unknown users, users without a password and wrong passwords
    all answer None."""
    first, second = service.hash_password("s3cret"), service.hash_password("s3cret")
    assert first != second and first.startswith("scrypt$") and "s3cret" not in first
    assert service.verify_password("s3cret", first) and not service.verify_password("s3creT", first)
    assert not service.verify_password("s3cret", None) and not service.verify_password("s3cret", "md5$x$y")
    with hub.db.session() as s:
        bob = service.create_user(s, name="Bob", password="hunter22")
        service.create_user(s, name="nopass")
        assert service.authenticate_password(s, name="  BOB ", password="hunter22") is bob
        assert service.authenticate_password(s, name="bob", password="hunter2") is None
        assert service.authenticate_password(s, name="ghost", password="hunter22") is None
        assert service.authenticate_password(s, name="nopass", password="") is None


def test_tokens_store_only_a_hash_and_name_their_caller(hub: Hub) -> None:
    """A token is shown once: the database holds its sha256 only; it resolves to a principal whose role decides
    writing; unknown tokens resolve to None; roles other than read/write are refused; revoking another
    user's token is a 404 and revoking one's own makes it unknown."""
    with hub.db.session() as s:
        carol = service.create_user(s, name="carol")
        dave = service.create_user(s, name="dave")
        read = service.create_token(s, user=carol, role="read", name="ro")
        write = service.create_token(s, user=carol, role="write", name="rw")
        assert read.startswith(service.TOKEN_PREFIX) and read != write
        stored = set(s.scalars(select(Token.token_hash)))
        assert read not in stored and service.hash_token(read) in stored
        with pytest.raises(BadRequestError, match="Invalid token role"):
            service.create_token(s, user=carol, role="admin")

        reader = service.principal_for_token(s, read)
        writer = service.principal_for_token(s, write)
        assert reader is not None and writer is not None
        assert reader.user is carol and reader.token_name == "ro" and not reader.can_write
        assert writer.can_write and not writer.is_admin
        assert service.principal_for_token(s, write + "x") is None
        assert not service.ANONYMOUS.can_write and service.ANONYMOUS.user is None

        assert [t.name for t in service.list_tokens(s, carol)] in (["rw", "ro"], ["ro", "rw"])
        with pytest.raises(NotFoundError):
            service.revoke_token(s, user=dave, token_id=writer.token_id or 0)
        service.revoke_token(s, user=carol, token_id=writer.token_id or 0)
        assert service.principal_for_token(s, write) is None
        assert service.principal_for_token(s, read) is not None


def test_token_use_is_recorded_at_most_once_a_minute(hub: Hub) -> None:
    """Resolving a token stamps ``last_used_at``; a second use within the minute leaves the stamp alone (no write
    per request)."""
    with hub.db.session() as s:
        user = service.create_user(s, name="erin")
        token = service.create_token(s, user=user)
        service.principal_for_token(s, token)
        record = s.scalar(select(Token).where(Token.user_id == user.id))
        assert record is not None and record.last_used_at is not None
        first = record.last_used_at
        service.principal_for_token(s, token)
        assert record.last_used_at == first


def test_memberships_and_namespace_roles(backend_hub: Hub) -> None:
    """The creator of an org is its admin; ``set_membership`` adds or changes a role and refuses unknown roles;
    ``namespace_role`` answers admin for one's own namespace (any case) and for a site admin everywhere, the
    org role for members, and None for strangers and the anonymous caller."""
    with backend_hub.db.session() as s:
        owner = service.create_user(s, name="Owner")
        member = service.create_user(s, name="member")
        stranger = service.create_user(s, name="stranger")
        root = service.create_user(s, name="root", is_admin=True)
        org = service.create_org(s, name="Team", owner=owner)
        service.set_membership(s, org=org, user=member, role="read")
        service.set_membership(s, org=org, user=member, role="write")  # a change, not a second row
        with pytest.raises(BadRequestError, match="Invalid role"):
            service.set_membership(s, org=org, user=stranger, role="owner")

        members = {user.name: role for user, role in service.org_members(s, org)}
        assert members == {"Owner": "admin", "member": "write"}
        assert [(o.name, role) for o, role in service.user_orgs(s, member)] == [("Team", "write")]
        assert service.user_orgs(s, stranger) == []
        assert service.org_role(s, user=member, namespace="TEAM") == "write"

        def role(user: object, namespace: str) -> str | None:
            principal = service.Principal(user=user, token_role="write")  # type: ignore[arg-type]
            return service.namespace_role(s, principal, namespace)

        assert role(owner, "team") == "admin"
        assert role(member, "Team") == "write"
        assert role(stranger, "team") is None
        assert role(stranger, "STRANGER") == "admin"
        assert role(root, "team") == "admin" and role(root, "stranger") == "admin"
        assert service.namespace_role(s, service.ANONYMOUS, "team") is None


def test_site_admin_needs_a_write_token_to_act_as_admin(hub: Hub) -> None:
    """``Principal.is_admin`` is a site admin holding a write token: a read token leaves them a reader."""
    with hub.db.session() as s:
        root = service.create_user(s, name="root", is_admin=True)
        assert service.Principal(user=root, token_role="write").is_admin
        assert not service.Principal(user=root, token_role="read").is_admin
        plain = service.create_user(s, name="plain")
        assert not service.Principal(user=plain, token_role="write").is_admin

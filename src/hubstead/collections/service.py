"""Collections: who may see and edit them, their items and their order; the rules every route and page calls.

- **Seeing** a collection is the repo rule (``repos.visibility.readable_namespaces``): a public collection is seen by
  everyone, a private one only by those who stand in its namespace (the user, an org's members, site admins); to
  anyone else it is the same 404 as a missing one.
- **Seeing an item**: a repo item is shown only if ``repos.visibility.visible_filter`` keeps its repo, a collection
  item only if that collection may be seen; hidden items are left out (and the positions answered are those of the
  items shown), so a public collection never leaks a private repo's name or note. A deleted repo or collection
  leaves every collection (the foreign keys cascade).
- **Editing** (metadata, items, delete) is writing in the owner's namespace (``repos.service.require_write``: the
  user, or org members with write or admin, with a write token).
- **Slugs** are ``{namespace}/{title slug}-{id}``; only the trailing id names a collection, so a slug taken before a
  rename still finds it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from hubstead.auth.models import Org, User
from hubstead.auth.service import Principal, find_account, user_orgs
from hubstead.collections.models import (
    ITEM_TYPES,
    MAX_DESCRIPTION_CHARS,
    MAX_NOTE_CHARS,
    MAX_TITLE_CHARS,
    THEMES,
    Collection,
    CollectionItem,
)
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, ConflictError, NotFoundError, RepoNotFoundError, UnauthorizedError
from hubstead.repos.models import Repo
from hubstead.repos.service import can_write as can_write_namespace
from hubstead.repos.service import find_repo, require_write
from hubstead.repos.visibility import ALL_NAMESPACES, readable_namespaces, visible_filter

SORTS = ("lastModified", "trending", "upvotes")
LISTED_ITEMS = 4  # a listing shows the first items of each collection, as the Hub does
_SLUG_ID = re.compile(r"^(?:.*-)?([0-9a-f]{24})$")
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_TYPE_PREFIX = {f"{kind}s/": kind for kind in ITEM_TYPES}


class CollectionExistsError(ConflictError):
    """A collection with this title already exists in the namespace; ``slug`` names it (the client's
    ``exists_ok`` reads it from the 409's body)."""

    def __init__(self, slug: str) -> None:
        super().__init__("You already created this collection (a collection with this title exists)")
        self.slug = slug


@dataclass
class ItemView:
    """An item as the caller may see it: the row, what it points at, and its position among the items shown."""

    item: CollectionItem
    repo: Repo | None
    collection: Collection | None
    position: int


def title_slug(title: str) -> str:
    return _NOT_SLUG.sub("-", title.lower()).strip("-")[:80].strip("-") or "collection"


def slug_of(collection: Collection) -> str:
    return f"{collection.namespace}/{title_slug(collection.title)}-{collection.public_id}"


def _new_id() -> str:
    return secrets.token_hex(12)


# --- who may see and edit ------------------------------------------------------------------------------------------


def visible_collections(session: Session, principal: Principal, table: Any = Collection) -> ColumnElement[bool]:
    """The WHERE clause keeping the collections the caller may see (the repo rule, on the owner's namespace)."""
    namespaces = readable_namespaces(session, principal)
    if namespaces is ALL_NAMESPACES:
        return true()
    if not namespaces:
        return table.private == false()
    return or_(table.private == false(), table.namespace_key.in_(sorted(namespaces)))


def can_see(session: Session, principal: Principal, collection: Collection) -> bool:
    if not collection.private:
        return True
    namespaces = readable_namespaces(session, principal)
    return namespaces is ALL_NAMESPACES or collection.namespace_key in namespaces


def can_edit(session: Session, principal: Principal, collection: Collection) -> bool:
    return can_write_namespace(session, principal, collection.namespace)


def may_create(session: Session, principal: Principal, namespace: str) -> bool:
    """Whether the caller may create (and edit) collections owned by ``namespace``."""
    return principal.user is not None and can_write_namespace(session, principal, namespace)


def _not_found(slug: str) -> NotFoundError:
    return NotFoundError(f"Collection {slug!r} not found")


def get_collection(session: Session, principal: Principal, slug: str) -> Collection:
    """The collection a slug names, if the caller may see it; a 404 otherwise (missing and hidden look alike)."""
    namespace, _, rest = slug.strip("/").partition("/")
    match = _SLUG_ID.match(rest)
    if not namespace or match is None:
        raise _not_found(slug)
    collection = session.scalar(select(Collection).where(Collection.public_id == match.group(1)))
    if collection is None or collection.namespace_key != namespace.lower():
        raise _not_found(slug)
    if not can_see(session, principal, collection):
        raise _not_found(slug)
    return collection


def get_editable(session: Session, principal: Principal, slug: str) -> Collection:
    """The collection if the caller may change it: a 404 when they may not see it, 401/403 when they may not
    write in its namespace."""
    collection = get_collection(session, principal, slug)
    require_write(session, principal, collection.namespace)
    return collection


# --- checking input ------------------------------------------------------------------------------------------------


def _plain(value: str, what: str) -> str:
    """``value`` if it holds no NUL (PostgreSQL refuses one in text: it would be a 500, not the caller's 400)."""
    if "\x00" in value:
        raise BadRequestError(f"{what} must not contain a NUL character")
    return value


def _text(body: dict[str, Any], key: str, *, limit: int, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequestError(f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"'{key}' must be a string")
    _plain(value, f"'{key}'")
    value = value.strip()
    if required and not value:
        raise BadRequestError(f"'{key}' must not be empty")
    if len(value) > limit:
        raise BadRequestError(f"'{key}' is too long: at most {limit} characters")
    return value


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequestError(f"'{key}' must be true or false")
    return value


def _position(body: dict[str, Any]) -> int | None:
    value = body.get("position")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequestError("'position' must be a whole number, 0 or more")
    return value


def _theme(body: dict[str, Any]) -> str | None:
    value = body.get("theme")
    if value is not None and value not in THEMES:
        raise BadRequestError(f"'theme' must be one of {', '.join(THEMES)}")
    return value


# --- collections ---------------------------------------------------------------------------------------------------


def _owner_collections(session: Session, namespace_key: str) -> list[Collection]:
    return list(
        session.scalars(
            select(Collection)
            .where(Collection.namespace_key == namespace_key)
            .order_by(Collection.position, Collection.pk)
        )
    )


def _by_title(session: Session, namespace_key: str, title: str) -> Collection | None:
    return session.scalar(
        select(Collection).where(Collection.namespace_key == namespace_key, Collection.title_key == title.lower())
    )


def create_collection(session: Session, principal: Principal, body: dict[str, Any]) -> Collection:
    """A new collection from the client's body (``title``, ``namespace``, ``description?``, ``private?``), last
    in the owner's order. Raises CollectionExistsError (409) when the owner has one with this title."""
    if principal.user is None:
        raise UnauthorizedError("You must be authenticated to create a collection")
    title = _text(body, "title", limit=MAX_TITLE_CHARS, required=True)
    assert title is not None
    description = _text(body, "description", limit=MAX_DESCRIPTION_CHARS) or None
    private = bool(_flag(body, "private"))
    theme = _theme(body) or "orange"
    namespace = body.get("namespace") or principal.user.name
    if not isinstance(namespace, str):
        raise BadRequestError("'namespace' must be a string")
    _plain(namespace, "'namespace'")
    owner = find_account(session, namespace)
    if owner is None:
        raise NotFoundError(f"Namespace {namespace!r} not found")
    require_write(session, principal, owner.name)
    key = owner.name_key
    existing = _by_title(session, key, title)
    if existing is not None:
        if can_see(session, principal, existing):
            raise CollectionExistsError(slug_of(existing))
        raise ConflictError("A collection with this title exists")
    last = session.scalar(select(func.max(Collection.position)).where(Collection.namespace_key == key))
    collection = Collection(
        public_id=_new_id(), namespace=owner.name, namespace_key=key, title=title, title_key=title.lower(),
        description=description, private=private, theme=theme, position=(last + 1) if last is not None else 0,
        upvotes=0,
    )  # fmt: skip
    session.add(collection)
    _flush_unique(session, lambda: CollectionExistsError(slug_of(collection)))
    return collection


def _flush_unique(session: Session, conflict: Any) -> None:
    """Flush inside a savepoint: a unique constraint that a concurrent request won becomes a 409, not a 500."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise conflict() from exc


def update_collection(session: Session, principal: Principal, slug: str, body: dict[str, Any]) -> Collection:
    """Change title, description, private, theme and/or the collection's position in its owner's list. Everything
    is checked before anything changes."""
    collection = get_editable(session, principal, slug)
    title = _text(body, "title", limit=MAX_TITLE_CHARS)
    if title is not None and not title:
        raise BadRequestError("'title' must not be empty")
    description = _text(body, "description", limit=MAX_DESCRIPTION_CHARS)
    private, theme, position = _flag(body, "private"), _theme(body), _position(body)
    if title is not None and title.lower() != collection.title_key:
        clash = _by_title(session, collection.namespace_key, title)
        if clash is not None:
            raise ConflictError("A collection with this title already exists")
    if position is not None:
        siblings = [c for c in _owner_collections(session, collection.namespace_key) if c.pk != collection.pk]
        siblings.insert(min(position, len(siblings)), collection)
        for index, sibling in enumerate(siblings):
            sibling.position = index
    changed = False
    if title is not None and title != collection.title:
        collection.title, collection.title_key, changed = title, title.lower(), True
    if description is not None:
        collection.description, changed = description or None, True
    if private is not None:
        collection.private, changed = private, True
    if theme is not None:
        collection.theme, changed = theme, True
    if changed:
        collection.updated_at = utcnow()
    _flush_unique(session, lambda: ConflictError("A collection with this title already exists"))
    return collection


def delete_collection(session: Session, principal: Principal, slug: str) -> None:
    """Delete the collection; its items go with it, and so does every item of other collections naming it."""
    collection = get_editable(session, principal, slug)
    key = collection.namespace_key
    session.execute(delete(Collection).where(Collection.pk == collection.pk))
    session.expunge(collection)
    for index, sibling in enumerate(_owner_collections(session, key)):
        sibling.position = index
    session.flush()


def list_collections(
    session: Session,
    principal: Principal,
    *,
    owners: list[str],
    items: list[str],
    sort: str | None,
    offset: int,
    limit: int,
) -> list[Collection]:
    """The collections the caller may see, filtered by owners (any of) and items (holding any of them:
    ``models/ns/name``, ``datasets/…``, ``spaces/…``, ``collections/slug``; an unprefixed id is a model).

    Without ``sort`` and with owners, the owners' own order; else the last changed first (``lastModified``), or
    the most upvoted (``upvotes``, ``trending``: this hub has no upvotes yet, so both fall back to the last change).
    Returns up to ``limit + 1`` rows from ``offset``, so the caller knows whether a next page exists.
    """
    if sort is not None and sort not in SORTS:
        raise BadRequestError(f"'sort' must be one of {', '.join(SORTS)}")
    for value in (*owners, *items):
        _plain(value, "A filter")
    query = select(Collection).where(visible_collections(session, principal))
    if owners:
        query = query.where(Collection.namespace_key.in_(sorted({o.lower() for o in owners})))
    if items:
        repo_pks, collection_pks = _item_targets(session, principal, items)
        holding = select(CollectionItem.collection_pk).where(
            or_(
                CollectionItem.repo_pk.in_(repo_pks or [-1]),
                CollectionItem.item_collection_pk.in_(collection_pks or [-1]),
            )
        )
        query = query.where(Collection.pk.in_(holding))
    if sort is None and owners:
        query = query.order_by(Collection.namespace_key, Collection.position, Collection.pk)
    elif sort in ("upvotes", "trending"):
        query = query.order_by(Collection.upvotes.desc(), Collection.updated_at.desc(), Collection.pk.desc())
    else:
        query = query.order_by(Collection.updated_at.desc(), Collection.pk.desc())
    return list(session.scalars(query.offset(offset).limit(limit + 1)))


def _item_targets(session: Session, principal: Principal, items: list[str]) -> tuple[list[int], list[int]]:
    """The repos and collections an ``item`` filter names, among those the caller may see (others match nothing)."""
    repo_pks: list[int] = []
    collection_pks: list[int] = []
    for raw in items:
        kind, ident = "model", raw
        for prefix, prefixed_kind in _TYPE_PREFIX.items():
            if raw.startswith(prefix):
                kind, ident = prefixed_kind, raw[len(prefix):]
        if kind == "collection":
            try:
                collection_pks.append(get_collection(session, principal, ident).pk)
            except NotFoundError:
                continue
        else:
            repo = _visible_repo(session, principal, kind, ident)
            if repo is not None:
                repo_pks.append(repo.pk)
    return repo_pks, collection_pks


def _visible_repo(session: Session, principal: Principal, kind: str, repo_id: str) -> Repo | None:
    repo, _ = find_repo(session, repo_type=kind, repo_id=repo_id)
    if repo is None:
        return None
    return session.scalar(select(Repo).where(Repo.pk == repo.pk, visible_filter(session, principal)))


# --- items ---------------------------------------------------------------------------------------------------------


def visible_items(
    session: Session, principal: Principal, collections: list[Collection], *, per_collection: int | None = None
) -> dict[int, list[ItemView]]:
    """Each collection's items the caller may see, in order, with their positions among those shown."""
    pks = [c.pk for c in collections]
    found: dict[int, list[tuple[CollectionItem, Repo | None, Collection | None]]] = {pk: [] for pk in pks}
    if not pks:
        return {}
    repo_rows = session.execute(
        select(CollectionItem, Repo)
        .join(Repo, Repo.pk == CollectionItem.repo_pk)
        .where(CollectionItem.collection_pk.in_(pks), visible_filter(session, principal))
    )
    for item, repo in repo_rows:
        found[item.collection_pk].append((item, repo, None))
    inner = aliased(Collection)
    collection_rows = session.execute(
        select(CollectionItem, inner)
        .join(inner, inner.pk == CollectionItem.item_collection_pk)
        .where(CollectionItem.collection_pk.in_(pks), visible_collections(session, principal, inner))
    )
    for item, target in collection_rows:
        found[item.collection_pk].append((item, None, target))
    out: dict[int, list[ItemView]] = {}
    for pk, rows in found.items():
        rows.sort(key=lambda row: (row[0].position, row[0].pk))
        if per_collection is not None:
            rows = rows[:per_collection]
        out[pk] = [ItemView(item, repo, target, index) for index, (item, repo, target) in enumerate(rows)]
    return out


def _ordered_items(session: Session, collection: Collection) -> list[CollectionItem]:
    return list(
        session.scalars(
            select(CollectionItem)
            .where(CollectionItem.collection_pk == collection.pk)
            .order_by(CollectionItem.position, CollectionItem.pk)
        )
    )


def _renumber(items: list[CollectionItem]) -> None:
    for index, item in enumerate(items):
        if item.position != index:
            item.position = index


def add_item(session: Session, principal: Principal, slug: str, body: dict[str, Any]) -> Collection:
    """Add ``{"item": {"id", "type"}, "note"?}`` last. The repo (or collection) must exist and be visible to the
    caller (else the same 404 as a missing one); a second entry for it is a 409."""
    collection = get_editable(session, principal, slug)
    item = body.get("item")
    if not isinstance(item, dict):
        raise BadRequestError("'item' must be an object with 'id' and 'type'")
    kind, ident = item.get("type"), item.get("id")
    if kind not in ITEM_TYPES:
        raise BadRequestError(
            f"Unknown item type {kind!r}: this hub's collections hold {', '.join(ITEM_TYPES)}"
            + (" (no papers or buckets here)" if kind in ("paper", "bucket") else "")
        )
    if not isinstance(ident, str) or not ident.strip():
        raise BadRequestError("'item.id' must be a non-empty string")
    ident = _plain(ident.strip(), "'item.id'").removeprefix(f"{kind}s/")
    note = _text(body, "note", limit=MAX_NOTE_CHARS) or None
    row = CollectionItem(public_id=_new_id(), collection_pk=collection.pk, item_type=kind, note=note)
    if kind == "collection":
        target = get_collection(session, principal, ident)
        if target.pk == collection.pk:
            raise BadRequestError("A collection cannot hold itself")
        row.item_collection_pk = target.pk
        duplicate = CollectionItem.item_collection_pk == target.pk
    else:
        repo = _visible_repo(session, principal, kind, ident)
        if repo is None:
            raise RepoNotFoundError(f"{kind.capitalize()} {ident!r} not found")
        row.repo_pk = repo.pk
        duplicate = CollectionItem.repo_pk == repo.pk
    if session.scalar(select(CollectionItem.pk).where(CollectionItem.collection_pk == collection.pk, duplicate)):
        raise ConflictError("This item is already in the collection")
    last = session.scalar(
        select(func.max(CollectionItem.position)).where(CollectionItem.collection_pk == collection.pk)
    )
    row.position = (last + 1) if last is not None else 0
    session.add(row)
    collection.updated_at = utcnow()
    _flush_unique(session, lambda: ConflictError("This item is already in the collection"))
    return collection


def _item(session: Session, collection: Collection, item_id: str) -> CollectionItem:
    if not _OBJECT_ID.match(item_id):
        raise NotFoundError(f"Item {item_id!r} not found in this collection")
    row = session.scalar(
        select(CollectionItem).where(CollectionItem.collection_pk == collection.pk, CollectionItem.public_id == item_id)
    )
    if row is None:
        raise NotFoundError(f"Item {item_id!r} not found in this collection")
    return row


def update_item(session: Session, principal: Principal, slug: str, item_id: str, body: dict[str, Any]) -> Collection:
    """Change an item's note (an empty one removes it) and/or move it to ``position`` (0 first)."""
    collection = get_editable(session, principal, slug)
    note = _text(body, "note", limit=MAX_NOTE_CHARS)
    position = _position(body)
    row = _item(session, collection, item_id)
    if note is not None:
        row.note = note or None
    if position is not None:
        others = [i for i in _ordered_items(session, collection) if i.pk != row.pk]
        others.insert(min(position, len(others)), row)
        _renumber(others)
    collection.updated_at = utcnow()
    session.flush()
    return collection


def delete_item(session: Session, principal: Principal, slug: str, item_id: str) -> None:
    collection = get_editable(session, principal, slug)
    row = _item(session, collection, item_id)
    session.delete(row)
    session.flush()
    _renumber(_ordered_items(session, collection))
    collection.updated_at = utcnow()
    session.flush()


# --- owners --------------------------------------------------------------------------------------------------------


def owners_of(session: Session, collections: list[Collection]) -> dict[str, User | Org | None]:
    """Each namespace's account (a user or an org), for the answers' ``owner``."""
    return {key: find_account(session, key) for key in {c.namespace_key for c in collections}}


def for_owner(session: Session, principal: Principal, namespace: str) -> list[Collection]:
    """The collections of one user or org that the caller may see, in the owner's order (the profile page)."""
    return list(
        session.scalars(
            select(Collection)
            .where(Collection.namespace_key == namespace.lower(), visible_collections(session, principal))
            .order_by(Collection.position, Collection.pk)
        )
    )


def editable_by(session: Session, principal: Principal) -> list[Collection]:
    """The collections the caller may add to: those of their own namespace and of the orgs they write in."""
    keys = [name.lower() for name in writable_namespaces(session, principal)]
    if not keys:
        return []
    return list(
        session.scalars(
            select(Collection)
            .where(Collection.namespace_key.in_(keys))
            .order_by(Collection.namespace_key, Collection.position)
        )
    )


def writable_namespaces(session: Session, principal: Principal) -> list[str]:
    """Where the caller may create collections: their own namespace and the orgs they write in."""
    if principal.user is None:
        return []
    orgs = [org.name for org, role in user_orgs(session, principal.user) if role in ("write", "admin")]
    return [principal.user.name, *orgs]

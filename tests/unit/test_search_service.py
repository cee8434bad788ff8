"""``hubstead.search.service`` against a real database on SQLite and PostgreSQL: what each listing filter keeps,
how sorts and paging order the rows, what the facets count, and that a listing shows exactly the repos
``repos.visibility.can_read`` lets the caller see (one rule, as a predicate and as a query filter).

Search reads only the index rows (never git), so the repos here are index rows written directly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from hubstead.auth import service as auth
from hubstead.auth.service import ANONYMOUS, Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError
from hubstead.repos.models import Repo, RepoTag
from hubstead.repos.visibility import can_read
from hubstead.search.service import ListQuery, facets, list_repos


def _repo(session: Session, repo_id: str, *, repo_type: str = "model", tags: list[str] = (), **fields: Any) -> Repo:  # type: ignore[assignment]
    namespace, name = repo_id.split("/")
    repo = Repo(
        repo_type=repo_type,
        namespace=namespace,
        name=name,
        id_key=repo_id.lower(),
        storage_key=uuid.uuid4().hex,
        tags=list(tags),
        languages=[t.removeprefix("language:") for t in tags if t.startswith("language:")],
        base_models=[],
        datasets=[],
        **fields,
    )
    session.add(repo)
    session.flush()
    for tag in tags:
        session.add(RepoTag(repo_pk=repo.pk, tag=tag))
    session.flush()
    return repo


@dataclass
class World:
    session: Session
    alice: Principal
    bob: Principal
    root: Principal

    def ids(self, principal: Principal, *, page_size: int = 100, **query: Any) -> list[str]:
        query.setdefault("repo_type", "model")
        query.setdefault("search", [])
        rows, _ = list_repos(self.session, principal, ListQuery(**query), page_size=page_size)
        return [row.repo.repo_id for row in rows]


@pytest.fixture()
def world(backend_hub: Hub) -> Any:
    """Alice (in org Lab), Bob, a site admin; public and private models in each namespace, and one dataset."""
    with backend_hub.db.session() as s:
        alice = auth.create_user(s, name="Alice")
        bob = auth.create_user(s, name="bob")
        root = auth.create_user(s, name="root", is_admin=True)
        lab = auth.create_org(s, name="Lab", owner=alice)
        auth.set_membership(s, org=lab, user=bob, role="read")
        carol = auth.create_user(s, name="carol")
        _repo(s, "Alice/Public-BERT", pipeline_tag="text-classification", library_name="transformers",
              license="mit", tags=["language:en", "transformers", "sentiment"], downloads_30d=50, likes=3,
              trending_score=5)
        _repo(s, "Alice/secret", private=True, pipeline_tag="fill-mask", library_name="transformers",
              license="apache-2.0", tags=["language:fr"], downloads_30d=10, likes=9, trending_score=1)
        _repo(s, "Lab/lab-model", private=True, pipeline_tag="text-classification", library_name="onnx",
              gated="auto", tags=["language:en"], downloads_30d=30, likes=0, trending_score=7)
        _repo(s, "carol/a_b", pipeline_tag="translation", license="mit", tags=["language:en", "language:fr"],
              downloads_30d=20, likes=1)
        _repo(s, "carol/axb", library_name="gguf", downloads_30d=20, likes=2)
        _repo(s, "carol/hidden", private=True, downloads_30d=99)
        _repo(s, "carol/corpus", repo_type="dataset", tags=["language:en"])
        del carol
        yield World(
            session=s,
            alice=Principal(user=alice, token_role="read"),
            bob=Principal(user=bob, token_role="read"),
            root=Principal(user=root, token_role="write"),
        )


ALL_MODELS = ["Alice/Public-BERT", "Alice/secret", "Lab/lab-model", "carol/a_b", "carol/axb", "carol/hidden"]


def test_listing_shows_exactly_what_can_read_allows(world: World) -> None:
    """For each caller the listing is the repos ``can_read`` admits: the anonymous caller and a stranger see public
    repos, a member also sees the org's private repos (any role), the owner their own, a site admin all."""
    expected = {
        "anonymous": {"Alice/Public-BERT", "carol/a_b", "carol/axb"},
        "alice": {"Alice/Public-BERT", "Alice/secret", "Lab/lab-model", "carol/a_b", "carol/axb"},
        "bob": {"Alice/Public-BERT", "Lab/lab-model", "carol/a_b", "carol/axb"},
        "root": set(ALL_MODELS),
    }
    callers = {"anonymous": ANONYMOUS, "alice": world.alice, "bob": world.bob, "root": world.root}
    repos = {r.repo_id: r for r in world.session.query(Repo).where(Repo.repo_type == "model")}
    for who, principal in callers.items():
        listed = set(world.ids(principal))
        assert listed == expected[who], who
        assert listed == {rid for rid, repo in repos.items() if can_read(world.session, principal, repo)}, who


def test_search_terms_match_ids_case_insensitively_and_literally(world: World) -> None:
    """A search term is a case-insensitive substring of ``namespace/name``; ``_`` and ``%`` are literal, not SQL
    wildcards; several terms must all match; an empty term matches everything."""
    assert world.ids(ANONYMOUS, search=["bert"]) == ["Alice/Public-BERT"]
    assert world.ids(ANONYMOUS, search=["ALICE/"]) == ["Alice/Public-BERT"]
    assert world.ids(ANONYMOUS, search=["a_b"]) == ["carol/a_b"]
    assert world.ids(ANONYMOUS, search=["%"]) == []
    assert world.ids(ANONYMOUS, search=["carol", "xb"]) == ["carol/axb"]
    assert len(world.ids(ANONYMOUS, search=[""])) == 3


def test_filters(world: World) -> None:
    """Each filter keeps what it names: author (any case), a tag that may be a tag, a task or a library,
    ``language:`` tags, pipeline_tag, library, language, license, gated or not, and the repo type."""
    alice = world.alice
    assert world.ids(alice, author="alice", sort="id", direction=1) == ["Alice/Public-BERT", "Alice/secret"]
    assert world.ids(alice, filters=["sentiment"]) == ["Alice/Public-BERT"]
    assert set(world.ids(alice, filters=["text-classification"])) == {"Alice/Public-BERT", "Lab/lab-model"}
    assert set(world.ids(alice, filters=["onnx"])) == {"Lab/lab-model"}
    assert set(world.ids(alice, filters=["language:fr"])) == {"Alice/secret", "carol/a_b"}
    assert world.ids(alice, pipeline_tag="fill-mask") == ["Alice/secret"]
    assert set(world.ids(alice, library=["transformers"])) == {"Alice/Public-BERT", "Alice/secret"}
    assert set(world.ids(alice, language=["en"])) == {"Alice/Public-BERT", "Lab/lab-model", "carol/a_b"}
    assert set(world.ids(alice, language=["en", "fr"])) == {"carol/a_b"}
    assert set(world.ids(alice, license="mit")) == {"Alice/Public-BERT", "carol/a_b"}
    assert world.ids(alice, gated=True) == ["Lab/lab-model"]
    assert "Lab/lab-model" not in world.ids(alice, gated=False)
    assert world.ids(alice, repo_type="dataset") == ["carol/corpus"]
    assert world.ids(alice, filters=["no-such-tag"]) == []


def test_sorts_and_paging(world: World) -> None:
    """Sorts order by their column (descending unless ``direction`` is positive), ties newest first; an unknown
    sort is a 400 that lists the valid ones; ``offset`` and the page size page through without overlap, and
    the ``more`` flag is true until the last page."""
    root = world.root
    assert world.ids(root, sort="downloads") == [
        "carol/hidden", "Alice/Public-BERT", "Lab/lab-model", "carol/axb", "carol/a_b", "Alice/secret",
    ]
    assert world.ids(root, sort="likes", direction=1)[:3] == ["carol/hidden", "Lab/lab-model", "carol/a_b"]
    assert world.ids(root, sort="trendingScore")[:2] == ["Lab/lab-model", "Alice/Public-BERT"]
    assert world.ids(root, sort="trending_score")[:2] == ["Lab/lab-model", "Alice/Public-BERT"]
    assert world.ids(root, sort="id", direction=1) == sorted(ALL_MODELS, key=str.lower)
    assert world.ids(root) == list(reversed(ALL_MODELS))  # no sort: newest first
    with pytest.raises(BadRequestError, match="Invalid sort 'stars'.*downloads"):
        world.ids(root, sort="stars")

    pages, offset, more = [], 0, True
    while more:
        rows, more = list_repos(
            world.session, root, ListQuery(repo_type="model", search=[], sort="id", offset=offset), page_size=4
        )
        pages.append([r.repo.repo_id for r in rows])
        offset += 4
    descending = sorted(ALL_MODELS, key=str.lower, reverse=True)
    assert pages == [descending[:4], descending[4:]]


def test_listed_rows_carry_trending_and_downloads(world: World) -> None:
    """Each listed row carries the repo's trending score and 30-day downloads as ints."""
    rows, more = list_repos(world.session, ANONYMOUS, ListQuery(repo_type="model", search=["bert"]), page_size=10)
    assert not more and [(r.trending, r.downloads) for r in rows] == [(5, 50)]


def test_facets_count_only_visible_matching_repos(world: World) -> None:
    """Facets count per task, library, license and language among the repos the query matches and the caller
    may see, most frequent first; languages drop their ``language:`` prefix; ``total`` is the match count."""
    public = facets(world.session, ANONYMOUS, ListQuery(repo_type="model", search=[]))
    assert public.total == 3
    assert public.tasks == [("text-classification", 1), ("translation", 1)]
    assert public.libraries == [("gguf", 1), ("transformers", 1)]
    assert public.licenses == [("mit", 2)]
    assert public.languages == [("en", 2), ("fr", 1)]

    member = facets(world.session, world.alice, ListQuery(repo_type="model", search=[]))
    assert member.total == 5
    assert member.tasks[0] == ("text-classification", 2)
    assert dict(member.languages) == {"en": 3, "fr": 2}

    narrowed = facets(world.session, world.alice, ListQuery(repo_type="model", search=[], license="mit"))
    assert narrowed.total == 2 and dict(narrowed.languages) == {"en": 2, "fr": 1}

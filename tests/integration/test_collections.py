"""Collections through the unchanged huggingface_hub client (the newest, in this venv; 0.30.2 and 1.33.0 in their own
venvs): the whole lifecycle, ordering, notes, who may edit, privacy of collections and of their items, a deleted
repo leaving its collections, and bad input answered with a clear 4xx that writes nothing. The pages are tested in
tests/browser/test_collection_pages.py and test_collection_pages below."""

from __future__ import annotations

import re

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from client_venvs import client_python
from support import Account, LiveServer, last_json, run_client, web_session

SLUG = re.compile(r"^(?P<ns>[^/]+)/(?P<title>[a-z0-9-]+)-(?P<id>[0-9a-f]{24})$")


def _api(server: LiveServer, account: Account) -> HfApi:
    return HfApi(endpoint=server.url, token=account.write_token)


def _repos(server: LiveServer, owner: Account) -> tuple[str, str, str]:
    """A model, a dataset and a space of ``owner``'s."""
    api = _api(server, owner)
    model, dataset, space = (f"{owner.name}/{server.unique(n)}" for n in ("model", "data", "space"))
    api.create_repo(model)
    api.create_repo(dataset, repo_type="dataset")
    api.create_repo(space, repo_type="space", space_sdk="static")
    return model, dataset, space


def _status(call) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(HfHubHTTPError) as caught:
        call()
    return caught.value.response.status_code


def test_lifecycle_ordering_and_notes(server: LiveServer) -> None:
    """Create, add a model, a dataset, a space and another collection with notes, reorder, edit a note, rename (the
    old slug still finds it), list with filters, delete an item, delete the collection; every answer parses into the
    client's Collection with the values just written."""
    owner = server.account("coll")
    api = _api(server, owner)
    model, dataset, space = _repos(server, owner)

    created = api.create_collection("My Favourite Models!", description="Picked by hand")
    match = SLUG.match(created.slug)
    assert match and match["ns"] == owner.name and match["title"] == "my-favourite-models"
    assert (created.title, created.description, created.private, created.items) == (
        "My Favourite Models!", "Picked by hand", False, []
    )
    assert created.owner["name"] == owner.name and created.owner["type"] == "user"
    assert created.url == f"{server.url}/collections/{created.slug}"
    assert api.create_collection("My Favourite Models!", exists_ok=True).slug == created.slug
    assert _status(lambda: api.create_collection("my favourite models!")) == 409  # one title per owner

    other = api.create_collection("Reading list")
    after_model = api.add_collection_item(created.slug, model, "model", note="The *best* one")
    assert [(i.item_id, i.item_type, i.position, i.note) for i in after_model.items] == [
        (model, "model", 0, "The *best* one")
    ]
    api.add_collection_item(created.slug, f"datasets/{dataset}", "dataset")  # the prefixed form the docs show
    api.add_collection_item(created.slug, space, "space", note="Try it")
    full = api.add_collection_item(created.slug, other.slug, "collection")
    assert [(i.item_id, i.item_type, i.position) for i in full.items] == [
        (model, "model", 0), (dataset, "dataset", 1), (space, "space", 2), (other.slug, "collection", 3)
    ]
    assert len({i.item_object_id for i in full.items}) == 4
    assert api.add_collection_item(created.slug, model, "model", exists_ok=True).slug == created.slug
    assert _status(lambda: api.add_collection_item(created.slug, model, "model")) == 409

    space_item = full.items[2]
    api.update_collection_item(created.slug, space_item.item_object_id, position=0, note="Start here")
    api.update_collection_item(created.slug, full.items[0].item_object_id, note="")  # an empty note removes it
    got = api.get_collection(created.slug)
    assert [(i.item_id, i.position, i.note) for i in got.items] == [
        (space, 0, "Start here"), (model, 1, None), (dataset, 2, None), (other.slug, 3, None)
    ]
    assert got.last_updated >= created.last_updated

    renamed = api.update_collection_metadata(
        created.slug, title="Models I use", description="Daily drivers", theme="green", private=True
    )
    assert renamed.slug.endswith(match["id"]) and "/models-i-use-" in renamed.slug
    assert (renamed.title, renamed.description, renamed.theme, renamed.private) == (
        "Models I use", "Daily drivers", "green", True
    )
    assert api.get_collection(created.slug).slug == renamed.slug  # the old slug still finds it
    # The owner's collections in their order (new ones last); moving one to the front; by last change.
    assert [c.slug for c in api.list_collections(owner=owner.name)] == [renamed.slug, other.slug]
    assert api.update_collection_metadata(other.slug, position=0).position == 0
    assert [c.slug for c in api.list_collections(owner=owner.name)] == [other.slug, renamed.slug]
    assert [c.position for c in api.list_collections(owner=owner.name)] == [0, 1]
    assert api.get_collection(renamed.slug).position == 1
    assert [c.slug for c in api.list_collections(owner=owner.name, sort="lastModified")] == [renamed.slug, other.slug]
    listed = list(api.list_collections(item=f"models/{model}"))
    assert [c.slug for c in listed] == [renamed.slug]
    assert len(list(api.list_collections(owner=owner.name, limit=1))) == 1
    assert list(api.list_collections(item=f"spaces/{owner.name}/no-such-space")) == []

    api.delete_collection_item(renamed.slug, space_item.item_object_id)
    assert [i.item_id for i in api.get_collection(renamed.slug).items] == [model, dataset, other.slug]
    assert [i.position for i in api.get_collection(renamed.slug).items] == [0, 1, 2]
    assert _status(lambda: api.delete_collection_item(renamed.slug, space_item.item_object_id)) == 404
    api.delete_collection_item(renamed.slug, space_item.item_object_id, missing_ok=True)

    api.delete_collection(other.slug)  # a collection that is an item of another leaves it
    assert [i.item_id for i in api.get_collection(renamed.slug).items] == [model, dataset]
    api.delete_collection(renamed.slug)
    assert _status(lambda: api.get_collection(renamed.slug)) == 404
    api.delete_collection(renamed.slug, missing_ok=True)


def test_who_may_edit_and_org_collections(server: LiveServer) -> None:
    """The owner edits; a stranger, a read token and an org member with the read role cannot (403, nothing
    changes); an org member with write creates and edits the org's collections."""
    owner, stranger, writer, reader = (server.account(p) for p in ("own", "stranger", "writer", "reader"))
    org = server.unique("collorg")
    server.cli("orgs", "create", org, "--owner", owner.name)
    server.cli("orgs", "add-member", org, writer.name, "--role", "write")
    server.cli("orgs", "add-member", org, reader.name, "--role", "read")
    model, _, _ = _repos(server, owner)

    mine = _api(server, owner).create_collection("Mine")
    for account in (stranger, reader):
        assert _status(lambda a=account: _api(server, a).add_collection_item(mine.slug, model, "model")) == 403
        assert _status(lambda a=account: _api(server, a).update_collection_metadata(mine.slug, title="X")) == 403
        assert _status(lambda a=account: _api(server, a).delete_collection(mine.slug)) == 403
    read_only = HfApi(endpoint=server.url, token=owner.read_token)
    assert _status(lambda: read_only.add_collection_item(mine.slug, model, "model")) == 403
    assert _status(lambda: _api(server, stranger).create_collection("Theirs", namespace=owner.name)) == 403
    assert _api(server, owner).get_collection(mine.slug).items == []

    team = _api(server, writer).create_collection("Team picks", namespace=org)
    assert team.owner["name"] == org and team.owner["type"] == "org"
    _api(server, owner).add_collection_item(team.slug, model, "model")
    assert _status(lambda: _api(server, reader).create_collection("Nope", namespace=org)) == 403
    assert _status(lambda: _api(server, reader).update_collection_metadata(team.slug, title="Nope")) == 403
    assert [c.slug for c in _api(server, stranger).list_collections(owner=org)] == [team.slug]


def test_private_collections_and_private_items_stay_hidden(server: LiveServer) -> None:
    """A private collection is a 404 to others and absent from their listings; a private repo in a public
    collection is left out of what others see (get, list, item filter), never leaked; org members see both; a
    deleted repo leaves every collection."""
    owner, other = server.account("priv"), server.account("peek")
    api, theirs = _api(server, owner), _api(server, other)
    public_model, _, _ = _repos(server, owner)
    secret_model = f"{owner.name}/{server.unique('secret')}"
    api.create_repo(secret_model, private=True)

    hidden = api.create_collection("Hidden", private=True)
    api.add_collection_item(hidden.slug, public_model, "model")
    assert _status(lambda: theirs.get_collection(hidden.slug)) == 404
    assert _status(lambda: HfApi(endpoint=server.url, token=False).get_collection(hidden.slug)) == 404
    assert _status(lambda: theirs.add_collection_item(hidden.slug, public_model, "model")) == 404
    assert hidden.slug not in [c.slug for c in theirs.list_collections(owner=owner.name)]
    assert hidden.slug in [c.slug for c in api.list_collections(owner=owner.name)]

    shown = api.create_collection("Shown")
    api.add_collection_item(shown.slug, secret_model, "model", note="secret note")
    api.add_collection_item(shown.slug, public_model, "model")
    api.add_collection_item(shown.slug, hidden.slug, "collection")
    assert [i.item_id for i in api.get_collection(shown.slug).items] == [secret_model, public_model, hidden.slug]
    seen = theirs.get_collection(shown.slug)
    assert [(i.item_id, i.position) for i in seen.items] == [(public_model, 0)]
    raw = httpx.get(f"{server.url}/api/collections/{shown.slug}").text
    assert secret_model not in raw and "secret note" not in raw and hidden.slug not in raw
    listed = httpx.get(f"{server.url}/api/collections", params={"owner": owner.name}).text
    assert secret_model not in listed and "Hidden" not in listed
    assert list(theirs.list_collections(item=f"models/{secret_model}")) == []
    assert [c.slug for c in api.list_collections(item=f"models/{secret_model}")] == [shown.slug]
    # Someone who cannot see a repo cannot add it: the same 404 as a missing one.
    their_own = theirs.create_collection("Theirs")
    assert _status(lambda: theirs.add_collection_item(their_own.slug, secret_model, "model")) == 404

    api.delete_repo(public_model)
    assert [i.item_id for i in api.get_collection(shown.slug).items] == [secret_model, hidden.slug]
    assert theirs.get_collection(shown.slug).items == []


def test_bad_input_is_a_clear_4xx_and_writes_nothing(server: LiveServer) -> None:
    """Unknown or unsupported item type, a missing repo, a malformed slug, a title, description or note too long,
    an unknown theme, a position that is not a number: each a 4xx with the Hub's error shape, and the collection
    is as it was."""
    owner = server.account("bad")
    api = _api(server, owner)
    model, _, _ = _repos(server, owner)
    coll = api.create_collection("Untouched")
    api.add_collection_item(coll.slug, model, "model", note="keep")
    before = httpx.get(f"{server.url}/api/collections/{coll.slug}", headers={"authorization": f"Bearer {owner.write_token}"}).json()
    auth = {"authorization": f"Bearer {owner.write_token}"}
    base = f"{server.url}/api/collections"

    def post_item(body: object) -> httpx.Response:
        return httpx.post(f"{base}/{coll.slug}/items", json=body, headers=auth)

    cases = {
        "unknown type": post_item({"item": {"id": model, "type": "spreadsheet"}}),
        "paper": post_item({"item": {"id": "2311.12983", "type": "paper"}}),
        "missing repo": post_item({"item": {"id": f"{owner.name}/nope", "type": "model"}}),
        "no item": post_item({"note": "x"}),
        "note too long": post_item({"item": {"id": model, "type": "model"}, "note": "n" * 501}),
        "itself": post_item({"item": {"id": coll.slug, "type": "collection"}}),
        "title too long": httpx.post(base, json={"title": "t" * 61, "namespace": owner.name}, headers=auth),
        "empty title": httpx.post(base, json={"title": "  ", "namespace": owner.name}, headers=auth),
        "description too long": httpx.post(
            base, json={"title": "ok", "namespace": owner.name, "description": "d" * 151}, headers=auth
        ),
        "bad theme": httpx.patch(f"{base}/{coll.slug}", json={"theme": "chartreuse"}, headers=auth),
        "rename too long": httpx.patch(f"{base}/{coll.slug}", json={"title": "t" * 61}, headers=auth),
        "bad position": httpx.patch(
            f"{base}/{coll.slug}/items/{before['items'][0]['_id']}", json={"position": "first"}, headers=auth
        ),
        "malformed slug": httpx.get(f"{base}/{owner.name}/not-a-slug", headers=auth),
        "no namespace": httpx.post(base, json={"title": "ok", "namespace": "no-such-owner-xyz"}, headers=auth),
        "anonymous create": httpx.post(base, json={"title": "ok", "namespace": owner.name}),
        "NUL in a title": httpx.post(base, json={"title": "a\x00b", "namespace": owner.name}, headers=auth),
        "NUL in an item": post_item({"item": {"id": f"{owner.name}/a\x00b", "type": "model"}}),
        "NUL in a filter": httpx.get(base, params={"owner": "a\x00b"}),
        "NUL item id": httpx.delete(f"{base}/{coll.slug}/items/a%00b", headers=auth),
        "bad sort": httpx.get(base, params={"sort": "stars"}),
        "bad limit": httpx.get(base, params={"limit": "-1"}),
    }
    expected = {"missing repo": 404, "malformed slug": 404, "no namespace": 404, "anonymous create": 401,
                "NUL item id": 404}  # fmt: skip
    for name, answer in cases.items():
        assert answer.status_code == expected.get(name, 400), (name, answer.status_code, answer.text)
        assert answer.json()["error"] and answer.headers["x-error-message"], name
    assert "spreadsheet" in cases["unknown type"].json()["error"]
    assert "60" in cases["title too long"].json()["error"]
    assert cases["missing repo"].headers.get("x-error-code") == "RepoNotFound"
    after = httpx.get(f"{base}/{coll.slug}", headers=auth).json()
    assert after == before
    assert [c.title for c in api.list_collections(owner=owner.name)] == ["Untouched"]


OLD_CLIENT_SCRIPT = """
import huggingface_hub
from huggingface_hub import HfApi
api = HfApi()
me = api.whoami()["name"]
api.create_repo(me + "/m")
c = api.create_collection("Old client", description="from an old client")
c = api.add_collection_item(c.slug, me + "/m", "model", note="a note")
item = c.items[0]
api.update_collection_item(c.slug, item.item_object_id, note="new note", position=0)
c2 = api.update_collection_metadata(c.slug, title="Old client renamed", private=True)
got = api.get_collection(c.slug)
listed = [x.slug for x in api.list_collections(owner=me)]
again = api.create_collection("Old client renamed", exists_ok=True).slug
api.delete_collection_item(c.slug, item.item_object_id)
empty = api.get_collection(c.slug).items
api.delete_collection(c.slug)
api.delete_collection(c.slug, missing_ok=True)
import json
print(json.dumps({"version": huggingface_hub.__version__, "slug": c2.slug, "title": got.title, "private": got.private,
                  "items": [[i.item_id, i.item_type, i.position, i.note] for i in got.items],
                  "listed": listed, "again": again, "empty": empty == [], "me": me}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.30.2", "1.33.0"])
def test_old_clients(server: LiveServer, env_for, version: str) -> None:
    """The oldest client we claim and a 1.x client run the whole lifecycle and parse every answer."""
    user = server.account("oldcoll")
    result = run_client(OLD_CLIENT_SCRIPT, env_for(user.write_token), python=client_python(version))
    out = last_json(result)
    assert isinstance(out, dict)
    assert out["version"] == version and out["me"] == user.name
    assert out["title"] == "Old client renamed" and out["private"] is True
    assert out["items"] == [[f"{user.name}/m", "model", 0, "new note"]]
    assert out["listed"] == [out["slug"]] and out["again"] == out["slug"] and out["empty"]


def test_collection_pages(server: LiveServer) -> None:
    """The collection page lists its items in order with their notes (escaped), a private one is a 404 to others,
    the owner's profile shows a Collections section; the owner's forms create a collection and add a repo to it
    (CSRF-checked); others get no form."""
    owner = server.account("pages", password="pages-password-1")
    api = _api(server, owner)
    model, dataset, _ = _repos(server, owner)
    coll = api.create_collection("Page picks", description="For the page")
    api.add_collection_item(coll.slug, dataset, "dataset", note="<script>alert(1)</script> data")
    api.add_collection_item(coll.slug, model, "model", note="model note")
    hidden = api.create_collection("Page secret", private=True)

    page = httpx.get(f"{server.url}/collections/{coll.slug}")
    assert page.status_code == 200
    assert "Page picks" in page.text and "For the page" in page.text
    assert page.text.index(dataset) < page.text.index(model)
    assert "model note" in page.text and "&lt;script&gt;alert(1)&lt;/script&gt; data" in page.text
    assert "<script>alert(1)" not in page.text
    assert "Add a repo" not in page.text  # no form for those who may not edit
    assert httpx.get(f"{server.url}/collections/{hidden.slug}").status_code == 404

    profile = httpx.get(f"{server.url}/{owner.name}")
    assert "Collections" in profile.text and "Page picks" in profile.text and "Page secret" not in profile.text

    browser, csrf = web_session(server, owner.name, "pages-password-1")
    try:
        assert "Page secret" in browser.get(f"/{owner.name}").text
        assert browser.get(f"/collections/{hidden.slug}").status_code == 200
        assert "Add a repo" in browser.get(f"/collections/{coll.slug}").text  # the owner's form
        assert "New collection" in browser.get(f"/{owner.name}").text
        made = browser.post(
            "/collections/new",
            data={"title": "From the browser", "namespace": owner.name, "csrf_token": csrf},
        )
        assert made.status_code in (302, 303), made.text[:500]
        slug = made.headers["location"].removeprefix("/collections/")
        added = browser.post(
            f"/collections/{slug}/items",
            data={"item_id": dataset, "item_type": "dataset", "note": "added in the browser", "csrf_token": csrf},
        )
        assert added.status_code in (302, 303), added.text[:500]
        refused = browser.post(  # without the CSRF token nothing happens
            f"/collections/{slug}/items", data={"item_id": model, "item_type": "model"}
        )
        assert refused.status_code == 403
    finally:
        browser.close()
    got = api.get_collection(slug)
    assert got.title == "From the browser"
    assert [(i.item_id, i.note) for i in got.items] == [(dataset, "added in the browser")]


def test_add_to_a_collection_from_a_repo_page(server: LiveServer) -> None:
    """A signed-in user who owns collections sees "Add to a collection" on a model page; posting it (CSRF-checked)
    adds the repo with its note; a visitor gets no box, and another user cannot add to someone else's collection."""
    owner = server.account("addbox", password="addbox-password-1")
    stranger = server.account("addboxother", password="addbox-password-2")
    api = _api(server, owner)
    model, _, _ = _repos(server, owner)
    coll = api.create_collection("Box picks")

    assert "Add to a collection" not in httpx.get(f"{server.url}/{model}").text
    browser, csrf = web_session(server, owner.name, "addbox-password-1")
    other, other_csrf = web_session(server, stranger.name, "addbox-password-2")
    try:
        page = browser.get(f"/{model}").text
        assert "Add to a collection" in page and f'value="{coll.slug}"' in page
        added = browser.post("/collections/add", data={
            "collection": coll.slug, "item_id": model, "item_type": "model", "note": "from its page", "csrf_token": csrf,
        })  # fmt: skip
        assert added.status_code == 303 and added.headers["location"] == f"/collections/{coll.slug}"
        assert "Add to a collection" not in other.get(f"/{model}").text  # no collections of their own
        refused = other.post("/collections/add", data={
            "collection": coll.slug, "item_id": model, "item_type": "model", "csrf_token": other_csrf,
        })  # fmt: skip
        assert refused.status_code in (403, 404)
        assert browser.post("/collections/add", data={
            "collection": coll.slug, "item_id": model, "item_type": "model",
        }).status_code == 403  # fmt: skip
    finally:
        browser.close()
        other.close()
    assert [(i.item_id, i.note) for i in api.get_collection(coll.slug).items] == [(model, "from its page")]

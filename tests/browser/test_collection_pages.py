"""Collections in a real browser (Chromium via Playwright): an owner creates a collection from their profile, adds
two repos with notes from the collection page, removes one; another visitor sees the collection without the forms.
Screenshots: ``test-screenshots/<backend>-collection.png`` and ``<backend>-profile-collections.png``."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi
from playwright.sync_api import Page, expect

from support import LiveServer

pytestmark = pytest.mark.slow
expect.set_options(timeout=10_000)

PASSWORD = "collections-pass-1234"


def sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def test_create_a_collection_and_add_repos_in_the_browser(server: LiveServer, page: Page, new_page, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The whole browser path: profile form → collection page → add with notes (shown in order) → remove; the
    profile lists it; an anonymous visitor sees the items and notes but no form."""
    owner = server.account("browsecoll", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=owner.write_token)
    model, dataset = f"{owner.name}/tiny-model", f"{owner.name}/tiny-data"
    api.create_repo(model)
    api.create_repo(dataset, repo_type="dataset")

    sign_in(page, server, owner.name)
    page.goto(f"{server.url}/{owner.name}")
    page.get_by_text("New collection").click()
    page.get_by_label("Title").fill("Weekend reading")
    page.get_by_label("Description").fill("Models and data to try")
    page.get_by_role("button", name="Create collection").click()
    page.wait_for_url(f"{server.url}/collections/{owner.name}/weekend-reading-*")
    expect(page.get_by_role("heading", name="Weekend reading")).to_be_visible()
    expect(page.get_by_text("This collection is empty.")).to_be_visible()

    for kind, repo_id, note in (("Model", model, "Start with this one"), ("Dataset", dataset, "Its training data")):
        page.get_by_label("Type").select_option(label=kind)
        page.get_by_label("Repo id").fill(repo_id)
        page.get_by_label("Note").fill(note)
        page.get_by_role("button", name="Add to collection").click()
        expect(page.locator(".collection-item", has_text=repo_id)).to_contain_text(note)
    items = page.locator(".collection-item")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text(model)
    expect(items.nth(1)).to_contain_text(dataset)
    shot_path = shots_dir / f"{server.backend}-collection.png"
    page.screenshot(path=str(shot_path), full_page=True)
    collection_url = page.url

    visitor = new_page()
    visitor.goto(collection_url)
    expect(visitor.locator(".collection-item")).to_have_count(2)
    expect(visitor.get_by_text("Its training data")).to_be_visible()
    expect(visitor.get_by_role("button", name="Add to collection")).to_have_count(0)
    expect(visitor.get_by_role("button", name="Remove")).to_have_count(0)

    items.nth(1).get_by_role("button", name="Remove").click()
    expect(page.locator(".collection-item")).to_have_count(1)
    page.goto(f"{server.url}/{owner.name}")
    expect(page.locator("#collections")).to_contain_text("Collections")
    expect(page.get_by_role("link", name="Weekend reading")).to_be_visible()
    page.screenshot(path=str(shots_dir / f"{server.backend}-profile-collections.png"), full_page=True)
    slug = collection_url.split("/collections/", 1)[1]
    assert [i.item_id for i in api.get_collection(slug).items] == [model]

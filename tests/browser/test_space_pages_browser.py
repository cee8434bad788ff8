"""Space pages in Chromium: "Create a new space" from the static template; the space page shows the app in its
iframe once it runs (with its badge), the Logs panel streams the logs; settings add a variable and a secret (whose
value never shows), pause and restart; the spaces list shows the card with the header's emoji and the badge; a
visitor duplicates the space. Screenshots: ``test-screenshots/space-page.png``, ``space-settings.png``,
``spaces-list.png``."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi
from playwright.sync_api import Page, expect

from support import LiveServer

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)

PASSWORD = "spaces-pass-1234"


def sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def test_create_run_configure_and_duplicate_a_space_in_the_browser(server: LiveServer, new_page, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The whole page path of a space, from the new-space form to a visitor's duplicate."""
    if server.backend != "sqlite":
        pytest.skip("one backend is enough for the browser")
    owner = server.account("spage", password=PASSWORD)
    visitor = server.account("svisit", password=PASSWORD)
    page = new_page()
    sign_in(page, server, owner.name)
    page.goto(server.url + "/new-space")
    page.get_by_label("Space name").fill("hello-page")
    page.get_by_label("Static HTML").check()
    page.get_by_role("button", name="Create space").click()
    page.wait_for_url(f"{server.url}/spaces/{owner.name}/hello-page")
    frame = page.frame_locator("iframe.space-frame")
    expect(frame.get_by_role("heading", name="Hello from a static space")).to_be_visible()
    expect(page.locator(".stage-badge")).to_have_attribute("data-stage", "RUNNING")
    page.get_by_role("button", name="Logs").click()
    expect(page.locator("#space-log-lines")).to_contain_text("==> Running on port")
    page.screenshot(path=str(shots_dir / "space-page.png"))

    page.goto(f"{server.url}/spaces/{owner.name}/hello-page/settings")
    page.get_by_label("Variable name").fill("GREETING")
    page.get_by_label("Variable value").fill("hi there")
    page.get_by_role("button", name="Add variable").click()
    expect(page.locator("table.kv").first).to_contain_text("hi there")
    page.get_by_label("Secret name").fill("API_KEY")
    page.get_by_label("Secret value").fill("never-shown-value")
    page.get_by_role("button", name="Add secret").click()
    expect(page.locator("table.kv").nth(1)).to_contain_text("API_KEY")
    assert "never-shown-value" not in page.content()
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("(paused)")).to_be_visible()
    page.screenshot(path=str(shots_dir / "space-settings.png"), full_page=True)
    page.get_by_role("button", name="Resume").click()
    api = HfApi(endpoint=server.url, token=owner.write_token)
    assert api.wait_for_space(f"{owner.name}/hello-page", timeout=60).stage == "RUNNING"
    assert {k: v.value for k, v in api.get_space_variables(f"{owner.name}/hello-page").items()} == {"GREETING": "hi there"}

    page.goto(server.url + f"/spaces?search={owner.name}")
    card = page.locator(".space-card", has_text="hello-page")
    expect(card).to_contain_text("📄")
    expect(card.locator(".stage-badge")).to_have_attribute("data-stage", "RUNNING")
    page.screenshot(path=str(shots_dir / "spaces-list.png"))

    other = new_page()
    sign_in(other, server, visitor.name)
    other.goto(f"{server.url}/spaces/{owner.name}/hello-page")
    other.get_by_role("button", name="Duplicate this Space").click()
    other.get_by_label("New name").fill("my-copy")
    other.locator("dialog").get_by_role("button", name="Duplicate").click()
    other.wait_for_url(f"{server.url}/spaces/{visitor.name}/my-copy")
    expect(other.frame_locator("iframe.space-frame").get_by_role("heading", name="Hello from a static space")).to_be_visible()
    copy = HfApi(endpoint=server.url, token=visitor.write_token)
    assert sorted(copy.get_space_variables(f"{visitor.name}/my-copy")) == ["GREETING"]
    assert copy.get_space_secrets(f"{visitor.name}/my-copy") == {}

"""The site admin pages in Chromium at 1280 px (sqlite): a site admin signs in, follows the header's admin link to
/admin, then /admin/repos and /admin/health; each page shows its nav and content without horizontal scrolling.
Screenshots: ``test-screenshots/sqlite-admin-*.png``."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi
from playwright.sync_api import Page, expect

from support import LiveServer

pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)

PASSWORD = "admin-browser-pass-1234"


def _no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} scrolls sideways: {widths}"


def test_admin_pages_in_the_browser(server: LiveServer, page: Page, shots_dir: Path) -> None:
    admin = server.account("abadm", admin=True, password=PASSWORD)
    api = HfApi(endpoint=server.url, token=admin.write_token)
    long_name = "a-rather-long-model-name-for-the-admin-table-" + "x" * 30
    api.create_repo(f"{admin.name}/{long_name}")
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(admin.name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    page.locator("header.topbar a.admin-badge").click()
    page.wait_for_url(server.url + "/admin")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.locator("#count-models")).to_have_text(str(len(list(api.list_models()))))
    for path, name, visible in (
        ("/admin", "admin-overview", "nav.admin-nav"),
        ("/admin/repos", "admin-repos", "#admin-repos"),
        ("/admin/health", "admin-health", "#health-versions"),
    ):
        if page.url != server.url + path:
            page.goto(server.url + path)
        expect(page.locator(visible)).to_be_visible()
        expect(page.locator("nav.admin-nav a.active")).to_have_count(1)
        _no_horizontal_scroll(page)
        page.screenshot(path=str(shots_dir / f"{server.backend}-{name}.png"), full_page=True)
    page.goto(server.url + "/admin/repos")
    expect(page.locator("#admin-repos")).to_contain_text(long_name)
    page.locator("#admin-repos details summary").first.click()  # the move / delete forms, opened
    _no_horizontal_scroll(page)
    page.screenshot(path=str(shots_dir / f"{server.backend}-admin-repos-actions.png"), full_page=True)

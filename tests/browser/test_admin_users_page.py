"""The site admin's users page (issue 23) in a real browser: search, a user's page with their tokens, the plan of a
deletion shown before the button that does it; a screenshot of each to look at. SQLite only."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from support import LiveServer

PASSWORD = "admin-page-pass-1"


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_admin_users_page_lists_searches_and_plans_a_deletion(page: Page, server: LiveServer, shots_dir: Path) -> None:
    admin = server.account("pageadmin", admin=True, password=PASSWORD)
    member = server.account("pagemember", password=PASSWORD)
    page.goto(server.url + "/login?next=/admin/users")
    page.get_by_label("User name").fill(admin.name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/admin/users")
    expect(page.locator("#users").get_by_role("link", name=member.name, exact=True)).to_be_visible()
    page.screenshot(path=str(shots_dir / "sqlite-admin-users.png"), full_page=True)

    page.get_by_label("Search users").fill(member.name)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#users tr")).to_have_count(2)  # the header and the one match
    page.get_by_role("link", name=member.name, exact=True).click()
    expect(page.locator("#tokens tr")).to_have_count(3)  # the header, a read and a write token
    page.get_by_label("delete their repos").check()
    page.get_by_role("button", name="Show what would happen").click()
    expect(page.locator("#plan")).to_contain_text("They own no repositories.")
    page.screenshot(path=str(shots_dir / "sqlite-admin-user.png"), full_page=True)
    page.get_by_role("button", name=f"Delete {member.name} now").click()
    page.wait_for_url(f"{server.url}/admin/users?deleted={member.name}")
    expect(page.get_by_text(f"User {member.name} deleted.")).to_be_visible()

"""Storage quotas in the browser (docs/quotas.md): the web upload form is refused past the namespace's limit with
the used, allowed and needed sizes and nothing committed; the profile settings page shows each pool's use with
a bar."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from test_web import create_through_new, shot, sign_in, web_user

from support import LiveServer

WEIGHTS = bytes(range(256)) * 8  # 2048 bytes with NUL bytes: an LFS file


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_upload_form_refused_over_quota_and_usage_on_settings(server: LiveServer, page: Page, shots_dir: Path) -> None:
    user = web_user(server, "webquota")
    server.cli("quotas", "set", user, "--bytes", "3000")
    sign_in(page, server, user)
    base = create_through_new(page, server, user, "quota-model")

    def upload(name: str, data: bytes) -> int:
        page.goto(f"{base}/upload/main")
        page.locator("#file-input").set_input_files([{"name": name, "mimeType": "application/octet-stream",
                                                      "buffer": data}])  # fmt: skip
        with page.expect_response(lambda r: r.request.method == "POST" and "/upload/main" in r.url) as posted:
            page.get_by_role("button", name="Commit changes").click()
        page.wait_for_load_state()
        return posted.value.status

    assert upload("a.bin", WEIGHTS) == 303
    assert upload("b.bin", WEIGHTS[::-1]) == 403
    expect(page.locator("main")).to_contain_text(
        f"Storage quota exceeded for {user} (public repos): 2 KB used of 3 KB allowed; this upload needs 2 KB"
    )
    shot(page, shots_dir, server, "quota-refused")
    page.goto(f"{base}/tree/main")
    expect(page.locator("table.files").get_by_role("link", name="a.bin", exact=True)).to_be_visible()
    expect(page.locator("table.files").get_by_role("link", name="b.bin", exact=True)).to_have_count(0)

    page.goto(f"{server.url}/settings/profile")
    storage = page.locator("section.quota")
    expect(storage).to_contain_text("2 KB used of 3 KB allowed")
    expect(storage.locator('[role="progressbar"]').first).to_have_attribute("aria-valuenow", "68")
    shot(page, shots_dir, server, "quota-settings")

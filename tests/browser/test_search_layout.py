"""Search and layout in a real browser (issue 23): no page scrolls sideways at 1280 or 390 px (home, /models, a
model page with a wide card and 22 datasets, a dataset page, /search), the sidebar is not clipped at 1280 px, and
the header's box offers suggestions as one types, reachable with the keyboard. Screenshots go to
``test-screenshots/sqlite-layout-<page>-<width>.png``. SQLite only: nothing here depends on the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi
from playwright.sync_api import Page, expect

from support import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("server", ["sqlite"], indirect=True)]
expect.set_options(timeout=10_000)

WIDE = "| " + " | ".join(f"column_{i}_with_a_long_header" for i in range(14)) + " |\n"
CARD = (
    "---\nlicense: apache-2.0\nlanguage: [en]\npipeline_tag: sentence-similarity\nlibrary_name: sentence-transformers\n"
    "datasets:\n{datasets}---\n# all-MiniLM-L6-v2\n\n"
    + WIDE + "|" + "---|" * 14 + "\n" + "| " + " | ".join("1" for _ in range(14)) + " |\n\n"
    + "```\n" + "x" * 400 + "\n```\n\n" + "averyveryverylongwordwithoutanybreak" * 8 + "\n"
)  # fmt: skip


def test_no_sideways_scroll_and_suggestions(server: LiveServer, new_page, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    owner = server.account("layoutowner")
    ns = owner.name
    api = HfApi(endpoint=server.url, token=owner.write_token)
    api.create_repo(f"{ns}/reviews", repo_type="dataset")
    api.upload_file(path_or_fileobj=b"# Reviews\n\nShort reviews.\n", path_in_repo="README.md",
                    repo_id=f"{ns}/reviews", repo_type="dataset")  # fmt: skip
    names = [f"{ns}/reviews", *(f"sentence-transformers/set-{i:02d}-with-a-long-name" for i in range(21))]
    model = f"{ns}/all-MiniLM-L6-v2"
    api.create_repo(model)
    api.upload_file(path_or_fileobj=CARD.format(datasets="".join(f"- {d}\n" for d in names)).encode(),
                    path_in_repo="README.md", repo_id=model)  # fmt: skip

    pages = {
        "home": "/",
        "models": "/models",
        "model": f"/{model}",
        "files": f"/{model}/tree/main",
        "dataset": f"/datasets/{ns}/reviews",
        "search": "/search?q=reviews",
    }
    for width, height in ((1280, 900), (390, 844)):
        page: Page = new_page()
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots_dir / f"{server.backend}-layout-{name}-{width}.png"), full_page=True)
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert scroll <= inner, f"{path} scrolls sideways at {width} px: {scroll} > {inner}"
            rows = page.evaluate(  # each card's updated, downloads and likes: one line
                "Array.from(document.querySelectorAll('.card-stats'), s => Array.from(s.children, c => c.getBoundingClientRect().top))"
            )
            assert all(max(tops) - min(tops) < 4 for tops in rows), (path, width, rows)
            if name == "model" and width == 1280:  # the sidebar sits inside the window, beside the card
                side = page.locator("aside.side").bounding_box()
                assert side is not None and side["x"] + side["width"] <= inner
                assert page.locator("details.datasets-fold summary").inner_text().startswith("Datasets: 22")
                expect(page.locator("details.datasets-fold a.chip")).to_have_count(1)
                expect(page.locator("aside.side")).not_to_contain_text("Data l6")
        page.close()

    page = new_page()
    page.goto(server.url + "/datasets")
    box = page.get_by_role("search").get_by_label("Search", exact=True)
    box.press_sequentially("review", delay=40)
    suggestion = page.locator("#search-suggestions a.suggest", has_text=f"{ns}/reviews")
    expect(suggestion).to_be_visible()
    expect(page.locator("#search-suggestions .suggest-group").first).to_be_visible()
    page.screenshot(path=str(shots_dir / f"{server.backend}-layout-suggestions-1280.png"))
    box.press("ArrowDown")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused and focused.startswith("/"), focused  # the first suggestion took the focus
    page.keyboard.press("Escape")
    expect(page.locator("#search-suggestions a")).to_have_count(0)
    box.press("Enter")  # the box itself goes to the grouped page
    page.wait_for_url("**/search?q=review")
    expect(page.locator("#found-datasets")).to_contain_text(f"{ns}/reviews")

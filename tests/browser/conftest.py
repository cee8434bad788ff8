"""Browser fixtures: a real Chromium (Debian's, never a downloaded one) driven by Playwright's sync API.

``browser`` is shared by the session; ``page`` is a fresh context (own cookies and storage, 1280x900) per test;
``new_page()`` opens further independent contexts (a second user); ``shots_dir`` is where screenshots go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import REPO_ROOT

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def new_page(browser) -> Iterator[Callable[[], object]]:  # type: ignore[no-untyped-def]
    """``new_page()``: a page in a new browser context (its own cookies), closed after the test."""
    contexts = []

    def make():  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport=VIEWPORT, color_scheme="light", locale="en-US")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture()
def page(new_page):  # type: ignore[no-untyped-def]
    return new_page()


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    path = REPO_ROOT / "test-screenshots"
    path.mkdir(exist_ok=True)
    return path

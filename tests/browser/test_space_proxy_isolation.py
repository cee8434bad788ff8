"""A space's app served under the hub's own origin (path mode) cannot act as the signed-in viewer, in a real
Chromium: a hostile app page (``proxy_apps.page``) fetches the hub's token page with the viewer's cookie through
the proxy's origin. With the proxy's isolation on (its default under a root path) the page runs in an opaque
origin and reads nothing of the hub, while its own API, server-sent events and a real Gradio app keep working;
with isolation off the same page reads the secret (so the test can fail)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy_apps import HUB_SECRET
from proxy_support import ROOT, Served, serve_app, serve_gradio

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream() -> Iterator[Served]:
    served = serve_app("proxy_apps:upstream")
    yield served
    served.stop()


def _results(page, url: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    page.goto(url)
    frame = page.frame_locator("#app") if "/embed" in url else page
    frame.locator("#out").filter(has_text="origin").wait_for(timeout=20_000)
    return json.loads(frame.locator("#out").text_content())  # type: ignore[no-any-return]


def _sign_in(page, front: Served) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{front.url}/login")
    page.get_by_text("signed in").wait_for()
    page.goto(f"{front.url}/settings/tokens")
    assert HUB_SECRET in page.content()  # the viewer's cookie works on the hub itself


@pytest.mark.parametrize("where", ["top", "iframe"])
def test_an_isolated_app_cannot_read_the_hub_as_the_viewer(upstream: Served, page, where: str) -> None:
    """Opened at its address or inside a hub page's iframe, the app's script sees origin null, its fetch of
    /settings/tokens with the viewer's cookie reads nothing, it cannot reach the parent page, cookies or storage,
    and its own API (a POST) and server-sent events still work. ``document.cookie`` and ``localStorage`` answer
    from the proxy's shim (empty memory), never with the hub's cookie or storage."""
    front = serve_app("proxy_apps:front", PROXY_UPSTREAM=upstream.url, PROXY_ROOT=ROOT)
    try:
        _sign_in(page, front)
        url = f"{front.url}{ROOT}/page" if where == "top" else f"{front.url}/embed"
        out = _results(page, url)
    finally:
        front.stop()
    assert out["origin"] == "null"
    assert HUB_SECRET not in json.dumps(out)
    assert out["hub"].startswith("blocked:")
    assert out["hub_nocors"] == "0:"  # an opaque answer: no status, no body
    assert out["api"].startswith("200:") and '"method":"POST"' in out["api"]
    assert out["api_credentials"].startswith("blocked:")  # the proxy's CORS answer never allows credentials
    assert out["sse"] == "event:first"
    assert out["cookie"] == "" and out["storage"] == "null"  # the shim's own memory, none of the hub's
    if where == "iframe":
        assert out["parent"].startswith("blocked:")


def test_without_isolation_the_same_app_reads_the_hubs_secret(upstream: Served, page) -> None:
    """The control: the same page through a proxy told not to isolate (isolate=False) runs same-origin with the hub
    and reads the viewer's token page, the hub's script-readable cookie and its local storage. This is what the
    sandbox policy prevents."""
    front = serve_app("proxy_apps:front", PROXY_UPSTREAM=upstream.url, PROXY_ROOT=ROOT, PROXY_ISOLATE="0")
    try:
        _sign_in(page, front)
        out = _results(page, f"{front.url}{ROOT}/page")
    finally:
        front.stop()
    assert out["origin"] == f"http://127.0.0.1:{front.port}"
    assert HUB_SECRET in out["hub"] and HUB_SECRET in out["cookie"] and out["storage"] == HUB_SECRET


def test_a_real_gradio_app_works_isolated_in_chromium(
    page, tmp_path_factory: pytest.TempPathFactory, shots_dir: Path
) -> None:
    """A real Gradio app behind the isolating proxy, in a hub page's iframe: it renders, a click goes through the
    queue (its fetches and server-sent events from origin null) and shows the answer, and a streaming output too."""
    app = serve_gradio(ROOT, tmp_path_factory.mktemp("gradio"))
    front = serve_app("proxy_apps:front", PROXY_UPSTREAM=app.url, PROXY_ROOT=ROOT)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{front.url}/embed?src=")
        frame = page.frame_locator("#app")
        frame.get_by_label("Text").fill("hubstead")
        frame.get_by_role("button", name="Reverse").click()
        reversed_box = frame.get_by_label("Reversed")
        for _ in range(100):
            if reversed_box.input_value() == "daetsbuh":
                break
            page.wait_for_timeout(200)
        assert reversed_box.input_value() == "daetsbuh", errors
        frame.get_by_role("button", name="Count").click()
        steps = frame.get_by_label("Steps")
        for _ in range(100):
            if steps.input_value() == "step 3":
                break
            page.wait_for_timeout(200)
        assert steps.input_value() == "step 3", errors
        page.screenshot(path=str(shots_dir / "space-proxy-gradio-isolated.png"))
    finally:
        front.stop()
        app.stop()

"""The dataset viewer on the dataset page, in a real Chromium: the table, paging, search, filter (the SQL box
and the filter builder, kept in the URL through reloads and Back), column statistics and images. Screenshots land in test-screenshots/viewer-*.png."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from support import LiveServer


def _push_and_wait(server: LiveServer, token: str, repo_id: str, files: dict[str, bytes], *, private: bool = False) -> None:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
    commit = api.create_commit(repo_id, repo_type="dataset", commit_message="data",
                               operations=[CommitOperationAdd(p, c) for p, c in files.items()]).oid
    deadline = time.time() + 120
    while time.time() < deadline:
        job = httpx.get(f"{server.url}/api/datasets/{repo_id}/viewer-status", headers={"Authorization": f"Bearer {token}"}).json()["job"]
        if job and job["revision"] == commit and job["status"] in ("succeeded", "failed"):
            return
        time.sleep(0.3)
    raise AssertionError("conversion did not finish")


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # the page is the same on both; the API tests cover PostgreSQL
def test_viewer_table_search_filter_and_stats(server: LiveServer, page, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    account = server.account("viewpage")
    lines = ["review,stars,verdict"]
    for i in range(60):
        text = ["A wonderful film with a moving story", "Terrible acting and a boring plot", "An average movie, nothing special"][i % 3]
        long = " It goes on and on." * 20 if i == 4 else ""
        lines.append(f'"{text} (#{i}).{long}",{i % 5 + 1},{["good", "bad", "meh"][i % 3]}')
    _push_and_wait(server, account.write_token, f"{account.name}/reviews", {"train.csv": ("\n".join(lines) + "\n").encode()})
    page.goto(f"{server.url}/datasets/{account.name}/reviews")
    viewer = page.locator("#dataset-viewer")
    viewer.locator("table.viewer-table").wait_for()
    assert viewer.locator("tbody tr").count() == 25
    assert "60 rows" in viewer.locator(".viewer-count").inner_text()
    assert viewer.locator("th .mini-hist span").count() >= 5  # the stars histogram
    assert "good" in viewer.locator("th .top-values").first.inner_text()  # verdict is a label column
    assert viewer.locator("td details").count() == 1  # the long review is folded
    page.screenshot(path=str(shots_dir / "viewer-table.png"), full_page=True)

    viewer.locator("a", has_text="Next").click()
    page.wait_for_function("() => document.querySelector('.viewer-count').textContent.includes('26–50')")

    page.locator("#dataset-viewer .viewer-controls input[name=q]").fill("terrible")
    apply = page.locator("#dataset-viewer").get_by_role("button", name="Apply")
    apply.click()
    page.wait_for_function("() => document.querySelector('.viewer-count').textContent.includes('match')")
    rows = page.locator("#dataset-viewer tbody tr")
    assert rows.count() == 20 and all("Terrible" in t for t in rows.all_inner_texts())
    page.screenshot(path=str(shots_dir / "viewer-search.png"), full_page=True)

    page.locator("#dataset-viewer .viewer-controls input[name=q]").fill("")
    page.locator("#dataset-viewer .viewer-controls input[name=where]").fill('"stars" >= 4 AND "verdict" = \'good\'')
    page.locator("#dataset-viewer .viewer-controls input[name=orderby]").fill('"stars" DESC')
    apply.click()
    page.wait_for_function("() => document.querySelector('.viewer-count').textContent.includes('match the filter')")
    cells = page.locator("#dataset-viewer tbody tr td:nth-child(2)").all_inner_texts()
    expected = sorted([i % 5 + 1 for i in range(60) if i % 3 == 0 and i % 5 + 1 >= 4], reverse=True)
    assert [int(c) for c in cells] == expected
    page.screenshot(path=str(shots_dir / "viewer-filter.png"), full_page=True)

    page.locator("#dataset-viewer .viewer-controls input[name=where]").fill("read_csv('/etc/passwd')")
    apply.click()
    page.locator("#dataset-viewer [role=alert]").wait_for()  # a 400, swapped in with its message
    assert "function" in page.locator("#dataset-viewer [role=alert]").inner_text().lower()

    # The filter builder: each condition goes into the URL, which reloads (and goes Back) to the same view.
    page.goto(f"{server.url}/datasets/{account.name}/reviews/viewer")
    viewer = page.locator("#dataset-viewer")
    viewer.get_by_label("Filter column").select_option("verdict")
    viewer.get_by_label("Filter operator").select_option("eq")
    viewer.get_by_label("Filter value").fill("good")
    viewer.get_by_role("button", name="Add condition").click()
    page.wait_for_url(re.compile(r".*fc=verdict.*fv=good"))
    page.locator("#dataset-viewer .filter-chip").wait_for()
    assert page.locator("#dataset-viewer tbody tr td:nth-child(3)").all_inner_texts() == ["good"] * 20
    viewer = page.locator("#dataset-viewer")
    viewer.get_by_label("Filter column").select_option("stars")
    viewer.get_by_label("Filter operator").select_option("ge")
    viewer.get_by_label("Filter value").fill("4")
    viewer.get_by_role("button", name="Add condition").click()
    page.wait_for_url(re.compile(r".*fc=stars.*fv=4"))
    chosen = [i for i in range(60) if i % 3 == 0 and i % 5 + 1 >= 4]
    page.wait_for_function(f"() => document.querySelectorAll('#dataset-viewer tbody tr').length === {len(chosen)}")
    shown = [int(r) for r in page.locator("#dataset-viewer tbody tr").evaluate_all("rs => rs.map(r => r.dataset.row)")]
    assert shown == chosen
    page.reload()
    assert page.locator("#dataset-viewer .filter-chip").count() == 2
    assert [int(c) for c in page.locator("#dataset-viewer tbody tr td:nth-child(2)").all_inner_texts()] == [
        i % 5 + 1 for i in chosen
    ]
    page.locator("#dataset-viewer .stats-link").click()
    page.locator("#dataset-viewer .filtered-stats").wait_for()
    assert "stats=1" in page.url
    assert f"Statistics of {len(chosen)} rows" in page.locator("#dataset-viewer .filtered-stats").inner_text()
    page.screenshot(path=str(shots_dir / "viewer-builder.png"), full_page=True)
    page.go_back()
    page.wait_for_function("() => !location.search.includes('stats=1')")
    page.locator("#dataset-viewer .filtered-stats").wait_for(state="detached")
    assert page.locator("#dataset-viewer .filter-chip").count() == 2

    # Page numbers and going to a row.
    page.goto(f"{server.url}/datasets/{account.name}/reviews/viewer")
    page.locator("#dataset-viewer .page-number", has_text="3").click()
    page.wait_for_url(re.compile(r".*page=3"))
    assert page.locator("#dataset-viewer .viewer-count").inner_text().find("51–60") >= 0
    page.locator("#dataset-viewer").get_by_label("Go to row").fill("30")
    page.locator("#dataset-viewer").get_by_role("button", name="Go", exact=True).click()
    page.wait_for_url(re.compile(r".*row=30"))
    assert page.locator("#dataset-viewer tr.jumped").get_attribute("data-row") == "29"
    page.screenshot(path=str(shots_dir / "viewer-pages.png"), full_page=True)


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # the page is the same on both backends
def test_viewer_shows_images_and_a_failed_conversion(server: LiveServer, page, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    name = server.unique("viewimg")
    server.cli("users", "create", name, "--password", "correct horse battery")
    token = server.cli("tokens", "create", name, "--role", "write").stdout.strip().splitlines()[-1]
    # Each test draws its own image: identical bytes would be deduplicated by the Xet client against
    # another user's private upload from this same process, which the CAS refuses to link across users.
    png = _png((30, 30, 200))
    _push_and_wait(server, token, f"{name}/pets", {"train/cat/1.png": png, "train/dog/2.png": png}, private=True)
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    page.goto(f"{server.url}/datasets/{name}/pets/viewer")
    page.locator("#dataset-viewer td img").first.wait_for()
    assert page.locator("#dataset-viewer td img").count() == 2
    # The private dataset's images load in the signed-in browser (the session cookie reads the files).
    page.wait_for_function("() => [...document.querySelectorAll('#dataset-viewer td img')].every(i => i.complete && i.naturalWidth > 0)")
    assert set(page.locator("#dataset-viewer .label-name").all_inner_texts()) == {"cat", "dog"}
    page.screenshot(path=str(shots_dir / "viewer-images.png"), full_page=True)
    _push_and_wait(server, token, f"{name}/broken", {"train.jsonl": b'{"a": 1}\n{"a": \n'})
    page.goto(f"{server.url}/datasets/{name}/broken")
    message = page.locator("#dataset-viewer .viewer-error").inner_text()
    assert "not available" in message and "train.jsonl" in message
    page.screenshot(path=str(shots_dir / "viewer-failed.png"), full_page=True)


def _png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
    return buffer.getvalue()

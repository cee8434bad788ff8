"""The Community tab in a real browser (Chromium via Playwright) against a live ``hubstead serve``: two users, an
owner and a contributor without write access, work a pull request from the README editor to the merge; a
conflicting PR shows its files and no merge button; close and reopen; a hostile comment runs no script.

Screenshots go to ``test-screenshots/<backend>-community-*.png``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from playwright.sync_api import Dialog, Page, expect
from test_web import cli_token, shot, sign_in, web_user

from support import LiveServer

pytestmark = pytest.mark.slow
expect.set_options(timeout=10_000)

NEW_CARD = "# Better card\n\nNow with **usage** notes.\n"
HOSTILE = (
    "Hostile <script>window.__pwned = 1</script> <img src=x onerror=\"window.__pwned = 2\">\n\n"
    "[click me](javascript:window.__pwned=3) and <a href=\"#\" onclick=\"window.__pwned=4\">this</a>\n"
)


def _repo(server: LiveServer, owner: str) -> tuple[HfApi, str]:
    api = HfApi(endpoint=server.url, token=cli_token(server, owner))
    repo_id = f"{owner}/{server.unique('together')}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"# Old card\n", path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"line one\nline two\n", path_in_repo="notes.txt", repo_id=repo_id)
    return api, repo_id


def test_a_contributor_proposes_a_readme_edit_and_the_owner_merges_it(
    server: LiveServer, new_page, shots_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    """The contributor (no write access) edits the README in the browser and can only open a PR; the owner sees
    the open PR counted in the header, opens the thread, reads Files changed, comments with a preview, merges;
    main then holds the new card and the thread says merged."""
    owner, contributor = web_user(server, "comowner"), web_user(server, "comcontrib")
    _, repo_id = _repo(server, owner)
    base = f"{server.url}/{repo_id}"

    theirs: Page = new_page()
    sign_in(theirs, server, contributor)
    theirs.goto(base)
    expect(theirs.locator("#community-tab")).to_contain_text("0 PR")
    theirs.get_by_role("link", name="Propose a change").click()
    theirs.wait_for_url(f"{base}/edit/main/README.md")
    expect(theirs.get_by_label("Open a pull request against")).to_be_checked()
    expect(theirs.get_by_label("Commit directly to the")).to_have_count(0)
    theirs.locator("#content").fill(NEW_CARD)
    theirs.get_by_label("Commit message").fill("Improve the card")
    theirs.get_by_label("Pull request description (optional)").fill("Adds usage notes.")
    expect(theirs.locator("#preview strong")).to_have_text("usage")
    shot(theirs, shots_dir, server, "community-propose")
    theirs.get_by_role("button", name="Open a pull request").click()
    theirs.wait_for_url(re.compile(rf"{re.escape(base)}/discussions/\d+$"))
    num = int(theirs.url.rsplit("/", 1)[1])
    expect(theirs.locator("#thread-title")).to_contain_text("Improve the card")
    expect(theirs.locator("#thread-status")).to_have_text("open")
    expect(theirs.locator("#merge-blockers")).to_contain_text(f"Only people with write access to {repo_id}")
    expect(theirs.locator("#merge-button")).to_have_count(0)
    expect(theirs.locator("#git-reference")).to_have_text(f"refs/pr/{num}")
    expect(theirs.locator(".snippet-copy").first).to_contain_text(f"hf download {repo_id} --revision refs/pr/{num}")

    mine: Page = new_page()
    sign_in(mine, server, owner)
    mine.goto(base)
    expect(mine.locator("#community-tab")).to_contain_text("1 PR")
    shot(mine, shots_dir, server, "community-header")
    mine.locator("#community-tab").click()
    mine.wait_for_url(f"{base}/discussions")
    row = mine.locator(".thread-row", has_text="Improve the card")
    expect(row).to_contain_text(f"#{num}")
    expect(row).to_contain_text(contributor)
    expect(row.locator(".chip.state")).to_have_text("open")
    shot(mine, shots_dir, server, "community-list")
    row.get_by_role("link", name="Improve the card").click()
    mine.wait_for_url(f"{base}/discussions/{num}")
    expect(mine.locator(".event-comment").first).to_contain_text("Adds usage notes.")
    expect(mine.locator(".event-commit")).to_contain_text("Improve the card")

    mine.get_by_role("link", name="Files changed").click()
    mine.wait_for_url(f"{base}/discussions/{num}/files")
    diff = mine.locator(".diff", has_text="README.md")
    expect(diff.locator("span.del")).to_have_text(["-# Old card"])
    expect(diff.locator("span.add").first).to_have_text("+# Better card")
    expect(mine.locator(".pr-commits")).to_contain_text("Improve the card")
    shot(mine, shots_dir, server, "community-files")

    mine.get_by_role("link", name="Conversation").click()
    box = mine.locator("form.new-comment")
    box.get_by_label("Comment", exact=True).fill("Looks **good**, thanks!")
    box.get_by_role("tab", name="Preview").click()
    expect(box.locator(".box-preview strong")).to_have_text("good")
    shot(mine, shots_dir, server, "community-preview")
    box.get_by_role("button", name="Comment", exact=True).click()
    expect(mine.locator(".event-comment").last.locator("strong").last).to_have_text("good")
    mine.locator("#merge-button").click()
    mine.wait_for_url(f"{base}/discussions/{num}")
    expect(mine.locator("#thread-status")).to_have_text("merged")
    expect(mine.locator(".event-status-change").last).to_contain_text(f"{owner} merged this")
    expect(mine.locator("#community-tab")).to_contain_text("0 PR")
    shot(mine, shots_dir, server, "community-merged")
    assert httpx.get(f"{base}/resolve/main/README.md", timeout=30).text == NEW_CARD
    mine.goto(base)
    expect(mine.locator("article.card-body strong")).to_have_text("usage")


def test_a_conflicting_pr_close_reopen_and_a_hostile_comment(server: LiveServer, new_page, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A PR whose file changed on main too names the conflicting file and offers no merge button; the owner
    closes and reopens it; a comment with a script, an event handler and javascript: links renders as text that
    runs nothing; a writer hides it and the thread shows it hidden."""
    owner, contributor = web_user(server, "conflowner"), web_user(server, "conflcontrib")
    api, repo_id = _repo(server, owner)
    theirs_api = HfApi(endpoint=server.url, token=cli_token(server, contributor))
    pr = theirs_api.upload_file(path_or_fileobj=b"line one\nline 2 from the PR\n", path_in_repo="notes.txt",
                                repo_id=repo_id, create_pr=True, commit_message="Change line two")  # fmt: skip
    api.upload_file(path_or_fileobj=b"line one\nline 2 on main\n", path_in_repo="notes.txt", repo_id=repo_id)
    thread = f"{server.url}/{repo_id}/discussions/{pr.pr_num}"

    mine: Page = new_page()
    sign_in(mine, server, owner)
    mine.goto(thread)
    expect(mine.locator("#merge-blockers")).to_contain_text("1 file conflicts with the base branch:")
    expect(mine.locator(".conflicts")).to_have_text("notes.txt")
    expect(mine.locator("#merge-button")).to_have_count(0)
    shot(mine, shots_dir, server, "community-conflict")

    mine.get_by_role("button", name="Close pull request").click()
    expect(mine.locator("#thread-status")).to_have_text("closed")
    expect(mine.locator("#merge-blockers")).to_contain_text("This pull request is closed")
    expect(mine.locator(".event-status-change").last).to_contain_text(f"{owner} closed this")
    mine.get_by_role("button", name="Reopen pull request").click()
    expect(mine.locator("#thread-status")).to_have_text("open")
    expect(mine.locator(".event-status-change").last).to_contain_text(f"{owner} reopened this")

    theirs: Page = new_page()
    sign_in(theirs, server, contributor)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    theirs.on("dialog", on_dialog)
    theirs.goto(thread)
    theirs.locator("form.new-comment").get_by_label("Comment", exact=True).fill(HOSTILE)
    theirs.locator("form.new-comment").get_by_role("tab", name="Preview").click()
    expect(theirs.locator("#comment-preview")).to_contain_text("Hostile")
    theirs.locator("form.new-comment").get_by_role("button", name="Comment", exact=True).click()
    hostile = theirs.locator(".event-comment").last
    expect(hostile).to_contain_text("Hostile")
    for link in hostile.locator(".comment-body a").element_handles():
        href = link.get_attribute("href") or ""
        assert not href.lower().startswith("javascript"), href
        link.click()
    assert hostile.locator(".comment-body script, .comment-body [onerror], .comment-body [onclick]").count() == 0
    assert theirs.evaluate("window.__pwned") is None and not dialogs
    expect(theirs.locator("#merge-button")).to_have_count(0)  # a reader sees no merge button

    mine.goto(thread)
    assert mine.evaluate("window.__pwned") is None
    mine.once("dialog", lambda d: d.accept())  # "Hide this comment for good?"
    mine.locator(".event-comment").last.get_by_role("button", name="Hide").click()
    expect(mine.locator(".event-comment").last).to_contain_text(f"This comment has been hidden by {owner}")
    shot(mine, shots_dir, server, "community-hidden")

"""The web front in a real browser (Chromium via Playwright) against a live ``hubstead serve``.

Each test runs against SQLite and PostgreSQL. Screenshots of the main pages go to
``test-screenshots/<backend>-<page>.png`` at the repository root.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from support import LiveServer, run_client

pytestmark = pytest.mark.slow
expect.set_options(timeout=10_000)

PASSWORD = "browser-pass-1234"
CONFIG = {"model_type": "bert", "num_labels": 2, "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}
README = """---
pipeline_tag: text-classification
license: apache-2.0
language: [en]
---
# Tiny sentiment model

A small classifier, uploaded from a browser.

| Split | Accuracy |
|-------|----------|
| dev   | 0.91     |
| test  | 0.89     |

```python
from transformers import pipeline

classifier = pipeline("text-classification")
print(classifier("I love this"))
```
"""
WEIGHTS = bytes(range(256)) * 16  # 4 kB with NUL bytes: binary by any measure


# --- helpers -----------------------------------------------------------------------------------------------------


def web_user(server: LiveServer, prefix: str) -> str:
    """A user who can sign in on the web (created with the CLI, with a password)."""
    name = server.unique(prefix)
    server.cli("users", "create", name, "--password", PASSWORD)
    return name


def cli_token(server: LiveServer, user: str, role: str = "write") -> str:
    return server.cli("tokens", "create", user, "--role", role).stdout.strip().splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    expect(page.locator("header.topbar").get_by_role("link", name=name, exact=True)).to_be_visible()


def shot(page: Page, shots_dir: Path, server: LiveServer, name: str) -> None:
    page.screenshot(path=str(shots_dir / f"{server.backend}-{name}.png"), full_page=True)


def api_model(env: dict[str, str], repo_id: str, files: dict[str, bytes], *, private: bool = False) -> None:
    """Create a model repo and commit ``files`` with huggingface_hub, in a client process."""
    run_client(
        f"""
        from huggingface_hub import CommitOperationAdd, HfApi
        api = HfApi()
        api.create_repo({repo_id!r}, private={private!r})
        files = {files!r}
        api.create_commit({repo_id!r}, [CommitOperationAdd(p, c) for p, c in files.items()], commit_message="Add files")
        """,
        env,
    )


def card_text(task: str, *, license: str = "mit", title: str = "Model") -> bytes:
    return f"---\npipeline_tag: {task}\nlicense: {license}\n---\n# {title}\n".encode()


def result_ids(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(".grid a.card .card-title").all_inner_texts()]


def has_card(page: Page, repo_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'.grid a.card[href="/{repo_id}"]')


def facet_count(page: Page, label: str) -> int:
    """The count shown beside a facet link on a list page (0 when the facet is absent)."""
    link = page.locator("aside.facets a.facet").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s+\d+\s*$"))
    if link.count() == 0:
        return 0
    return int(link.locator("span").inner_text())


# Contrast of text against its effective background (WCAG relative luminance), computed in the page.
CONTRAST_JS = """
(el) => {
  function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; }
  function bg(node) {
    for (let n = node; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return rgb(getComputedStyle(document.body).backgroundColor);
  }
  function lum(c) {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  const fg = rgb(getComputedStyle(el).color), back = bg(el);
  const a = lum(fg), b = lum(back);
  return {ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), fg: getComputedStyle(el).color,
          bg: `rgb(${back.r}, ${back.g}, ${back.b})`, text: el.textContent.slice(0, 40), cls: el.className};
}
"""


def low_contrast(page: Page, selector: str, minimum: float) -> list[dict]:
    """Elements matching ``selector`` whose text contrast is below ``minimum``."""
    found = []
    for handle in page.locator(selector).element_handles():
        if not (handle.text_content() or "").strip():
            continue
        info = handle.evaluate(CONTRAST_JS)
        if info["ratio"] < minimum:
            found.append(info)
    return found


# --- 1. sign in, create through /new, read, browse, branch, history, edit --------------------------------------------


def create_through_new(page: Page, server: LiveServer, user: str, name: str) -> str:
    """Create a public model with the /new form; returns its page URL."""
    base = f"{server.url}/{user}/{name}"
    page.get_by_role("link", name="+ New").click()
    page.wait_for_url(server.url + "/new")
    expect(page.get_by_label("Owner")).to_have_value(user)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create repository").click()
    page.wait_for_url(base)
    expect(page.locator(".repo-title")).to_contain_text(name)
    expect(page.locator("article.card-body")).to_contain_text("No card yet")
    return base


def test_card_files_branch_history_and_editor(server: LiveServer, page: Page, shots_dir: Path, env_for) -> None:  # type: ignore[no-untyped-def]
    """The repo is made with /new; its files arrive through the API (the upload form has its own test below)."""
    user = web_user(server, "webauthor")
    name = server.unique("tiny-sentiment-")
    repo = f"{user}/{name}"
    sign_in(page, server, user)
    base = create_through_new(page, server, user, name)

    token = cli_token(server, user)
    run_client(
        f"""
        from huggingface_hub import CommitOperationAdd, HfApi
        files = {{"config.json": {json.dumps(CONFIG, indent=2).encode()!r}, "README.md": {README.encode()!r},
                 "model.safetensors": {WEIGHTS!r}}}
        HfApi().create_commit({repo!r}, [CommitOperationAdd(p, c) for p, c in files.items()],
                              commit_message="Add model files")
        """,
        env_for(token),
    )

    # The rendered card: table and highlighted code, no YAML header, chips for task, license and language.
    page.reload()
    body = page.locator("article.card-body")
    expect(body.locator("h1")).to_have_text("Tiny sentiment model")
    table = body.locator("table")
    expect(table).to_be_visible()
    expect(table.locator("th")).to_have_text(["Split", "Accuracy"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first).to_contain_text("0.91")
    code = body.locator(".highlight pre")
    expect(code).to_be_visible()
    expect(code).to_contain_text('classifier = pipeline("text-classification")')
    keyword = body.locator(".highlight span.kn").first  # "from" / "import": tokens carry classes
    expect(keyword).to_be_visible()
    assert keyword.evaluate("e => getComputedStyle(e).color") != code.evaluate("e => getComputedStyle(e).color")
    text = body.inner_text()
    assert "pipeline_tag" not in text and "apache-2.0" not in text and "---" not in text
    chips = page.locator(".repo-head .chips")
    expect(chips.locator("a.chip.task")).to_have_text("Text classification")
    expect(chips.get_by_role("link", name="License: apache-2.0")).to_be_visible()
    expect(chips.get_by_role("link", name="en", exact=True)).to_be_visible()
    expect(page.locator("aside.side")).to_contain_text("Add model files")
    shot(page, shots_dir, server, "model-card")

    # Browse files: tree, then the highlighted blob view of config.json; the binary file is not shown as text.
    page.get_by_role("link", name="Files and versions").click()
    page.wait_for_url(f"{base}/tree/main")
    files = page.locator("table.files")
    for filename in ("config.json", "README.md", "model.safetensors", ".gitattributes"):
        expect(files.get_by_role("link", name=filename, exact=True)).to_be_visible()
    weights_row = files.locator("tr", has=page.get_by_role("link", name="model.safetensors", exact=True))
    expect(weights_row).to_contain_text("LFS")
    expect(weights_row).to_contain_text("4.1 kB")
    shot(page, shots_dir, server, "files")
    files.get_by_role("link", name="config.json", exact=True).click()
    page.wait_for_url(f"{base}/blob/main/config.json")
    view = page.locator(".fileview .highlight")
    expect(view).to_be_visible()
    expect(view).to_contain_text('"model_type"')
    expect(view.locator("span.nt", has_text='"model_type"')).to_be_visible()  # a JSON key, highlighted
    expect(page.locator(".crumbs")).to_contain_text("config.json")
    shot(page, shots_dir, server, "blob")
    page.goto(f"{base}/blob/main/model.safetensors")
    expect(page.locator(".fileview")).to_have_count(0)
    expect(page.locator("main p.muted")).to_contain_text(re.compile("Git LFS|Binary"))

    # A branch made through the API, with a commit of its own, chosen with the branch selector.
    made = httpx.post(f"{server.url}/api/models/{repo}/branch/dev", headers=bearer(token), json={}, timeout=30)
    assert made.status_code == 200, made.text
    run_client(
        f"""
        from huggingface_hub import HfApi
        HfApi().upload_file(path_or_fileobj=b"only on dev\\n", path_in_repo="notes.txt", repo_id={repo!r},
                            revision="dev", commit_message="Notes for dev")
        """,
        env_for(token),
    )
    page.goto(f"{base}/tree/main")
    expect(page.locator("table.files").get_by_role("link", name="notes.txt")).to_have_count(0)
    page.get_by_label("Branch or tag").select_option("dev")
    page.wait_for_url(f"{base}/tree/dev")
    expect(page.get_by_label("Branch or tag")).to_have_value("dev")
    expect(page.locator("table.files").get_by_role("link", name="notes.txt")).to_be_visible()
    expect(page.locator(".lastcommit")).to_contain_text("Notes for dev")
    page.get_by_label("Branch or tag").select_option("main")
    page.wait_for_url(f"{base}/tree/main")
    expect(page.locator("table.files").get_by_role("link", name="notes.txt")).to_have_count(0)

    # History and a commit page with the diff of a text file.
    page.get_by_role("link", name="History", exact=True).click()
    page.wait_for_url(f"{base}/commits/main")
    titles = page.locator("ul.commits li strong").all_inner_texts()
    assert titles[0] == "Add model files" and len(titles) == 2, titles
    shot(page, shots_dir, server, "commits")
    page.get_by_role("link", name="Add model files").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/commit/[0-9a-f]{{40}}$"))
    expect(page.locator(".commit-head h2")).to_have_text("Add model files")
    config_diff = page.locator(".diff", has=page.locator(".diff-file", has_text="config.json"))
    expect(config_diff.locator(".status")).to_have_text("added")
    expect(config_diff.locator("span.add", has_text='"model_type": "bert"')).to_be_visible()
    expect(page.locator(".diff-file", has_text="model.safetensors")).to_be_visible()

    # Edit the README in the editor: the htmx preview follows the text; the commit shows on the card.
    page.goto(base)
    page.get_by_role("link", name="Edit card").click()
    page.wait_for_url(f"{base}/edit/main/README.md")
    editor = page.get_by_label("README.md")
    expect(editor).to_have_value(README)
    expect(page.locator("#preview table")).to_be_visible()  # preview rendered on load
    expect(page.locator("#preview")).not_to_contain_text("pipeline_tag")
    editor.click()
    editor.press("Control+End")
    page.keyboard.type("\n## Evaluated in a browser\n\nStill *works*.\n")
    expect(page.locator("#preview h2")).to_have_text("Evaluated in a browser")
    expect(page.locator("#preview em")).to_have_text("works")
    shot(page, shots_dir, server, "editor")
    page.get_by_label("Commit message").fill("Edit card in the browser")
    page.get_by_role("button", name="Commit changes").click()
    page.wait_for_url(base)
    expect(page.locator("article.card-body h2")).to_have_text("Evaluated in a browser")
    expect(page.locator(".repo-head .chips a.chip.task")).to_have_text("Text classification")

    page.goto(f"{base}/commits/main")
    page.get_by_role("link", name="Edit card in the browser").click()
    readme_diff = page.locator(".diff", has=page.locator(".diff-file", has_text="README.md"))
    expect(readme_diff.locator(".status")).to_have_text("modified")
    expect(readme_diff.locator("span.add", has_text="## Evaluated in a browser")).to_be_visible()
    expect(readme_diff.locator("span.hunk").first).to_be_visible()
    shot(page, shots_dir, server, "commit-diff")

    # Use this model, settings (a wrong typed confirmation does not delete), profile, home, list, 404.
    page.goto(base)
    page.get_by_role("link", name="Use this model").click()
    page.wait_for_url(f"{base}/use")
    snippets = page.locator("section.snippet")
    expect(snippets.first).to_contain_text(f'pipeline("text-classification", model="{repo}")')
    expect(snippets.first).to_contain_text(server.url)
    shot(page, shots_dir, server, "use")

    page.locator(".tabs").get_by_role("link", name="Settings").click()
    page.wait_for_url(f"{base}/settings")
    shot(page, shots_dir, server, "settings")
    page.get_by_label("Type the repository id to confirm").fill(name)  # not the full id
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("p.error")).to_have_text(f"Type {repo} to confirm")
    assert httpx.get(f"{server.url}/api/models/{repo}", headers=bearer(token), timeout=30).status_code == 200

    page.goto(f"{server.url}/{user}")
    expect(has_card(page, repo)).to_be_visible()
    expect(page.locator(".profile h1")).to_contain_text(user)
    shot(page, shots_dir, server, "profile")

    page.goto(server.url + "/")
    expect(page.locator(".hero h1")).to_be_visible()
    shot(page, shots_dir, server, "home")
    page.goto(server.url + "/models?sort=updated")
    expect(has_card(page, repo)).to_be_visible()
    shot(page, shots_dir, server, "models")

    response = page.goto(f"{server.url}/{user}/no-such-model")
    assert response is not None and response.status == 404
    expect(page.locator(".error-page h1")).to_have_text("404")
    expect(page.get_by_role("link", name="← Back to the home page")).to_be_visible()
    shot(page, shots_dir, server, "404")


# --- 2. access tokens ------------------------------------------------------------------------------------------------


def test_token_create_use_and_revoke(server: LiveServer, page: Page, shots_dir: Path) -> None:
    user = web_user(server, "webtokens")
    sign_in(page, server, user)
    page.locator("header.topbar").get_by_role("link", name="Settings", exact=True).click()
    page.wait_for_url(re.compile(r"/settings/"))
    page.get_by_role("link", name="Access tokens").click()
    page.wait_for_url(server.url + "/settings/tokens")
    expect(page.locator("table.files")).to_contain_text("No tokens yet")

    page.get_by_label("Token name").fill("laptop")
    page.get_by_label("Role").select_option("write")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator("#new-token")
    expect(shown).to_be_visible()
    token = shown.inner_text().strip()
    assert token.startswith("hs_") and len(token) > 20, token
    row = page.locator("table.files tr", has_text="laptop")
    expect(row).to_contain_text("write")
    shot(page, shots_dir, server, "tokens")

    who = httpx.get(f"{server.url}/api/whoami-v2", headers=bearer(token), timeout=30)
    assert who.status_code == 200, who.text
    assert who.json()["name"] == user
    assert who.json()["auth"]["accessToken"]["role"] == "write"

    # Shown once: a fresh visit lists the token by name only.
    page.goto(server.url + "/settings/tokens")
    expect(page.locator("#new-token")).to_have_count(0)
    assert token not in page.content()
    expect(page.locator("table.files tr", has_text="laptop")).to_be_visible()

    page.get_by_role("button", name="Revoke laptop").click()
    page.wait_for_url(server.url + "/settings/tokens")
    expect(page.locator("table.files tr", has_text="laptop")).to_have_count(0)
    expect(page.locator("table.files")).to_contain_text("No tokens yet")
    gone = httpx.get(f"{server.url}/api/whoami-v2", headers=bearer(token), timeout=30)
    assert gone.status_code == 401, gone.text


# --- 3. finding a model: task facet and search -----------------------------------------------------------------------


def test_find_model_by_task_facet_and_search(server: LiveServer, page: Page, env_for) -> None:  # type: ignore[no-untyped-def]
    owner = server.account("facets")
    stem = server.unique("findme")
    wanted = f"{owner.name}/{stem}-sentiment"
    other = f"{owner.name}/{stem}-summarizer"
    env = env_for(owner.write_token)
    api_model(env, wanted, {"README.md": card_text("text-classification", title="Wanted")})
    api_model(env, other, {"README.md": card_text("summarization", title="Other")})

    page.goto(server.url + "/models")
    page.locator(".sorts").get_by_role("link", name="updated").click()
    page.wait_for_url(re.compile(r"/models\?sort=updated$"))
    expect(has_card(page, other)).to_be_visible()
    before = facet_count(page, "Text classification")
    assert before >= 1
    facet = page.locator("aside.facets a.facet", has_text="Text classification")
    facet.click()
    page.wait_for_url(re.compile(r"/models\?.*task=text-classification"))
    assert "sort=updated" in page.url
    expect(page.locator("aside.facets a.facet.active")).to_contain_text("Text classification")
    expect(page.locator(".results-head h1 .muted")).to_have_text(str(before))
    expect(has_card(page, wanted)).to_be_visible()
    expect(has_card(page, wanted).locator(".chip.task")).to_have_text("Text classification")
    expect(has_card(page, other)).to_have_count(0)
    for chip in page.locator(".grid a.card .chip.task").all_inner_texts():
        assert chip == "Text classification"
    # Clearing the filter brings the other model back.
    page.get_by_role("link", name="✕ Clear filters").click()
    expect(has_card(page, other)).to_be_visible()

    # The search box in the top bar: everything, grouped by kind (/search).
    page.goto(server.url + "/")
    box = page.get_by_role("searchbox", name="Search")
    box.fill(f"{stem}-sentiment")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q="))
    expect(page.locator("#found-models").locator(f'a.card[href="/{wanted}"]')).to_be_visible()
    assert result_ids(page) == [wanted]
    expect(page.get_by_role("searchbox", name="Search")).to_have_value(f"{stem}-sentiment")
    # The list's own filter box narrows a broader search.
    page.goto(f"{server.url}/models?search={stem}-sentiment")
    assert result_ids(page) == [wanted]
    filter_box = page.get_by_role("searchbox", name="Filter by name")
    filter_box.fill(stem)
    filter_box.press("Enter")
    page.wait_for_url(re.compile(rf"/models\?search={stem}$"))
    assert sorted(result_ids(page)) == sorted([wanted, other])
    page.locator(".grid a.card", has_text=wanted).click()
    page.wait_for_url(f"{server.url}/{wanted}")
    expect(page.locator("article.card-body h1")).to_have_text("Wanted")


# --- 4. private repos --------------------------------------------------------------------------------------------------


def test_private_repo_visible_to_owner_only(server: LiveServer, new_page, env_for) -> None:  # type: ignore[no-untyped-def]
    alice = web_user(server, "privowner")
    bob = web_user(server, "privother")
    env = env_for(cli_token(server, alice))
    stem = server.unique("hush")
    secret = f"{alice}/{stem}-secret"
    public = f"{alice}/{stem}-public"
    api_model(env, secret, {"README.md": card_text("graph-ml", license="cc-by-nc-4.0", title="Secret")}, private=True)
    api_model(env, public, {"README.md": card_text("text-classification", title="Public")})

    as_alice = new_page()
    sign_in(as_alice, server, alice)
    as_bob = new_page()
    sign_in(as_bob, server, bob)

    # Alice sees it everywhere, marked private.
    as_alice.goto(f"{server.url}/{alice}")
    expect(has_card(as_alice, secret)).to_be_visible()
    expect(has_card(as_alice, secret).locator(".badge")).to_have_text("private")
    expect(has_card(as_alice, public)).to_be_visible()
    as_alice.goto(f"{server.url}/{secret}")
    expect(as_alice.locator(".repo-title .badge")).to_have_text("private")
    expect(as_alice.locator("article.card-body h1")).to_have_text("Secret")
    as_alice.goto(f"{server.url}/models?search={stem}")
    assert sorted(result_ids(as_alice)) == sorted([f"private {secret}", public])
    assert facet_count(as_alice, "Graph ml") == 1
    assert facet_count(as_alice, "cc-by-nc-4.0") == 1
    expect(as_alice.locator(".results-head h1 .muted")).to_have_text("2")
    as_alice.goto(f"{server.url}/models")
    alice_graph = facet_count(as_alice, "Graph ml")
    alice_license = facet_count(as_alice, "cc-by-nc-4.0")
    assert alice_graph >= 1 and alice_license >= 1

    # Bob does not: not in lists, facet counts, search, or the profile page.
    as_bob.goto(f"{server.url}/models")
    assert facet_count(as_bob, "Graph ml") == alice_graph - 1
    assert facet_count(as_bob, "cc-by-nc-4.0") == alice_license - 1
    as_bob.goto(f"{server.url}/models?search={stem}")
    assert result_ids(as_bob) == [public]
    assert facet_count(as_bob, "Graph ml") == 0
    expect(as_bob.locator(".results-head h1 .muted")).to_have_text("1")
    as_bob.goto(f"{server.url}/models?task=graph-ml&sort=updated")
    expect(has_card(as_bob, secret)).to_have_count(0)
    box = as_bob.get_by_role("searchbox", name="Search")
    box.fill(f"{stem}-secret")
    box.press("Enter")
    as_bob.wait_for_url(re.compile(r"/search\?q="))
    expect(as_bob.locator("#search-empty")).to_contain_text("Nothing matches")
    as_bob.goto(f"{server.url}/{alice}")
    expect(has_card(as_bob, public)).to_be_visible()
    expect(has_card(as_bob, secret)).to_have_count(0)
    assert stem + "-secret" not in as_bob.content()
    as_bob.goto(server.url + "/")
    assert stem + "-secret" not in as_bob.content()

    # The direct URL (and its sub-pages) answer 404 with an error page and a way back.
    for path in ("", "/tree/main", "/blob/main/README.md", "/commits/main", "/use", "/settings"):
        response = as_bob.goto(f"{server.url}/{secret}{path}")
        assert response is not None and response.status == 404, (path, response and response.status)
        expect(as_bob.locator(".error-page h1")).to_have_text("404")
        assert "Secret" not in as_bob.locator("main").inner_text()
    as_bob.get_by_role("link", name="← Back to the home page").click()
    as_bob.wait_for_url(server.url + "/")
    expect(as_bob.locator(".hero h1")).to_be_visible()


# --- 5. likes over htmx; CSRF -------------------------------------------------------------------------------------------


def test_like_toggles_and_forms_need_csrf(server: LiveServer, page: Page, env_for) -> None:  # type: ignore[no-untyped-def]
    owner = server.account("likeowner")
    repo = f"{owner.name}/{server.unique('likeable')}"
    api_model(env_for(owner.write_token), repo, {"README.md": card_text("fill-mask", title="Likeable")})
    user = web_user(server, "liker")
    sign_in(page, server, user)

    page.goto(f"{server.url}/{repo}")
    like = page.locator("#like button.like")
    expect(like).to_have_text("♥ 0")
    expect(like).not_to_have_class(re.compile(r"\bon\b"))
    with page.expect_response(lambda r: "/like?liked=1" in r.url) as first:
        like.click()
    assert first.value.status == 200
    expect(like).to_have_text("♥ 1")
    expect(like).to_have_class(re.compile(r"\bon\b"))
    assert page.url == f"{server.url}/{repo}"  # swapped in place, no navigation
    likers = httpx.get(f"{server.url}/api/models/{repo}/likers", timeout=30).json()
    assert [x.get("user") or x.get("name") for x in likers] == [user], likers
    page.reload()
    expect(like).to_have_text("♥ 1")
    with page.expect_response(lambda r: "/like?liked=0" in r.url):
        like.click()
    expect(like).to_have_text("♥ 0")
    expect(like).not_to_have_class(re.compile(r"\bon\b"))
    page.reload()
    expect(like).to_have_text("♥ 0")

    # CSRF: the same session, with cookies, but without (or with a wrong) csrf_token is refused.
    page.goto(server.url + "/settings/tokens")
    csrf = page.locator('form[action="/settings/tokens"] input[name="csrf_token"]').input_value()
    assert csrf
    forged = page.request.post(server.url + "/settings/tokens", form={"name": "forged", "role": "write"})
    assert forged.status == 403, forged.status
    assert "403" in forged.text() and "hs_" not in forged.text()
    wrong = page.request.post(
        server.url + "/settings/tokens", form={"name": "forged", "role": "write", "csrf_token": csrf[::-1]}
    )
    assert wrong.status == 403
    htmx_without_header = page.request.post(f"{server.url}/{repo}/like?liked=1")
    assert htmx_without_header.status == 403
    # The refused requests changed nothing; the same request with the token goes through.
    page.reload()
    expect(page.locator("table.files")).not_to_contain_text("forged")
    assert httpx.get(f"{server.url}/api/models/{repo}/likers", timeout=30).json() == []
    allowed = page.request.post(
        server.url + "/settings/tokens", form={"name": "genuine", "role": "read", "csrf_token": csrf}
    )
    assert allowed.status == 200 and 'id="new-token"' in allowed.text()

    # The forged-form error page, as a browser shows it.
    page.set_content(forged.text())
    expect(page.locator(".error-page h1")).to_have_text("403")


# --- 6. dark mode ------------------------------------------------------------------------------------------------------


def test_dark_mode_toggle(server: LiveServer, page: Page, shots_dir: Path, env_for) -> None:  # type: ignore[no-untyped-def]
    owner = server.account("darkowner")
    repo = f"{owner.name}/{server.unique('nightly')}"
    api_model(
        env_for(owner.write_token),
        repo,
        {"README.md": README.encode(), "config.json": json.dumps(CONFIG, indent=2).encode()},
    )
    page.goto(f"{server.url}/{repo}")
    root_classes = "document.documentElement.className"
    body_bg = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(root_classes) == ""
    assert page.evaluate(body_bg) == "rgb(255, 255, 255)"

    page.get_by_role("button", name="◐").click()
    assert page.evaluate(root_classes) == "dark"
    assert page.evaluate(body_bg) == "rgb(15, 17, 21)"
    shot(page, shots_dir, server, "model-card-dark")
    problems = low_contrast(page, "main .repo-title, main .chip, main .tabs a, article.card-body *, aside.side *", 4.5)
    problems += low_contrast(page, "article.card-body .highlight span", 3.0)
    assert not problems, problems

    # The choice persists across pages (localStorage) and applies to highlighted files.
    page.get_by_role("link", name="Files and versions").click()
    page.locator("table.files").get_by_role("link", name="config.json", exact=True).click()
    page.wait_for_url(f"{server.url}/{repo}/blob/main/config.json")
    assert page.evaluate(root_classes) == "dark"
    shot(page, shots_dir, server, "blob-dark")
    problems = low_contrast(page, ".fileview .highlight span, .fileview .linenos, .fileinfo *", 3.0)
    assert not problems, problems

    page.get_by_role("button", name="◐").click()
    assert page.evaluate(root_classes) == "light"
    assert page.evaluate(body_bg) == "rgb(255, 255, 255)"
    page.reload()
    assert page.evaluate(root_classes) == "light"


# --- 7. layout details seen in the screenshots --------------------------------------------------------------------------


def test_commit_diff_lines_are_not_double_spaced(server: LiveServer, page: Page, env_for) -> None:  # type: ignore[no-untyped-def]
    owner = server.account("diffowner")
    repo = f"{owner.name}/{server.unique('diffs')}"
    env = env_for(owner.write_token)
    api_model(env, repo, {"notes.txt": b"one\ntwo\nthree\nfour\n"})
    run_client(
        f"""
        from huggingface_hub import HfApi
        HfApi().upload_file(path_or_fileobj=b"one\\n2\\nthree\\nfour\\nfive\\n", path_in_repo="notes.txt",
                            repo_id={repo!r}, commit_message="Change notes")
        """,
        env,
    )
    page.goto(f"{server.url}/{repo}/commits/main")
    page.get_by_role("link", name="Change notes").click()
    lines = page.locator(".diff pre > span")
    expect(lines.filter(has_text="+2")).to_be_visible()
    expect(lines.filter(has_text="-two")).to_be_visible()
    boxes = [box for box in (h.bounding_box() for h in lines.element_handles()) if box]
    assert len(boxes) >= 6
    gaps = [round(b["y"] - (a["y"] + a["height"]), 1) for a, b in zip(boxes, boxes[1:], strict=False)]
    # One diff line follows the next; a blank line between every two is a rendering fault.
    assert all(gap < 2 for gap in gaps), f"vertical gaps between diff lines (px): {gaps}"


def test_repo_header_is_the_same_on_the_manage_pages(server: LiveServer, page: Page, env_for) -> None:  # type: ignore[no-untyped-def]
    user = web_user(server, "headowner")
    repo = f"{user}/{server.unique('headed')}"
    api_model(env_for(cli_token(server, user)), repo, {"README.md": README.encode()})
    sign_in(page, server, user)
    base = f"{server.url}/{repo}"
    page.goto(base)
    page.locator("#like button.like").click()
    expect(page.locator("#like button.like")).to_have_class(re.compile(r"\bon\b"))
    tabs = ["Model card", "Files and versions", "Use this model", "Train on this model", "Evaluate", "Community",
            "Settings"]
    expect(page.locator(".repo-head .tabs a")).to_have_text([re.compile(f"^{t}") for t in tabs])

    problems = []
    for path, active in (("/settings", "Settings"), ("/edit/main/README.md", "Model card"),
                         ("/upload/main", "Files and versions")):  # fmt: skip
        page.goto(base + path)
        shown = [t.strip().split(" ")[0] if t.startswith("Community") else t.strip()
                 for t in page.locator(".repo-head .tabs a").all_inner_texts()]  # fmt: skip
        current = [t.strip() for t in page.locator(".repo-head .tabs a.active").all_inner_texts()]
        task = page.locator(".repo-head .chips a.chip.task").all_inner_texts()
        liked = "on" in (page.locator("#like button.like").get_attribute("class") or "")
        if shown != tabs or current != [active] or task != ["Text classification"] or not liked:
            problems.append(f"{path}: tabs={shown} active={current} task_chip={task} like_on={liked}")
    assert not problems, "repo header differs from the card page's:\n" + "\n".join(problems)


# --- 1b. the upload form (last: see the report; it fails while browser uploads are refused) ------------------------


def test_upload_model_through_the_upload_form(server: LiveServer, page: Page, shots_dir: Path) -> None:
    user = web_user(server, "webuploader")
    name = server.unique("uploaded-")
    repo = f"{user}/{name}"
    sign_in(page, server, user)
    base = create_through_new(page, server, user, name)

    page.get_by_role("link", name="Files and versions").click()
    page.wait_for_url(f"{base}/tree/main")
    page.get_by_role("link", name="Upload files").click()
    page.wait_for_url(f"{base}/upload/main")
    page.locator("#file-input").set_input_files(
        [
            {"name": "config.json", "mimeType": "application/json", "buffer": json.dumps(CONFIG, indent=2).encode()},
            {"name": "README.md", "mimeType": "text/markdown", "buffer": README.encode()},
            {"name": "model.safetensors", "mimeType": "application/octet-stream", "buffer": WEIGHTS},
        ]
    )
    expect(page.locator("#chosen li")).to_have_count(3)
    expect(page.locator("#chosen")).to_contain_text(f"model.safetensors ({len(WEIGHTS)} bytes)")
    page.get_by_label("Commit message").fill("Add model files")
    shot(page, shots_dir, server, "upload")
    with page.expect_response(lambda r: r.request.method == "POST" and "/upload/main" in r.url) as posted:
        page.get_by_role("button", name="Commit changes").click()
    page.wait_for_load_state()
    assert posted.value.status == 303, f"POST {base}/upload/main answered {posted.value.status}: " + page.locator(
        "main"
    ).inner_text().replace("\n", " | ")
    page.wait_for_url(f"{base}/tree/main")
    files = page.locator("table.files")
    for filename in ("config.json", "README.md", "model.safetensors", ".gitattributes"):
        expect(files.get_by_role("link", name=filename, exact=True)).to_be_visible()
    expect(files.locator("tr", has_text="model.safetensors")).to_contain_text("LFS")
    expect(page.locator(".lastcommit")).to_contain_text("Add model files")
    raw = httpx.get(f"{base}/resolve/main/model.safetensors", follow_redirects=True, timeout=30)
    assert raw.status_code == 200 and raw.content == WEIGHTS
    assert httpx.get(f"{base}/resolve/main/README.md", timeout=30).text == README

    # The uploaded card is rendered and indexed: chips and the model list know its task.
    page.get_by_role("link", name="Model card").click()
    expect(page.locator("article.card-body table")).to_be_visible()
    expect(page.locator(".repo-head .chips a.chip.task")).to_have_text("Text classification")
    page.goto(f"{server.url}/models?task=text-classification&search={name}")
    assert result_ids(page) == [repo]

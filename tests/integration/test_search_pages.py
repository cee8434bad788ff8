"""Search everywhere (``search/everywhere``, ``web/routes_search``): ``/search?q=`` grouped by kind, the header's
suggestions, privacy (a private repo shows only to those who may read it), bad input; the card's datasets fold
(links only to datasets here), the favicon and the avatars drawn from a name. SQLite only: the queries are the
listing's own, which the PostgreSQL runs of the list tests cover."""

from __future__ import annotations

import re

import httpx
import pytest
from huggingface_hub import HfApi

from support import Account, LiveServer, web_session

pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)
PASSWORD = "pw-search-owner-1"


def _section(html: str, kind: str) -> str:
    """The HTML of one result group (``<section id="found-...">``), empty when the page has none."""
    found = re.search(rf'<section class="search-group" id="found-{kind}">(.*?)</section>', html, re.S)
    return found.group(1) if found else ""


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Account:
    """One account for the module's tests (each CLI call costs seconds on a busy machine)."""
    return server.account("searchowner", password=PASSWORD)


def test_search_groups_by_kind_and_hides_private_repos(server: LiveServer, owner: Account) -> None:
    ns = owner.name
    api = HfApi(endpoint=server.url, token=owner.write_token)
    api.create_repo(f"{ns}/reviews", repo_type="dataset")
    api.create_repo(f"{ns}/reviews-sentiment")
    api.create_repo(f"{ns}/reviews-demo", repo_type="space", space_sdk="static")
    api.create_repo(f"{ns}/reviews-secret", repo_type="dataset", private=True)
    org = server.unique("reviewsorg")
    server.cli("orgs", "create", org, "--owner", ns)

    anon = httpx.get(f"{server.url}/search", params={"q": "reviews"})
    assert anon.status_code == 200
    datasets, models, spaces = (_section(anon.text, k) for k in ("datasets", "models", "spaces"))
    assert f'href="/datasets/{ns}/reviews"' in datasets  # "reviews" finds the dataset, in its own group
    assert f'href="/{ns}/reviews-sentiment"' in models and f"{ns}/reviews-sentiment" not in datasets
    assert f'href="/spaces/{ns}/reviews-demo"' in spaces
    assert f'href="/{org}"' in _section(anon.text, "people")  # an organization whose name holds the words
    assert "reviews-secret" not in anon.text  # private: not to a visitor

    by_name = httpx.get(f"{server.url}/search", params={"q": ns}).text  # a user, by name; their repos too
    assert f'href="/{ns}"' in _section(by_name, "people") and f"{ns}/reviews" in _section(by_name, "datasets")

    browser, _ = web_session(server, ns, PASSWORD)
    try:
        mine = browser.get("/search", params={"q": "reviews secret"})  # two words: both must be in the id
        assert mine.status_code == 200 and f'href="/datasets/{ns}/reviews-secret"' in _section(mine.text, "datasets")
        assert f"{ns}/reviews-sentiment" not in mine.text
        # The owner's name narrows the suggestions to this test's repos (the session's hub holds other tests'
        # "reviews" repos, and suggestions stop at 8).
        suggested = browser.get("/search/suggest", params={"q": f"{ns} reviews"}).text
        assert f"/datasets/{ns}/reviews-secret" in suggested  # its owner is offered it as they type
    finally:
        browser.close()

    suggest = httpx.get(f"{server.url}/search/suggest", params={"q": f"{ns} reviews"})
    assert suggest.status_code == 200
    options = re.findall(r'<a role="option" class="suggest" href="([^"]+)"', suggest.text)
    assert f"/datasets/{ns}/reviews" in options and f"/{ns}/reviews-sentiment" in options
    assert 0 < len(options) <= 8 and "reviews-secret" not in suggest.text
    assert [g for g in ("Models", "Datasets", "Spaces") if f'class="suggest-group">{g}<' in suggest.text] == [
        "Models", "Datasets", "Spaces"
    ]  # fmt: skip
    assert f"/search?q={ns}%20reviews" in suggest.text  # "all results"

    assert httpx.get(f"{server.url}/search/suggest", params={"q": " "}).text.strip() == ""
    nothing = httpx.get(f"{server.url}/search", params={"q": "zzqx-no-such-thing"})
    assert nothing.status_code == 200 and 'id="search-empty"' in nothing.text
    for bad in ({"q": "x" * 300}, {"q": " ".join("abcdefghij")}):
        answer = httpx.get(f"{server.url}/search", params=bad)
        assert answer.status_code == 400, answer.text[:300]
        assert httpx.get(f"{server.url}/search/suggest", params=bad).status_code == 400


def test_datasets_fold_favicon_and_avatars(server: LiveServer, owner: Account) -> None:
    ns = owner.name
    api = HfApi(endpoint=server.url, token=owner.write_token)
    api.create_repo(f"{ns}/corpus", repo_type="dataset")
    api.create_repo(f"{ns}/hidden", repo_type="dataset", private=True)
    named = [f"{ns}/corpus", f"{ns}/hidden", "nobody/missing", *(f"other/set{i}" for i in range(19))]
    card = "---\ndatasets:\n" + "".join(f"- {d}\n" for d in named) + "---\n# m\n"
    api.create_repo(f"{ns}/embedder")
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=f"{ns}/embedder")

    html = httpx.get(f"{server.url}/{ns}/embedder").text
    fold = re.search(r'<details class="datasets-fold">(.*?)</details>', html, re.S)
    assert fold, html[:3000]
    assert "Datasets: 22" in fold.group(1)
    assert f'href="/datasets/{ns}/corpus"' in fold.group(1)  # here: a link
    assert "nobody/missing" in fold.group(1) and 'href="/datasets/nobody/missing"' not in fold.group(1)
    assert 'href="/datasets/' + f'{ns}/hidden"' not in fold.group(1)  # private: the visitor gets its name only
    assert fold.group(1).count('href="/datasets/') == 1  # only the one here that the visitor may open
    assert "Dataset: " not in html  # the old chip per dataset is gone

    icon = httpx.get(f"{server.url}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
    assert 'rel="icon" href="/favicon.ico"' in html

    first = httpx.get(f"{server.url}/-/avatar/{ns}.svg")
    assert first.status_code == 200 and first.headers["content-type"].startswith("image/svg+xml")
    assert f">{ns[:2].upper()}</text>" in first.text and first.text == httpx.get(f"{server.url}/-/avatar/{ns}.svg").text
    two = httpx.get(f"{server.url}/-/avatar/jane-doe.svg").text
    assert ">JD</text>" in two and "hsl(" in two
    odd = httpx.get(f"{server.url}/-/avatar/%3Cb%3E%20x.svg")  # escaped, not markup
    assert odd.status_code == 200 and "<b" not in odd.text.split("<text", 1)[1]
    assert httpx.get(f"{server.url}/-/avatar/{'x' * 200}.svg").status_code == 400
    assert f'src="/-/avatar/{ns}"' in httpx.get(f"{server.url}/{ns}").text  # the profile shows it

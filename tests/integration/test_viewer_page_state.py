"""The dataset viewer page over HTTP: the view lives in the URL (subset, split, search, SQL filter, filter builder,
sort, page, row, statistics), a shared URL shows the same rows, htmx swaps push that URL, and bad input is a 400
that says why. The rows expected are computed here from the data pushed."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support import LiveServer

TEXTS = ["A wonderful film with a moving story", "Terrible acting and a boring plot", "The story moves a film along"]
N = 120


def _row(i: int) -> dict[str, object]:
    return {"review": f"{TEXTS[i % 3]} (#{i})", "stars": i % 5 + 1, "verdict": ["good", "bad", "meh"][i % 3]}


@pytest.fixture(scope="module")
def dataset(server: LiveServer) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    account = server.account("viewstate")
    repo_id = f"{account.name}/reviews"
    lines = ["review,stars,verdict"] + [f'"{r["review"]}",{r["stars"]},{r["verdict"]}' for r in map(_row, range(N))]
    api = HfApi(endpoint=server.url, token=account.write_token)
    api.create_repo(repo_id, repo_type="dataset")
    commit = api.create_commit(
        repo_id, repo_type="dataset", commit_message="data",
        operations=[CommitOperationAdd("train.csv", ("\n".join(lines) + "\n").encode())],
    ).oid  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        job = httpx.get(f"{server.url}/api/datasets/{repo_id}/viewer-status").json()["job"]
        if job and job["revision"] == commit and job["status"] in ("succeeded", "failed"):
            assert job["status"] == "succeeded", job
            return repo_id
        time.sleep(0.3)
    raise AssertionError("conversion did not finish")


def _view(server: LiveServer, repo_id: str, params: list[tuple[str, str]], htmx: bool = False) -> httpx.Response:
    headers = {"HX-Request": "true"} if htmx else {}
    return httpx.get(f"{server.url}/datasets/{repo_id}/viewer", params=params, headers=headers, timeout=60)


def _rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-row="(\d+)"', html)]


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_a_filter_sort_and_page_in_the_url_give_those_rows(server: LiveServer, dataset: str) -> None:
    state = [("fc", "verdict"), ("fo", "eq"), ("fv", "good"), ("orderby", '"stars" DESC'), ("page", "2")]
    page = _view(server, dataset, state)
    assert page.status_code == 200
    chosen = sorted((i for i in range(N) if _row(i)["verdict"] == "good"), key=lambda i: (-int(_row(i)["stars"]), i))
    assert _rows(page.text) == chosen[25:50]
    assert f"{len(chosen)} rows match the filter" in page.text
    assert 'aria-current="page">2<' in page.text  # the page numbers know where they are
    assert "verdict = good" in page.text  # the builder's condition is shown (and kept) as a chip

    # The SQL box and the builder together (AND), and the same view as an htmx swap: it pushes its shareable URL.
    state = [("where", '"stars" >= 4'), ("fc", "review"), ("fo", "contains"), ("fv", "MOVING"), ("fc", ""), ("fv", "")]
    swap = _view(server, dataset, state, htmx=True)
    chosen = [i for i in range(N) if int(_row(i)["stars"]) >= 4 and "moving" in str(_row(i)["review"]).lower()]
    assert _rows(swap.text) == chosen[:25] and "<html" not in swap.text
    pushed = parse_qs(urlsplit(swap.headers["HX-Push-Url"]).query)
    assert pushed == {"config": ["default"], "split": ["train"], "where": ['"stars" >= 4'], "fc": ["review"],
                      "fo": ["contains"], "fv": ["MOVING"]}  # fmt: skip
    assert _rows(_view(server, dataset, [(k, v[0]) for k, v in pushed.items()]).text) == chosen[:25]

    # Go to row 60 of the unfiltered split: its page, with that row marked.
    jumped = _view(server, dataset, [("row", "60")]).text
    assert _rows(jumped) == list(range(50, 75))
    assert re.search(r'data-row="59" data-position="60"[^>]*class="jumped"', jumped)


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_search_needs_every_word_and_quotes_make_a_phrase(server: LiveServer, dataset: str) -> None:
    def found(query: str) -> list[int]:
        text = _view(server, dataset, [("q", query), ("page", "1")]).text
        ids = _rows(text)
        total = int(re.search(r"([\d,]+) rows match", text).group(1).replace(",", ""))  # type: ignore[union-attr]
        while len(ids) < total:  # read every page of the search
            page = len(ids) // 25 + 1
            ids += _rows(_view(server, dataset, [("q", query), ("page", str(page))]).text)
        return sorted(ids)

    every = [i for i in range(N) if i % 3 in (0, 2)]  # "film" and "story" are in both of these texts
    assert found("film story") == every
    assert found("wonderful story") == [i for i in range(N) if i % 3 == 0]  # not every row with either word
    assert found('"moving story"') == [i for i in range(N) if i % 3 == 0]  # row 2's "story moves" is no phrase
    assert found('"story moves" film') == [i for i in range(N) if i % 3 == 2]


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_statistics_of_the_filtered_rows_and_bad_input(server: LiveServer, dataset: str) -> None:
    page = _view(server, dataset, [("fc", "verdict"), ("fo", "ne"), ("fv", "good"), ("stats", "1")])
    assert page.status_code == 200
    chosen = [_row(i) for i in range(N) if _row(i)["verdict"] != "good"]
    stars = [int(str(r["stars"])) for r in chosen]
    assert f"Statistics of {len(chosen)} rows" in page.text
    cells = re.search(r'<tr data-column="stars">(.*?)</tr>', page.text, re.S).group(1)  # type: ignore[union-attr]
    numbers = re.findall(r'<td class="cell-number">([^<]*)</td>', cells)
    assert numbers[:4] == [str(len(stars)), "0", str(min(stars)), str(max(stars))]
    assert float(numbers[4]) == pytest.approx(sum(stars) / len(stars), rel=1e-3)
    verdicts = re.search(r'<tr data-column="verdict">(.*?)</tr>', page.text, re.S).group(1)  # type: ignore[union-attr]
    assert "good" not in verdicts and "bad" in verdicts and "meh" in verdicts

    for state, message in [
        ([("fc", "nope"), ("fo", "eq"), ("fv", "1")], "Unknown column"),
        ([("fc", "stars"), ("fo", "eq"), ("fv", "many")], "is not a number"),
        ([("fc", "stars"), ("fo", "drop"), ("fv", "1")], "Unknown operator"),
        ([("where", "read_csv('/etc/passwd')")], "function"),
        ([("orderby", '"nope" DESC')], "nope"),
    ]:
        for htmx in (False, True):
            refused = _view(server, dataset, state, htmx=htmx)
            assert refused.status_code == 400, (state, refused.text[:300])
            alert = re.search(r'role="alert">([^<]*)<', refused.text)
            assert alert and message.lower() in alert.group(1).lower(), (state, alert)
            assert _rows(refused.text) == []

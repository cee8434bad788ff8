"""The leaderboard pages through HTTP: a benchmark's board (rows in rank order, sort links, filters, paging
params, the scatter, invalid entries with their reasons, an invalid ``eval.yaml`` shown with its reasons, private
models and benchmarks seen only by those who may read them), the list of benchmarks with the aggregate board
(Borda ranks checked against a hand count) and the comparison of chosen models. Results are ``.eval_results``
files pushed with the real client to tiny model repos; the hub's index turns them into rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import httpx
import pytest
import yaml
from huggingface_hub import HfApi

from board_support import Result, eval_yaml, push_benchmark_yaml, push_model_results
from hubstead.evals import signing
from support import Account, LiveServer, web_session

# The pages are the same on both databases; the boards they draw are tested on PostgreSQL too by
# test_leaderboard_api.py.
pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)

PASSWORD = "board-pages-pass-1234"


@dataclass
class World:
    alice: Account
    bob: Account
    bench: str  # accuracy, higher is better
    errors: str  # error rate, lower is better
    secret_bench: str  # private (alice's)
    broken: str  # invalid eval.yaml
    plain: str  # a dataset that is no benchmark
    alpha: str
    beta: str  # fine-tuned from alpha
    gamma: str  # bob's
    hidden: str  # bob's private model
    bad: str  # an entry whose value is not a number
    vbench: str  # a benchmark with results the hub signed
    delta: str  # verified 0.6
    epsilon: str  # verified 0.7, then its config changed: stale
    suite: str  # two tasks, the mean of both


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    """Two benchmarks, a private one, a broken one, a plain dataset; four models with hand-picked scores:

    bench (accuracy ↑): alpha 0.9, gamma 0.8, beta 0.7, hidden 0.99 (private: bob only), bad "n/a" (invalid).
    errors (error rate ↓): beta 0.1, alpha 0.2, gamma 0.3.
    """
    alice = server.account("boarda", password=PASSWORD)
    bob = server.account("boardb", password=PASSWORD)
    a, b = alice.name, bob.name
    w = World(alice, bob, f"{a}/intent-bench", f"{a}/error-bench", f"{a}/secret-bench", f"{a}/broken-bench",
              f"{a}/plain-data", f"{a}/alpha", f"{a}/beta", f"{b}/gamma", f"{b}/hidden", f"{a}/bad-model",
              f"{a}/signed-bench", f"{a}/delta", f"{a}/epsilon", f"{a}/suite")
    push_benchmark_yaml(server, alice.write_token, w.bench, eval_yaml(
        "Intent <accuracy>", [("intent", "accuracy", True)], description="Does the model get the intent right?"))
    push_benchmark_yaml(server, alice.write_token, w.errors, eval_yaml("Error rate", [("errors", "error_rate", False)]))
    push_benchmark_yaml(server, alice.write_token, w.secret_bench, eval_yaml("Secret", [("s", "accuracy", True)]),
                        private=True)
    push_benchmark_yaml(server, alice.write_token, w.broken,
                        "name: Broken\nevaluation_framework: nonsense\ntasks: []\n")
    plain = HfApi(endpoint=server.url, token=alice.write_token)
    plain.create_repo(w.plain, repo_type="dataset")
    plain.upload_file(path_or_fileobj=b"text,label\nhi,1\n", path_in_repo="data.csv", repo_id=w.plain,
                      repo_type="dataset")
    push_model_results(server, alice.write_token, w.alpha, [Result(w.bench, "intent", 0.9),
                                                            Result(w.errors, "errors", 0.2),
                                                            Result(w.secret_bench, "s", 0.5)],
                       params=124_000_000, license="mit")
    push_model_results(server, alice.write_token, w.beta, [Result(w.bench, "intent", 0.7, "2026-11-20T00:00:00Z"),
                                                           Result(w.errors, "errors", 0.1)],
                       params=1_100_000_000, license="apache-2.0", base_model=w.alpha)
    push_model_results(server, bob.write_token, w.gamma, [Result(w.bench, "intent", 0.8),
                                                          Result(w.errors, "errors", 0.3)],
                       params=7_000_000, license="mit")
    push_model_results(server, bob.write_token, w.hidden, [Result(w.bench, "intent", 0.99)], params=10_000_000,
                       private=True)
    push_model_results(server, alice.write_token, w.bad, [Result(w.bench, "intent", "n/a")])
    push_benchmark_yaml(server, alice.write_token, w.vbench, eval_yaml("Signed", [("t", "accuracy", True)]))
    push_model_results(server, alice.write_token, w.alpha, [Result(w.vbench, "t", 0.65)],
                       filename=".eval_results/signed.yaml")
    for model_id, value in ((w.delta, 0.6), (w.epsilon, 0.7)):
        _push_signed(server, alice, model_id, w.vbench, value)
    HfApi(endpoint=server.url, token=alice.write_token).upload_file(
        path_or_fileobj=b'{"model_type": "bert", "hidden_size": 32}', path_in_repo="config.json", repo_id=w.epsilon)
    push_benchmark_yaml(server, alice.write_token, w.suite, eval_yaml(
        "Suite", [("t1", "accuracy", True), ("t2", "f1", True)], aggregate="mean"))
    for model_id, account, t1, t2, license, base in ((w.alpha, alice, 0.8, 0.6, "mit", None),
                                                     (w.gamma, bob, 0.7, 0.9, "mit", None),
                                                     (w.beta, alice, 0.95, None, "apache-2.0", w.alpha)):
        results = [Result(w.suite, "t1", t1)] + ([Result(w.suite, "t2", t2)] if t2 is not None else [])
        push_model_results(server, account.write_token, model_id, results, filename=".eval_results/suite.yaml",
                           license=license, base_model=base)
    return w


def _push_signed(server: LiveServer, account: Account, model_id: str, dataset: str, value: float) -> None:
    """A model whose ``.eval_results`` entry carries the hub's signature (as an evaluation job's would): signed
    with the server's key for this repo, its head commit, the dataset, task and value."""
    api = HfApi(endpoint=server.url, token=account.write_token)
    api.create_repo(model_id)
    sha = api.upload_file(path_or_fileobj=b'{"model_type": "bert"}', path_in_repo="config.json",
                          repo_id=model_id).oid
    pk = int(httpx.get(f"{server.url}/api/models/{model_id}",
                       headers={"Authorization": f"Bearer {account.read_token}"}).json()["_id"], 16)
    secret = (server.data_dir / "secret.key").read_text().strip()
    token = signing.sign(secret, signing.Claims(model_repo_pk=pk, model_id=model_id, model_sha=sha,
                                                dataset_id=dataset, task_id="t", value=value, job_id="job42",
                                                date="2026-12-01T00:00:00Z"))
    entry = {"dataset": {"id": dataset, "task_id": "t"}, "value": value, "verifyToken": token,
             "date": "2026-12-01T00:00:00Z",
             "source": {"url": f"{server.url}/jobs/{account.name}/job42", "name": "Hubstead evaluation"}}
    api.upload_file(path_or_fileobj=yaml.safe_dump([entry]).encode(), repo_id=model_id,
                    path_in_repo=f".eval_results/{dataset.replace('/', '__')}.yaml")


def _rows(html: str) -> list[tuple[int, str]]:
    return [(int(rank), unescape(model)) for model, rank in
            re.findall(r'<tr class="board-row" data-model="([^"]+)" data-rank="(\d+)"', html)]


def _get(server: LiveServer, path: str, client: httpx.Client | None = None, **params: str) -> httpx.Response:
    if client is not None:
        return client.get(path, params=params)
    return httpx.get(server.url + path, params=params, timeout=60)


def test_a_benchmark_board_ranks_its_results_with_facts_and_a_scatter(server: LiveServer, world: World) -> None:
    """The Leaderboard tab: the benchmark's name (escaped), description, task and metric; rows in rank order (the
    private model and the invalid entry left out for a visitor) with size, license, base model, author, the
    self-reported badge; the invalid entry listed with its reason; the scatter with a dot per sized model."""
    w = world
    page = _get(server, f"/datasets/{w.bench}/leaderboard")
    assert page.status_code == 200, page.text[:2000]
    html = page.text
    assert _rows(html) == [(1, w.alpha), (2, w.gamma), (3, w.beta)]
    assert "Intent &lt;accuracy&gt;" in html and "<accuracy>" not in html
    assert "Does the model get the intent right?" in html and "<code>accuracy</code>" in html
    assert "higher is better" in html and 'id="leaderboard-tab"' in html
    beta_row = html[html.index(f'data-model="{w.beta}"'):].split("</tr>")[0]
    for fact in ("1.1B", "apache-2.0", f'href="/{w.alpha}"', "2026-11-20", "self-reported", w.alice.name):
        assert fact in beta_row, fact
    assert "124M" in html and "7M" in html
    invalid = html[html.index('id="invalid-entries"'):]
    assert w.bad in invalid and w.bad not in [m for _, m in _rows(html)]
    assert re.search(r'class="reason">[^<]*(number|numeric)', invalid), invalid[:1000]
    scatter = html[html.index('id="scatter"'):]
    assert scatter.count('class="point"') == 3 and f'href="/{w.gamma}"' in scatter
    assert "model size (parameters, log scale)" in scatter
    assert w.hidden not in html
    # the size comes from the header of a model.safetensors the client sent through Xet (model_info reads it too)
    info = HfApi(endpoint=server.url).model_info(w.beta, expand=["safetensors"])
    assert info.safetensors is not None and info.safetensors.total == 1_100_000_000


def test_sorting_filters_and_paging_params(server: LiveServer, world: World) -> None:
    """Sort by size (both ways), model, author and license through the column links' params; filter by name,
    license, base models only (beta is a fine-tune) and verified only (none: every result here is self-reported);
    a page past the end is empty and a bad page number or sort a 400."""
    w = world
    path = f"/datasets/{w.bench}/leaderboard"
    by_size = _rows(_get(server, path, sort="params").text)
    assert [m for _, m in by_size] == [w.gamma, w.alpha, w.beta]
    assert [r for r, _ in by_size] == [2, 1, 3]  # rows keep their rank whatever the order
    assert [m for _, m in _rows(_get(server, path, sort="-params").text)] == [w.beta, w.alpha, w.gamma]
    assert [m for _, m in _rows(_get(server, path, sort="model").text)] == sorted([w.alpha, w.beta, w.gamma],
                                                                                  key=str.lower)
    assert [m for _, m in _rows(_get(server, path, sort="author").text)][-1] == w.gamma  # boardb after boarda
    assert [m for _, m in _rows(_get(server, path, sort="-rank").text)] == [w.beta, w.gamma, w.alpha]
    html = _get(server, path, sort="params").text
    assert re.search(r'href="[^"]*sort=-params[^"]*" data-sort="params"', unescape(html))  # click again: reverse
    assert _rows(_get(server, path, search="gam").text) == [(2, w.gamma)]
    assert _rows(_get(server, path, license="apache-2.0").text) == [(3, w.beta)]
    assert _rows(_get(server, path, models="base").text) == [(1, w.alpha), (2, w.gamma)]
    verified = _get(server, path, verified="1").text
    assert _rows(verified) == [] and 'id="board-empty"' in verified
    assert _rows(_get(server, path, p="2").text) == []
    first, second = _get(server, path, per_page="2").text, _get(server, path, per_page="2", p="2").text
    assert _rows(first) == [(1, w.alpha), (2, w.gamma)] and _rows(second) == [(3, w.beta)]
    assert 'id="next-page"' in first and "Page 2 of 2" in second and 'id="prev-page"' in second
    # sorted here, then paged: boardb's gamma, then boarda's alpha and beta in rank order (ties keep it)
    assert _rows(_get(server, path, per_page="2", sort="-author").text) == [(2, w.gamma), (1, w.alpha)]
    assert _rows(_get(server, path, per_page="2", p="2", sort="-author").text) == [(3, w.beta)]
    assert _get(server, path, per_page="0").status_code == 400
    assert _get(server, path, p="zero").status_code == 400
    assert _get(server, path, sort="nonsense").status_code == 400


def test_private_models_and_benchmarks_are_seen_only_by_their_readers(server: LiveServer, world: World) -> None:
    """Bob sees his private model ranked first; alice and visitors do not. The private benchmark's board is a 404
    to bob and to visitors, and alice's own."""
    w = world
    bob, _ = web_session(server, w.bob.name, PASSWORD)
    alice, _ = web_session(server, w.alice.name, PASSWORD)
    assert _rows(_get(server, f"/datasets/{w.bench}/leaderboard", bob).text) == [
        (1, w.hidden), (2, w.alpha), (3, w.gamma), (4, w.beta)]
    assert w.hidden not in _get(server, f"/datasets/{w.bench}/leaderboard", alice).text
    assert _get(server, f"/datasets/{w.secret_bench}/leaderboard").status_code == 404
    assert _get(server, f"/datasets/{w.secret_bench}/leaderboard", bob).status_code == 404
    own = _get(server, f"/datasets/{w.secret_bench}/leaderboard", alice)
    assert own.status_code == 200 and _rows(own.text) == [(1, w.alpha)]
    assert w.secret_bench not in _get(server, "/leaderboards", bob).text
    assert w.secret_bench in _get(server, "/leaderboards", alice).text


def test_an_invalid_eval_yaml_shows_its_reasons_and_a_plain_dataset_has_no_board(server: LiveServer,
                                                                                   world: World) -> None:
    """A broken ``eval.yaml``: the page answers (200) with the reasons instead of a board; the dataset's header
    still has the tab. A dataset without ``eval.yaml``: 404 and no tab; an unknown dataset: 404."""
    w = world
    page = _get(server, f"/datasets/{w.broken}/leaderboard")
    assert page.status_code == 200, page.text[:1000]
    box = page.text[page.text.index('id="benchmark-invalid"'):]
    assert "nonsense" in box or "evaluation_framework" in box, box[:1000]
    assert _rows(page.text) == [] and 'id="scatter"' not in page.text
    assert 'id="leaderboard-tab"' in _get(server, f"/datasets/{w.broken}").text
    plain = _get(server, f"/datasets/{w.plain}/leaderboard")
    assert plain.status_code == 404 and "not a benchmark" in plain.text
    assert 'id="leaderboard-tab"' not in _get(server, f"/datasets/{w.plain}").text
    assert _get(server, f"/datasets/{w.alice.name}/no-such-data/leaderboard").status_code == 404


def test_the_aggregate_board_ranks_by_borda_count(server: LiveServer, world: World) -> None:
    """``/leaderboards`` lists the benchmarks (name, framework, how many models); the aggregate over intent
    (↑: alpha 0.9, gamma 0.8, beta 0.7) and errors (↓: beta 0.1, alpha 0.2, gamma 0.3), by hand: ranks per task
    alpha 1,2 · gamma 2,3 · beta 3,1; Borda points (models - rank): alpha 2+1=3, beta 0+2=2, gamma 1+0=1.
    The checkboxes' repeated ``benchmarks`` params are folded into one list (303) so sort links keep them."""
    w = world
    listing = _get(server, "/leaderboards")
    assert listing.status_code == 200
    row = listing.text[listing.text.index(f'data-benchmark="{w.bench}"'):].split("</tr>")[0]
    assert "Intent &lt;accuracy&gt;" in row and "hubstead" in row and '<td class="num">3</td>' in row
    assert "invalid eval.yaml" in listing.text[listing.text.index(f'data-benchmark="{w.broken}"'):].split("</tr>")[0]
    folded = httpx.get(f"{server.url}/leaderboards", params=[("benchmarks", w.bench), ("benchmarks", w.errors),
                                                              ("method", "borda")])
    assert folded.status_code == 303 and "benchmarks=" in folded.headers["location"]
    board = httpx.get(server.url + folded.headers["location"], timeout=60)
    assert board.status_code == 200
    assert _rows(board.text) == [(1, w.alpha), (2, w.beta), (3, w.gamma)]
    alpha_row = board.text[board.text.index(f'data-model="{w.alpha}"'):].split("</tr>")[0]
    assert re.search(r">3<", alpha_row) and "#1" in alpha_row and "#2" in alpha_row  # points, per-benchmark ranks
    assert 'id="scatter"' in board.text
    by_errors = _rows(_get(server, "/leaderboards", benchmarks=f"{w.bench},{w.errors}",
                           sort=f"col:{w.errors}").text)
    assert [m for _, m in by_errors] == [w.beta, w.alpha, w.gamma]  # a benchmark's column, best (lowest) first
    assert _get(server, "/leaderboards", benchmarks=w.broken).status_code == 409


def test_the_comparison_puts_chosen_models_side_by_side(server: LiveServer, world: World) -> None:
    """Alpha and beta on both benchmarks: a row per task, the best of each row marked (alpha on accuracy, beta
    on error rate, lower being better), sizes, licenses and base models; the board's checkbox form sends
    ``models`` repeated, which works too; a private model is a 404 to others."""
    w = world
    page = _get(server, "/leaderboards/compare", models=f"{w.alpha},{w.beta}", benchmarks=f"{w.bench},{w.errors}")
    assert page.status_code == 200, page.text[:2000]
    rows = dict(re.findall(r'data-benchmark="([^"]+)" data-task="[^"]+">(.*?)</tr>', page.text, re.S))
    assert set(rows) == {w.bench, w.errors}
    best = {bid: [v.strip() for v in re.findall(r"<td class=\"num best\">([^<]+)", html)] for bid, html in rows.items()}
    assert best == {w.bench: ["0.9"], w.errors: ["0.1"]}
    for fact in ("124M", "1.1B", "apache-2.0", f'href="/{w.alpha}"'):
        assert fact in page.text
    repeated = httpx.get(f"{server.url}/leaderboards/compare", params=[("models", w.alpha), ("models", w.gamma),
                                                                       ("benchmarks", w.bench)])
    assert repeated.status_code == 200 and w.gamma in repeated.text
    assert _get(server, "/leaderboards/compare", models=w.hidden).status_code == 404
    assert _get(server, "/leaderboards/compare").status_code == 400


def test_verified_and_stale_badges_the_verified_filter_and_sort(server: LiveServer, world: World) -> None:
    """Entries the hub signed show "verified" linked to their job; the one whose model changed since also
    "stale"; alpha's own entry stays "self-reported". "verified only" keeps the signed ones (ranked among
    themselves), and sorting by the Verified column puts them first."""
    w = world
    path = f"/datasets/{w.vbench}/leaderboard"
    html = _get(server, path).text
    assert _rows(html) == [(1, w.epsilon), (2, w.alpha), (3, w.delta)]

    def row(model: str, text: str) -> str:
        return text[text.index(f'data-model="{model}"'):].split("</tr>")[0]

    assert 'class="vbadge verified"' in row(w.delta, html) and "stale" not in row(w.delta, html)
    assert f'href="{server.url}/jobs/{w.alice.name}/job42"' in row(w.delta, html)
    assert 'class="vbadge stale"' in row(w.epsilon, html)
    assert "self-reported" in row(w.alpha, html) and "vbadge verified" not in row(w.alpha, html)
    assert _rows(_get(server, path, verified="1").text) == [(1, w.epsilon), (2, w.delta)]
    assert [m for _, m in _rows(_get(server, path, sort="verified").text)] == [w.delta, w.epsilon, w.alpha]


def test_a_benchmark_of_several_tasks_ranks_by_its_aggregate_with_a_column_per_task(server: LiveServer,
                                                                                   world: World) -> None:
    """Suite (mean of t1 and t2): gamma (0.7, 0.9 → 0.8) before alpha (0.8, 0.6 → 0.7); beta has t1 only, so it
    is not on the aggregate board. Each task's column shows the value and its rank there, the best marked; a
    task's link ranks that task alone (beta first on t1); sorting by a task's column orders by it."""
    w = world
    path = f"/datasets/{w.suite}/leaderboard"
    html = _get(server, path).text
    assert _rows(html) == [(1, w.gamma), (2, w.alpha)]
    assert 'data-sort="col:t1"' in html and 'data-sort="col:t2"' in html
    alpha_row = html[html.index(f'data-model="{w.alpha}"'):].split("</tr>")[0]
    assert re.search(r'<td class="num col best">0.8 <span class="muted small">#1</span>', alpha_row), alpha_row
    assert re.search(r'<td class="num col">0.6 <span class="muted small">#2</span>', alpha_row), alpha_row
    assert "<strong>0.7</strong>" in alpha_row
    assert _rows(_get(server, path, task="t1").text) == [(1, w.beta), (2, w.alpha), (3, w.gamma)]
    assert [m for _, m in _rows(_get(server, path, sort="col:t1").text)] == [w.alpha, w.gamma]
    assert _get(server, path, task="nope").status_code == 400

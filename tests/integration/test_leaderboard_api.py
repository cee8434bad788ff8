"""Leaderboards through the real client and HTTP: ``get_dataset_leaderboard``, the aggregate board, the list of
benchmarks. Results are ``.eval_results`` files pushed to tiny model repos by different users (one private, one of
an org, one fine-tuned from another), indexed by the hub on push; the expected ranks are worked out by hand."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from support import Account, LiveServer

BENCH_YAML = """name: Intent accuracy
evaluation_framework: hubstead
tasks:
  - id: acc
    split: test
    metric: accuracy
    baseline: 0.5
    task_type: text-classification
    text_column: text
    label_column: label
"""
SUITE_YAML = """name: Two-task suite
evaluation_framework: hubstead
aggregate: mean
tasks:
  - id: t1
    split: test
    metric: accuracy
    baseline: 0.25
    task_type: text-classification
    text_column: text
    label_column: label
  - id: t2
    split: test
    metric: error_rate
    higher_is_better: false
    baseline: 0.9
    task_type: text-classification
    text_column: text
    label_column: label
"""
BROKEN_YAML = "name: Broken\nevaluation_framework: nonsense\ntasks: []\n"


@dataclass
class World:
    alice: Account
    bob: Account
    carol: Account
    org: str
    bench: str
    suite: str
    secret: str
    plain: str
    broken: str
    m_a: str
    m_b: str
    m_c: str
    m_ft: str
    m_priv: str


def _results(entries: list[tuple[str, str, object]]) -> bytes:
    lines = []
    for dataset, task, value in entries:
        lines += [f"- dataset:\n    id: {dataset}\n    task_id: {task}\n  value: {value}\n  date: '2026-12-01'"]
    return ("\n".join(lines) + "\n").encode()


def _model(api: HfApi, repo_id: str, files: dict[str, bytes], *, private: bool = False) -> None:
    api.create_repo(repo_id, private=private)
    api.create_commit(repo_id, operations=[CommitOperationAdd(path, data) for path, data in files.items()],
                      commit_message="results")


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    alice, bob, carol = server.account("lba"), server.account("lbb"), server.account("lbc")
    org = server.unique("lborg")
    server.cli("orgs", "create", org, "--owner", bob.name)
    as_alice = HfApi(endpoint=server.url, token=alice.write_token)
    as_bob = HfApi(endpoint=server.url, token=bob.write_token)
    as_carol = HfApi(endpoint=server.url, token=carol.write_token)
    w = World(alice, bob, carol, org, bench=f"{alice.name}/bench", suite=f"{alice.name}/suite",
              secret=f"{alice.name}/secret-bench", plain=f"{alice.name}/plain", broken=f"{alice.name}/broken",
              m_a=f"{alice.name}/m-a", m_b=f"{bob.name}/m-b", m_c=f"{org}/m-c", m_ft=f"{alice.name}/m-ft",
              m_priv=f"{carol.name}/m-priv")
    for repo_id, text, private in ((w.bench, BENCH_YAML, False), (w.suite, SUITE_YAML, False),
                                   (w.secret, BENCH_YAML, True), (w.broken, BROKEN_YAML, False),
                                   (w.plain, None, False)):
        as_alice.create_repo(repo_id, repo_type="dataset", private=private)
        if text is not None:
            as_alice.upload_file(path_or_fileobj=text.encode(), path_in_repo="eval.yaml", repo_id=repo_id,
                                 repo_type="dataset")
    _model(as_alice, w.m_a, {".eval_results/bench.yaml": _results([(w.bench, "acc", 0.9), (w.secret, "acc", 0.7)]),
                             ".eval_results/suite.yaml": _results([(w.suite, "t1", 0.5), (w.suite, "t2", 0.7)])})
    _model(as_bob, w.m_b, {
        ".eval_results/bench.yaml": _results([(w.bench, "acc", 0.8), (w.suite, "t1", 0.6), (w.suite, "t2", 0.6)]),
        # hand-edited nonsense: a value that is not a number, a task the benchmark does not have
        ".eval_results/edited.yaml": _results([(w.bench, "acc", "'very high'"), (w.bench, "nope", 0.99)]),
    })
    _model(as_bob, w.m_c, {".eval_results/r.yaml": _results([(w.bench, "acc", 0.8), (w.suite, "t1", 0.4)])})
    _model(as_alice, w.m_ft, {"README.md": f"---\nbase_model: {w.m_a}\n---\n# fine-tuned\n".encode(),
                              ".eval_results/r.yaml": _results([(w.bench, "acc", 0.95)])})
    _model(as_carol, w.m_priv, {".eval_results/r.yaml": _results([(w.bench, "acc", 0.99)])}, private=True)
    return w


def _board(api: HfApi, repo_id: str, **kwargs: object) -> list[tuple[int, str, float]]:
    return [(e.rank, e.model_id, e.value) for e in api.get_dataset_leaderboard(repo_id, **kwargs)]  # type: ignore[arg-type]


def test_leaderboard_ranks_values_and_authors(server: LiveServer, world: World) -> None:
    """The default board (base models only, as the Hub) ranks by value with tied ranks shared; authors are the
    model's user or org; the private model and the fine-tuned one are not on it; entries carry file and date."""
    api = HfApi(endpoint=server.url, token=False)
    entries = api.get_dataset_leaderboard(world.bench)
    assert [(e.rank, e.model_id, e.value) for e in entries] == [
        (1, world.m_a, 0.9), (2, world.m_b, 0.8), (2, world.m_c, 0.8)]
    by_id = {e.model_id: e for e in entries}
    assert by_id[world.m_a].author.username == world.alice.name  # type: ignore[union-attr]
    assert type(by_id[world.m_c].author).__name__ == "Organization"
    assert by_id[world.m_c].author.name == world.org  # type: ignore[union-attr]
    assert by_id[world.m_a].filename == ".eval_results/bench.yaml"
    assert by_id[world.m_a].verified is False  # written by a user: self-reported


def test_base_model_filter_and_private_models(server: LiveServer, world: World) -> None:
    """base_model_only=False adds the fine-tuned model; a private model's result is shown to its owner only."""
    anonymous = HfApi(endpoint=server.url, token=False)
    assert _board(anonymous, world.bench, base_model_only=False) == [
        (1, world.m_ft, 0.95), (2, world.m_a, 0.9), (3, world.m_b, 0.8), (3, world.m_c, 0.8)]
    stranger = HfApi(endpoint=server.url, token=world.bob.read_token)
    assert world.m_priv not in [model for _, model, _ in _board(stranger, world.bench)]
    owner = HfApi(endpoint=server.url, token=world.carol.read_token)
    assert _board(owner, world.bench) == [
        (1, world.m_priv, 0.99), (2, world.m_a, 0.9), (3, world.m_b, 0.8), (3, world.m_c, 0.8)]


def test_private_benchmark_is_a_404_to_others(server: LiveServer, world: World) -> None:
    """A private benchmark's board is the repo's not-found to strangers and anonymous callers, a board to its owner."""
    for token in (False, world.bob.read_token):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=server.url, token=token).get_dataset_leaderboard(world.secret)
    owner = HfApi(endpoint=server.url, token=world.alice.read_token)
    assert _board(owner, world.secret) == [(1, world.m_a, 0.7)]


def test_not_a_benchmark_and_an_invalid_eval_yaml(server: LiveServer, world: World) -> None:
    """A dataset without eval.yaml is a 404 saying it is not a benchmark; an invalid eval.yaml a 409 with its
    reasons, in the Hub's error shape."""
    api = HfApi(endpoint=server.url, token=False)
    with pytest.raises(HfHubHTTPError) as plain:
        api.get_dataset_leaderboard(world.plain)
    assert plain.value.response.status_code == 404
    assert "not a benchmark" in plain.value.response.json()["error"]
    answer = httpx.get(f"{server.url}/api/datasets/{world.broken}/leaderboard", timeout=30)
    assert answer.status_code == 409
    assert "evaluation_framework must be one of" in answer.json()["error"]
    assert "evaluation_framework" in answer.headers["x-error-message"]


def test_invalid_entries_are_listed_not_ranked(server: LiveServer, world: World) -> None:
    """Hand-edited nonsense in bob's results (a non-number, an unknown task) is left out of the ranking with its
    reason, and the board still answers for everyone."""
    answer = httpx.get(f"{server.url}/api/leaderboards", params={"benchmarks": world.bench, "method": "mean"},
                       timeout=30)
    assert answer.status_code == 200, answer.text
    board = answer.json()
    invalid = {(item["modelId"], item["taskId"]): item["reason"] for item in board["invalid"]}
    assert set(invalid) == {(world.m_b, "acc"), (world.m_b, "nope")}
    assert "not a task of" in invalid[(world.m_b, "nope")]
    assert [(row["rank"], row["modelId"]) for row in board["rows"]] == [
        (1, world.m_ft), (2, world.m_a), (3, world.m_b), (3, world.m_c)]


def test_one_task_of_a_suite_ranks_by_its_direction(server: LiveServer, world: World) -> None:
    """``task=t2`` (an error rate, lower is better) ranks bob's 0.6 above alice's 0.7."""
    answer = httpx.get(f"{server.url}/api/datasets/{world.suite}/leaderboard", params={"task": "t2"}, timeout=30)
    assert [(e["rank"], e["modelId"], e["value"]) for e in answer.json()] == [(1, world.m_b, 0.6), (2, world.m_a, 0.7)]
    bad = httpx.get(f"{server.url}/api/datasets/{world.suite}/leaderboard", params={"task": "t9"}, timeout=30)
    assert bad.status_code == 400 and "no task 't9'" in bad.json()["error"]


def test_aggregate_boards_match_the_hand_computed_borda_and_normalized_mean(server: LiveServer,
                                                                          world: World) -> None:
    """Borda over bench + suite (3 tasks, 4 models) and the normalised mean, worked out by hand.

    Borda, n = 4. acc: m-ft .95, m-a .9, m-b .8, m-c .8 -> ranks 1, 2, 3.5, 3.5 -> points 3, 2, .5, .5.
    t1: m-b .6, m-a .5, m-c .4 -> points 3, 2, 1. t2 (lower better): m-b .6, m-a .7 -> points 3, 2.
    Sums: m-b 6.5, m-a 6, m-ft 3, m-c 1.5.
    Normalised: acc (baseline .5): m-a 80, m-b 60. t1 (.25): m-a .25/.75 = 33.33, m-b .35/.75 = 46.67;
    t2 mirrored (1 - x, baseline .1): m-a .2/.9 = 22.22, m-b .3/.9 = 33.33; suite m-a 27.78, m-b 40.
    Means: m-a (80 + 27.78) / 2 = 53.89, m-b (60 + 40) / 2 = 50; m-c and m-ft lack a benchmark: left out."""
    params = {"benchmarks": f"{world.bench},{world.suite}", "method": "borda"}
    board = httpx.get(f"{server.url}/api/leaderboards", params=params, timeout=30).json()
    assert [(r["rank"], r["modelId"], r["value"]) for r in board["rows"]] == [
        (1, world.m_b, 6.5), (2, world.m_a, 6.0), (3, world.m_ft, 3.0), (4, world.m_c, 1.5)]
    assert [c["id"] for c in board["columns"]] == [world.bench, world.suite]
    scores = {r["modelId"]: r["scores"] for r in board["rows"]}
    assert scores[world.m_a] == {world.bench: 0.9, world.suite: pytest.approx(0.6)}
    assert scores[world.m_c] == {world.bench: 0.8}
    board = httpx.get(f"{server.url}/api/leaderboards", params={**params, "method": "normalized-mean"},
                      timeout=30).json()
    assert [(r["rank"], r["modelId"]) for r in board["rows"]] == [(1, world.m_a), (2, world.m_b)]
    values = {r["modelId"]: r["value"] for r in board["rows"]}
    assert values[world.m_a] == pytest.approx((80 + (100 / 3 + 200 / 9) / 2) / 2)
    assert values[world.m_b] == pytest.approx(50.0)
    refused = httpx.get(f"{server.url}/api/leaderboards", params={"benchmarks": world.secret}, timeout=30)
    assert refused.status_code == 404


def test_benchmarks_list_what_the_caller_may_read(server: LiveServer, world: World) -> None:
    """``/api/benchmarks`` lists the readable benchmarks with their number of ranked models (invalid ones too)."""
    listed = {b["id"]: b for b in httpx.get(f"{server.url}/api/benchmarks", timeout=30).json()}
    assert listed[world.bench]["models"] == 4  # m-a, m-b, m-c, m-ft; not the private m-priv
    assert listed[world.bench]["name"] == "Intent accuracy"
    assert listed[world.broken]["valid"] is False
    assert world.secret not in listed and world.plain not in listed
    mine = httpx.get(f"{server.url}/api/benchmarks", headers={"authorization": f"Bearer {world.alice.read_token}"},
                     timeout=30).json()
    assert world.secret in {b["id"] for b in mine}


def test_model_results_list_ranks_and_invalid_entries(server: LiveServer, world: World) -> None:
    """What a model page lists (``leaderboard.model_results``, read from the live hub's database): each entry with
    its benchmark's name and its rank on that task's board among the models the caller may see, invalid entries
    with their reason and no rank, and no rank on a private benchmark the caller may not read."""
    from hubstead.auth.service import ANONYMOUS
    from hubstead.config import load_settings
    from hubstead.context import Hub
    from hubstead.evals import leaderboard
    from hubstead.repos.service import find_repo

    hub = Hub.from_settings(load_settings(data_dir=server.data_dir, database_url=server.database_url), migrate=False)
    try:
        with hub.db.session() as session:
            m_b, _ = find_repo(session, repo_type="model", repo_id=world.m_b)
            m_a, _ = find_repo(session, repo_type="model", repo_id=world.m_a)
            assert m_b is not None and m_a is not None
            listed = {(r["dataset_id"], r["task_id"], r["value"]): r
                      for r in leaderboard.model_results(session, ANONYMOUS, m_b)}
            bench = listed[(world.bench, "acc", 0.8)]
            assert (bench["rank"], bench["ranked"], bench["benchmark_name"]) == (3, 4, "Intent accuracy")
            assert listed[(world.suite, "t2", 0.6)]["rank"] == 1
            invalid = {r["task_id"]: r for r in listed.values() if r["error"]}  # 'very high', and the unknown task
            assert set(invalid) == {"acc", "nope"} and "not a task of" in invalid["nope"]["error"]
            assert invalid["acc"]["rank"] is None and invalid["nope"]["rank"] is None
            secret = next(r for r in leaderboard.model_results(session, ANONYMOUS, m_a) if r["dataset_id"] == world.secret)
            assert secret["rank"] is None and secret["benchmark_name"] is None
    finally:
        hub.db.engine.dispose()

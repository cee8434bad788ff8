"""The evaluation index through the real client, on SQLite and PostgreSQL: ``.eval_results`` files and a card's
``model-index`` read back by ``model_info(expand=["evalResults"])``; only the hub's own signature on this very entry
in this very repo makes a result verified, and a verified result goes stale when the model's files change (not its
card); nonsense in a results file is an invalid entry with the reason while the push succeeds; a dataset with a
valid ``eval.yaml`` is a benchmark ``list_datasets(benchmark=True)`` finds, an invalid one is not (its row says
why)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from huggingface_hub import EvalResultEntry, HfApi, eval_result_entries_to_yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from hubstead.evals import signing
from support import Account, LiveServer, run_client


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, Engine]]:
    made: dict[str, Engine] = {}
    yield made
    for engine in made.values():
        engine.dispose()


def _rows(server: LiveServer, engines: dict[str, Engine], sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of the server's own database (read only)."""
    url = server.database_url or f"sqlite:///{server.data_dir / 'hubstead.db'}"
    engine = engines.setdefault(url, create_engine(url))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(sql), params)]


def _model(server: LiveServer, prefix: str) -> tuple[Account, HfApi, str]:
    account = server.account(prefix)
    api = HfApi(endpoint=server.url, token=account.write_token)
    repo_id = f"{account.name}/model"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b'{"model_type": "bert", "hidden_size": 8}', path_in_repo="config.json",
                    repo_id=repo_id)
    return account, api, repo_id


def _yaml(entries: list[Any]) -> bytes:
    return yaml.safe_dump(entries, sort_keys=False).encode()


def _eval_results(server: LiveServer, account: Account, repo_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/api/models/{repo_id}", params={"expand": "evalResults"},
                       headers={"Authorization": f"Bearer {account.read_token}"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["evalResults"])


def test_results_file_reads_back_through_the_client(server: LiveServer, engines: dict[str, Engine]) -> None:
    """An ``.eval_results`` file written with the client's own helpers is read back by ``model_info`` as the same
    entries, self-reported; not asked for, ``evalResults`` is not in the answer."""
    account, api, repo_id = _model(server, "evread")
    written = [
        EvalResultEntry(dataset_id="org/bench", task_id="intent", value=0.8125, date="2026-01-02T03:04:05Z",
                        source_url="https://example.org/run", source_name="My run", notes="0-shot"),
        EvalResultEntry(dataset_id="org/bench", task_id="slots", value=41),
    ]
    api.upload_file(path_or_fileobj=_yaml(eval_result_entries_to_yaml(written)),
                    path_in_repo=".eval_results/org__bench.yaml", repo_id=repo_id)
    info = api.model_info(repo_id, expand=["evalResults"])  # type: ignore[list-item]
    assert info.eval_results == [
        written[0], EvalResultEntry(dataset_id="org/bench", task_id="slots", value=41)]
    assert [e["verified"] for e in _eval_results(server, account, repo_id)] == [False, False]
    assert "evalResults" not in httpx.get(f"{server.url}/api/models/{repo_id}").json()
    rows = _rows(server, engines, "SELECT r.dataset_id, r.task_id, r.value, r.verified, r.filename, r.error "
                 "FROM eval_results r JOIN repos p ON p.pk = r.model_repo_pk WHERE p.id_key = :key "
                 "ORDER BY r.position", key=repo_id.lower())
    assert [(r["dataset_id"], r["task_id"], r["value"], bool(r["verified"]), r["filename"], r["error"])
            for r in rows] == [("org/bench", "intent", 0.8125, False, ".eval_results/org__bench.yaml", None),
                               ("org/bench", "slots", 41.0, False, ".eval_results/org__bench.yaml", None)]


def test_model_index_is_indexed_as_self_reported(server: LiveServer, engines: dict[str, Engine], env_for) -> None:  # type: ignore[no-untyped-def]
    """``metadata_update`` of a card's ``model-index`` (the client in its own process, as users run it): its
    results are indexed, self-reported, from README.md; a (dataset, task) a results file already gives is not
    counted twice."""
    account, api, repo_id = _model(server, "evcard")
    meta = {"model-index": [{"name": "m", "results": [
        {"task": {"type": "text-classification"}, "dataset": {"type": "org/bench", "name": "B", "config": "intent"},
         "metrics": [{"type": "accuracy", "value": 0.7}]},
        {"task": {"type": "text-classification"}, "dataset": {"type": "org/other", "name": "O"},
         "metrics": [{"type": "f1", "value": 0.25}]},
    ]}]}
    run_client(f"""
        import json
        from huggingface_hub import metadata_update
        metadata_update("{repo_id}", json.loads({json.dumps(json.dumps(meta))}))
        """, env_for(account.write_token))
    entries = _eval_results(server, account, repo_id)
    assert [(e["dataset"], e["value"], e["verified"], e["filename"]) for e in entries] == [
        ({"id": "org/bench", "task_id": "intent"}, 0.7, False, "README.md"),
        ({"id": "org/other", "task_id": "default"}, 0.25, False, "README.md"),
    ]
    api.upload_file(path_or_fileobj=_yaml([{"dataset": {"id": "org/bench", "task_id": "intent"}, "value": 0.75}]),
                    path_in_repo=".eval_results/b.yaml", repo_id=repo_id)
    rows = _rows(server, engines, "SELECT r.dataset_id, r.task_id, r.value, r.filename FROM eval_results r "
                 "JOIN repos p ON p.pk = r.model_repo_pk WHERE p.id_key = :key ORDER BY r.id", key=repo_id.lower())
    assert [(r["dataset_id"], r["task_id"], r["value"], r["filename"]) for r in rows] == [
        ("org/bench", "intent", 0.75, ".eval_results/b.yaml"), ("org/other", "default", 0.25, "README.md")]


def test_only_the_hubs_signature_on_this_entry_verifies_and_it_goes_stale(
    server: LiveServer, engines: dict[str, Engine]
) -> None:
    """A token the hub signed for this repo, dataset, task and value verifies (its commit and job are indexed);
    the same token on a changed value, one signed for another repo, one signed with another key and garbage do
    not. The verified result stays fresh through commits to README.md and ``.eval_results/`` only, and goes stale
    when config.json changes."""
    account, api, repo_id = _model(server, "evsign")
    secret = (server.data_dir / "secret.key").read_text().strip()
    info = api.model_info(repo_id)
    pk, sha = int(httpx.get(f"{server.url}/api/models/{repo_id}").json()["_id"], 16), str(info.sha)

    def token(*, repo_pk: int = pk, value: float = 0.5, key: str = secret) -> str:
        return signing.sign(key, signing.Claims(model_repo_pk=repo_pk, model_id=repo_id, model_sha=sha,
                                                dataset_id="org/bench", task_id="t", value=value, job_id="job42",
                                                date="2026-12-05T00:00:00Z"))  # fmt: skip

    def entry(value: float, verify_token: str) -> dict[str, Any]:
        return {"dataset": {"id": "org/bench", "task_id": "t"}, "value": value, "verifyToken": verify_token,
                "source": {"url": f"{server.url}/jobs/{account.name}/job42", "name": "Hubstead evaluation"}}

    api.upload_file(path_or_fileobj=_yaml([
        entry(0.5, token()),
        entry(0.9, token()),  # the value edited by hand
        entry(0.5, token(repo_pk=pk + 100000)),  # copied from another repo
        entry(0.5, token(key="another hub's key")),
        entry(0.5, "hs1.garbage.token"),
    ]), path_in_repo=".eval_results/org__bench.yaml", repo_id=repo_id)
    assert [(e["verified"], e["stale"]) for e in _eval_results(server, account, repo_id)] == [
        (True, False), (False, False), (False, False), (False, False), (False, False)]
    sql = ("SELECT r.verified, r.stale, r.model_sha, r.job_id FROM eval_results r JOIN repos p "
           "ON p.pk = r.model_repo_pk WHERE p.id_key = :key ORDER BY r.position")
    first = _rows(server, engines, sql, key=repo_id.lower())[0]
    assert (bool(first["verified"]), bool(first["stale"]), first["model_sha"], first["job_id"]) == (
        True, False, sha, "job42")
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n# card\n", path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=_yaml([]), path_in_repo=".eval_results/empty.yaml", repo_id=repo_id)
    assert bool(_rows(server, engines, sql, key=repo_id.lower())[0]["stale"]) is False
    api.upload_file(path_or_fileobj=b'{"model_type": "bert", "hidden_size": 16}', path_in_repo="config.json",
                    repo_id=repo_id)
    assert [(e["verified"], e["stale"]) for e in _eval_results(server, account, repo_id)][0] == (True, True)
    assert bool(_rows(server, engines, sql, key=repo_id.lower())[0]["stale"]) is True


def test_nonsense_is_an_invalid_entry_and_the_push_succeeds(server: LiveServer, engines: dict[str, Engine]) -> None:
    """Hand-edited nonsense (a string value, NaN, a YAML alias bomb, a 10 MB file): every push succeeds, each bad
    entry or file is indexed with its reason (``{filename, error}`` in ``evalResults``, which the client skips), and
    the good entry next to them is read as usual."""
    account, api, repo_id = _model(server, "evbad")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9))
    api.upload_file(path_or_fileobj=b"- {dataset: {id: org/bench, task_id: t}, value: 'high'}\n"
                                    b"- {dataset: {id: org/bench, task_id: t}, value: .nan}\n"
                                    b"- {dataset: {id: org/bench, task_id: u}, value: 0.5}\n",
                    path_in_repo=".eval_results/a.yaml", repo_id=repo_id)
    api.upload_file(path_or_fileobj=bomb.encode(), path_in_repo=".eval_results/bomb.yaml", repo_id=repo_id)
    api.upload_file(path_or_fileobj=io.BytesIO(b"- x\n" * (10 * 1024 * 1024 // 4)),
                    path_in_repo=".eval_results/huge.yaml", repo_id=repo_id)
    entries = _eval_results(server, account, repo_id)
    assert [(e["filename"], e.get("error")) for e in entries] == [
        (".eval_results/a.yaml", "value must be a number, not a string"),
        (".eval_results/a.yaml", "value is not a number (NaN)"),
        (".eval_results/a.yaml", None),
        (".eval_results/bomb.yaml", entries[3].get("error")),
        (".eval_results/huge.yaml", "the file is larger than 64 KiB"),
    ]
    assert "aliases" in entries[3]["error"]
    info = api.model_info(repo_id, expand=["evalResults"])  # type: ignore[list-item]
    assert info.eval_results == [EvalResultEntry(dataset_id="org/bench", task_id="u", value=0.5)]
    rows = _rows(server, engines, "SELECT r.value, r.error FROM eval_results r JOIN repos p "
                 "ON p.pk = r.model_repo_pk WHERE p.id_key = :key ORDER BY r.id", key=repo_id.lower())
    assert [r["value"] for r in rows] == [None, None, 0.5, None, None]
    assert json.dumps(entries)  # the answer is plain JSON (no NaN)


VALID_EVAL_YAML = """\
name: Tickets
evaluation_framework: hubstead
tasks:
  - id: intent
    split: test
    metric: accuracy
    task_type: text-classification
    text_column: text
    label_column: label
"""


def test_benchmarks_are_found_by_list_datasets(server: LiveServer, engines: dict[str, Engine]) -> None:
    """A dataset with a valid ``eval.yaml`` at the root of main is found by ``list_datasets(benchmark=True)`` (and
    keeps being found after other commits, without the tag showing in its ``tags``); an invalid one is not, and its
    row holds the reasons; deleting ``eval.yaml`` removes both the listing and the row."""
    account = server.account("evbench")
    api = HfApi(endpoint=server.url, token=account.write_token)
    good, bad, plain = (f"{account.name}/{name}" for name in ("good", "bad", "plain"))
    for repo_id in (good, bad, plain):
        api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=VALID_EVAL_YAML.encode(), path_in_repo="eval.yaml", repo_id=good,
                    repo_type="dataset")
    api.upload_file(path_or_fileobj=b"name: Broken\nevaluation_framework: nope\ntasks: []\n",
                    path_in_repo="eval.yaml", repo_id=bad, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data.csv", repo_id=plain, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id=good,
                    repo_type="dataset")

    def listed() -> list[str]:
        return [d.id for d in api.list_datasets(benchmark=True, author=account.name)]

    assert listed() == [good]
    assert "benchmark:official" not in (api.dataset_info(good).tags or [])
    sql = ("SELECT b.name, b.framework, b.spec, b.error FROM eval_benchmarks b JOIN repos p ON p.pk = b.repo_pk "
           "WHERE p.id_key = :key AND p.repo_type = 'dataset'")
    (row,) = _rows(server, engines, sql, key=good.lower())
    assert (row["name"], row["framework"], row["error"]) == ("Tickets", "hubstead", None)
    (broken,) = _rows(server, engines, sql, key=bad.lower())
    assert broken["spec"] is None and "evaluation_framework" in broken["error"]
    assert _rows(server, engines, sql, key=plain.lower()) == []
    api.delete_file("eval.yaml", repo_id=good, repo_type="dataset")
    assert listed() == []
    assert _rows(server, engines, sql, key=good.lower()) == []

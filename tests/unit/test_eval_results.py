"""Reading ``.eval_results/*.yaml`` files and a card's ``model-index`` (``hubstead.evals.results``): valid entries
come out in the Hub's shape, anything a user can write wrong is an entry with the reason, and nothing raises."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pygit2
import yaml
from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml, parse_eval_result_entries
from sqlalchemy import select

from hubstead.auth import service as auth
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.evals import signing
from hubstead.evals.index import backfill_once, read_entries
from hubstead.evals.models import EvalBenchmark, EvalResult
from hubstead.evals.results import (
    MAX_ENTRIES,
    entries_from_model_index,
    is_results_path,
    parse_results_file,
)
from hubstead.repos.commits import commit_files
from hubstead.repos.git import Author, GitRepo
from hubstead.repos.models import RepoTag
from hubstead.repos.service import create_repo, open_git
from hubstead.wiring import connect_domains

NAME = ".eval_results/bench.yaml"
EVAL_YAML = (b"name: Tickets\nevaluation_framework: hubstead\ntasks:\n  - id: t\n    split: test\n    metric: accuracy\n"
             b"    task_type: text-classification\n    text_column: text\n    label_column: label\n")


def test_the_clients_own_file_reads_back_as_written() -> None:
    """What ``huggingface_hub`` writes (every optional field) is read back into the same entries."""
    written = [
        EvalResultEntry(dataset_id="org/bench", task_id="intent", value=0.75),
        EvalResultEntry(dataset_id="solo", task_id="default", value=3, dataset_revision="abc123",
                        verify_token="hs1.x.y", date="2025-01-15T10:30:00Z", source_url="https://hub/jobs/a/b",
                        source_name="Hubstead evaluation", source_user="ann", source_org="org", notes="0-shot"),
    ]
    entries = parse_results_file(NAME, yaml.safe_dump(eval_result_entries_to_yaml(written)))
    assert [e.error for e in entries] == [None, None]
    assert [(e.dataset_id, e.task_id, e.value) for e in entries] == [("org/bench", "intent", 0.75),
                                                                    ("solo", "default", 3.0)]
    assert entries[1].source == {"url": "https://hub/jobs/a/b", "name": "Hubstead evaluation", "user": "ann",
                                 "org": "org"}
    assert parse_eval_result_entries([e.entry for e in entries if e.entry]) == [
        EvalResultEntry(dataset_id="org/bench", task_id="intent", value=0.75.__float__()),
        EvalResultEntry(dataset_id="solo", task_id="default", value=3.0, dataset_revision="abc123",
                        verify_token="hs1.x.y", date="2025-01-15T10:30:00Z", source_url="https://hub/jobs/a/b",
                        source_name="Hubstead evaluation", source_user="ann", source_org="org", notes="0-shot"),
    ]


def test_an_unquoted_timestamp_is_kept_as_iso_text() -> None:
    """YAML reads ``date: 2025-01-15T10:30:00Z`` as a datetime; the entry keeps ISO-8601 text (JSON-safe)."""
    text = "- dataset: {id: a/b, task_id: t}\n  value: 1\n  date: 2025-01-15T10:30:00Z\n"
    (entry,) = parse_results_file(NAME, text)
    assert entry.error is None and entry.date == "2025-01-15T10:30:00Z"


def test_nonsense_values_are_invalid_entries_with_the_reason() -> None:
    """Strings, booleans, NaN, infinities, huge numbers, a missing value, bad ids, a bad date or source: each
    entry is kept with its reason (no value), the good entry beside them is untouched."""
    text = "\n".join([
        "- {dataset: {id: a/b, task_id: t}, value: 'high'}",
        "- {dataset: {id: a/b, task_id: t}, value: true}",
        "- {dataset: {id: a/b, task_id: t}, value: .nan}",
        "- {dataset: {id: a/b, task_id: t}, value: .inf}",
        "- {dataset: {id: a/b, task_id: t}, value: 1.0e+300}",
        "- {dataset: {id: a/b, task_id: t}}",
        "- {dataset: {id: '../etc', task_id: t}, value: 1}",
        "- {dataset: {id: a/b, task_id: 5}, value: 1}",
        "- {dataset: {id: a/b, task_id: t}, value: 1, date: yesterday}",
        "- {dataset: {id: a/b, task_id: t}, value: 1, source: {name: x}}",
        "- just text",
        "- {dataset: {id: a/b, task_id: t}, value: 0.5}",
    ])
    entries = parse_results_file(NAME, text)
    reasons = [e.error for e in entries]
    assert reasons[:11] == [
        "value must be a number, not a string",
        "value must be a number, not a boolean",
        "value is not a number (NaN)",
        "value is infinite",
        "value is beyond ±1e+15",
        "value is missing",
        "dataset.id '../etc' is not a repo id",
        "dataset.task_id must be a string, not a number",
        "date 'yesterday' is not ISO-8601",
        "source.url is missing",
        "an entry must be a mapping, not a string",
    ]
    assert all(e.value is None and e.entry is None for e in entries[:11])
    assert reasons[11] is None and entries[11].value == 0.5
    assert [e.position for e in entries] == list(range(12))


def test_a_file_that_cannot_be_read_is_one_invalid_entry() -> None:
    """Broken YAML, a mapping instead of a list, an alias bomb, a file over 64 KiB or over 1,000 entries: one
    entry naming the file and the reason, never an exception."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    many = "".join("- {dataset: {id: a/b, task_id: t}, value: 1}\n" for _ in range(MAX_ENTRIES + 1))
    cases = {
        "- [unclosed": "the file is not valid YAML",
        "dataset: {id: a/b}\nvalue: 1\n": "the file must be a YAML list of entries",
        bomb: "aliases",
        "x" * (64 * 1024 + 1): "larger than 64 KiB",
        many: f"more than {MAX_ENTRIES} entries",
    }
    for text, reason in cases.items():
        entries = parse_results_file(NAME, text)
        assert len(entries) == 1, reason
        assert entries[0].filename == NAME and entries[0].value is None
        assert entries[0].error is not None and reason in entries[0].error, (reason, entries[0].error)
    assert parse_results_file(NAME, b"\xff" * (64 * 1024 + 1))[0].error == "the file is larger than 64 KiB"
    assert parse_results_file(NAME, "") == []


def test_model_index_results_are_self_reported_entries() -> None:
    """Each ``model-index`` result: ``dataset.type`` is the dataset, ``dataset.args.task_id`` (where the hub wrote
    it) or ``dataset.config`` (or "default") the task, the first metric the value; a result without metrics is invalid with the reason; no token is ever read."""
    card = {"model-index": [{"name": "m", "results": [
        {"task": {"type": "text-classification"}, "dataset": {"type": "org/bench", "name": "B", "config": "intent"},
         "metrics": [{"type": "accuracy", "value": 0.9}, {"type": "f1", "value": 0.8}],
         "source": {"url": "https://example.org/paper", "name": "Paper"}},
        {"task": {"type": "x"}, "dataset": {"type": "org/other", "name": "O"}, "metrics": [{"type": "f1", "value": 7}]},
        {"task": {"type": "x"}, "dataset": {"type": "org/other", "name": "O"}, "metrics": []},
        {"task": {"type": "x"}, "dataset": {"type": "org/other"}, "metrics": [{"type": "f1", "value": "n/a"}]},
        {"task": {"type": "x"}, "dataset": {"type": "org/bench", "config": "default", "args": {"task_id": "sentiment"}},
         "metrics": [{"type": "accuracy", "value": 0.5}]},
    ]}]}
    entries = entries_from_model_index(card)
    assert [(e.filename, e.dataset_id, e.task_id, e.value, e.error) for e in entries] == [
        ("README.md", "org/bench", "intent", 0.9, None),
        ("README.md", "org/other", "default", 7.0, None),
        ("README.md", None, None, None, "model-index result has no metrics"),
        ("README.md", "org/other", "default", None, "value must be a number, not a string"),
        ("README.md", "org/bench", "sentiment", 0.5, None),
    ]
    assert entries[0].source == {"url": "https://example.org/paper", "name": "Paper"}
    assert entries_from_model_index({"license": "mit"}) == []
    assert entries_from_model_index(None) == []
    assert entries_from_model_index({"model-index": "nope"})[0].error == "model-index must be a list"


def test_results_paths() -> None:
    """Only YAML files directly in ``.eval_results/`` are results files."""
    assert is_results_path(".eval_results/a.yaml") and is_results_path(".eval_results/a.yml")
    assert not is_results_path(".eval_results/sub/a.yaml")
    assert not is_results_path(".eval_results/a.json")
    assert not is_results_path("eval_results/a.yaml")


def _commit(git: GitRepo, files: dict[str, bytes], parent: pygit2.Oid | None = None) -> pygit2.Commit:
    editor = git.editor(git.commit(parent).tree if parent else None)
    for path, data in files.items():
        editor.put_file(path, git.write_blob(data))
    tree = editor.write(git.repo)
    oid = git.write_commit(tree=tree, parents=[parent] if parent else [], author=Author("t", "t@t"), message="m")
    return git.commit(oid)


def test_a_model_repos_entries_at_a_commit(tmp_path: Path) -> None:
    """``evals.index.read_entries`` on a real git repo: results files in name order, at most 256 KiB of them read
    (the rest named with the reason), files in sub-folders ignored; a signed entry is verified, and stale only once
    a file of the model (here one in a sub-folder) differs from the signed commit, not after a card change."""
    git = GitRepo.init(tmp_path / "repo.git")
    hub = SimpleNamespace(settings=SimpleNamespace(secret_key="k"))
    repo = SimpleNamespace(pk=7, repo_type="model")
    first = _commit(git, {"config.json": b"{}", "sub/tokenizer.json": b"{}"})
    token = signing.sign("k", signing.Claims(model_repo_pk=7, model_id="a/m", model_sha=str(first.id),
                                             dataset_id="a/b", task_id="t", value=0.5, job_id="j", date="d"))
    big = "".join(f"- {{dataset: {{id: a/b, task_id: task-{i:04d}-padding}}, value: {i}}}\n"
                  for i in range(1000)).encode()
    assert 60 * 1024 < len(big) <= 64 * 1024
    files = {f".eval_results/f{n:02d}.yaml": big for n in range(5)}
    files[".eval_results/a.yaml"] = f"- {{dataset: {{id: a/b, task_id: t}}, value: 0.5, verifyToken: '{token}'}}\n".encode()
    files[".eval_results/deeper/x.yaml"] = b"- nonsense"
    head = _commit(git, files, first.id)
    entries = read_entries(hub, git, repo, head, card_data={})  # type: ignore[arg-type]
    assert (entries[0].parsed.filename, entries[0].verified, entries[0].stale) == (".eval_results/a.yaml", True, False)
    read = {e.parsed.filename for e in entries if e.parsed.valid}
    assert len(read) == 1 + 4 and ".eval_results/f04.yaml" not in read
    (skipped,) = [e.parsed for e in entries if not e.parsed.valid]
    assert (skipped.filename, skipped.error) == (
        ".eval_results/f04.yaml", "not read: the results files are over 256 KiB together")
    small = _commit(git, {".eval_results/a.yaml": files[".eval_results/a.yaml"]}, first.id)
    card = _commit(git, {"README.md": b"---\nlicense: mit\n---\n"}, small.id)
    assert read_entries(hub, git, repo, card, card_data={})[0].stale is False  # type: ignore[arg-type]
    changed = _commit(git, {"sub/tokenizer.json": b'{"changed": 1}'}, card.id)
    assert read_entries(hub, git, repo, changed, card_data={})[0].stale is True  # type: ignore[arg-type]


def test_reindex_all_backfills_repos_committed_before_the_index(hub: Hub) -> None:
    """Repos whose commits the follower never saw (a hub upgraded to evaluation) have no index rows until
    ``reindex_all`` (which ``backfill_once`` runs on the first start, then never again); then the benchmark row
    and its tag, and the model's results, are there."""
    connect_domains()  # registered, but this hub is not attached yet: commits are not indexed
    with hub.db.session() as session:
        user = auth.create_user(session, name="ann")
        principal = Principal(user=user, token_role="write", token_name="t")
        bench, _ = create_repo(hub, session, principal, repo_id="ann/bench", repo_type="dataset")
        model, _ = create_repo(hub, session, principal, repo_id="ann/model", repo_type="model")
        for repo, files in ((bench, {"eval.yaml": EVAL_YAML}),
                            (model, {".eval_results/b.yaml": b"- {dataset: {id: ann/bench, task_id: t}, value: 2}"})):
            git = open_git(hub, repo)
            commit_files(hub, session, repo=repo, branch="main", lfs_objects={}, message="m",
                         files=[(path, git.write_blob(data)) for path, data in files.items()],
                         author=Author(name="ann", email="ann@example.com"))
    with hub.db.session() as session:
        assert session.scalars(select(EvalBenchmark)).all() == []
        assert session.scalars(select(EvalResult)).all() == []
    assert backfill_once(hub) == 2  # the first start with evaluation reads them all, and leaves its mark
    assert backfill_once(hub) is None
    with hub.db.session() as session:
        (row,) = session.scalars(select(EvalBenchmark)).all()
        assert (row.name, row.error) == ("Tickets", None)
        assert session.scalar(select(RepoTag.tag).where(RepoTag.repo_pk == bench.pk,
                                                        RepoTag.tag == "benchmark:official")) is not None
        (result,) = session.scalars(select(EvalResult)).all()
        assert (result.model_repo_pk, result.dataset_id, result.value, result.verified) == (model.pk, "ann/bench", 2.0,
                                                                                           False)

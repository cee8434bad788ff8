"""Evaluation runs on a real hub with no server: the checks before a job, ``finish`` on a completed evaluation job's
log (results signed into the model repo by a commit or a pull request, the card's model-index), what is refused
(a job the hub did not queue, tasks not measured), and re-evaluation when an evaluated model's main moves."""

from __future__ import annotations

import json
from typing import Any

import pygit2
import pytest
import yaml
from sqlalchemy import select

from hubstead.auth import service as auth
from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.compute import jobfiles
from hubstead.compute import service as compute
from hubstead.compute.models import ComputeJob
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, HubError, NotFoundError
from hubstead.evals import service, signing, writer
from hubstead.evals.models import EvalResult
from hubstead.evals.spec import EVAL_MARK, LABEL, SPEC_ENV, EvalSpec, eval_line, progress_line
from hubstead.repos.cards import parse_card_yaml, validate_card
from hubstead.repos.commits import Author, commit_files
from hubstead.repos.models import Repo
from hubstead.repos.service import create_repo, open_git
from hubstead.wiring import attach_hub, connect_domains

BERT_CLS = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "num_labels": 2}
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
CARD = "---\nlicense: apache-2.0\ntags:\n- tiny\n---\n# Tiny classifier\n\nKeep this text.\n"


def eval_yaml(reevaluate: bool = False, name: str = "Tickets") -> str:
    return (f"name: {name}\nevaluation_framework: hubstead\nreevaluate: {str(reevaluate).lower()}\ntasks:\n"
            "  - id: intent\n    split: test\n    metric: accuracy\n    task_type: text-classification\n"
            "    text_column: text\n    label_column: label\n"
            "  - id: topic\n    split: test\n    metric: f1\n    task_type: text-classification\n"
            "    text_column: text\n    label_column: topic\n")


def _principal(user: User) -> Principal:
    return Principal(user=user, token_role="write", token_name="test")


def _commit(hub: Hub, repo: Repo, user: User, files: dict[str, bytes]) -> str:
    with hub.db.session() as session:
        row = session.get(Repo, repo.pk)
        assert row is not None
        git = open_git(hub, row)
        return commit_files(hub, session, repo=row, branch="main",
                            files=[(path, git.write_blob(data)) for path, data in files.items()], lfs_objects={},
                            message="test files", author=Author(name=user.name, email=f"{user.name}@example.com"),
                            actor_user_id=user.id)


class World:
    """alice owns a classifier and a benchmark; bob reads both and writes neither."""

    def __init__(self, hub: Hub, *, reevaluate: bool = False, model_config: dict[str, Any] = BERT_CLS) -> None:
        connect_domains()
        attach_hub(hub)
        self.hub = hub
        with hub.db.session() as session:
            self.alice = auth.create_user(session, name="alice")
            self.bob = auth.create_user(session, name="bob")
            self.model, _ = create_repo(hub, session, _principal(self.alice), repo_id="alice/clf", repo_type="model")
            self.bench, _ = create_repo(hub, session, _principal(self.alice), repo_id="alice/tickets",
                                        repo_type="dataset")
            session.expunge_all()
        self.model_sha = _commit(hub, self.model, self.alice, {"config.json": json.dumps(model_config).encode(),
                                                                "README.md": CARD.encode()})
        self.bench_sha = _commit(hub, self.bench, self.alice, {"eval.yaml": eval_yaml(reevaluate).encode()})

    def submit(self, user: User, **form: Any) -> ComputeJob:
        with self.hub.db.session() as session:
            principal = _principal(session.get(User, user.id))  # type: ignore[arg-type]
            job = service.submit_evaluation(self.hub, session, principal,
                                            {"model": "alice/clf", "benchmark": "alice/tickets", **form})
            session.expunge(job)
            return job

    def complete(self, job: ComputeJob, lines: list[str]) -> None:
        """The job ran and printed ``lines``; it is COMPLETED, then its end follower runs."""
        path = jobfiles.log_path(self.hub.settings, job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines))
        with self.hub.db.session() as session:
            row = session.get(ComputeJob, job.id)
            assert row is not None
            row.stage, row.finished_at = "COMPLETED", utcnow()
        service.finish(self.hub, job.id)

    def log(self, job: ComputeJob) -> str:
        return jobfiles.log_path(self.hub.settings, job.id).read_text()

    def head(self, ref: str = "refs/heads/main") -> pygit2.Commit:
        with self.hub.db.session() as session:
            repo = session.get(Repo, self.model.pk)
            assert repo is not None
            git = open_git(self.hub, repo)
            oid = git.branch_head(ref)
            assert oid is not None
            return git.commit(oid)

    def file(self, commit: pygit2.Commit, path: str) -> str:
        obj = commit.tree[path]
        assert isinstance(obj, pygit2.Blob)
        return obj.data.decode()

    def view(self, job: ComputeJob) -> dict[str, Any]:
        with self.hub.db.session() as session:
            row = session.get(ComputeJob, job.id)
            assert row is not None
            return service.run_view(self.hub, row)


SCORES = [progress_line("intent", 20, 20), eval_line("intent", 0.85, {"accuracy": 0.85}, 20),
          eval_line("topic", 0.5, {"f1": 0.5}, 20)]


def test_the_owner_s_evaluation_is_committed_signed_with_its_card(hub: Hub) -> None:
    """A completed run by the model's writer: ONE commit on main holding .eval_results/alice__tickets.yaml (an
    entry per task whose verifyToken checks against this repo, task and value, sourced to the job) and the card's
    model-index with the same scores (the license, tags and body kept, a card the Hub's validator accepts); the log
    and the run view name the commit; the index reads the entries as verified, not stale."""
    world = World(hub)
    job = world.submit(world.alice, limit=20)
    spec = EvalSpec.from_env(job.spec["environment"][SPEC_ENV])
    assert spec.model_revision == world.model_sha and spec.benchmark_revision == world.bench_sha
    assert job.labels == {LABEL: "alice__tickets", service.MODEL_LABEL: "alice__clf"}
    assert job.spec["timeoutSeconds"] == 3600 and job.max_attempts == 1
    before = world.head()
    world.complete(job, ["starting", *SCORES])
    head = world.head()
    assert [str(p) for p in head.parent_ids] == [str(before.id)]
    assert head.author.name == "alice"
    entries = yaml.safe_load(world.file(head, ".eval_results/alice__tickets.yaml"))
    assert [(e["dataset"]["task_id"], e["value"]) for e in entries] == [("intent", 0.85), ("topic", 0.5)]
    for entry in entries:
        assert entry["dataset"] == {"id": "alice/tickets", "task_id": entry["dataset"]["task_id"],
                                    "revision": world.bench_sha}
        assert entry["source"] == {"url": f"{hub.settings.external_url}/jobs/alice/{job.id}",
                                   "name": "Hubstead evaluation", "user": "alice"}
        assert entry["notes"] == "limit=20"
        claims = signing.verifies(hub.settings.secret_key, entry["verifyToken"], model_repo_pk=world.model.pk,
                                  dataset_id="alice/tickets", task_id=entry["dataset"]["task_id"], value=entry["value"])
        assert claims is not None and claims.model_sha == world.model_sha and claims.job_id == job.id
        assert signing.verifies(hub.settings.secret_key, entry["verifyToken"], model_repo_pk=world.model.pk,
                                dataset_id="alice/tickets", task_id=entry["dataset"]["task_id"], value=0.99) is None
    card = world.file(head, "README.md")
    assert card.endswith("# Tiny classifier\n\nKeep this text.\n")
    data = parse_card_yaml(card)
    assert data is not None and data["license"] == "apache-2.0" and data["tags"] == ["tiny"]
    results = data["model-index"][0]["results"]
    assert data["model-index"][0]["name"] == "clf"
    assert [(r["task"]["type"], r["dataset"]["type"], r["dataset"]["split"], r["metrics"][0]["type"],
             r["metrics"][0]["value"]) for r in results] == [
        ("text-classification", "alice/tickets", "test", "accuracy", 0.85),
        ("text-classification", "alice/tickets", "test", "f1", 0.5)]
    assert validate_card(card).errors == []
    url = f"{hub.settings.external_url}/alice/clf/commit/{head.id}"
    assert f"==> Results committed: {url}" in world.log(job)
    view = world.view(job)
    assert view["resultsUrl"] == url and view["pullRequest"] is None and view["model"] == "alice/clf"
    assert [(t["id"], t["value"], t["done"]) for t in view["tasks"]] == [("intent", 0.85, 20), ("topic", 0.5, None)]
    with hub.db.session() as session:
        rows = session.scalars(select(EvalResult).where(EvalResult.model_repo_pk == world.model.pk,
                                                        EvalResult.filename != "README.md")).all()
        assert sorted((r.task_id, r.verified, r.stale) for r in rows) == [("intent", True, False),
                                                                          ("topic", True, False)]
        # The card's model-index names the same tasks (dataset.args.task_id), so it adds no second row for them.
        card_rows = session.scalars(select(EvalResult).where(EvalResult.model_repo_pk == world.model.pk,
                                                             EvalResult.filename == "README.md")).all()
        assert [(r.dataset_id, r.task_id) for r in card_rows if r.dataset_id == rows[0].dataset_id] == []

    # A second run of one task replaces that task's entry and metric only.
    again = world.submit(world.alice, tasks=["topic"])
    world.complete(again, [eval_line("topic", 0.75, {}, 20)])
    newer = world.head()
    entries = yaml.safe_load(world.file(newer, ".eval_results/alice__tickets.yaml"))
    assert sorted((e["dataset"]["task_id"], e["value"]) for e in entries) == [("intent", 0.85), ("topic", 0.75)]
    results = parse_card_yaml(world.file(newer, "README.md"))["model-index"][0]["results"]  # type: ignore[index]
    assert sorted(r["metrics"][0]["value"] for r in results) == [0.75, 0.85]


def test_a_reader_s_evaluation_becomes_a_pull_request(hub: Hub) -> None:
    """bob may read the model but not write it: the results land on refs/pr/N (a pull request authored by bob),
    main does not move, and the run view gives the pull request's number and URL."""
    world = World(hub)
    job = world.submit(world.bob)
    assert job.namespace == "bob"
    before = world.head()
    world.complete(job, SCORES)
    assert world.head().id == before.id
    view = world.view(job)
    number = view["pullRequest"]
    assert isinstance(number, int)
    assert view["resultsUrl"] == f"{hub.settings.external_url}/alice/clf/discussions/{number}"
    assert view["user"] == "bob" and view["results"] == {"url": view["resultsUrl"], "pullRequest": number}
    assert f"==> Results proposed in pull request #{number}: " in world.log(job)
    pr_head = world.head(f"refs/pr/{number}")
    assert [str(p) for p in pr_head.parent_ids] == [str(before.id)] and pr_head.author.name == "bob"
    entries = yaml.safe_load(world.file(pr_head, ".eval_results/alice__tickets.yaml"))
    assert {e["source"]["user"] for e in entries} == {"bob"}


def test_missing_and_non_finite_scores_are_named_and_nothing_is_written_without_a_score(hub: Hub) -> None:
    """A task with no EVAL line or a NaN value is a failure named in the log; with no task measured, main does not
    move; a job that did not complete writes nothing."""
    world = World(hub)
    before = world.head()
    job = world.submit(world.alice)
    world.complete(job, [EVAL_MARK + json.dumps({"task_id": "intent", "value": float("nan")}), "HUBSTEAD-ERROR x"])
    log = world.log(job)
    assert "==> Evaluation failed for task intent: the score nan is not a finite number" in log
    assert "==> Evaluation failed for task topic: the job reported no score" in log
    assert "==> Results not written: no task was measured" in log
    assert world.head().id == before.id
    failed = world.submit(world.alice)
    with hub.db.session() as session:
        row = session.get(ComputeJob, failed.id)
        assert row is not None
        row.stage = "ERROR"
    jobfiles.log_path(hub.settings, failed.id).parent.mkdir(parents=True, exist_ok=True)
    jobfiles.log_path(hub.settings, failed.id).write_text("\n".join(SCORES) + "\n")
    service.finish(hub, failed.id)
    assert world.head().id == before.id
    # Partial: one task measured is written, the other named.
    partial = world.submit(world.alice)
    world.complete(partial, [eval_line("intent", 0.6, {}, 20)])
    entries = yaml.safe_load(world.file(world.head(), ".eval_results/alice__tickets.yaml"))
    assert [e["dataset"]["task_id"] for e in entries] == ["intent"]
    assert "task topic: the job reported no score" in world.log(partial)


def test_a_job_the_hub_did_not_queue_as_an_evaluation_writes_nothing(hub: Hub) -> None:
    """Anyone may submit a job through the Jobs API with the evaluation label, spec and program, and print EVAL
    lines: the hub does not sign what it did not queue."""
    world = World(hub)
    queued = world.submit(world.alice)
    with hub.db.session() as session:
        alice = session.get(User, world.alice.id)
        assert alice is not None
        forged = compute.submit(hub, session, _principal(alice), "alice", service.job_body(
            service.run_spec(queued), "cpu-basic", 60))  # type: ignore[arg-type]
        session.expunge(forged)
    before = world.head()
    world.complete(forged, SCORES)
    assert world.head().id == before.id
    assert "==> Results not written: this job was not queued as an evaluation by the hub" in world.log(forged)


@pytest.mark.parametrize(("form", "status", "words"), [
    ({"model": "alice/nope"}, 404, "The model alice/nope was not found"),
    ({"benchmark": "alice/nope"}, 404, "The benchmark alice/nope was not found"),
    ({"tasks": ["intent", "weather"]}, 400, "has no task 'weather' (its tasks: intent, topic)"),
    ({"limit": 0}, 400, "limit must be a whole number from 1 to 1,000,000"),
    ({"limit": 1_000_001}, 400, "limit must be a whole number from 1 to 1,000,000"),
    ({"num_fewshot": 26}, 400, "num_fewshot must be a whole number from 0 to 25"),
    ({"flavor": "tpu"}, 400, "Unknown flavor 'tpu'"),
    ({"revision": "nope"}, 400, "has no revision 'nope'"),
    ({"colour": "red"}, 400, "Unknown field(s) colour"),
])
def test_bad_forms_are_refused_in_words_before_any_job(hub: Hub, form: dict[str, Any], status: int,
                                                       words: str) -> None:
    world = World(hub)
    with pytest.raises(HubError) as caught:
        world.submit(world.alice, **form)
    assert caught.value.status_code == status and words in caught.value.message
    with hub.db.session() as session:
        assert session.scalars(select(ComputeJob)).all() == []


def test_a_model_that_does_not_fit_and_an_invalid_benchmark(hub: Hub) -> None:
    """A causal LM cannot run a text-classification task; an eval.yaml that does not parse is refused with its
    reasons; a dataset with no eval.yaml is not a benchmark; a private model reads as missing to others."""
    world = World(hub, model_config=LLAMA)
    with pytest.raises(BadRequestError, match="has no sequence-classification head: task intent"):
        world.submit(world.alice)
    _commit(hub, world.bench, world.alice, {"eval.yaml": b"name: X\nevaluation_framework: magic\ntasks: []\n"})
    with pytest.raises(BadRequestError, match="evaluation_framework must be one of .*tasks must be a non-empty list"):
        world.submit(world.alice)
    with hub.db.session() as session:
        alice = session.get(User, world.alice.id)
        assert alice is not None
        plain, _ = create_repo(hub, session, _principal(alice), repo_id="alice/plain", repo_type="dataset")
        private, _ = create_repo(hub, session, _principal(alice), repo_id="alice/secret", repo_type="model",
                                 private=True)
    with pytest.raises(BadRequestError, match="not a benchmark: it has no eval.yaml"):
        world.submit(world.alice, benchmark="alice/plain")
    with pytest.raises(NotFoundError):
        world.submit(world.bob, model="alice/secret")
    assert service.unfit_reason("lm-eval", {"id": "t"}, "m", BERT_CLS, False) is not None
    assert service.unfit_reason("lm-eval", {"id": "t"}, "m", LLAMA, False) is None
    assert service.unfit_reason("mteb", {"id": "t"}, "m", {"architectures": ["BertModel"]}, False) is None
    assert service.unfit_reason("mteb", {"id": "t"}, "m", LLAMA, True) is None
    assert service.unfit_reason("mteb", {"id": "t"}, "m", LLAMA, False) is not None
    assert service.unfit_reason("hubstead", {"id": "t", "task_type": "token-classification"}, "m", BERT_CLS,
                                False) is not None
    assert "no config.json" in (service.unfit_reason("hubstead", {"id": "t"}, "m", None, False) or "")


def _eval_jobs(hub: Hub) -> list[ComputeJob]:
    with hub.db.session() as session:
        jobs = [job for job in session.scalars(select(ComputeJob).order_by(ComputeJob.created_at))
                if service.is_run(job)]
        session.expunge_all()
        return jobs


@pytest.mark.parametrize("enabled", [True, False])
def test_re_evaluation_follows_a_new_commit_when_the_benchmark_asks(hub: Hub, enabled: bool) -> None:
    """After two verified evaluations (one task each), a push of new model files makes their results stale: with
    ``reevaluate: true`` one new job is queued (alice's, the latest run's limit, both stale tasks, on the new head,
    naming the run it repeats), and a second push while it waits queues no other; a card-only push queues
    nothing; with ``false`` nothing."""
    world = World(hub, reevaluate=enabled)
    first = world.submit(world.alice, tasks="topic")
    world.complete(first, SCORES)
    job = world.submit(world.alice, limit=7, tasks="intent")
    world.complete(job, SCORES)
    assert len(_eval_jobs(hub)) == 2
    _commit(hub, world.model, world.alice, {"README.md": CARD.replace("Keep", "Still keep").encode()})
    assert len(_eval_jobs(hub)) == 2
    new_head = _commit(hub, world.model, world.alice,
                       {"config.json": json.dumps({**BERT_CLS, "num_labels": 3}).encode()})
    jobs = _eval_jobs(hub)
    if not enabled:
        assert len(jobs) == 2
        return
    assert len(jobs) == 3
    rerun = jobs[2]
    spec = EvalSpec.from_env(rerun.spec["environment"][SPEC_ENV])
    assert spec.model_revision == new_head and spec.limit == 7
    assert [t["id"] for t in spec.tasks] == ["intent", "topic"]  # the stale tasks of both runs
    assert spec.extra["reevaluates"] == job.id
    assert rerun.namespace == "alice" and rerun.created_by_id == world.alice.id and rerun.stage == "SCHEDULING"
    assert rerun.labels == job.labels
    _commit(hub, world.model, world.alice, {"config.json": json.dumps({**BERT_CLS, "num_labels": 4}).encode()})
    assert len(_eval_jobs(hub)) == 3


def test_builders_keep_other_entries_and_refuse_a_broken_card() -> None:
    """The results file keeps entries of other benchmarks and tasks; a card whose header does not parse is left
    alone (None); a card with no header gains one."""
    evaluation = writer.Evaluation(
        model_repo_pk=1, model_id="a/m", model_sha="0" * 40, benchmark_id="a/b", benchmark_sha="1" * 40,
        benchmark_name="B", framework="lm-eval", job_id="j", job_url="http://hub/jobs/a/j", evaluator="a",
        date="2026-01-01T00:00:00.000Z", results=(writer.TaskResult(task={"id": "t", "split": "test",
                                                                           "metric": "acc"}, value=0.5),),
    )  # fmt: skip
    old = yaml.safe_dump([{"dataset": {"id": "x/y", "task_id": "t"}, "value": 3},
                          {"dataset": {"id": "a/b", "task_id": "t"}, "value": 9}]).encode()
    merged = yaml.safe_load(writer.build_results_file(old, "k", evaluation))
    assert [(e["dataset"]["id"], e["value"]) for e in merged] == [("x/y", 3), ("a/b", 0.5)]
    assert writer.build_card("---\nlicense: [\n---\nbody\n", evaluation) is None
    fresh = writer.build_card("Just text.\n", evaluation)
    assert fresh is not None and fresh.endswith("Just text.\n")
    data = parse_card_yaml(fresh)
    assert data is not None and data["model-index"][0]["results"][0]["task"]["type"] == "text-generation"


def test_benchmark_choices_say_why_a_model_does_not_fit_and_hide_private_benchmarks(hub: Hub) -> None:
    """The Evaluate form's list: every valid benchmark the caller may read, with its tasks, and the reason when the
    model does not fit (a causal LM for a classification benchmark); a private benchmark only for those who read
    it; an invalid one not at all."""
    world = World(hub, model_config=LLAMA)
    with hub.db.session() as session:
        alice = session.get(User, world.alice.id)
        assert alice is not None
        hidden, _ = create_repo(hub, session, _principal(alice), repo_id="alice/hidden", repo_type="dataset",
                                private=True)
        broken, _ = create_repo(hub, session, _principal(alice), repo_id="alice/broken", repo_type="dataset")
        session.expunge_all()
    _commit(hub, hidden, world.alice, {"eval.yaml": eval_yaml(name="Hidden").encode()})
    _commit(hub, broken, world.alice, {"eval.yaml": b"name: Broken\n"})
    with hub.db.session() as session:
        model = session.get(Repo, world.model.pk)
        assert model is not None
        for user, expected in ((world.alice, ["alice/hidden", "alice/tickets"]), (world.bob, ["alice/tickets"])):
            principal = _principal(session.get(User, user.id))  # type: ignore[arg-type]
            choices = service.benchmark_choices(session, principal, model)
            assert [c["id"] for c in choices] == expected
            tickets = choices[-1]
            assert tickets["name"] == "Tickets" and tickets["framework"] == "hubstead"
            assert [t["id"] for t in tickets["tasks"]] == ["intent", "topic"]
            assert "no sequence-classification head" in tickets["reason"]

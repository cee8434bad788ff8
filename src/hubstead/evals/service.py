"""Evaluation runs as a service: every check before a job exists, submitting the run as a compute job, writing its
results into the model repo when it completes, re-running verified results that went stale, and reading runs back.

A run is a compute job (``compute.service.submit``): image ``hubstead/python``, command ``spec.PROGRAM``, its
``EvalSpec`` (revisions resolved to commit shas) as JSON in ``HUBSTEAD_EVAL_SPEC``, labels ``hubstead-eval=<benchmark
id, "/" → "__">`` and ``hubstead-eval-model=<model id, "/" → "__">``, initiator ``evaluation``, one attempt. Checked
first, in words (4xx):

- the model exists, the caller and the job's token can read it (train's ``readable_repo``), and it fits the
  framework (``config.json``: a ``hubstead``/``custom`` text-classification task needs a *ForSequenceClassification,
  token-classification a *ForTokenClassification, text-generation and ``lm-eval`` a causal LM, ``mteb`` a
  sentence-transformers model or an encoder);
- the benchmark exists, is readable, and has a valid ``eval.yaml`` at the chosen revision (else its reasons);
- the tasks named exist; ``limit`` is 1..1,000,000, ``num_fewshot`` 0..25, ``batch_size`` 1..1024;
- the flavour's memory holds the weights (train's ``weights_bytes`` and inference-sized ``memory_needed``).

When the job ends (``finish``, a ``compute.ends`` follower), the hub (never the job) reads the job's
``HUBSTEAD-EVAL`` lines and writes them, signed, with ``evals.writer``: a commit on main when the evaluator may write
the model, else a pull request; the log says where (``==> Results committed: <url>`` or ``==> Results proposed in
pull request #N: <url>``). Only jobs this module queued are trusted (initiator ``evaluation``, the program's own
command and image): a job anyone could submit through the Jobs API with the same label writes nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import pygit2
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead import dates
from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.compute import jobfiles
from hubstead.compute import service as compute
from hubstead.compute.models import ComputeJob
from hubstead.compute.spec import TERMINAL
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, NotFoundError, UnauthorizedError
from hubstead.evals import spec as evalspec
from hubstead.evals import writer
from hubstead.evals.benchmark import FILENAME, Benchmark, BenchmarkInvalid, parse_benchmark
from hubstead.evals.models import EvalBenchmark, EvalResult
from hubstead.repos import visibility
from hubstead.repos.git import GitRepo
from hubstead.repos.models import Repo
from hubstead.repos.service import find_repo, open_git
from hubstead.runner import logs as runner_logs
from hubstead.runner.hardware import DEFAULT_FLAVOR, flavors
from hubstead.runner.limits import format_bytes
from hubstead.train import service as train

IMAGE = "hubstead/python"
MODEL_LABEL = "hubstead-eval-model"
INITIATOR = "evaluation"  # one of compute.spec.READ_ONLY_INITIATORS: the job gets a read token
DEFAULT_TIMEOUT = 3600
MAX_BATCH = 1024
ERROR_MARK = "HUBSTEAD-ERROR "
COMMITTED = "==> Results committed: "
PROPOSED = re.compile(r"==> Results proposed in pull request #(\d+): (\S+)")
_FORM_KEYS = {"model", "revision", "benchmark", "tasks", "limit", "num_fewshot", "batch_size", "flavor", "namespace",
              "timeout"}
_ST_FILES = ("modules.json", "config_sentence_transformers.json")


class EvalRequestError(BadRequestError):
    """An evaluation refused before any job exists; the message says why."""


# ---- the form -----------------------------------------------------------------------------------------------------


def _whole(form: dict[str, Any], key: str, low: int, high: int, default: int | None) -> int | None:
    value = form.get(key)
    if value is None or value == "":
        return default
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or value != int(value) or not low <= value <= high):
        raise EvalRequestError(f"{key} must be a whole number from {low} to {high:,}")
    return int(value)


def _text(form: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = form.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or len(value) > 250:
        raise EvalRequestError(f"{key} must be a short string")
    return value.strip()


def _task_ids(raw: Any) -> list[str] | None:
    if raw is None or raw == "" or raw == []:
        return None
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(task, str) for task in raw) or len(raw) > 50:
        raise EvalRequestError("tasks must be a list of task ids (or one string, comma-separated)")
    return list(dict.fromkeys(raw))


# ---- the checks ---------------------------------------------------------------------------------------------------


def _read_benchmark(git: GitRepo, commit: pygit2.Commit, benchmark_id: str) -> Benchmark:
    obj = git.entry(commit, FILENAME)
    if not isinstance(obj, pygit2.Blob):
        raise EvalRequestError(f"The dataset {benchmark_id} is not a benchmark: it has no {FILENAME} at its root")
    try:
        return parse_benchmark(obj.data)
    except BenchmarkInvalid as exc:
        raise EvalRequestError(f"The benchmark {benchmark_id} cannot be run: {exc.message}") from None


def _architectures(config: dict[str, Any]) -> list[str]:
    return [a for a in config.get("architectures") or [] if isinstance(a, str)]


def unfit_reason(framework: str, task: dict[str, Any], model_id: str, config: dict[str, Any] | None,
                 sentence_transformers: bool) -> str | None:
    """Why the model cannot run ``task`` of a ``framework`` benchmark (None when it can), from its config.json."""
    if config is None:
        return f"The model {model_id} has no config.json: it is not a transformers model this hub can evaluate"
    kind = train.model_kind(config)
    described = ", ".join(_architectures(config)) or str(config.get("model_type") or "unknown")
    task_type = task.get("task_type")
    if framework == "lm-eval" or task_type == "text-generation":
        if kind != "causal":
            return (f"The model {model_id} ({described}) is not a causal language model: task {task['id']} "
                    f"({framework}) generates text and needs one (a *ForCausalLM)")
    elif framework == "mteb":
        if not sentence_transformers and kind != "encoder":
            return (f"The model {model_id} ({described}) is not an embedding model: task {task['id']} (mteb) needs a "
                    "sentence-transformers model or an encoder")
    elif task_type == "text-classification":
        if not any(a.endswith("ForSequenceClassification") for a in _architectures(config)):
            return (f"The model {model_id} ({described}) has no sequence-classification head: task {task['id']} "
                    "(text-classification) needs a *ForSequenceClassification model")
    elif task_type == "token-classification":
        if not any(a.endswith("ForTokenClassification") for a in _architectures(config)):
            return (f"The model {model_id} ({described}) has no token-classification head: task {task['id']} "
                    "(token-classification) needs a *ForTokenClassification model")
    return None


def _has_st_files(git: GitRepo, commit: pygit2.Commit) -> bool:
    return any(isinstance(git.entry(commit, name), pygit2.Blob) for name in _ST_FILES)


def _check_memory(model_id: str, flavor: str, weights: int) -> None:
    limit = flavors()[flavor].memory_bytes
    needed = train.memory_needed(weights, "lora")  # inference: the weights, a margin, the runtime
    if needed > limit:
        raise EvalRequestError(f"The model {model_id} ({format_bytes(weights)} of weights) needs about "
                               f"{needed / 2**30:.1f} GiB to evaluate; {flavor} has {limit / 2**30:.1f} GiB. "
                               "Choose a bigger flavor.")


def _build_spec(hub: Hub, session: Session, principal: Principal, form: dict[str, Any],
                namespace: str) -> tuple[evalspec.EvalSpec, str, int]:
    """The checked run: its spec, flavour and timeout (see the module's docstring)."""
    unknown = set(form) - _FORM_KEYS
    if unknown:
        raise EvalRequestError(f"Unknown field(s) {', '.join(sorted(unknown))}; an evaluation takes "
                               f"{', '.join(sorted(_FORM_KEYS))}")
    model_id = _text(form, "model")
    benchmark_id = _text(form, "benchmark")
    if not model_id or not benchmark_id:
        raise EvalRequestError("An evaluation needs a model and a benchmark (a dataset id)")
    revision = _text(form, "revision", "main") or "main"
    wanted = _task_ids(form.get("tasks"))
    limit = _whole(form, "limit", 1, evalspec.MAX_LIMIT, None)
    num_fewshot = _whole(form, "num_fewshot", 0, evalspec.MAX_FEWSHOT, None)
    batch_size = _whole(form, "batch_size", 1, MAX_BATCH, 16) or 16
    flavor = _text(form, "flavor", DEFAULT_FLAVOR) or DEFAULT_FLAVOR
    if flavor not in flavors():
        raise EvalRequestError(f"Unknown flavor {flavor!r}; this hub offers {', '.join(flavors())}")
    maximum = hub.settings.compute_max_timeout
    timeout = _whole(form, "timeout", 1, maximum, min(DEFAULT_TIMEOUT, maximum)) or DEFAULT_TIMEOUT

    model = train.readable_repo(session, principal, namespace, "model", model_id, "model")
    model_git = open_git(hub, model)
    model_commit = train.resolve_commit(model_git, revision, "model", model_id)
    dataset = train.readable_repo(session, principal, namespace, "dataset", benchmark_id, "benchmark")
    dataset_git = open_git(hub, dataset)
    dataset_commit = train.resolve_commit(dataset_git, "main", "benchmark", benchmark_id)
    benchmark = _read_benchmark(dataset_git, dataset_commit, dataset.repo_id)
    if wanted is None:
        tasks = list(benchmark.tasks)
    else:
        missing = [task for task in wanted if benchmark.task(task) is None]
        if missing:
            raise EvalRequestError(f"The benchmark {dataset.repo_id} has no task {', '.join(map(repr, missing))} "
                                   f"(its tasks: {', '.join(task.id for task in benchmark.tasks)})")
        tasks = [task for task in benchmark.tasks if task.id in wanted]
    config = train.small_json(model_git, model_commit, "config.json")
    st = _has_st_files(model_git, model_commit)
    for task in tasks:
        reason = unfit_reason(benchmark.framework, task.as_json(), model.repo_id, config, st)
        if reason:
            raise EvalRequestError(reason)
    _check_memory(model.repo_id, flavor, train.weights_bytes(hub, session, model_git, model_commit))
    spec = evalspec.EvalSpec(
        model=model.repo_id, model_revision=str(model_commit.id), benchmark=dataset.repo_id,
        benchmark_revision=str(dataset_commit.id), framework=benchmark.framework,
        tasks=[task.as_json() for task in tasks], limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
        extra={"benchmark_name": benchmark.name, "evaluator": principal.user.name if principal.user else None},
    )  # fmt: skip
    return spec, flavor, timeout


def job_body(spec: evalspec.EvalSpec, flavor: str, timeout: int) -> dict[str, Any]:
    """The compute job spec of a run."""
    return {
        "dockerImage": IMAGE,
        "command": list(evalspec.PROGRAM),
        "environment": {evalspec.SPEC_ENV: spec.to_env()},
        "flavor": flavor,
        "timeoutSeconds": timeout,
        "attempts": 1,
        "labels": {evalspec.LABEL: writer.label_value(spec.benchmark), MODEL_LABEL: writer.label_value(spec.model)},
    }


def submit_evaluation(hub: Hub, session: Session, principal: Principal, form: dict[str, Any]) -> ComputeJob:
    """Check an evaluation (``form``: model, revision, benchmark, tasks, limit, num_fewshot, batch_size, flavor,
    namespace, timeout) and queue it as a compute job; every refusal comes before the job exists."""
    if principal.user is None:
        raise UnauthorizedError("Evaluating needs a token: log in with `hf auth login` or pass --token")
    namespace = _text(form, "namespace", principal.user.name) or principal.user.name
    compute.require_member(session, principal, namespace, write=True)
    spec, flavor, timeout = _build_spec(hub, session, principal, form, namespace)
    return compute.submit(hub, session, principal, namespace, job_body(spec, flavor, timeout),
                          initiator={"type": INITIATOR, "id": str(principal.user.id)})


# ---- reading runs back ----------------------------------------------------------------------------------------------


def is_run(job: ComputeJob) -> bool:
    """A job this module queued (the only ones whose results the hub writes)."""
    spec = job.spec or {}
    return (evalspec.LABEL in (job.labels or {}) and job.initiator_type == INITIATOR
            and spec.get("dockerImage") == IMAGE and list(spec.get("command") or []) == evalspec.PROGRAM
            and evalspec.SPEC_ENV in (spec.get("environment") or {}))


def run_spec(job: ComputeJob) -> evalspec.EvalSpec | None:
    raw = ((job.spec or {}).get("environment") or {}).get(evalspec.SPEC_ENV)
    try:
        return evalspec.EvalSpec.from_env(raw) if isinstance(raw, str) else None
    except (ValueError, TypeError):
        return None


def get_run(session: Session, principal: Principal, namespace: str, job_id: str, *, write: bool = False) -> ComputeJob:
    job = compute.get_job(session, principal, namespace, job_id, write=write)
    if not is_run(job):
        raise NotFoundError(f"Job {job_id} in {namespace} is not an evaluation")
    return job


def runs_for(session: Session, principal: Principal, namespace: str) -> list[ComputeJob]:
    """The namespace's evaluations, newest first (members only, as its jobs)."""
    return [job for job in compute.list_jobs(session, principal, namespace, stages=[], labels=[evalspec.LABEL])
            if is_run(job)]


def _last(lines: list[str], mark: str) -> str | None:
    for line in reversed(lines):
        at = line.find(mark)
        if at >= 0:
            return line[at + len(mark):].strip()
    return None


def results_outcome(lines: list[str]) -> dict[str, Any] | None:
    """Where the hub wrote a run's results, from its log: ``{"url", "pullRequest"}`` or None."""
    for line in reversed(lines):
        if COMMITTED in line:
            return {"url": line[line.find(COMMITTED) + len(COMMITTED):].strip(), "pullRequest": None}
        found = PROPOSED.search(line)
        if found:
            return {"url": found.group(2), "pullRequest": int(found.group(1))}
    return None


def run_view(hub: Hub, job: ComputeJob, *, tail: int = 40) -> dict[str, Any]:
    """A run as the API and the pages show it: model, benchmark, tasks (progress, score), stage, message, where
    its results went (commit or pull request URL), the job page's URL, the error line, the log's last lines."""
    spec = run_spec(job)
    lines = train.log_lines(hub, job)
    progress = {str(mark.get("task_id")): mark for mark in evalspec.read_marks(lines, evalspec.PROGRESS_MARK)}
    scores = {str(mark.get("task_id")): mark for mark in evalspec.read_marks(lines, evalspec.EVAL_MARK)}
    tasks = []
    for task in spec.tasks if spec else []:
        task_id = str(task.get("id"))
        done = progress.get(task_id, {})
        measured = scores.get(task_id, {})
        value = writer.finite(measured.get("value"))
        tasks.append({"id": task_id, "name": task.get("name"), "metric": task.get("metric"),
                      "config": task.get("config"), "split": task.get("split"),
                      "done": done.get("done"), "total": done.get("total"), "value": value,
                      "metrics": measured.get("metrics") if isinstance(measured.get("metrics"), dict) else None,
                      "samples": measured.get("samples")})
    url = hub.settings.external_url
    outcome = results_outcome(lines)
    return {
        "jobId": job.id,
        "namespace": job.namespace,
        "url": f"{url}/evaluations/{job.namespace}/{job.id}",
        "jobUrl": f"{url}/jobs/{job.namespace}/{job.id}",
        "model": spec.model if spec else None,
        "modelRevision": spec.model_revision if spec else None,
        "benchmark": spec.benchmark if spec else None,
        "benchmarkName": (spec.extra or {}).get("benchmark_name") if spec else None,
        "benchmarkRevision": spec.benchmark_revision if spec else None,
        "framework": spec.framework if spec else None,
        "limit": spec.limit if spec else None,
        "numFewshot": spec.num_fewshot if spec else None,
        "reevaluates": (spec.extra or {}).get("reevaluates") if spec else None,
        "user": (spec.extra or {}).get("evaluator") if spec else None,
        "tasks": tasks,
        "flavor": (job.spec or {}).get("flavor"),
        "stage": job.stage,
        "message": job.message,
        "finished": job.stage in TERMINAL,
        "results": outcome,
        "resultsUrl": outcome["url"] if outcome else None,
        "pullRequest": outcome["pullRequest"] if outcome else None,
        "error": _last(lines, ERROR_MARK),
        "logTail": lines[-tail:],
        "createdAt": compute.job_json(hub.settings, job)["createdAt"],
    }


# ---- the end of a run: results into the model repo -------------------------------------------------------------------


def _log(hub: Hub, job_id: str, line: str) -> None:
    runner_logs.append(jobfiles.log_path(hub.settings, job_id), line)


def measured(spec: evalspec.EvalSpec, lines: list[str]) -> tuple[list[writer.TaskResult], list[str]]:
    """The tasks of ``spec`` a job measured (its last finite ``HUBSTEAD-EVAL`` line each), and those it did not,
    in words."""
    scores = {str(mark.get("task_id")): mark for mark in evalspec.read_marks(lines, evalspec.EVAL_MARK)}
    results, failures = [], []
    for task in spec.tasks:
        task_id = str(task.get("id"))
        mark = scores.get(task_id)
        if mark is None:
            failures.append(f"task {task_id}: the job reported no score")
            continue
        value = writer.finite(mark.get("value"))
        if value is None:
            failures.append(f"task {task_id}: the score {mark.get('value')!r} is not a finite number")
            continue
        results.append(writer.TaskResult(task=task, value=value))
    return results, failures


def finish(hub: Hub, job_id: str) -> None:
    """The end follower of evaluation jobs (``compute.ends``): when one COMPLETES, write what it measured into the
    model repo (``evals.writer``) and say in its log where; otherwise, or when nothing was measured, write nothing."""
    with hub.db.session() as session:
        job = session.get(ComputeJob, job_id)
        if job is None or job.stage != "COMPLETED":
            return
        if not is_run(job):
            _log(hub, job_id, "==> Results not written: this job was not queued as an evaluation by the hub")
            return
        spec = run_spec(job)
        evaluator = session.get(User, job.created_by_id)
        if spec is None or evaluator is None:
            _log(hub, job_id, "==> Results not written: the job's spec or its evaluator is gone")
            return
        results, failures = measured(spec, train.log_lines(hub, job))
        for failure in failures:
            _log(hub, job_id, f"==> Evaluation failed for {failure}")
        if not results:
            _log(hub, job_id, "==> Results not written: no task was measured")
            return
        model, _ = find_repo(session, repo_type="model", repo_id=spec.model)
        principal = Principal(user=evaluator, token_role="write", token_name="evaluation")
        if model is None or not visibility.can_read(session, principal, model):
            _log(hub, job_id, f"==> Results not written: the model {spec.model} is gone or no longer readable")
            return
        evaluation = writer.Evaluation(
            model_repo_pk=model.pk, model_id=model.repo_id, model_sha=spec.model_revision,
            benchmark_id=spec.benchmark, benchmark_sha=spec.benchmark_revision,
            benchmark_name=str((spec.extra or {}).get("benchmark_name") or spec.benchmark),
            framework=spec.framework, job_id=job.id,
            job_url=f"{hub.settings.external_url}/jobs/{job.namespace}/{job.id}", evaluator=evaluator.name,
            date=dates.iso(job.finished_at or utcnow()) or "", results=tuple(results),
            limit=spec.limit, num_fewshot=spec.num_fewshot,
        )  # fmt: skip
        written, skipped = writer.write_results(hub, session, principal, model, evaluation)
    for line in skipped:
        _log(hub, job_id, f"==> {line}")
    if written.pull_request is not None:
        _log(hub, job_id, f"==> Results proposed in pull request #{written.pull_request}: {written.url}")
    else:
        _log(hub, job_id, f"{COMMITTED}{written.url}")


# ---- re-evaluation ---------------------------------------------------------------------------------------------------


def reevaluate(session: Session, repo: Repo, commit_id: str) -> None:
    """A model's main moved (``repos.index.follow_main``, after the results index): for each benchmark whose
    ``eval.yaml`` says ``reevaluate: true`` and whose verified results on this model went stale, queue its last
    evaluation again on the new head (as the user who ran it, in the namespace it ran in, same limits; the stale
    tasks of all its runs, in the benchmark's order), unless one of this model and benchmark is already queued or
    running. At most one job per (model, benchmark) per move; nothing here waits (it runs inside the push's
    transaction)."""
    if repo.repo_type != "model":
        return
    stale: dict[str, set[str]] = {}  # job id -> its stale task ids
    for job_id, task_id in session.execute(select(EvalResult.job_id, EvalResult.task_id).where(
            EvalResult.model_repo_pk == repo.pk, EvalResult.verified.is_(True), EvalResult.stale.is_(True),
            EvalResult.job_id.is_not(None))).all():  # fmt: skip
        stale.setdefault(str(job_id), set()).add(str(task_id))
    if not stale:
        return
    model_label = writer.label_value(repo.repo_id)
    jobs = [job for job in session.scalars(select(ComputeJob).where(ComputeJob.id.in_(list(stale))))
            if is_run(job) and (job.labels or {}).get(MODEL_LABEL) == model_label]
    busy = {(job.labels or {}).get(evalspec.LABEL) for job in session.scalars(select(ComputeJob).where(
        ComputeJob.stage.not_in(TERMINAL))) if is_run(job) and (job.labels or {}).get(MODEL_LABEL) == model_label}
    jobs.sort(key=lambda j: (j.created_at, j.id), reverse=True)
    tasks_of: dict[str, dict[str, dict[str, Any]]] = {}  # benchmark label -> the stale tasks of all its runs
    for job in jobs:
        spec = run_spec(job)
        for task in spec.tasks if spec else []:
            if str(task.get("id")) in stale[job.id]:
                tasks_of.setdefault((job.labels or {})[evalspec.LABEL], {}).setdefault(str(task.get("id")), task)
    done: set[str] = set()
    for job in jobs:  # the latest run of each benchmark, with every stale task of its runs
        spec = run_spec(job)
        label = (job.labels or {}).get(evalspec.LABEL)
        if spec is None or label is None or label in busy or label in done or spec.model_revision == commit_id:
            continue
        done.add(label)
        benchmark, _ = find_repo(session, repo_type="dataset", repo_id=spec.benchmark)
        if benchmark is None or benchmark.sha is None:
            continue
        row = session.get(EvalBenchmark, benchmark.pk)
        if row is None or not isinstance(row.spec, dict) or not row.spec.get("reevaluate"):
            continue
        user = session.get(User, job.created_by_id)
        if user is None:
            continue
        principal = Principal(user=user, token_role="write", token_name="re-evaluation")
        if not visibility.can_read(session, principal, repo) or not visibility.can_read(session, principal, benchmark):
            continue
        order = [str(task.get("id")) for task in row.spec.get("tasks") or [] if isinstance(task, dict)]
        tasks = sorted(tasks_of.get(label, {}).values(),
                       key=lambda t: order.index(str(t.get("id"))) if str(t.get("id")) in order else len(order))
        again = replace(spec, model_revision=commit_id, benchmark_revision=benchmark.sha, tasks=tasks or spec.tasks,
                        extra={**(spec.extra or {}), "reevaluates": job.id})
        try:
            compute.requeue(session, principal, job, environment={evalspec.SPEC_ENV: again.to_env()},
                            labels=dict(job.labels or {}), initiator={"type": INITIATOR, "id": str(user.id)})
        except Exception:  # noqa: BLE001 - a re-evaluation that cannot be queued never fails the push
            continue


# ---- what a model may run -------------------------------------------------------------------------------------------


def benchmark_choices(session: Session, principal: Principal, model_repo: Repo) -> list[dict[str, Any]]:
    """The benchmarks ``principal`` may read, with their tasks, for ``model_repo``'s "Evaluate" form: each
    ``{id, name, description, framework, tasks, private, reason}``, ``reason`` saying why the model does not fit
    (from the index's ``config.json`` of its main), else None. Invalid benchmarks are left out."""
    rows = session.execute(select(EvalBenchmark, Repo).join(Repo, Repo.pk == EvalBenchmark.repo_pk)
                           .where(EvalBenchmark.spec.is_not(None)).order_by(Repo.id_key)).all()
    config = model_repo.model_config if isinstance(model_repo.model_config, dict) else None
    st = model_repo.library_name == "sentence-transformers" or "sentence-transformers" in (model_repo.tags or [])
    out = []
    for row, repo in rows:
        if not isinstance(row.spec, dict) or not visibility.can_read(session, principal, repo):
            continue
        framework = str(row.spec.get("evaluation_framework") or row.framework or "")
        tasks = [task for task in row.spec.get("tasks") or [] if isinstance(task, dict)]
        reason = next((r for task in tasks if (r := unfit_reason(framework, task, model_repo.repo_id, config, st))),
                      None)
        out.append({"id": repo.repo_id, "name": row.name, "description": row.spec.get("description") or "",
                    "framework": framework, "tasks": tasks, "private": repo.private, "reason": reason})
    return out

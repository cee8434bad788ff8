"""Train runs as a service: checking a run before anything is queued, submitting it as a compute job, and reading a
run back (its spec, the job's stage, the metric points from the job's log, the final evaluation, the pushed model).

A run is a compute job (``compute.service.submit``) with image ``hubstead/python``, command
``python -m hubstead.train.program``, its spec as JSON in ``HUBSTEAD_TRAIN_SPEC`` and the label
``hubstead-train=<task>``. Everything that can be known before the run starts is checked here, in words:

- the base model exists, the caller and the job's token can read it, and it fits the task (``config.json``'s
  ``architectures`` / ``model_type``: an encoder for classification and embeddings, a causal LM for sft and dpo);
- its weights (the ``.safetensors`` / ``.bin`` total, a safetensors header's own claim where larger) fit the
  flavour's memory with a margin for training;
- the dataset exists and is readable, the dataset viewer has converted it, the splits exist and the chosen columns
  exist with fitting types (``spec.check_columns`` on the viewer's features);
- the output repo may be written where the run pushes it (a new repo or a branch: the job's namespace, where the
  job's token writes; a pull request: an existing repo the caller can read).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pygit2
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.compute import jobfiles
from hubstead.compute import service as compute
from hubstead.compute.models import ComputeJob
from hubstead.compute.spec import TERMINAL
from hubstead.context import Hub
from hubstead.errors import BadRequestError, ForbiddenError, NotFoundError
from hubstead.repos import visibility
from hubstead.repos.files import file_info, iter_entries
from hubstead.repos.git import GitRepo
from hubstead.repos.models import Repo
from hubstead.repos.service import can_write, find_repo, has_file_content_access, open_git
from hubstead.runner import logs as runner_logs
from hubstead.runner.hardware import DEFAULT_FLAVOR, flavors
from hubstead.runner.limits import format_bytes
from hubstead.train.metrics import ERROR_PREFIX, OUTPUT_PREFIX, eval_metric_name, parse_metric_lines
from hubstead.train.spec import TrainSpec, TrainSpecError, check_columns, defaults_for, parse_spec

LABEL = "hubstead-train"
SPEC_ENV = "HUBSTEAD_TRAIN_SPEC"
PROGRAM = ["python", "-m", "hubstead.train.program"]
IMAGE = "hubstead/python"
# What training needs beyond the weights: a full fine-tune holds weights, gradients and two Adam moments (x4); an
# adapter run the frozen weights and a little more. Plus the Python process itself (torch, transformers).
FULL_FACTOR = 4.0
ADAPTER_FACTOR = 1.3
RUNTIME_BYTES = 512 * 2**20
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_LOG_READ_LIMIT = 64 * 2**20

# Model types that are causal (decoder-only) language models, where the architectures list does not say.
_CAUSAL_TYPES = {"gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral", "qwen2", "qwen3", "phi",
                 "phi3", "gemma", "gemma2", "gemma3", "falcon", "opt", "bloom", "olmo", "olmo2", "smollm3",
                 "starcoder2", "codegen", "mpt", "stablelm", "granite"}


class TrainRequestError(BadRequestError):
    """A run refused before any job exists; the message says why."""


@dataclass(frozen=True)
class RunRequest:
    """A checked run: its spec, the job's namespace, flavour and timeout."""

    spec: TrainSpec
    namespace: str
    flavor: str
    timeout_seconds: int | None
    name: str | None


def parse_form(form: dict[str, Any], default_namespace: str) -> RunRequest:
    """The JSON of ``POST /api/train`` (the spec's fields plus ``namespace``, ``flavor``, ``timeoutSeconds``,
    ``name``) as a :class:`RunRequest`; TrainRequestError in words."""
    fields = dict(form)
    namespace = fields.pop("namespace", None) or default_namespace
    flavor = fields.pop("flavor", None) or DEFAULT_FLAVOR
    timeout = fields.pop("timeoutSeconds", None)  # None: the hub's default job timeout
    name = fields.pop("name", None)
    if not isinstance(namespace, str):
        raise TrainRequestError("namespace must be a user or organization name")
    if not isinstance(flavor, str) or flavor not in flavors():
        raise TrainRequestError(f"Unknown flavor {flavor!r}; this hub offers {', '.join(flavors())}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
        raise TrainRequestError("timeoutSeconds must be a whole number of seconds")
    if name is not None and (not isinstance(name, str) or len(name) > 100):
        raise TrainRequestError("name must be a short string")
    try:
        spec = parse_spec(fields)
    except TrainSpecError as exc:
        raise TrainRequestError(exc.message) from None
    return RunRequest(spec=spec, namespace=namespace, flavor=flavor, timeout_seconds=timeout, name=name or None)


# ---- the checks -------------------------------------------------------------------------------------------------


def _job_principal(principal: Principal, namespace: str) -> Principal:
    """Who the job's token will be: the caller, standing only in the job's namespace."""
    return Principal(user=principal.user, token_role="write", token_name="train-check",
                     namespace_scope=namespace.lower())


def readable_repo(session: Session, principal: Principal, namespace: str, repo_type: str, repo_id: str,
              what: str) -> Repo:
    repo, _ = find_repo(session, repo_type=repo_type, repo_id=repo_id)
    if repo is None or not visibility.can_read(session, principal, repo):
        raise NotFoundError(f"The {what} {repo_id} was not found (or you cannot read it)")
    if not has_file_content_access(session, repo, principal):
        raise ForbiddenError(f"The {what} {repo_id} is gated and you have no access to its files yet")
    job = _job_principal(principal, namespace)
    if not visibility.can_read(session, job, repo) or not has_file_content_access(session, repo, job):
        raise TrainRequestError(f"The run's job runs in {namespace} and its token reads only public repos and "
                                f"{namespace}'s own: it could not read the {what} {repo_id}. Run it in "
                                f"{repo.namespace} instead, or make the {what} readable there")
    return repo


def resolve_commit(git: GitRepo, revision: str | None, what: str, repo_id: str) -> pygit2.Commit:
    try:
        return git.resolve(revision or "main")
    except Exception:  # noqa: BLE001 - a bad revision of any kind reads the same to the person
        raise TrainRequestError(f"The {what} {repo_id} has no revision {revision or 'main'!r}") from None


def small_json(git: GitRepo, commit: pygit2.Commit, path: str) -> dict[str, Any] | None:
    obj = git.entry(commit, path)
    if not isinstance(obj, pygit2.Blob) or obj.size > 1024 * 1024:
        return None
    try:
        data = json.loads(obj.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def model_kind(config: dict[str, Any]) -> str:
    """``causal`` (a decoder-only LM), ``encoder`` (BERT-like, with or without a head) or ``other``."""
    architectures = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    model_type = str(config.get("model_type") or "")
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures) or model_type in _CAUSAL_TYPES:
        return "causal"
    if config.get("is_encoder_decoder") or any(a.endswith(("ForConditionalGeneration", "Seq2SeqLM"))
                                               for a in architectures):
        return "other"
    if any(a.endswith(("Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification",
                       "ForPreTraining", "ForQuestionAnswering")) for a in architectures) or model_type:
        return "encoder"
    return "other"


def _check_model_fits_task(spec: TrainSpec, config: dict[str, Any] | None) -> None:
    if config is None:
        raise TrainRequestError(f"The base model {spec.base_model} has no config.json: it is not a transformers "
                                "model Train can fine-tune")
    kind = model_kind(config)
    described = ", ".join(config.get("architectures") or []) or str(config.get("model_type") or "unknown")
    if spec.task in ("sft", "dpo") and kind != "causal":
        raise TrainRequestError(f"The base model {spec.base_model} ({described}) is not a causal language model: "
                                f"{spec.task} needs one (a *ForCausalLM such as Llama, Qwen2 or SmolLM2)")
    if spec.task in ("text-classification", "token-classification", "sentence-embeddings") and kind != "encoder":
        what = "a causal language model" if kind == "causal" else "not an encoder"
        raise TrainRequestError(f"The base model {spec.base_model} ({described}) is {what}: {spec.task} needs an "
                                "encoder (BERT, RoBERTa, MiniLM, ... or one with a classification head)")


def _object_head(hub: Hub, session: Session, oid: str, size: int, length: int) -> bytes:
    """The first ``length`` bytes of a stored LFS object (the blob store or Xet), or b"" when it is absent."""
    length = min(length, size)
    if length <= 0:
        return b""
    if hub.blobs.size(oid) is not None:
        return b"".join(hub.blobs.open_range(oid, 0, length - 1))
    from hubstead.xet.cas.reader import stream_file, xet_backed  # storage too (layer 1), read only here

    backed = xet_backed(session, oid)
    return b"".join(stream_file(hub.xorbs, backed, 0, length - 1)) if backed is not None else b""


def _safetensors_claim(head: bytes, tail: Callable[[int], bytes]) -> int | None:
    """The data size a safetensors header declares (the largest tensor end offset), or None if not one."""
    if len(head) < 8:
        return None
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > 100 * 2**20:
        return None
    raw = tail(8 + header_len)
    try:
        header = json.loads(raw[8: 8 + header_len])
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    ends = [t["data_offsets"][1] for k, t in header.items()
            if k != "__metadata__" and isinstance(t, dict) and isinstance(t.get("data_offsets"), list)
            and len(t["data_offsets"]) == 2 and isinstance(t["data_offsets"][1], int)]
    return max(ends, default=0)


def _reader(hub: Hub, session: Session, git: GitRepo, lfs_oid: str | None, size: int,
            blob_id: str) -> Callable[[int], bytes]:
    """Reads the first n bytes of a file (an LFS object, or a plain git blob)."""
    if lfs_oid is not None:
        return lambda n: _object_head(hub, session, lfs_oid, size, n)
    blob = git.read_blob(pygit2.Oid(hex=blob_id))
    return lambda n: blob[:n]


def weights_bytes(hub: Hub, session: Session, git: GitRepo, commit: pygit2.Commit) -> int:
    """The size of the model's weights at ``commit``: every weight file's size, or what a safetensors header says
    its tensors take where that is more (the memory the weights need once loaded)."""
    total_by_kind: dict[str, int] = {}
    for entry in iter_entries(git, commit, "", recursive=True):
        if entry.type != "file" or not entry.path.endswith(_WEIGHT_SUFFIXES):
            continue
        info = file_info(git, entry.path, entry.oid)
        size = info.size
        if entry.path.endswith(".safetensors"):
            read = _reader(hub, session, git, info.lfs.oid if info.lfs else None, info.size, entry.oid)
            claim = _safetensors_claim(read(8), read)
            size = max(size, claim or 0)
        kind = "safetensors" if entry.path.endswith(".safetensors") else "other"
        total_by_kind[kind] = total_by_kind.get(kind, 0) + size
    # A repo with both formats holds the same weights twice: count the safetensors ones.
    return total_by_kind.get("safetensors") or total_by_kind.get("other", 0)


def memory_needed(weights: int, method: str) -> int:
    return int(weights * (ADAPTER_FACTOR if method in ("lora", "qlora") else FULL_FACTOR)) + RUNTIME_BYTES


def _check_memory(spec: TrainSpec, flavor: str, weights: int) -> None:
    limit = flavors()[flavor].memory_bytes
    needed = memory_needed(weights, spec.method)
    if needed > limit:
        hint = " Try method lora, or a bigger flavor." if spec.method == "full" else " Choose a bigger flavor."
        raise TrainRequestError(f"The base model {spec.base_model} ({format_bytes(weights)} of weights) needs about "
                                f"{needed / 2**30:.1f} GiB to train with method {spec.method}; {flavor} has "
                                f"{limit / 2**30:.1f} GiB.{hint}")


def dataset_schema(session: Session, repo: Repo) -> dict[str, dict[str, Any]]:
    """``{config: {split: features}}`` of a dataset as the viewer converted it; TrainRequestError in words when it
    has not (yet)."""
    from hubstead.viewer.service import state_of  # the viewer is a sibling domain (layer 5); read only

    state = state_of(session, repo)
    if state.pending:
        raise TrainRequestError(f"The dataset viewer is still converting {repo.repo_id}; try again in a minute")
    if state.conversion is None:
        if state.job is not None and state.job.status == "failed":
            raise TrainRequestError(f"The dataset viewer could not convert {repo.repo_id} ({state.job.error}), so "
                                    "its columns are unknown: fix the dataset's files first")
        raise TrainRequestError(f"The dataset viewer has not converted {repo.repo_id}: push data files (Parquet, "
                                "CSV, JSON lines) to it first")
    out: dict[str, dict[str, Any]] = {}
    for split in state.splits():
        if split.ok:
            out.setdefault(split.config, {})[split.split] = split.features
    return out


def _pick_config(spec: TrainSpec, schema: dict[str, dict[str, Any]]) -> str:
    if not schema:
        raise TrainRequestError(f"The dataset {spec.dataset} has no split the viewer could read")
    if spec.dataset_config:
        if spec.dataset_config not in schema:
            raise TrainRequestError(f"The dataset {spec.dataset} has no config {spec.dataset_config!r} (its configs: "
                                    f"{', '.join(sorted(schema))})")
        return spec.dataset_config
    if len(schema) == 1:
        return next(iter(schema))
    if "default" in schema:
        return "default"
    raise TrainRequestError(f"The dataset {spec.dataset} has several configs ({', '.join(sorted(schema))}): "
                            "choose one with dataset_config")


def _check_dataset(spec: TrainSpec, schema: dict[str, dict[str, Any]]) -> None:
    config = _pick_config(spec, schema)
    splits = schema[config]
    for split in (spec.train_split, spec.eval_split):
        if split is not None and split not in splits:
            raise TrainRequestError(f"The dataset {spec.dataset} has no split {split!r} (its splits: "
                                    f"{', '.join(sorted(splits))})")
    try:
        check_columns(spec.task, spec.columns, splits[spec.train_split], spec.hyperparameters.loss)
        if spec.eval_split is not None:
            check_columns(spec.task, spec.columns, splits[spec.eval_split], spec.hyperparameters.loss)
    except TrainSpecError as exc:
        raise TrainRequestError(exc.message) from None


def _check_output(session: Session, principal: Principal, spec: TrainSpec, namespace: str) -> None:
    out = spec.output
    repo_id = out.repo_id
    if "/" not in repo_id:
        raise TrainRequestError(f"output.repo_id {repo_id!r} needs a namespace: \"{namespace}/{repo_id}\"")
    target_ns = repo_id.split("/")[0]
    existing, _ = find_repo(session, repo_type="model", repo_id=repo_id)
    readable = existing is not None and visibility.can_read(session, principal, existing)
    if out.push == "pull-request":
        if not readable:
            raise TrainRequestError(f"A pull request needs an existing model repo: {repo_id} was not found")
        assert existing is not None
        if not visibility.can_read(session, _job_principal(principal, namespace), existing):
            raise TrainRequestError(f"The run's job runs in {namespace} and could not see {repo_id} to open a pull "
                                    "request on it")
    else:
        if out.push == "new-repo" and readable:
            raise TrainRequestError(f"The output repo {repo_id} already exists: choose a new name, or push to a "
                                    "branch of it or as a pull request")
        if not can_write(session, principal, target_ns):
            raise ForbiddenError(f"You cannot write in {target_ns}: the output repo {repo_id} must be in a "
                                 "namespace you write to")
        if target_ns.lower() != namespace.lower():
            raise TrainRequestError(f"The run's job runs in {namespace} and its token writes only there: choose an "
                                    f"output repo under {namespace}/, or run the job in {target_ns}")
    if out.merged_repo_id:
        merged_ns = out.merged_repo_id.split("/")[0] if "/" in out.merged_repo_id else ""
        if merged_ns.lower() != namespace.lower() or not can_write(session, principal, merged_ns):
            raise TrainRequestError(f"The merged model's repo {out.merged_repo_id} must be under {namespace}/, "
                                    "where the run's job writes")


def check_run(hub: Hub, session: Session, principal: Principal, request: RunRequest) -> None:
    """Every check that can be made before a job exists (see the module's docstring); raises in words."""
    spec = request.spec
    model = readable_repo(session, principal, request.namespace, "model", spec.base_model, "base model")
    git = open_git(hub, model)
    commit = resolve_commit(git, spec.base_revision, "base model", spec.base_model)
    _check_model_fits_task(spec, small_json(git, commit, "config.json"))
    _check_memory(spec, request.flavor, weights_bytes(hub, session, git, commit))
    dataset = readable_repo(session, principal, request.namespace, "dataset", spec.dataset, "dataset")
    _check_dataset(spec, dataset_schema(session, dataset))
    _check_output(session, principal, spec, request.namespace)


def job_body(request: RunRequest) -> dict[str, Any]:
    """The compute job spec of a run."""
    spec = request.spec
    return {
        "dockerImage": IMAGE,
        "command": PROGRAM,
        "environment": {SPEC_ENV: json.dumps(spec.to_json(), sort_keys=True)},
        "flavor": request.flavor,
        **({"timeoutSeconds": request.timeout_seconds} if request.timeout_seconds else {}),
        "attempts": 2,
        "labels": {LABEL: spec.task, "name": (request.name or spec.output.repo_id.split("/")[-1])[:60]},
    }


def submit_run(hub: Hub, session: Session, principal: Principal, form: dict[str, Any]) -> ComputeJob:
    """Check a run (``form``: the spec's fields plus ``namespace``, ``flavor``) and queue it as a compute job;
    every refusal comes before the job exists."""
    default_ns = principal.user.name if principal.user is not None else ""
    request = parse_form(form, default_ns)
    compute.require_member(session, principal, request.namespace, write=True)
    check_run(hub, session, principal, request)
    return compute.submit(hub, session, principal, request.namespace, job_body(request),
                          initiator={"type": "train", "id": str(principal.user.id) if principal.user else ""})


# ---- reading runs back ------------------------------------------------------------------------------------------


def is_run(job: ComputeJob) -> bool:
    return LABEL in (job.labels or {}) and SPEC_ENV in ((job.spec or {}).get("environment") or {})


def run_spec(job: ComputeJob) -> dict[str, Any]:
    raw = ((job.spec or {}).get("environment") or {}).get(SPEC_ENV) or "{}"
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def get_run(session: Session, principal: Principal, namespace: str, job_id: str, *, write: bool = False) -> ComputeJob:
    job = compute.get_job(session, principal, namespace, job_id, write=write)
    if not is_run(job):
        raise NotFoundError(f"Job {job_id} in {namespace} is not a train run")
    return job


def runs_for(session: Session, principal: Principal, namespace: str) -> list[ComputeJob]:
    """The namespace's train runs, newest first (members only, as its jobs)."""
    return [job for job in compute.list_jobs(session, principal, namespace, stages=[], labels=[LABEL])
            if is_run(job)]


def log_lines(hub: Hub, job: ComputeJob) -> list[str]:
    """The job's log as lines (its last 64 MiB at most: the log is capped by the runner anyway)."""
    path = jobfiles.log_path(hub.settings, job.id)
    if not path.is_file():
        return []
    size = runner_logs.size_of(path)
    with open(path, "rb") as handle:
        if size > _LOG_READ_LIMIT:
            handle.seek(size - _LOG_READ_LIMIT)
        return handle.read().decode("utf-8", errors="replace").splitlines()


def _marker(lines: list[str], prefix: str) -> str | None:
    for line in reversed(lines):
        at = line.find(prefix)
        if at >= 0:
            return line[at + len(prefix):].strip()
    return None


def run_view(hub: Hub, job: ComputeJob, *, tail: int = 40) -> dict[str, Any]:
    """A run as the API and the run page show it: spec, stage, the metric points, the headline metric, the final
    evaluation and the pushed model (when done), the error line (when failed), the log's last lines."""
    lines = log_lines(hub, job)
    points = parse_metric_lines(lines)
    output: dict[str, Any] | None = None
    raw_output = _marker(lines, OUTPUT_PREFIX)
    if raw_output:
        try:
            parsed = json.loads(raw_output)
            output = parsed if isinstance(parsed, dict) else None
        except ValueError:
            output = None
    final: dict[str, Any] | None = None
    if output is not None and isinstance(output.get("metrics"), dict):
        final = output["metrics"]
    spec = run_spec(job)
    repo_id = (output or {}).get("repo_id") or (spec.get("output") or {}).get("repo_id")
    url = hub.settings.external_url
    pushed = None
    if output is not None and job.stage == "COMPLETED":
        revision = output.get("revision")
        pushed = {"repoId": repo_id, "url": f"{url}/{repo_id}", "revision": revision,
                  "prUrl": output.get("pr_url"), "mergedRepoId": output.get("merged_repo_id")}
    return {
        "jobId": job.id,
        "namespace": job.namespace,
        "url": f"{url}/train/{job.namespace}/{job.id}",
        "jobUrl": f"{url}/jobs/{job.namespace}/{job.id}",
        "name": (job.labels or {}).get("name"),
        "task": spec.get("task"),
        "spec": spec,
        "flavor": (job.spec or {}).get("flavor"),
        "stage": job.stage,
        "message": job.message,
        "finished": job.stage in TERMINAL,
        "attempt": job.attempt,
        "points": points,
        "metric": eval_metric_name(points),
        "eval": final,
        "output": pushed,
        "error": _marker(lines, ERROR_PREFIX),
        "logTail": [line for line in lines if OUTPUT_PREFIX not in line][-tail:],
        "createdAt": compute.job_json(hub.settings, job)["createdAt"],
    }


def form_defaults(task: str, method: str = "full") -> dict[str, Any]:
    """The hyperparameters a page shows pre-filled for ``task`` (``defaults_for``)."""
    return defaults_for(task, method)

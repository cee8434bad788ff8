"""The Train pages: ``/train`` (signed in: pick a base model, a dataset and its split, the task's columns from the
viewer's schema, the method, hyperparameters pre-filled with the task's defaults, the output repo and how to push,
the hardware; submit goes through ``train.service.submit_run`` as ``POST /api/train`` does) and a run's page
``/train/{namespace}/{job_id}`` (stage, the live training curve, the final evaluation, the pushed model, the log's
tail, Cancel for writers). Two htmx fragments fill the form (``/train/-/columns``, ``/train/-/params``) and one is
the run's live part (``/train/{namespace}/{job_id}/-/live``, polled every 2 s while the run goes on)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth.service import user_orgs
from hubstead.compute import service as compute
from hubstead.errors import HubError, NotFoundError
from hubstead.repos import visibility
from hubstead.repos.models import Repo
from hubstead.repos.service import find_repo, has_file_content_access
from hubstead.runner.hardware import flavors
from hubstead.train import chart, spec
from hubstead.train import service as train
from hubstead.web import job_views
from hubstead.web.pages import render, signed_in, viewer

router = APIRouter(include_in_schema=False)

LISTED = 200
ROLE_HINTS = {
    "text": "the text to classify", "text_pair": "a second text (optional)", "label": "the class label",
    "tokens": "the words (a list)", "tags": "one tag per word", "anchor": "a sentence",
    "positive": "a sentence like the anchor", "negative": "an unlike sentence (optional)",
    "sentence1": "the first sentence", "sentence2": "the second sentence", "prompt": "the prompt",
    "completion": "the answer to learn", "messages": "the chat messages", "chosen": "the preferred answer",
    "rejected": "the worse answer",
}
TASK_NAMES = {
    "text-classification": "Text classification", "token-classification": "Token classification (NER, tagging)",
    "sentence-embeddings": "Sentence embeddings (sentence-transformers)", "sft": "Causal LM: supervised fine-tuning",
    "dpo": "Causal LM: DPO (preferences)",
}
PARAM_ORDER = ("learning_rate", "epochs", "max_steps", "batch_size", "max_length", "warmup_ratio", "weight_decay",
               "eval_steps", "save_steps", "logging_steps", "seed", "loss", "beta", "lora_r", "lora_alpha",
               "lora_dropout")
LORA_PARAMS = ("lora_r", "lora_alpha", "lora_dropout")


def _readable_repos(session: Session, request_viewer: Any, repo_type: str) -> list[str]:
    query = (select(Repo).where(Repo.repo_type == repo_type, visibility.visible_filter(
        session, request_viewer.principal)).order_by(Repo.last_modified.desc()).limit(LISTED))
    return [repo.repo_id for repo in session.scalars(query)]


def feature_type(feature: Any) -> str:
    """A column's type in a few words (``string``, ``int64``, ``class label (negative, positive)``, ``list of
    string``), from the viewer's features JSON."""
    if isinstance(feature, list):
        return "list of " + (feature_type(feature[0]) if feature else "?")
    if not isinstance(feature, dict):
        return "?"
    kind = feature.get("_type")
    if kind == "Value":
        return str(feature.get("dtype"))
    if kind == "ClassLabel":
        names = [str(n) for n in feature.get("names") or []]
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return f"class label ({shown})"
    if kind in ("List", "Sequence", "LargeList"):
        return "list of " + feature_type(feature.get("feature"))
    if kind is None:
        return "struct {" + ", ".join(str(k) for k in list(feature)[:6]) + "}"
    return str(kind)


def _params(task: str, method: str) -> list[dict[str, Any]]:
    defaults = spec.defaults_for(task, method)
    rows = []
    for name in PARAM_ORDER:
        value = defaults.get(name)
        if name in ("loss",) and task != "sentence-embeddings":
            continue
        if name == "beta" and task != "dpo":
            continue
        if name in LORA_PARAMS and method == "full":
            continue
        rows.append({"name": name, "value": "" if value is None else value,
                     "choices": spec.EMBEDDING_LOSSES if name == "loss" else None})
    return rows


def _columns_context(session: Session, me: Any, dataset: str, task: str, loss: str | None,
                     chosen: dict[str, str] | None = None) -> dict[str, Any]:
    """What the column pickers show: the dataset's splits and columns (from the viewer), the task's roles."""
    context: dict[str, Any] = {"dataset": dataset, "splits": [], "columns": [], "roles": [], "problem": None,
                               "chosen": chosen or {}}
    if task not in spec.TASKS:
        return context
    required, optional = spec.column_roles(task, loss)
    if task == "sft":
        optional = ["messages"]
    context["roles"] = [{"role": r, "required": True, "hint": ROLE_HINTS.get(r, "")} for r in required] + [
        {"role": r, "required": False, "hint": ROLE_HINTS.get(r, "")} for r in optional]
    if not dataset:
        return context
    repo, _ = find_repo(session, repo_type="dataset", repo_id=dataset)
    if repo is None or not visibility.can_read(session, me.principal, repo):
        context["problem"] = f"The dataset {dataset} was not found."
        return context
    if not has_file_content_access(session, repo, me.principal):  # its columns are file content, as in the viewer
        context["problem"] = f"The dataset {dataset} is gated: ask for access on its page first."
        return context
    try:
        schema = train.dataset_schema(session, repo)
    except HubError as exc:
        context["problem"] = exc.message
        return context
    config = "default" if "default" in schema else next(iter(schema), None)
    if config is None:
        context["problem"] = f"The dataset viewer found no readable split in {dataset}."
        return context
    splits = schema[config]
    context["config"] = config
    context["configs"] = sorted(schema)
    context["splits"] = sorted(splits)
    first = splits.get("train") or next(iter(splits.values()))
    context["columns"] = [{"name": name, "type": feature_type(feature)} for name, feature in first.items()]
    return context


@router.get("/train", response_class=HTMLResponse)
def train_page(request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return RedirectResponse("/login?next=/train", status_code=303)
    query = request.query_params
    values = {"model": query.get("model", ""), "dataset": query.get("dataset", ""),
              "task": query.get("task", "text-classification"), "method": query.get("method", "full")}
    return _form_page(request, session, me, values)


def _form_page(request: Request, session: Session, me: Any, values: dict[str, Any], error: str | None = None,
               status_code: int = 200) -> Response:
    task = values["task"] if values.get("task") in spec.TASKS else "text-classification"
    method = values["method"] if values.get("method") in spec.METHODS else "full"
    assert me.user is not None
    namespaces = [me.user.name] + [org.name for org, role in user_orgs(session, me.user) if role in ("admin", "write")]
    model_name = (values.get("model") or "").split("/")[-1]
    runs = [train.run_view(request.app.state.hub, job) for job in train.runs_for(session, me.principal,
                                                                                 me.user.name)[:10]]
    return render(
        request, "train.html", me, status_code=status_code, error=error, values=values, task=task, method=method,
        tasks=TASK_NAMES, methods=[m for m in spec.METHODS if m != "qlora" or spec.quantization_available()],
        models=_readable_repos(session, me, "model"), datasets=_readable_repos(session, me, "dataset"),
        params=_params(task, method), given=values.get("params") or {},
        flavors=list(flavors().values()), namespaces=namespaces,
        output_default=values.get("output") or (f"{me.user.name}/{model_name}-finetuned" if model_name else ""),
        cols=_columns_context(session, me, values.get("dataset") or "", task, None, values.get("columns")),
        runs=runs, badge=job_views.badge,
    )


@router.get("/train/-/columns", response_class=HTMLResponse)
def columns_fragment(request: Request, session: Session = SessionDep) -> Response:
    """The split and column pickers for the chosen dataset and task (the viewer's schema)."""
    me = viewer(request, session)
    if me.user is None:
        raise NotFoundError("Sign in to train")
    query = request.query_params
    task = query.get("task", "text-classification")
    loss = query.get("param_loss") or None
    return render(request, "_train_columns.html", me,
                  cols=_columns_context(session, me, (query.get("dataset") or "").strip(), task, loss))


@router.get("/train/-/params", response_class=HTMLResponse)
def params_fragment(request: Request, session: Session = SessionDep) -> Response:
    """The task's hyperparameters with their defaults (``defaults_for``), for the chosen method."""
    me = viewer(request, session)
    if me.user is None:
        raise NotFoundError("Sign in to train")
    task = request.query_params.get("task", "text-classification")
    method = request.query_params.get("method", "full")
    if task not in spec.TASKS or method not in spec.METHODS:
        raise NotFoundError("Unknown task or method")
    return render(request, "_train_params.html", me, params=_params(task, method), given={})


def _number(text: str) -> Any:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def form_to_run(form: dict[str, str], me_name: str) -> dict[str, Any]:
    """The page's fields as ``POST /api/train``'s JSON."""
    task = form.get("task", "")
    method = form.get("method", "full")
    params: dict[str, Any] = {}
    defaults = spec.defaults_for(task, method) if task in spec.TASKS else {}
    for key, value in form.items():
        if key.startswith("param_") and value.strip():
            name = key.removeprefix("param_")
            params[name] = value.strip() if name == "loss" else _number(value)
    params = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
    columns = {key.removeprefix("col_"): value for key, value in form.items() if key.startswith("col_") and value}
    output_repo = form.get("output", "").strip()
    push = form.get("push", "new-repo")
    output: dict[str, Any] = {"repo_id": output_repo, "push": push}
    if push == "branch":
        output["branch"] = form.get("branch", "").strip()
    if form.get("private"):
        output["private"] = True
    if form.get("merge_adapter"):
        output["merge_adapter"] = True
    namespace = output_repo.split("/")[0] if "/" in output_repo and push != "pull-request" else me_name
    run: dict[str, Any] = {"task": task, "base_model": form.get("model", "").strip(),
                           "dataset": form.get("dataset", "").strip(), "method": method, "columns": columns,
                           "hyperparameters": params, "output": output, "namespace": namespace,
                           "flavor": form.get("flavor") or None}
    if form.get("train_split"):
        run["train_split"] = form["train_split"]
    if form.get("eval_split"):
        run["eval_split"] = form["eval_split"]
    if form.get("config"):
        run["dataset_config"] = form["config"]
    return run


@router.post("/train", response_class=HTMLResponse)
async def submit(request: Request, session: Session = SessionDep) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    me = signed_in(request, session, form.get("csrf_token", ""))
    assert me.user is not None
    run = form_to_run(form, me.user.name)
    try:
        job = train.submit_run(request.app.state.hub, session, me.principal, run)
    except HubError as exc:
        session.rollback()
        values = {**form, "params": {k.removeprefix("param_"): v for k, v in form.items() if k.startswith("param_")},
                  "columns": {k.removeprefix("col_"): v for k, v in form.items() if k.startswith("col_")}}
        return _form_page(request, session, me, values, error=exc.message, status_code=exc.status_code)
    session.commit()
    executor = getattr(request.app.state, "compute", None)
    if executor is not None:
        executor.wake()
    return RedirectResponse(f"/train/{job.namespace}/{job.id}", status_code=303)


def _run_context(request: Request, session: Session, me: Any, namespace: str, job_id: str) -> dict[str, Any]:
    job = train.get_run(session, me.principal, namespace, job_id)
    view = train.run_view(request.app.state.hub, job)
    svg = chart.loss_chart_svg(view["points"], 720, 340, title=f"Training curve · {view['task']}")
    latest: dict[str, Any] = {}
    for point in view["points"]:
        latest.update(point)
    return {"run": view, "svg": svg, "latest": latest, "badge": job_views.badge(job.stage),
            "may_write": job_views.may_write(session, me.principal, namespace)}


@router.get("/train/{namespace}/{job_id}", response_class=HTMLResponse)
def run_page(namespace: str, job_id: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return render(request, "train_run.html", me, **_run_context(request, session, me, namespace, job_id))


@router.get("/train/{namespace}/{job_id}/-/live", response_class=HTMLResponse)
def run_live(namespace: str, job_id: str, request: Request, session: Session = SessionDep) -> Response:
    """The run's changing part: stage, chart, numbers, log tail (polled every 2 s until the run ends)."""
    me = viewer(request, session)
    if me.user is None:
        raise NotFoundError("Sign in to see runs")
    return render(request, "_train_chart.html", me, **_run_context(request, session, me, namespace, job_id))


@router.post("/train/{namespace}/{job_id}/-/cancel")
def cancel_run(namespace: str, job_id: str, request: Request, csrf_token: str = Form(""),
               session: Session = SessionDep) -> Response:
    me = signed_in(request, session, csrf_token)
    job = train.get_run(session, me.principal, namespace, job_id, write=True)
    compute.cancel(session, job, me.principal)
    session.commit()
    executor = getattr(request.app.state, "compute", None)
    if executor is not None:
        executor.wake()
    return RedirectResponse(f"/train/{job.namespace}/{job.id}", status_code=303)

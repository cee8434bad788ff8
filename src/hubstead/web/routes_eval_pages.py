"""The evaluation pages: a model's "Evaluate" tab (``/models/{ns}/{name}/evaluate``: pick a benchmark, the ones
that do not fit the model shown disabled with the reason; its tasks by htmx; sample limit, few-shot, hardware, the
namespace whose compute runs it; submit goes through ``evals.service.submit_evaluation`` as ``POST
/api/evaluations`` does), a run's page (``/evaluations/{ns}/{id}``: stage, each task's progress and score, the log
tail, the job, and the commit or pull request holding the results; its live part polled every 2 s until the run
ends), a namespace's runs (``/evaluations/{ns}``), and the "Evaluation results" box of a model's card
(``/models/{ns}/{name}/-/eval-results``, loaded by htmx into the card page so a failing leaderboard can never break
the model's page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth.service import user_orgs
from hubstead.compute import service as compute
from hubstead.compute.models import ComputeJob
from hubstead.errors import HubError, NotFoundError
from hubstead.evals import leaderboard
from hubstead.evals import service as evals
from hubstead.repos.models import Repo
from hubstead.repos.service import get_readable_repo
from hubstead.runner.hardware import flavors
from hubstead.web import eval_views, job_views
from hubstead.web.pages import Viewer, render, signed_in, viewer
from hubstead.web.routes_repo import repo_context

router = APIRouter(include_in_schema=False)
RECENT_RUNS = 10


def _model(session: Session, me: Viewer, namespace: str, name: str) -> Repo:
    return get_readable_repo(session, me.principal, repo_type="model", repo_id=f"{namespace}/{name}")


def _namespaces(session: Session, me: Viewer) -> list[str]:
    """Where the viewer may run jobs: their own namespace and the orgs they write in (compute's rule)."""
    assert me.user is not None
    return [me.user.name] + [org.name for org, role in user_orgs(session, me.user) if role in ("admin", "write")]


def _choices(session: Session, me: Viewer, repo: Repo) -> list[dict[str, Any]]:
    return [eval_views.choice(entry) for entry in evals.benchmark_choices(session, me.principal, repo)]


def _model_runs(request: Request, session: Session, me: Viewer, repo: Repo) -> list[dict[str, Any]]:
    """The viewer's latest runs of this model (their own namespace's)."""
    assert me.user is not None
    hub = request.app.state.hub
    views = []
    for job in evals.runs_for(session, me.principal, me.user.name):
        view = evals.run_view(hub, job)
        if view.get("model") == repo.repo_id:
            views.append(view)
        if len(views) >= RECENT_RUNS:
            break
    return views


def _form_page(request: Request, session: Session, me: Viewer, repo: Repo, values: dict[str, Any],
               error: str | None = None, status_code: int = 200) -> Response:
    context: dict[str, Any] = {"tab": "evaluate", "values": values, "error": error, "badge": job_views.badge,
                               **repo_context(session, me, repo)}
    if me.user is not None:
        choices = _choices(session, me, repo)
        picked = next((c for c in choices if c["id"] == values.get("benchmark")), None)
        if picked is None:
            picked = next((c for c in choices if not c["reason"]), None)
        context.update(choices=choices, picked=picked, chosen_tasks=values.get("tasks") or [],
                       namespaces=_namespaces(session, me), flavors=list(flavors().values()),
                       runs=_model_runs(request, session, me, repo), limits=eval_views.limits())
    return render(request, "evaluate.html", me, status_code=status_code, **context)


@router.get("/models/{namespace}/{name}/evaluate", response_class=HTMLResponse)
def evaluate_page(namespace: str, name: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    repo = _model(session, me, namespace, name)
    values = {"benchmark": request.query_params.get("benchmark", "")}
    return _form_page(request, session, me, repo, values)


@router.get("/models/{namespace}/{name}/evaluate/-/tasks", response_class=HTMLResponse)
def tasks_fragment(namespace: str, name: str, request: Request, session: Session = SessionDep) -> Response:
    """The chosen benchmark's tasks as checkboxes (metric, framework), and few-shot where lm-eval runs them."""
    me = viewer(request, session)
    if me.user is None:
        raise NotFoundError("Sign in to evaluate")
    repo = _model(session, me, namespace, name)
    wanted = request.query_params.get("benchmark", "")
    picked = next((c for c in _choices(session, me, repo) if c["id"] == wanted), None)
    return render(request, "_eval_tasks.html", me, picked=picked, chosen_tasks=[], values={})


@router.post("/models/{namespace}/{name}/evaluate", response_class=HTMLResponse)
async def submit(namespace: str, name: str, request: Request, session: Session = SessionDep) -> Response:
    raw = await request.form()
    fields = {key: str(value) for key, value in raw.items() if key != "tasks"}
    tasks = [str(value) for value in raw.getlist("tasks")]
    me = signed_in(request, session, fields.get("csrf_token", ""))
    repo = _model(session, me, namespace, name)
    form = eval_views.form_to_request(repo.repo_id, fields, tasks)
    try:
        job = evals.submit_evaluation(request.app.state.hub, session, me.principal, form)
    except HubError as exc:
        session.rollback()
        repo = _model(session, me, namespace, name)
        return _form_page(request, session, me, repo, {**fields, "tasks": tasks}, error=exc.message,
                          status_code=exc.status_code)
    session.commit()
    executor = getattr(request.app.state, "compute", None)
    if executor is not None:
        executor.wake()
    return RedirectResponse(f"/evaluations/{job.namespace}/{job.id}", status_code=303)


@router.get("/models/{namespace}/{name}/-/eval-results", response_class=HTMLResponse)
def results_fragment(namespace: str, name: str, request: Request, session: Session = SessionDep) -> Response:
    """The card's "Evaluation results" box: empty when the model has none the viewer may see."""
    me = viewer(request, session)
    repo = _model(session, me, namespace, name)
    rows = eval_views.result_rows(leaderboard.model_results(session, me.principal, repo))
    return render(request, "_eval_results.html", me, results=rows, repo=repo)


def _run_context(request: Request, session: Session, me: Viewer, namespace: str, job_id: str) -> dict[str, Any]:
    job = evals.get_run(session, me.principal, namespace, job_id)
    view = evals.run_view(request.app.state.hub, job)
    writing = eval_views.writing_results(view, job.finished_at)
    return {"run": view, "tasks": eval_views.task_rows(view), "badge": job_views.badge(job.stage),
            "writing": writing, "following": not view["finished"] or writing,
            "may_write": job_views.may_write(session, me.principal, namespace), "score": eval_views.score}


@router.get("/evaluations/{namespace}", response_class=HTMLResponse)
def runs_page(namespace: str, request: Request, session: Session = SessionDep) -> Response:
    """A namespace's evaluation runs, newest first (its members only, as its jobs)."""
    me = viewer(request, session)
    if me.user is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    hub = request.app.state.hub
    jobs: list[ComputeJob] = evals.runs_for(session, me.principal, namespace)
    runs = [evals.run_view(hub, job) for job in jobs[:200]]
    return render(request, "evaluations.html", me, namespace=namespace, runs=runs, badge=job_views.badge,
                  score=eval_views.score, total=len(jobs))


@router.get("/evaluations/{namespace}/{job_id}", response_class=HTMLResponse)
def run_page(namespace: str, job_id: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return render(request, "eval_run.html", me, **_run_context(request, session, me, namespace, job_id))


@router.get("/evaluations/{namespace}/{job_id}/-/live", response_class=HTMLResponse)
def run_live(namespace: str, job_id: str, request: Request, session: Session = SessionDep) -> Response:
    """The run's changing part: stage, tasks' progress and scores, results link, log tail (polled every 2 s)."""
    me = viewer(request, session)
    if me.user is None:
        raise NotFoundError("Sign in to see evaluations")
    return render(request, "_eval_live.html", me, **_run_context(request, session, me, namespace, job_id))


@router.post("/evaluations/{namespace}/{job_id}/-/cancel")
def cancel_run(namespace: str, job_id: str, request: Request, csrf_token: str = Form(""),
               session: Session = SessionDep) -> Response:
    me = signed_in(request, session, csrf_token)
    job = evals.get_run(session, me.principal, namespace, job_id, write=True)
    compute.cancel(session, job, me.principal)
    session.commit()
    executor = getattr(request.app.state, "compute", None)
    if executor is not None:
        executor.wake()
    return RedirectResponse(f"/evaluations/{job.namespace}/{job.id}", status_code=303)

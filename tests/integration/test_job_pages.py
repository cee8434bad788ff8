"""The Jobs pages over HTTP with a web session: a namespace's list (``/jobs/{ns}``: stage badges, filters, the
scheduled jobs with their buttons) and a job's page (``/jobs/{ns}/{id}``, the client's ``JobInfo.url``: its spec,
secrets by name only, the polled status fragment, Cancel and Rerun forms, CSRF-checked, writers only); the job's
log and metrics streams accept the browser's session; only members see any of it (others get the 404 page)."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from huggingface_hub import HfApi

from support import LiveServer, web_session

pytestmark = pytest.mark.slow

PASSWORD = "job-pages-pass-1234"
PY = "hubstead/python"


def _wait_stage(api: HfApi, job_id: str, ns: str, stages: tuple[str, ...], timeout: float = 60) -> str:
    deadline = time.time() + timeout
    stage = ""
    while time.time() < deadline:
        stage = api.inspect_job(job_id=job_id, namespace=ns).status.stage
        if stage in stages:
            return stage
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} stayed {stage}")


def test_list_and_job_page_for_members_only(server: LiveServer) -> None:
    """A finished job shows on its namespace's list (link, image, badge; the stage filter keeps it or not) and on
    its page (command, env names and values, secret names but never their values, labels, flavor, the terminal
    status fragment that stops polling); its log streams to the browser's session; the profile has a Jobs tab for
    its owner only. A stranger's session gets 404 everywhere (pages, fragment, log); anonymous is sent to sign in."""
    owner = server.account("jpown", password=PASSWORD)
    stranger = server.account("jpstr", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=owner.write_token)
    ns = owner.name
    job = api.run_job(image=PY, command=["python", "-c", "print('hello from the page job')"], env={"GREETING": "hi-there"},
                      secrets={"API_KEY": "never-shown-secret"}, labels={"team": "nlp"}, namespace=ns)  # fmt: skip
    assert job.url == f"{server.url}/jobs/{ns}/{job.id}"
    assert _wait_stage(api, job.id, ns, ("COMPLETED", "ERROR")) == "COMPLETED"

    web, _ = web_session(server, owner.name, PASSWORD)
    listing = web.get(f"/jobs/{ns}")
    assert listing.status_code == 200, listing.text[:2000]
    assert f'href="/jobs/{ns}/{job.id}"' in listing.text and PY in listing.text
    assert re.search(r'class="stage-badge ok"[^>]*data-stage="COMPLETED"', listing.text), listing.text[:3000]
    assert "team=nlp" in listing.text
    assert job.id in web.get(f"/jobs/{ns}", params={"stage": "COMPLETED"}).text
    assert job.id not in web.get(f"/jobs/{ns}", params={"stage": "RUNNING"}).text
    assert web.get(f"/jobs/{ns}", params={"stage": "NOPE"}).status_code == 400
    assert web.get(f"/jobs/{ns}", params={"p": "x"}).status_code == 400

    page = web.get(f"/jobs/{ns}/{job.id}")
    assert page.status_code == 200, page.text[:2000]
    for shown in ("hello from the page job", "GREETING", "hi-there", "API_KEY", "team", "nlp", "cpu-basic"):
        assert shown in page.text, shown
    assert "never-shown-secret" not in page.text
    assert f'new EventSource("/api/jobs/{ns}/{job.id}/logs")' in page.text
    assert 'action="/jobs/' + ns + "/" + job.id + '/-/rerun"' in page.text
    assert "/-/cancel" not in page.text  # a finished job has nothing to cancel
    fragment = web.get(f"/jobs/{ns}/{job.id}/-/status")
    assert fragment.status_code == 200 and 'data-stage="COMPLETED"' in fragment.text
    assert "hx-trigger" not in fragment.text  # terminal: the page stops polling

    log = web.get(f"/api/jobs/{ns}/{job.id}/logs")  # the page's EventSource: the session cookie, no token
    assert log.status_code == 200 and "hello from the page job" in log.text
    assert web.get(f"/api/jobs/{ns}/{job.id}/metrics").status_code == 200

    assert f'href="/jobs/{ns}"' in web.get(f"/{ns}").text  # the Jobs tab on the owner's own profile

    other, _ = web_session(server, stranger.name, PASSWORD)
    for path in (f"/jobs/{ns}", f"/jobs/{ns}/{job.id}", f"/jobs/{ns}/{job.id}/-/status", f"/jobs/{ns}/nosuchjob"):
        answer = other.get(path)
        assert answer.status_code == 404 and "<html" in answer.text, (path, answer.status_code)
    assert other.get(f"/api/jobs/{ns}/{job.id}/logs").status_code == 404
    assert f'href="/jobs/{ns}"' not in other.get(f"/{ns}").text
    assert "hello from the page job" not in other.get(f"/api/jobs/{ns}/{job.id}/logs").text

    anonymous = httpx.get(f"{server.url}/jobs/{ns}/{job.id}")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == f"/login?next=/jobs/{ns}/{job.id}"
    assert httpx.get(f"{server.url}/api/jobs/{ns}/{job.id}/logs").status_code == 401


def test_cancel_and_rerun_forms_need_csrf_and_write(server: LiveServer) -> None:
    """On an org's running job: a reading member sees the page but no buttons and is refused (403) when posting; a
    post without the CSRF token is refused (403) and the job runs on; the writer's Cancel ends it (CANCELED, by
    them), a second cancel is a 409 page; Rerun queues a copy (initiator: the job) and lands on its page."""
    writer = server.account("jpwri", password=PASSWORD)
    reader = server.account("jprea", password=PASSWORD)
    org = server.unique("jporg")
    server.cli("orgs", "create", org, "--owner", writer.name)
    server.cli("orgs", "add-member", org, reader.name, "--role", "read")
    api = HfApi(endpoint=server.url, token=writer.write_token)
    job = api.run_job(image=PY, command=["python", "-c", "import time; print('started', flush=True); time.sleep(120)"],
                      namespace=org)  # fmt: skip
    base = f"/jobs/{org}/{job.id}"

    web, csrf = web_session(server, writer.name, PASSWORD)
    assert f'href="/jobs/{org}"' in web.get(f"/{org}").text  # the org's Jobs tab, for its members
    page = web.get(base)
    assert page.status_code == 200 and f'action="{base}/-/cancel"' in page.text
    fragment = web.get(f"{base}/-/status")
    assert 'hx-trigger="every 2s"' in fragment.text  # not terminal: polled

    read_web, read_csrf = web_session(server, reader.name, PASSWORD)
    read_page = read_web.get(base)
    assert read_page.status_code == 200 and "/-/cancel" not in read_page.text and "/-/rerun" not in read_page.text
    assert read_web.post(f"{base}/-/cancel", data={"csrf_token": read_csrf}).status_code == 403
    assert read_web.post(f"{base}/-/rerun", data={"csrf_token": read_csrf}).status_code == 403

    refused = web.post(f"{base}/-/cancel", data={})
    assert refused.status_code == 403
    assert api.inspect_job(job_id=job.id, namespace=org).status.stage in ("SCHEDULING", "RUNNING")

    cancelled = web.post(f"{base}/-/cancel", data={"csrf_token": csrf})
    assert cancelled.status_code == 303 and cancelled.headers["location"] == base
    info = api.inspect_job(job_id=job.id, namespace=org)
    assert info.status.stage == "CANCELED" and writer.name in (info.status.message or "")
    again = web.post(f"{base}/-/cancel", data={"csrf_token": csrf})
    assert again.status_code == 409 and "already ended" in again.text

    rerun = web.post(f"{base}/-/rerun", data={"csrf_token": csrf})
    assert rerun.status_code == 303, rerun.text[:2000]
    new_id = rerun.headers["location"].rsplit("/", 1)[-1]
    assert rerun.headers["location"] == f"/jobs/{org}/{new_id}" and new_id != job.id
    copy = api.inspect_job(job_id=new_id, namespace=org)
    assert copy.initiator is not None and copy.initiator.type == "duplicated-job" and copy.initiator.id == job.id
    assert f'href="/jobs/{org}/{job.id}"' in web.get(f"/jobs/{org}/{new_id}").text  # "rerun of" links back
    api.cancel_job(job_id=new_id, namespace=org)
    assert "Canceled" in web.get(f"/jobs/{org}", params={"stage": "CANCELED"}).text


def test_scheduled_jobs_on_the_list_with_their_buttons(server: LiveServer) -> None:
    """A scheduled job shows on the list with its schedule and next run; Suspend, Resume, Run now and Delete (CSRF
    forms) change what the API reports; Run now lands on the new job's page."""
    owner = server.account("jpsch", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=owner.write_token)
    ns = owner.name
    scheduled = api.create_scheduled_job(image=PY, command=["python", "-c", "print('tick')"], schedule="@hourly",
                                         namespace=ns)  # fmt: skip
    web, csrf = web_session(server, owner.name, PASSWORD)
    listing = web.get(f"/jobs/{ns}").text
    assert scheduled.id in listing and "@hourly" in listing
    base = f"/jobs/{ns}/-/scheduled/{scheduled.id}"
    assert f'action="{base}/suspend"' in listing

    assert web.post(f"{base}/suspend", data={}).status_code == 403
    assert web.post(f"{base}/suspend", data={"csrf_token": csrf}).status_code == 303
    assert api.inspect_scheduled_job(scheduled_job_id=scheduled.id, namespace=ns).suspend is True
    assert f'action="{base}/resume"' in web.get(f"/jobs/{ns}").text
    assert web.post(f"{base}/resume", data={"csrf_token": csrf}).status_code == 303
    info = api.inspect_scheduled_job(scheduled_job_id=scheduled.id, namespace=ns)
    assert info.suspend is False and info.status.next_job_run_at is not None
    ran = web.post(f"{base}/run", data={"csrf_token": csrf})
    assert ran.status_code == 303 and ran.headers["location"].startswith(f"/jobs/{ns}/")
    job_id = ran.headers["location"].rsplit("/", 1)[-1]
    started = api.inspect_job(job_id=job_id, namespace=ns).initiator
    assert started is not None and started.type == "scheduled-job"
    assert web.post(f"{base}/nonsense", data={"csrf_token": csrf}).status_code == 404
    assert web.post(f"{base}/delete", data={"csrf_token": csrf}).status_code == 303
    assert list(api.list_scheduled_jobs(namespace=ns)) == []


def test_the_list_is_newest_first_fifty_a_page(own_server_with) -> None:  # type: ignore[no-untyped-def]
    """On a hub with one slot held by a long job (every later job stays queued), 51 jobs: page 1 holds the newest
    50 (the last one submitted on top, each waiting with its queue time), an "Older" link leads to page 2 with the
    first one; the filter counts 50 Scheduling."""
    server = own_server_with({"HUBSTEAD_COMPUTE_SLOTS": "1", "HUBSTEAD_COMPUTE_PER_NAMESPACE": "1"})
    owner = server.account("jppage", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=owner.write_token)
    ids = [api.run_job(image=PY, command=["python", "-c", "import time; time.sleep(120)"], namespace=owner.name).id]
    _wait_stage(api, ids[0], owner.name, ("RUNNING",))
    ids += [api.run_job(image=PY, command=["python", "-c", f"print({i})"], namespace=owner.name).id for i in range(50)]
    web, _ = web_session(server, owner.name, PASSWORD)
    first = web.get(f"/jobs/{owner.name}").text
    shown = re.findall(r'<tr id="job-([0-9a-f]+)"', first)
    assert shown == ids[::-1][:50]
    assert 'data-stage="SCHEDULING"' in first and 'title="waiting"' in first
    assert "Older →" in first and "?p=2" in first
    second = web.get(f"/jobs/{owner.name}", params={"p": "2"}).text
    assert re.findall(r'<tr id="job-([0-9a-f]+)"', second) == [ids[0]] and "← Newer" in second
    assert 'data-stage="RUNNING"' in second
    assert re.search(r'Scheduling <span class="count">50</span>', first)
    api.cancel_job(job_id=ids[0], namespace=owner.name)

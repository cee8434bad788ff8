"""The Hub's Jobs API through the real client (huggingface_hub's run_job, run_uv_job, inspect_job, list_jobs,
fetch_job_logs, fetch_job_metrics, cancel_job, rerun_job, labels, wait_for_job, scheduled jobs) against a live
server whose executor runs each job sandboxed on the one runner."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from support import Account, LiveServer

pytestmark = pytest.mark.slow

PY = "hubstead/python"


def _api(server: LiveServer, account: Account) -> HfApi:
    return HfApi(endpoint=server.url, token=account.write_token)


def _wait(api: HfApi, job_id: str, namespace: str, timeout: float = 90) -> object:
    return api.wait_for_job(job_id, namespace=namespace, timeout=timeout, poll_interval=0.3)


def test_a_job_runs_sandboxed_and_its_log_and_status_read_back(server: LiveServer) -> None:
    """run_job on the hub's Python: COMPLETED, its log through fetch_job_logs (follow and not), its environment
    (JOB_ID, HF_ENDPOINT, a home of its own, the hub's data invisible), durations, list by stage and label."""
    account = server.account("jobs")
    api = _api(server, account)
    code = (
        "import os, pathlib; print('hello from the job'); print('id', os.environ['JOB_ID']); "
        "print('endpoint', os.environ['HF_ENDPOINT']); print('home', os.environ['HOME'], os.getcwd()); "
        f"print('data visible', pathlib.Path({str(server.data_dir)!r}).joinpath('hubstead.db').exists()); "
        "import hubstead.train.spec; print('hub code importable')"
    )
    job = api.run_job(image=PY, command=["python", "-c", code], labels={"team": "nlp"}, namespace=account.name)
    assert job.status.stage in ("SCHEDULING", "RUNNING")
    assert job.owner.name == account.name and job.labels["team"] == "nlp"
    done = _wait(api, job.id, account.name)
    assert done.status.stage == "COMPLETED", done.status
    assert done.started_at is not None and done.finished_at is not None
    lines = list(api.fetch_job_logs(job_id=job.id, namespace=account.name))
    text = "\n".join(lines)
    assert "hello from the job" in text and f"id {job.id}" in text, text
    assert f"endpoint {server.url}" in text
    assert "home /home/user /home/user" in text
    assert "data visible False" in text
    assert "hub code importable" in text  # hubstead/python jobs import the hub's code, wherever it is installed
    followed = list(api.fetch_job_logs(job_id=job.id, namespace=account.name, follow=True))
    assert "hello from the job" in "\n".join(followed)
    tail = list(api.fetch_job_logs(job_id=job.id, namespace=account.name, tail=1))
    assert len(tail) == 1
    listed = [j.id for j in api.list_jobs(namespace=account.name, status="COMPLETED")]
    assert job.id in listed
    assert [j.id for j in api.list_jobs(namespace=account.name, labels={"team": "nlp"})] == [job.id]
    assert list(api.list_jobs(namespace=account.name, labels={"team": "cv"})) == []
    relabelled = api.update_job_labels(job_id=job.id, labels={"team": "cv"}, namespace=account.name)
    assert relabelled.labels == {"team": "cv"}
    hardware = [h.name for h in api.list_jobs_hardware()]
    assert "cpu-basic" in hardware


def test_a_job_fails_in_words_and_retries_keep_its_home(server: LiveServer) -> None:
    """A failing command ends in ERROR with the exit status and the job's own reason line; with attempts=2 the
    second attempt runs in the same home (the first attempt's file is there) and completes."""
    account = server.account("jobfail")
    api = _api(server, account)
    failing = api.run_job(image=PY, command=["python", "-c", "import sys; print('HUBSTEAD-ERROR the labels do not "
                                             "match'); sys.exit(3)"], namespace=account.name)  # fmt: skip
    done = _wait(api, failing.id, account.name)
    assert done.status.stage == "ERROR"
    assert "the labels do not match" in done.status.message and "exit code 3" in done.status.message
    retry_code = (
        "import pathlib, sys; marker = pathlib.Path.home() / 'attempted'\n"
        "if not marker.exists():\n    marker.write_text('1'); print('first attempt fails'); sys.exit(1)\n"
        "print('second attempt finds', marker.read_text())"
    )
    retried = api.run_job(image=PY, command=["python", "-c", retry_code], attempts=2, namespace=account.name)
    done = _wait(api, retried.id, account.name)
    assert done.status.stage == "COMPLETED", done.status
    text = "\n".join(api.fetch_job_logs(job_id=retried.id, namespace=account.name))
    assert "first attempt fails" in text and "second attempt finds 1" in text


def test_cancel_stops_the_whole_tree_and_a_finished_job_cannot_be_cancelled(server: LiveServer) -> None:
    """cancel_job on a running job that started children: CANCELED, and none of its processes is left; cancelling
    it again is a 409 in words. A timeout ends a job in ERROR saying so."""
    account = server.account("jobcancel")
    api = _api(server, account)
    code = (
        "import subprocess, time, os; p = subprocess.Popen(['sleep', '300']); print('child', p.pid, flush=True); "
        "time.sleep(300)"
    )
    job = api.run_job(image=PY, command=["python", "-c", code], namespace=account.name)
    deadline = time.time() + 60
    while time.time() < deadline:
        if api.inspect_job(job_id=job.id, namespace=account.name).status.stage == "RUNNING":
            text = "\n".join(api.fetch_job_logs(job_id=job.id, namespace=account.name))
            if "child" in text:
                break
        time.sleep(0.3)
    assert len(_processes_of(job.id)) >= 2, "the job and its child should be running"
    api.cancel_job(job_id=job.id, namespace=account.name)
    done = _wait(api, job.id, account.name, timeout=30)
    assert done.status.stage == "CANCELED"
    assert account.name in (done.status.message or "")
    text = "\n".join(api.fetch_job_logs(job_id=job.id, namespace=account.name))
    child = next(line.split()[1] for line in text.splitlines() if line.startswith("child "))
    # The child's pid is the one inside the job's PID namespace: find the host's process by its command line and
    # the job's environment, and wait for the tree to be gone (stopping it takes at most its grace seconds).
    deadline = time.time() + 15
    while time.time() < deadline and _processes_of(job.id):
        time.sleep(0.2)
    assert child and not _processes_of(job.id), "the job's processes outlived the cancel"
    again = httpx.post(f"{server.url}/api/jobs/{account.name}/{job.id}/cancel", headers={"Authorization": f"Bearer {account.write_token}"})
    assert again.status_code == 409 and "already ended" in again.json()["error"]
    slow = api.run_job(image=PY, command=["python", "-c", "import time; time.sleep(60)"], timeout=2,
                       namespace=account.name)  # fmt: skip
    done = _wait(api, slow.id, account.name)
    assert done.status.stage == "ERROR" and "time" in done.status.message.lower(), done.status


def _processes_of(job_id: str) -> list[Path]:
    """Host processes whose environment says they belong to the job (JOB_ID)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"JOB_ID={job_id}".encode() in (proc / "environ").read_bytes().split(b"\x00"):
                found.append(proc)
        except OSError:
            continue
    return found


def test_jobs_are_private_to_their_namespace_and_bad_specs_are_refused(server: LiveServer) -> None:
    """Another user sees no job of mine (404), cannot cancel it; a read token cannot run one (403); an unknown
    flavor, an image this host cannot run, SSH or exposed ports are refused at submit, before anything is queued."""
    owner, other = server.account("jobown"), server.account("jobother")
    api = _api(server, owner)
    job = api.run_job(image=PY, command=["python", "-c", "print(1)"], namespace=owner.name)
    for method, path in (("GET", ""), ("POST", "/cancel"), ("GET", "/logs"), ("POST", "/duplicate")):
        answer = httpx.request(method, f"{server.url}/api/jobs/{owner.name}/{job.id}{path}", headers={"Authorization": f"Bearer {other.write_token}"})
        assert answer.status_code == 404, (method, path, answer.status_code)
    listed = httpx.get(f"{server.url}/api/jobs/{owner.name}", headers={"Authorization": f"Bearer {other.write_token}"})
    assert listed.status_code == 404
    read_only = httpx.post(f"{server.url}/api/jobs/{owner.name}", headers={"Authorization": f"Bearer {owner.read_token}"},
                           json={"dockerImage": PY, "command": ["python", "-c", "1"]})  # fmt: skip
    assert read_only.status_code == 403
    before = len(list(api.list_jobs(namespace=owner.name)))
    for body, words in (
        ({"dockerImage": PY, "command": ["python"], "flavor": "a100x8"}, "Unknown flavor"),
        ({"dockerImage": "python:3.12", "command": ["python", "-c", "1"]}, "cannot run the image python:3.12"),
        ({"dockerImage": PY, "command": ["python"], "ssh": {"enabled": True}}, "SSH"),
        ({"dockerImage": PY, "command": ["python"], "expose": {"ports": [8000]}}, "expose"),
        ({"dockerImage": PY, "command": []}, "command"),
        ({"dockerImage": PY, "command": ["python"], "timeoutSeconds": 10**9}, "timeoutSeconds"),
        ({"dockerImage": PY, "command": ["python"], "environment": {"BAD KEY": "1"}}, "environment variable"),
        ({"dockerImage": PY, "command": ["python"], "volumes": [{"type": "model", "source": "a/b", "mountPath": "/etc"}]},
         "mountPath"),
    ):
        answer = httpx.post(f"{server.url}/api/jobs/{owner.name}", headers={"Authorization": f"Bearer {owner.write_token}"}, json=body)
        assert answer.status_code == 400, (body, answer.status_code, answer.text)
        assert words in answer.json()["error"], (words, answer.json())
    assert len(list(api.list_jobs(namespace=owner.name))) == before


def test_rerun_and_metrics(server: LiveServer) -> None:
    """rerun_job starts the same spec again as a new job (initiator: the job it duplicates); fetch_job_metrics
    streams CPU and memory samples of a running job."""
    account = server.account("jobrerun")
    api = _api(server, account)
    job = api.run_job(image=PY, command=["python", "-c", "import time\nx = bytearray(50 * 2**20)\n"
                                         "t = time.time()\nwhile time.time() - t < 4: pass"],
                      env={"GREETING": "hi"}, secrets={"API_KEY": "s3cret"}, namespace=account.name)  # fmt: skip
    samples = []
    for sample in api.fetch_job_metrics(job_id=job.id, namespace=account.name, follow=True):
        samples.append(sample)
        if len(samples) >= 2:
            break
    assert samples and "memory_used_bytes" in samples[-1]["data"], samples
    assert max(s["data"]["memory_used_bytes"] for s in samples) > 40 * 2**20
    done = _wait(api, job.id, account.name)
    assert done.status.stage == "COMPLETED"
    assert done.secrets == {"API_KEY": "*****"}
    again = api.rerun_job(job_id=job.id, namespace=account.name)
    assert again.id != job.id and again.environment == {"GREETING": "hi"}
    assert again.initiator is not None and again.initiator.id == job.id
    assert _wait(api, again.id, account.name).status.stage == "COMPLETED"


PUSH_SCRIPT = '''# /// script
# dependencies = ["huggingface_hub"]
# ///
import os, sys
from huggingface_hub import HfApi

api = HfApi()  # HF_ENDPOINT and HF_TOKEN come from the job's environment
repo = sys.argv[1]
api.create_repo(repo, exist_ok=True)
api.upload_file(path_or_fileobj=b"made by a job", path_in_repo="job.txt", repo_id=repo)
print("pushed", repo, "as", api.whoami()["name"])
'''


def test_run_uv_job_runs_a_hub_script_that_pushes_with_its_token(server: LiveServer) -> None:
    """run_uv_job on a script kept in a hub repo (its URL): uv installs the script's dependencies and runs it in
    the sandbox; the job's HF_TOKEN pushes a new repo in its owner's namespace, and only there (an org the user
    belongs to is out of the token's reach); the token dies with the job."""
    account = server.account("uvjob")
    api = _api(server, account)
    org = server.unique("uvorg")
    server.cli("orgs", "create", org, "--owner", account.name)
    scripts = f"{account.name}/{server.unique('scripts')}"
    api.create_repo(scripts, repo_type="dataset")
    api.upload_file(path_or_fileobj=PUSH_SCRIPT.encode(), path_in_repo="push.py", repo_id=scripts, repo_type="dataset")
    url = f"{server.url}/datasets/{scripts}/resolve/main/push.py"
    target = f"{account.name}/{server.unique('made-by-job')}"
    job = api.run_uv_job(url, script_args=[target], namespace=account.name, timeout=300)
    done = _wait(api, job.id, account.name, timeout=300)
    text = "\n".join(api.fetch_job_logs(job_id=job.id, namespace=account.name))
    assert done.status.stage == "COMPLETED", (done.status, text[-3000:])
    assert f"pushed {target} as {account.name}" in text
    assert api.hf_hub_download(target, "job.txt") and api.model_info(target).id == target
    tokens = httpx.get(f"{server.url}/api/whoami-v2", headers={"Authorization": f"Bearer {account.write_token}"})
    assert tokens.status_code == 200
    elsewhere = api.run_uv_job(url, script_args=[f"{org}/{server.unique('nope')}"], namespace=account.name,
                               timeout=300)  # fmt: skip
    failed = _wait(api, elsewhere.id, account.name, timeout=300)
    assert failed.status.stage == "ERROR"
    assert "403" in "\n".join(api.fetch_job_logs(job_id=elsewhere.id, namespace=account.name)) or "404" in "\n".join(
        api.fetch_job_logs(job_id=elsewhere.id, namespace=account.name)
    )


def test_scheduled_jobs(server: LiveServer) -> None:
    """create_scheduled_job (cron), list, inspect (next run), suspend and resume, update the schedule, run now
    (a job whose initiator is the schedule), labels, delete; a bad schedule is refused in words."""
    account = server.account("sched")
    api = _api(server, account)
    scheduled = api.create_scheduled_job(image=PY, command=["python", "-c", "print('tick')"], schedule="@hourly",
                                         namespace=account.name)  # fmt: skip
    assert scheduled.schedule == "@hourly" and scheduled.status.next_job_run_at is not None
    assert scheduled.status.next_job_run_at.minute == 0
    assert [s.id for s in api.list_scheduled_jobs(namespace=account.name)] == [scheduled.id]
    api.suspend_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name)
    info = api.inspect_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name)
    assert info.suspend is True and info.status.next_job_run_at is None
    api.resume_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name)
    assert api.inspect_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name).suspend is False
    updated = api.update_scheduled_job_schedule(scheduled_job_id=scheduled.id, schedule="30 6 * * 1",
                                                namespace=account.name)  # fmt: skip
    assert updated.schedule == "30 6 * * 1"
    assert updated.status.next_job_run_at.weekday() == 0 and updated.status.next_job_run_at.hour == 6
    job = api.trigger_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name)
    assert job.initiator is not None and job.initiator.type == "scheduled-job"
    assert _wait(api, job.id, account.name).status.stage == "COMPLETED"
    assert "tick" in "\n".join(api.fetch_job_logs(job_id=job.id, namespace=account.name))
    last = api.inspect_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name).status.last_job
    assert last is not None and last.id == job.id
    relabelled = api.update_scheduled_job_labels(scheduled_job_id=scheduled.id, labels={"kind": "nightly"},
                                                 namespace=account.name)  # fmt: skip
    assert relabelled.job_spec.labels == {"kind": "nightly"}
    bad = httpx.post(f"{server.url}/api/scheduled-jobs/{account.name}",
                     headers={"Authorization": f"Bearer {account.write_token}"},
                     json={"jobSpec": {"dockerImage": PY, "command": ["python"]}, "schedule": "61 * * * *"})  # fmt: skip
    assert bad.status_code == 400 and "minute" in bad.json()["error"]
    api.delete_scheduled_job(scheduled_job_id=scheduled.id, namespace=account.name)
    assert list(api.list_scheduled_jobs(namespace=account.name)) == []


OLD_CLIENT_SCRIPT = """
import json, time
import huggingface_hub
from huggingface_hub import HfApi
api = HfApi(token={token!r})
job = api.run_job(image="hubstead/python", command=["python", "-c", "print('old client job')"], namespace={ns!r})
deadline = time.time() + 90
while time.time() < deadline:
    info = api.inspect_job(job_id=job.id, namespace={ns!r})
    if info.status.stage in ("COMPLETED", "ERROR", "CANCELED"):
        break
    time.sleep(0.3)
logs = list(api.fetch_job_logs(job_id=job.id, namespace={ns!r}))
long = api.run_job(image="hubstead/python", command=["python", "-c", "import time; time.sleep(60)"], namespace={ns!r})
api.cancel_job(job_id=long.id, namespace={ns!r})
listed = [j.id for j in api.list_jobs(namespace={ns!r})]
print(json.dumps({{"version": huggingface_hub.__version__, "stage": info.status.stage, "logs": logs,
                  "listed": job.id in listed and long.id in listed}}))
"""


def test_jobs_with_a_1x_client(server: LiveServer, env_for) -> None:  # type: ignore[no-untyped-def]
    """huggingface_hub 1.33 (0.30.2, the oldest we claim, has no jobs API): run_job, inspect_job,
    fetch_job_logs, cancel_job and list_jobs."""
    from client_venvs import client_python
    from support import last_json, run_client

    account = server.account("oldjob")
    script = OLD_CLIENT_SCRIPT.format(token=account.write_token, ns=account.name)
    out = last_json(run_client(script, env_for(None), python=client_python("1.33.0")))
    assert isinstance(out, dict)
    assert out["version"] == "1.33.0" and out["stage"] == "COMPLETED", out
    assert "old client job" in out["logs"] and out["listed"]


def test_the_job_token_is_scoped_and_dies_with_the_job(server: LiveServer) -> None:
    """The job's HF_TOKEN is its owner's, reads the owner's private repos, and stops working when the job ends;
    the job cannot see another job's home or the hub's files."""
    account = server.account("jobtok")
    api = _api(server, account)
    private = f"{account.name}/{server.unique('secret-model')}"
    api.create_repo(private, private=True)
    code = (
        "import os, json, urllib.request, pathlib\n"
        "req = urllib.request.Request(os.environ['HF_ENDPOINT'] + '/api/models/' + os.environ['REPO'],\n"
        "    headers={'Authorization': 'Bearer ' + os.environ['HF_TOKEN']})\n"
        "print('private readable', json.load(urllib.request.urlopen(req))['id'])\n"
        "print('TOKEN', os.environ['HF_TOKEN'])\n"
        f"print('other homes visible', pathlib.Path({str(server.data_dir / 'compute')!r}).exists())\n"
    )
    job = api.run_job(image=PY, command=["python", "-c", code], env={"REPO": private}, namespace=account.name)
    assert _wait(api, job.id, account.name).status.stage == "COMPLETED"
    text = "\n".join(api.fetch_job_logs(job_id=job.id, namespace=account.name))
    assert f"private readable {private}" in text and "other homes visible False" in text, text
    token = next(line.split()[1] for line in text.splitlines() if line.startswith("TOKEN "))
    assert token != account.write_token
    gone = httpx.get(f"{server.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


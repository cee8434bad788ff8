"""The OpenAPI schema declares every route's path parameters, and a bounded, reproducible schemathesis run
against the live server (as the owner of some repos, and anonymously) gets no 5xx and no broken answer."""

from __future__ import annotations

import base64
import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from seed import seed_repo
from support import LiveServer

# Per operation and phase; with the coverage phase's own cases this is ~2,500 requests a run (~10 s idle).
MAX_EXAMPLES = 20
WALL_CLOCK_S = 300  # a bound for a hung run, not a speed goal (the schema grows with every route)

_TEMPLATE = re.compile(r"\{([^}]+)\}")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def test_every_templated_path_declares_its_parameters(server: LiveServer) -> None:
    """Issue 16, proof: "every route's path parameters declared in the schema (about 45 repo routes do
    not declare theirs today)". Each ``{name}`` in each path is a required path parameter of each of its
    operations, operation ids are unique, and the docs page still loads the schema."""
    schema = httpx.get(f"{server.url}/api/openapi.json", timeout=30).json()
    missing, ids, templated = [], collections.Counter[str](), 0
    for path, item in schema["paths"].items():
        names = _TEMPLATE.findall(path)
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            ids[operation["operationId"]] += 1
            declared = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}
            templated += bool(names)
            for name in names:
                if name not in declared or declared[name].get("required") is not True:
                    missing.append(f"{method.upper()} {path}: {name}")
            assert set(declared) <= set(names), f"{method.upper()} {path} declares {set(declared) - set(names)}"
    assert templated > 60
    assert not missing, f"{len(missing)} undeclared path parameters:\n" + "\n".join(missing)
    assert [name for name, count in ids.items() if count > 1] == []
    resolve = schema["paths"]["/{ns}/{name}/resolve/{rest}"]["head"]["parameters"]
    assert [p["name"] for p in resolve] == ["ns", "name", "rest"]
    plural = schema["paths"]["/api/{plural}/{ns}/{name}/refs"]["get"]["parameters"][0]
    assert plural["schema"]["enum"] == ["models", "datasets", "spaces"]
    # The bodies the raw-body handlers read are declared (so the fuzz sends them), each on a route that exists.
    from hubstead.api.openapi import REQUEST_BODIES

    absent = [key for key in REQUEST_BODIES if key[1] not in schema["paths"].get(key[0], {})]
    assert absent == [], absent
    for path, method in REQUEST_BODIES:
        assert "requestBody" in schema["paths"][path][method], (path, method)
    docs = httpx.get(f"{server.url}/api/docs", timeout=30)
    assert docs.status_code == 200 and "swagger-ui" in docs.text and "/api/openapi.json" in docs.text


def _config(path: Path, namespace: str, names: list[str], revisions: list[str]) -> Path:
    """A schemathesis config: path parameters drawn from the seeded repos most of the time."""
    quoted = ", ".join

    def values(items: list[str]) -> str:
        return "[" + quoted(json.dumps(item) for item in items) + "]"

    path.write_text(
        f"[dictionaries.ns]\nvalues = {values([namespace])}\n"
        f"[dictionaries.name]\nvalues = {values(names)}\n"
        f"[dictionaries.rest]\nvalues = {values(revisions)}\n"
        "[parameters]\n"
        '"path.ns" = { dictionary = "ns", probability = 0.7 }\n'
        '"path.namespace" = { dictionary = "ns", probability = 0.7 }\n'
        '"path.username" = { dictionary = "ns", probability = 0.5 }\n'
        '"path.name" = { dictionary = "name", probability = 0.7 }\n'
        '"path.rest" = { dictionary = "rest", probability = 0.5 }\n'
    )
    return path


def _body(body: object) -> str:
    if isinstance(body, dict) and "$base64" in body:
        return repr(base64.b64decode(body["$base64"])[:300])
    return repr(body)[:300] if body else ""


def _answers(report: Path) -> tuple[collections.Counter[int], list[str]]:
    """Status codes of every answer in a schemathesis NDJSON report, and each 5xx or failed check."""
    statuses: collections.Counter[int] = collections.Counter()
    bad: list[str] = []
    for line in report.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if not event:
            continue
        recorder = event["recorder"]
        for interaction in recorder.get("interactions", {}).values():
            request, response = interaction.get("request", {}), interaction.get("response")
            if response is None:
                bad.append(f"{recorder['label']}: no answer to {request.get('method')} {request.get('uri')}")
                continue
            statuses[response["status_code"]] += 1
            if response["status_code"] >= 500:
                body = _body(request.get("body"))
                bad.append(f"{response['status_code']} {request.get('method')} {request.get('uri')} {body}")
        for check in recorder.get("checks", {}).values():
            for result in check if isinstance(check, list) else [check]:
                if isinstance(result, dict) and str(result.get("status")).lower() in ("failure", "error"):
                    bad.append(f"{recorder['label']}: check {result.get('name')} failed")
    return statuses, bad


def _errors_first(stdout: str) -> str:
    """schemathesis's own errors (which come before its long summary), then the end of its output."""
    start = stdout.find("ERRORS")
    errors = stdout[start : start + 6000] + "\n...\n" if start >= 0 else ""
    return errors + stdout[-4000:]


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["owner", "anonymous"])
def test_fuzzing_the_schema_gives_no_server_error(server: LiveServer, caller: str, tmp_path: Path) -> None:
    """Issue 16, proof: "a fuzz run of the OpenAPI schema (schemathesis) in CI for a bounded time with
    zero 5xx". Deterministic generation (same cases every run), a bounded number of cases per operation and
    a wall-clock bound; the checks are ``not_a_server_error`` and that every request gets an HTTP answer
    (a dropped connection is an error of the run). The account is the test's own, so whatever the fuzzer
    changes or deletes touches no other test's data."""
    if caller == "anonymous" and server.backend != "sqlite":
        pytest.skip("the anonymous fuzz reaches only the refusals, which do not depend on the database: SQLite is "
                    "enough (the owner's fuzz runs on both)")
    account = server.account("fuzz")
    seeded = [
        seed_repo(server, account.write_token, f"{account.name}/{kind[0]}1", kind, private=kind != "model")
        for kind in ("model", "dataset", "space")
    ]
    revisions = ["main", "dev", "v1", seeded[0].commit, seeded[0].commit[:7], "refs%2Fheads%2Fmain"]
    config = _config(tmp_path / "schemathesis.toml", account.name, [r.repo_id.split("/")[1] for r in seeded],
                     revisions)  # fmt: skip
    reports = tmp_path / "reports"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{server.url}/api/openapi.json",
        "--checks", "not_a_server_error",
        "--max-examples", str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--phases", "examples,coverage,fuzzing",
        # One worker: with several, hypothesis describes strategies from threads and its AST walk races
        # ("AST constructor recursion depth mismatch", a Runtime Error of the run, not of the server).
        "--workers", "1",
        "--request-timeout", "30",
        "--no-color",
        "--report", "ndjson", "--report-dir", str(reports),
    ]  # fmt: skip
    if caller == "owner":
        command += ["-H", f"Authorization: Bearer {account.write_token}"]
    started = time.monotonic()
    # The hooks module serializes the NDJSON commit bodies the schema declares.
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.run(command, capture_output=True, text=True, timeout=WALL_CLOCK_S, cwd=tmp_path, env=env)
    elapsed = time.monotonic() - started
    statuses, bad = _answers(next(reports.glob("*.ndjson")))
    log = server.log_path.read_text(errors="replace")[-6000:] if server.log_path else ""
    assert not bad and run.returncode == 0, (
        f"{len(bad)} bad answers:\n" + "\n".join(bad[:30]) + f"\n--- schemathesis:\n{_errors_first(run.stdout)}"
        f"\n--- server log:\n{log}"
    )
    total = sum(statuses.values())
    print(f"fuzz {server.backend}/{caller}: {total} requests in {elapsed:.1f} s, statuses {dict(sorted(statuses.items()))}")
    assert total > 1000 and statuses[200] > 50

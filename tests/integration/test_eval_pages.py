"""The evaluation pages over HTTP, as a browser signed in with its session cookie sees them: a model's Evaluate tab
(the benchmarks this hub holds, a misfit shown disabled with its reason and refused in words when posted anyway),
a submit that queues a job and lands on its run page (live while the job goes on, scores and the results' commit
after), the runs list, and the "Evaluation results" box of the model's card (verified, self-reported and invalid
entries as ``.eval_results`` files hold them; a private model's box hidden from everyone else)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from eval_pages_support import SENTIMENT, TAGGING, TAGGING_ROWS, tiny_classifier
from eval_support import push_benchmark
from support import Account, LiveServer, web_session
from train_support import push_model, sentiment_rows

PASSWORD = "eval-pages-pass-1234"
# The pages are the same on both databases; what they read (runs, results, boards) is tested on PostgreSQL too by
# test_eval_runs.py, test_eval_index.py and test_leaderboard_api.py. Each test here runs real evaluation jobs.
pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)


class Setup:
    def __init__(self, owner: Account, model: str, fits: str, misfit: str) -> None:
        self.owner, self.model, self.fits, self.misfit = owner, model, fits, misfit


_SETUPS: dict[str, Setup] = {}


@pytest.fixture()
def setup(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """One owner per server with a tiny classifier, a benchmark it fits and one it does not (made once)."""
    if server.url in _SETUPS:
        return _SETUPS[server.url]
    owner = server.account("evpage", password=PASSWORD)
    model = f"{owner.name}/tiny-clf"
    push_model(server, owner.write_token, model, tiny_classifier(tmp_path_factory.mktemp("clf")))
    fits, misfit = f"{owner.name}/tiny-sentiment", f"{owner.name}/tiny-tagging"
    push_benchmark(server, owner.write_token, fits, SENTIMENT.format(name="Tiny sentiment"),
                   {"test": sentiment_rows(20, seed=3)})
    push_benchmark(server, owner.write_token, misfit, TAGGING, {"test": TAGGING_ROWS})
    _SETUPS[server.url] = Setup(owner, model, fits, misfit)
    return _SETUPS[server.url]


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:3000]
    return found.group(1)


def _option(page: str, benchmark: str) -> str:
    found = re.search(rf'<option value="{re.escape(benchmark)}"[^>]*>[^<]*</option>', page)
    assert found, f"{benchmark} is not offered:\n{page[:6000]}"
    return found.group(0)


def _wait_stage(client: httpx.Client, url: str, stages: set[str], timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while True:
        live = client.get(url + "/-/live")
        assert live.status_code == 200, live.text[:2000]
        stage = re.search(r'id="eval-live" data-stage="([A-Z]+)" data-following="([01])"', live.text)
        assert stage, live.text[:2000]
        if stage.group(1) in stages and stage.group(2) == "0":  # ended, and its results written (or not, in words)
            return live.text
        assert time.time() < deadline, f"still {stage.group(1)}:\n{live.text[-4000:]}"
        time.sleep(1)


def test_the_evaluate_tab_lists_benchmarks_and_refuses_a_misfit_with_its_reason(server: LiveServer,
                                                                                 setup: Setup) -> None:
    """The tab lists the hub's benchmarks; one whose task the model cannot do is disabled with the reason, and a
    post of it anyway is refused on the form (4xx, the reason in words, no job queued); a visitor gets a sign-in
    prompt, and the model page links the tab."""
    client, _ = web_session(server, setup.owner.name, PASSWORD)
    card = client.get(f"/{setup.model}")
    assert card.status_code == 200
    assert f'href="/models/{setup.model}/evaluate" id="evaluate-tab"' in card.text
    page = client.get(f"/models/{setup.model}/evaluate")
    assert page.status_code == 200, page.text[:3000]
    good, bad = _option(page.text, setup.fits), _option(page.text, setup.misfit)
    assert "disabled" not in good and "Tiny sentiment" in good
    assert "disabled" in bad
    # The misfit's own reason (the shared server holds other tests' benchmarks, which may not fit either).
    reason = re.search(rf'<a href="/datasets/{re.escape(setup.misfit)}">[^<]*</a>.*?<span class="eval-reason">'
                       r'([^<]+)</span>', page.text)
    assert reason and "token" in reason.group(1).lower(), page.text[:6000]

    tasks = client.get(f"/models/{setup.model}/evaluate/-/tasks", params={"benchmark": setup.fits})
    assert tasks.status_code == 200
    assert 'name="tasks" value="sentiment"' in tasks.text and "<code>accuracy</code>" in tasks.text

    refused = client.post(f"/models/{setup.model}/evaluate",
                          data={"csrf_token": _csrf(page.text), "benchmark": setup.misfit, "tasks": "ner",
                                "namespace": setup.owner.name})
    assert 400 <= refused.status_code < 500, refused.text[:3000]
    error = re.search(r'id="eval-error">([^<]+)<', refused.text)
    assert error and "token" in error.group(1).lower(), refused.text[:3000]
    runs = client.get(f"/evaluations/{setup.owner.name}")
    assert runs.status_code == 200 and setup.misfit not in runs.text

    visitor = httpx.get(f"{server.url}/models/{setup.model}/evaluate")
    assert visitor.status_code == 200 and 'id="eval-sign-in"' in visitor.text and "<form class=\"eval-form" not in \
        visitor.text


def test_a_submit_queues_a_job_and_its_run_page_follows_it_to_the_results(server: LiveServer, setup: Setup) -> None:
    """Submitting the form queues an evaluation job and redirects to its run page, which polls while the job goes
    on and, once COMPLETED, stops polling and shows the task's score (the value the hub committed into the model's
    ``.eval_results``) and the commit holding it; the runs list shows the run."""
    client, _ = web_session(server, setup.owner.name, PASSWORD)
    page = client.get(f"/models/{setup.model}/evaluate")
    answer = client.post(f"/models/{setup.model}/evaluate",
                         data={"csrf_token": _csrf(page.text), "benchmark": setup.fits, "tasks": "sentiment",
                               "limit": "20", "namespace": setup.owner.name})
    assert answer.status_code == 303, answer.text[:3000]
    run_url = answer.headers["location"]
    assert re.fullmatch(rf"/evaluations/{setup.owner.name}/\w+", run_url)
    run = client.get(run_url)
    assert run.status_code == 200
    assert f'href="/{setup.model}" id="eval-run-model"' in run.text and setup.fits in run.text
    stage = re.search(r'id="eval-live" data-stage="([A-Z]+)" data-following="1"', run.text)
    assert stage and stage.group(1) in ("SCHEDULING", "RUNNING", "COMPLETED"), run.text[:3000]  # followed
    assert f'hx-get="{run_url}/-/live" hx-trigger="every 2s"' in run.text
    assert 'id="eval-task-sentiment"' in run.text

    done = _wait_stage(client, run_url, {"COMPLETED", "ERROR", "CANCELED"})
    assert 'data-stage="COMPLETED"' in done, done[-4000:]
    assert 'hx-trigger="every 2s"' not in done
    value = re.search(r'id="eval-task-sentiment" data-task="sentiment" data-value="([^"]+)"', done)
    assert value, done[-4000:]
    link = re.search(r'id="eval-results-link">\s*Results committed to <a href="([^"]+)"', done)
    assert link, done[-4000:]

    api = HfApi(endpoint=server.url, token=setup.owner.read_token)
    entries = _results_file(api, setup.model, setup.fits)
    assert [e["dataset"]["task_id"] for e in entries] == ["sentiment"]
    assert float(value.group(1)) == pytest.approx(float(entries[0]["value"]))
    assert entries[0].get("verifyToken")
    listing = client.get(f"/evaluations/{setup.owner.name}")
    assert run_url in listing.text and setup.fits in listing.text


def _results_file(api: HfApi, model: str, benchmark: str) -> list[dict[str, Any]]:
    import yaml
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(model, f".eval_results/{benchmark.replace('/', '__')}.yaml", endpoint=api.endpoint,
                           token=api.token)
    data = yaml.safe_load(Path(path).read_text())
    assert isinstance(data, list)
    return data


def _upload_results(api: HfApi, repo_id: str, name: str, text: str) -> None:
    api.create_commit(repo_id, [CommitOperationAdd(f".eval_results/{name}.yaml", text.encode())],
                      commit_message=f"results {name}")


def test_the_card_box_shows_self_reported_and_invalid_entries_and_hides_a_private_models(
        server: LiveServer, setup: Setup) -> None:
    """``.eval_results`` files uploaded with the client show in the card's box: an entry a user wrote is
    "Self-reported" with its score and a link to its benchmark's leaderboard, a nonsense value "Invalid" with the
    reason; a model with none has no box; a private model's box is a 404 to others and to visitors."""
    owner = setup.owner
    api = HfApi(endpoint=server.url, token=owner.write_token)
    model = f"{owner.name}/{server.unique('reported')}"
    api.create_repo(model, private=True)
    client, _ = web_session(server, owner.name, PASSWORD)
    empty = client.get(f"/models/{model}/-/eval-results")
    assert empty.status_code == 200 and 'id="eval-results"' not in empty.text

    _upload_results(api, model, setup.fits.replace("/", "__"),
                    f"- dataset: {{id: {setup.fits}, task_id: sentiment}}\n  value: 0.8125\n"
                    f"  source: {{url: 'https://example.org/paper', name: My paper}}\n")
    _upload_results(api, model, "nonsense",
                    f"- dataset: {{id: {setup.fits}, task_id: sentiment}}\n  value: not-a-number\n")
    card = client.get(f"/{model}")
    assert card.status_code == 200
    assert f'hx-get="/models/{model}/-/eval-results" hx-trigger="load"' in card.text
    box = client.get(f"/models/{model}/-/eval-results")
    assert box.status_code == 200 and 'id="eval-results"' in box.text, box.text
    rows = re.findall(r'<tr class="eval-result" data-status="([a-z-]+)" data-benchmark="([^"]+)"', box.text)
    assert sorted(rows) == [("invalid", setup.fits), ("self-reported", setup.fits)], box.text
    assert "0.8125" in box.text and "Self-reported" in box.text
    assert f'href="/datasets/{setup.fits}/leaderboard"' in box.text
    reason = re.search(r'class="small eval-invalid-reason"[^>]*>([^<]+)<', box.text)
    assert reason and reason.group(1).strip(), box.text

    stranger = server.account("evstranger", password=PASSWORD)
    other, _ = web_session(server, stranger.name, PASSWORD)
    assert other.get(f"/models/{model}/-/eval-results").status_code == 404
    assert httpx.get(f"{server.url}/models/{model}/-/eval-results").status_code == 404
    assert httpx.get(f"{server.url}/models/{model}/evaluate").status_code == 404


def test_the_card_box_shows_the_verified_result_of_a_run(server: LiveServer, setup: Setup) -> None:
    """After the hub's own evaluation of the model (the run test above or here), its card's box lists the result as
    "Verified", ranked on the benchmark's board, once (not again from the card's ``model-index``)."""
    api = HfApi(endpoint=server.url, token=setup.owner.read_token)
    if not any(f.startswith(".eval_results/") for f in api.list_repo_files(setup.model)):
        test_a_submit_queues_a_job_and_its_run_page_follows_it_to_the_results(server, setup)
    box = httpx.get(f"{server.url}/models/{setup.model}/-/eval-results")
    assert box.status_code == 200
    row = re.search(rf'<tr class="eval-result" data-status="verified" data-benchmark="{re.escape(setup.fits)}" '
                    r'data-task="sentiment">(.*?)</tr>', box.text, re.S)
    assert row, box.text
    assert "Verified" in row.group(1) and re.search(r"#1", row.group(1)), row.group(1)
    # The hub also wrote the card's model-index (the older form of the same result): listed once, not twice.
    assert len(re.findall(rf'data-benchmark="{re.escape(setup.fits)}"', box.text)) == 1, box.text


def test_a_reader_who_cannot_write_the_model_gets_a_pull_request_on_the_run_page(server: LiveServer,
                                                                                   setup: Setup) -> None:
    """Someone who may read the model but not write it evaluates it from the page, in their own namespace: the run
    page ends with the results proposed in a pull request (its number and link), and the model's main is unchanged
    by it."""
    reader = server.account("evreader", password=PASSWORD)
    api = HfApi(endpoint=server.url, token=setup.owner.read_token)
    before = api.model_info(setup.model).sha
    client, _ = web_session(server, reader.name, PASSWORD)
    page = client.get(f"/models/{setup.model}/evaluate")
    assert page.status_code == 200 and f'<option value="{reader.name}"' in page.text
    assert f'<option value="{setup.owner.name}"' not in page.text  # only namespaces whose compute they may use
    answer = client.post(f"/models/{setup.model}/evaluate",
                         data={"csrf_token": _csrf(page.text), "benchmark": setup.fits, "namespace": reader.name})
    assert answer.status_code == 303, answer.text[:3000]
    run_url = answer.headers["location"]
    assert run_url.startswith(f"/evaluations/{reader.name}/")
    done = _wait_stage(client, run_url, {"COMPLETED", "ERROR", "CANCELED"})
    assert 'data-stage="COMPLETED"' in done, done[-4000:]
    proposed = re.search(r'Results proposed in <a href="([^"]+)">pull request #(\d+)</a>', done)
    assert proposed, done[-4000:]
    assert proposed.group(1).endswith(f"/{setup.model}/discussions/{proposed.group(2)}")
    assert api.model_info(setup.model).sha == before
    assert client.get(f"/evaluations/{setup.owner.name}").status_code in (403, 404)  # not their namespace's runs

"""Evaluate a model from its page in Chromium: a signed-in user opens "Evaluate" on a tiny classifier's page, picks a
20-row benchmark (htmx loads its tasks as checkboxes, with their metric), sees a benchmark the model cannot run
disabled with the reason, submits, and lands on the run's page, which follows the job without a reload until it is
COMPLETED with the task's score and the commit holding the results; the model's card then lists the result in its
"Evaluation results" box as verified. The score shown is checked against the same metric computed here, by
scikit-learn, on the same rows with the same model. Screenshots: ``test-screenshots/eval-form.png``,
``eval-run-early.png``, ``eval-run-done.png``, ``eval-card.png``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from eval_pages_support import SENTIMENT, TAGGING, TAGGING_ROWS, tiny_classifier
from eval_support import push_benchmark
from support import LiveServer
from train_support import push_model, sentiment_rows

pytestmark = pytest.mark.slow
expect.set_options(timeout=60_000)

PASSWORD = "eval-browser-pass-1234"
def _sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def _accuracy_here(folder: Path, rows: list[dict[str, object]]) -> float:
    """The model's accuracy on ``rows``, computed in the test: its own forward pass, scikit-learn's metric."""
    import torch
    from sklearn.metrics import accuracy_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        batch = tokenizer([str(r["text"]) for r in rows], padding=True, truncation=True, return_tensors="pt")
        predicted = model(**batch).logits.argmax(-1).tolist()
    return float(accuracy_score([r["label"] for r in rows], predicted))


def test_evaluate_a_model_from_its_page_and_see_the_result_on_its_card(server: LiveServer, page: Page,
                                                                        shots_dir: Path, tmp_path: Path) -> None:
    """Model page → Evaluate tab → benchmark and its tasks → run page live to COMPLETED with the score (equal to
    scikit-learn's on the same rows) → the results commit → the card's box lists it as verified."""
    if server.backend != "sqlite":
        pytest.skip("one backend is enough for the browser")
    owner = server.account("evbrow", password=PASSWORD)
    ns = owner.name
    folder = tiny_classifier(tmp_path / "clf")
    push_model(server, owner.write_token, f"{ns}/tiny-clf", folder)
    rows = sentiment_rows(20, seed=7)
    push_benchmark(server, owner.write_token, f"{ns}/sentiment-20", SENTIMENT.format(name="Tiny sentiment (20 rows)"),
                   {"test": rows})
    push_benchmark(server, owner.write_token, f"{ns}/tagging", TAGGING, {"test": TAGGING_ROWS})
    expected = _accuracy_here(folder, rows)

    _sign_in(page, server, ns)
    page.goto(f"{server.url}/{ns}/tiny-clf")
    page.locator("#evaluate-tab").click()
    page.wait_for_url(f"{server.url}/models/{ns}/tiny-clf/evaluate")
    expect(page.locator("#evaluate-tab")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator(f'#eval-benchmark option[value="{ns}/tagging"]')).to_be_disabled()
    page.locator("#eval-unfit summary").click()
    expect(page.locator("#eval-unfit")).to_contain_text("token")
    page.locator("#eval-benchmark").select_option(f"{ns}/sentiment-20")
    task_box = page.locator('#eval-tasks input[name=tasks][value="sentiment"]')
    expect(task_box).to_be_visible()
    expect(page.locator("#eval-tasks")).to_contain_text("accuracy")
    task_box.check()
    page.locator("input[name=limit]").fill("20")
    page.screenshot(path=str(shots_dir / "eval-form.png"), full_page=True)
    page.locator("#eval-submit").click()
    page.wait_for_url(f"{server.url}/evaluations/{ns}/*")
    run_url = page.url

    expect(page.locator("#eval-run-model")).to_have_text(f"{ns}/tiny-clf")
    expect(page.locator("#eval-task-sentiment")).to_be_visible()
    page.screenshot(path=str(shots_dir / "eval-run-early.png"), full_page=True)
    expect(page.locator("#eval-live")).to_have_attribute("data-stage", "COMPLETED", timeout=240_000)
    expect(page.locator("#eval-live")).to_have_attribute("data-following", "0")  # the results are written
    assert page.url == run_url  # followed by the polled fragment, never reloaded
    row = page.locator("#eval-task-sentiment")
    expect(row).to_have_attribute("data-value", re.compile(r"^[0-9.]+$"))
    shown = float(row.get_attribute("data-value") or "nan")
    assert shown == pytest.approx(expected, abs=1e-9), (shown, expected)
    expect(page.locator("#eval-results-link")).to_contain_text("Results committed")
    expect(page.locator("#eval-log")).to_contain_text("HUBSTEAD-EVAL")
    page.screenshot(path=str(shots_dir / "eval-run-done.png"), full_page=True)

    page.locator("#eval-run-model").click()
    page.wait_for_url(f"{server.url}/{ns}/tiny-clf")
    box = page.locator("#eval-results")
    expect(box).to_be_visible()
    result = box.locator(f'tr[data-benchmark="{ns}/sentiment-20"][data-task="sentiment"]')
    expect(result).to_have_attribute("data-status", "verified")
    expect(result).to_contain_text("Verified")
    expect(result.locator(".eval-value")).to_have_text(f"{expected:.4g}" if expected else "0")
    expect(result.locator("a").first).to_have_attribute("href", f"/datasets/{ns}/sentiment-20/leaderboard")
    page.screenshot(path=str(shots_dir / "eval-card.png"), full_page=True)

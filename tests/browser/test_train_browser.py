"""The Train page and a run's live chart in Chromium: a signed-in user opens Train from a model's page ("Train on this
model"), types a dataset (htmx fetches its splits and columns from the viewer's schema and shows the pickers, each
column with its type), keeps the defaults shown but a few, submits, and lands on the run's page whose chart grows
while the run trains (more points and a longer train-loss line a few seconds later, without a reload), then shows
the final evaluation and the pushed model. A bad column is refused on the form in words. Screenshots:
``test-screenshots/train-form.png``, ``train-run-early.png``, ``train-run-later.png``, ``train-run-done.png``."""

from __future__ import annotations

import time
from pathlib import Path

import datasets
import httpx
import pytest
from playwright.sync_api import Page, expect

from support import LiveServer
from train_support import push_dataset, push_model, sentiment_rows, tiny_bert

pytestmark = pytest.mark.slow
expect.set_options(timeout=60_000)

PASSWORD = "train-browser-pass-1234"


def _sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def _points(page: Page) -> int:
    return int(page.locator("#train-live").get_attribute("data-points") or 0)


def _train_line_length(page: Page) -> int:
    points = page.locator('#train-chart g[data-series="loss"] polyline').get_attribute("points") or ""
    return len(points.split())


def test_the_train_form_starts_a_run_whose_chart_grows_live(server: LiveServer, page: Page, shots_dir: Path,
                                                            tmp_path: Path) -> None:
    """Form → run page → the chart grows while RUNNING → COMPLETED with the final evaluation and the pushed repo."""
    if server.backend != "sqlite":
        pytest.skip("one backend is enough for the browser")
    owner = server.account("tbrow", password=PASSWORD)
    ns = owner.name
    push_model(server, owner.write_token, f"{ns}/tiny-bert", tiny_bert(tmp_path / "bert"))
    features = datasets.Features({"review": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    rows = [{"review": r["text"], "label": r["label"]} for r in sentiment_rows(160)]
    test_rows = [{"review": r["text"], "label": r["label"]} for r in sentiment_rows(32, seed=1)]
    push_dataset(server, owner.write_token, f"{ns}/reviews", {"train": rows, "test": test_rows}, features)
    deadline = time.time() + 120
    while httpx.get(f"{server.url}/datasets-server/splits", params={"dataset": f"{ns}/reviews"},
                    headers={"Authorization": f"Bearer {owner.read_token}"}).status_code != 200:
        assert time.time() < deadline, "the viewer did not convert the dataset"
        time.sleep(0.3)

    _sign_in(page, server, ns)
    page.goto(f"{server.url}/{ns}/tiny-bert")
    page.locator("#train-on-model").click()
    expect(page.locator("input[name=model]")).to_have_value(f"{ns}/tiny-bert")
    expect(page.locator("input[name=output]")).to_have_value(f"{ns}/tiny-bert-finetuned")
    expect(page.locator("input[name=param_learning_rate]")).to_have_value("2e-05")  # the task's defaults, shown
    page.locator("#train-dataset").fill(f"{ns}/reviews")
    page.locator("#train-dataset").dispatch_event("change")
    text_picker = page.locator("select[name=col_text]")
    expect(text_picker).to_contain_text("review · string")
    expect(page.locator("select[name=col_label]")).to_contain_text("class label (negative, positive)")
    expect(page.locator("select[name=eval_split]")).to_have_value("test")

    # A wrong column first: refused on the form, in words, with what was typed kept.
    text_picker.select_option("label")
    page.locator("#train-submit").click()
    expect(page.locator("#train-error")).to_contain_text("the text column 'label' must hold text (strings)")
    expect(page.locator("input[name=dataset]")).to_have_value(f"{ns}/reviews")

    text_picker.select_option("review")
    page.locator("select[name=col_label]").select_option("label")
    for name, value in {"learning_rate": "0.005", "max_steps": "240", "batch_size": "16", "logging_steps": "4",
                        "eval_steps": "40", "save_steps": "80", "max_length": "32"}.items():
        page.locator(f"input[name=param_{name}]").fill(value)
    page.locator("input[name=output]").fill(f"{ns}/reviews-model")
    page.screenshot(path=str(shots_dir / "train-form.png"), full_page=True)
    page.locator("#train-submit").click()
    page.wait_for_url(f"{server.url}/train/{ns}/*")
    run_url = page.url

    # The chart grows while the run trains: points arrive through the polled fragment, no reload.
    expect(page.locator("#train-live")).to_have_attribute("data-stage", "RUNNING")
    page.wait_for_function("document.querySelector('#train-live').dataset.points >= 4", timeout=60_000)
    early_points, early_line = _points(page), _train_line_length(page)
    page.screenshot(path=str(shots_dir / "train-run-early.png"), full_page=True)
    page.wait_for_function(f"document.querySelector('#train-live').dataset.points >= {early_points + 8}", timeout=60_000)
    assert page.url == run_url
    later_line = _train_line_length(page)
    assert later_line > early_line >= 2, (early_line, later_line)
    expect(page.locator("#train-chart svg")).to_contain_text("train loss")
    page.screenshot(path=str(shots_dir / "train-run-later.png"), full_page=True)

    expect(page.locator("#train-live")).to_have_attribute("data-stage", "COMPLETED", timeout=240_000)
    expect(page.locator("#train-eval")).to_contain_text("eval_accuracy")
    expect(page.locator("#train-output")).to_contain_text(f"{ns}/reviews-model")
    expect(page.locator("#train-chart svg")).to_contain_text("eval_accuracy (right axis)")
    page.screenshot(path=str(shots_dir / "train-run-done.png"), full_page=True)
    page.locator("#train-output a").first.click()
    page.wait_for_url(f"{server.url}/{ns}/reviews-model")

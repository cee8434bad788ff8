"""The leaderboard pages in Chromium: from a benchmark dataset's page, the Leaderboard tab shows the ranked board
and its scatter; clicking the Size header sorts by size (again: the other way), the name filter narrows the rows,
ticking two models and "Compare selected" opens them side by side (best of each row marked); on /leaderboards,
ticking two benchmarks and choosing Borda builds the aggregate board. Screenshots: ``test-screenshots/
board.png``, ``board-sorted.png``, ``board-compare.png``, ``board-aggregate.png``."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from board_support import Result, eval_yaml, push_benchmark_yaml, push_model_results
from support import LiveServer

pytestmark = pytest.mark.slow

# (name, accuracy on "intent", error rate on "errors", parameters, license, fine-tuned from)
MODELS = [
    ("atlas-base", 0.91, 0.12, 1_100_000_000, "apache-2.0", None),
    ("atlas-instruct", 0.88, 0.09, 1_100_000_000, "apache-2.0", "atlas-base"),
    ("bert-tiny-intent", 0.74, 0.31, 4_400_000, "mit", None),
    ("distil-classifier", 0.83, 0.18, 66_000_000, "mit", None),
    ("roberta-base-intent", 0.86, 0.15, 125_000_000, "mit", None),
    ("mega-model-7b", 0.93, 0.21, 7_000_000_000, "llama3", None),
]


def _models(page: Page) -> list[str]:
    return [name.split("/")[-1] for name in page.locator("tr.board-row").evaluate_all(
        "rows => rows.map(r => r.dataset.model)")]


def test_a_board_sorts_filters_compares_and_aggregates(server: LiveServer, page: Page, shots_dir: Path) -> None:
    """Board → sort by size both ways → filter by name → tick two → compare → aggregate board over two."""
    if server.backend != "sqlite":
        pytest.skip("one backend is enough for the browser")
    owner = server.account("bbrow")
    ns = owner.name
    bench, errors = f"{ns}/intent-benchmark", f"{ns}/error-benchmark"
    push_benchmark_yaml(server, owner.write_token, bench, eval_yaml(
        "Intent detection", [("intent", "accuracy", True)],
        description="Which of 12 intents a support ticket expresses (accuracy on 2,000 tickets)."))
    push_benchmark_yaml(server, owner.write_token, errors, eval_yaml(
        "Ticket routing errors", [("errors", "error_rate", False)]))
    for name, accuracy, error, params, license, base in MODELS:
        push_model_results(server, owner.write_token, f"{ns}/{name}",
                           [Result(bench, "intent", accuracy), Result(errors, "errors", error)], params=params,
                           license=license, base_model=f"{ns}/{base}" if base else None)
    push_model_results(server, owner.write_token, f"{ns}/broken-results", [Result(bench, "intent", "high")])

    page.goto(f"{server.url}/datasets/{bench}")
    page.locator("#leaderboard-tab").click()
    page.wait_for_url(f"{server.url}/datasets/{bench}/leaderboard")
    assert _models(page) == ["mega-model-7b", "atlas-base", "atlas-instruct", "roberta-base-intent",
                             "distil-classifier", "bert-tiny-intent"]
    expect(page.locator("#scatter svg a.point")).to_have_count(6)
    expect(page.locator("#invalid-entries")).to_contain_text("broken-results")
    page.screenshot(path=str(shots_dir / "board.png"), full_page=True)

    page.locator('th a[data-sort="params"]').click()
    page.wait_for_url("**sort=params**")
    assert _models(page)[0] == "bert-tiny-intent" and _models(page)[-1] == "mega-model-7b"
    page.locator('th a[data-sort="params"]').click()
    page.wait_for_url("**sort=-params**")
    assert _models(page)[0] == "mega-model-7b"
    expect(page.locator('tr.board-row[data-model$="/mega-model-7b"] td.rank')).to_have_text("1")
    page.screenshot(path=str(shots_dir / "board-sorted.png"), full_page=True)

    page.get_by_label("Filter by model name").fill("atlas")
    page.locator("#board-filters button").click()
    page.wait_for_url("**search=atlas**")
    assert sorted(_models(page)) == ["atlas-base", "atlas-instruct"]
    page.get_by_label("Which models").select_option("base")
    page.locator("#board-filters button").click()
    page.wait_for_url("**models=base**")
    assert _models(page) == ["atlas-base"]
    page.goto(f"{server.url}/datasets/{bench}/leaderboard")

    page.get_by_label(f"compare {ns}/atlas-base").check()
    page.get_by_label(f"compare {ns}/roberta-base-intent").check()
    page.locator("#compare-button").click()
    page.wait_for_url("**/leaderboards/compare**")
    expect(page.locator("#compare th.model")).to_have_count(2)
    intent_row = page.locator(f'tr.compare-row[data-benchmark="{bench}"]')
    expect(intent_row.locator("td.best")).to_have_text("0.91 #1")
    errors_row = page.locator(f'tr.compare-row[data-benchmark="{errors}"]')  # every benchmark both have
    expect(errors_row.locator("td.best")).to_have_text("0.12 #1")  # lower is better there
    page.screenshot(path=str(shots_dir / "board-compare.png"), full_page=True)

    page.goto(f"{server.url}/leaderboards")
    page.get_by_label(f"include {bench}").check()
    page.get_by_label(f"include {errors}").check()
    page.locator("#method").select_option("borda")
    page.locator("#aggregate-button").click()
    page.wait_for_url("**/leaderboards?benchmarks=**")
    expect(page.locator("#aggregate-board tr.board-row")).to_have_count(6)
    # Borda by hand: intent ranks mega 1, atlas-base 2, atlas-instruct 3, roberta 4, distil 5, bert 6;
    # errors (lower better) atlas-instruct 1, atlas-base 2, roberta 3, distil 4, mega 5, bert 6;
    # points (6 - rank): atlas-base 4+4=8, atlas-instruct 3+5=8, mega 5+1=6, roberta 2+3=5, distil 1+2=3, bert 0.
    assert _models(page)[:2] == sorted(["atlas-base", "atlas-instruct"])
    assert _models(page)[2:] == ["mega-model-7b", "roberta-base-intent", "distil-classifier", "bert-tiny-intent"]
    ranks = page.locator("#aggregate-board td.rank").all_inner_texts()
    assert ranks == ["1", "1", "3", "4", "5", "6"]
    expect(page.locator("#aggregate-board #scatter svg a.point")).to_have_count(6)
    page.screenshot(path=str(shots_dir / "board-aggregate.png"), full_page=True)

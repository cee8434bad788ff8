"""The model page's inference widgets in a real Chromium: each calls the same API and draws its answer.

Screenshots land in test-screenshots/ (widget-*.png) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from inference_hub import OWNER, Hub  # noqa: E402


def _open(page, hub: Hub, name: str):  # type: ignore[no-untyped-def]
    page.goto(f"{hub.url}/{OWNER}/{name}")
    widget = page.locator("#inference-widget")
    widget.wait_for()
    return widget


def test_classification_widget_draws_score_bars(page, inference_hub: Hub, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    widget = _open(page, inference_hub, "text-classification")
    assert "text-classification" in widget.inner_text()
    widget.locator("textarea[name=text]").fill("I love this movie")
    widget.locator("button[type=submit]").click()
    widget.locator(".bar-row").first.wait_for(timeout=120_000)
    labels = widget.locator(".bar-label").all_inner_texts()
    assert sorted(labels) == ["NEGATIVE", "POSITIVE"]
    widths = widget.locator(".bar-fill").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
    assert abs(sum(widths) - 100) < 0.5  # softmax scores, drawn to scale
    assert "Computed in" in widget.locator(".widget-status").inner_text()
    widget.screenshot(path=str(shots_dir / "widget-text-classification.png"))


def test_entities_answer_and_fill_mask_widgets(page, inference_hub: Hub, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    widget = _open(page, inference_hub, "token-classification")
    widget.locator("textarea[name=text]").fill("my name is sarah and i live in london")
    widget.locator("button[type=submit]").click()
    widget.locator("mark.entity").first.wait_for(timeout=120_000)
    assert "my name is sarah" in widget.locator(".highlighted").inner_text().replace("\n", " ").lower() or widget.locator("mark.entity").count() > 0
    widget.screenshot(path=str(shots_dir / "widget-token-classification.png"))

    widget = _open(page, inference_hub, "question-answering")
    widget.locator("textarea[name=text]").fill("where does sarah live?")
    widget.locator("textarea[name=context]").fill("my name is sarah and i live in london")
    widget.locator("button[type=submit]").click()
    answer = widget.locator("mark[data-label=answer]")
    answer.wait_for(timeout=120_000)
    assert answer.inner_text().replace("answer", "").strip() in "my name is sarah and i live in london"
    widget.screenshot(path=str(shots_dir / "widget-question-answering.png"))

    widget = _open(page, inference_hub, "fill-mask")
    widget.locator("textarea[name=text]").fill("paris is the [MASK] of france")
    widget.locator("button[type=submit]").click()
    widget.locator(".bar-row").first.wait_for(timeout=120_000)
    assert widget.locator(".bar-row").count() == 5
    widget.screenshot(path=str(shots_dir / "widget-fill-mask.png"))


def test_similarity_widget_with_real_minilm(page, inference_hub: Hub, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    widget = _open(page, inference_hub, "minilm")
    widget.locator("textarea[name=text]").fill("That is a happy person")
    widget.locator("textarea[name=others]").fill("That is a happy dog\nThat is a very happy person\nToday is a sunny day")
    widget.locator("button[type=submit]").click()
    widget.locator(".bar-row").first.wait_for(timeout=120_000)
    scores = [float(s) for s in widget.locator(".bar-score").all_inner_texts()]
    labels = widget.locator(".bar-label").all_inner_texts()
    assert labels[scores.index(max(scores))] == "That is a very happy person"
    widget.screenshot(path=str(shots_dir / "widget-sentence-similarity.png"))


@pytest.mark.slow
def test_chat_widget_streams_the_reply(page, inference_hub: Hub, shots_dir: Path) -> None:  # type: ignore[no-untyped-def]
    widget = _open(page, inference_hub, "smollm")
    widget.locator("textarea[name=text]").fill("What is the capital of France?")
    widget.locator("button[type=submit]").click()
    reply = widget.locator(".chat-assistant").first
    page.wait_for_function("() => { const r = document.querySelector('.chat-assistant'); return r && r.textContent.includes('Paris'); }",
                           timeout=120_000)
    assert "Paris" in reply.inner_text()
    assert widget.locator(".chat-user").inner_text() == "What is the capital of France?"
    page.wait_for_function("() => document.querySelector('.widget-status').textContent.startsWith('Computed')", timeout=120_000)
    assert "served as" in widget.locator(".served").inner_text() or "Not loaded" in widget.locator(".served").inner_text()
    widget.screenshot(path=str(shots_dir / "widget-chat.png"))
    page.screenshot(path=str(shots_dir / "widget-chat-page.png"), full_page=True)

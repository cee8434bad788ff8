"""What the evaluation pages make of the service's answers (pure): the form's fields as ``submit_evaluation``'s
form, scores in a few digits, a run still followed while its results are being written, and a model's results as
its card's box lists them (badges, links only to readable benchmarks, model-index duplicates left out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hubstead.web import eval_views


def test_the_form_becomes_the_services_form_with_empty_fields_left_out() -> None:
    """Typed numbers become numbers, text that is not a number is passed on for the service to refuse in words,
    empty fields and no task picked leave the service's defaults."""
    form = eval_views.form_to_request("a/m", {"benchmark": " b/x ", "limit": "20", "num_fewshot": "", "flavor": "",
                                              "batch_size": "eight", "namespace": "a", "csrf_token": "t"}, [])
    assert form == {"model": "a/m", "benchmark": "b/x", "limit": 20, "batch_size": "eight", "namespace": "a"}
    assert eval_views.form_to_request("a/m", {}, ["t1", " ", "t2"])["tasks"] == ["t1", "t2"]


def test_scores_and_progress() -> None:
    """Four significant digits, a dash for nothing or a non-finite value; progress bounded to 0..100."""
    assert [eval_views.score(v) for v in (0.8125, 71.2549, 0, None, float("nan"), True, 12345.6)] == [
        "0.8125", "71.25", "0", "–", "–", "–", "12,346"]
    assert [eval_views.percent(d, t) for d, t in ((16, 20), (0, 0), (None, 5), (30, 20))] == [80, 0, 0, 100]


def test_a_completed_run_is_followed_until_its_results_are_written() -> None:
    """COMPLETED with no word yet from the hub on its results: still followed (for at most a few minutes); a
    commit, a pull request, "not written" or a follower's failure in the log ends it; other stages never."""
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ended = now - timedelta(seconds=3)
    completed = {"stage": "COMPLETED", "results": None, "logTail": ["==> Job completed"]}
    assert eval_views.writing_results(completed, ended, now)
    assert not eval_views.writing_results(completed, now - timedelta(minutes=6), now)
    assert not eval_views.writing_results({**completed, "results": {"url": "u", "pullRequest": None}}, ended, now)
    for last in ("==> Results not written: no task was measured", "==> hubstead-eval: boom"):
        assert not eval_views.writing_results({**completed, "logTail": [last]}, ended, now)
    assert not eval_views.writing_results({**completed, "stage": "ERROR"}, ended, now)


def test_result_rows_badges_links_and_the_card_duplicate() -> None:
    """verified / stale / self-reported / invalid with its reason; a leaderboard link only for a benchmark the
    viewer may read; the card's model-index entries of a benchmark that ``.eval_results/`` holds are left out."""
    base = {"task_id": "t", "value": 0.5, "rank": 2, "ranked": 3, "verified": False, "stale": False, "error": None,
            "source": None, "pull_request": None}
    results = [
        {**base, "dataset_id": "o/b", "benchmark_id": "o/b", "benchmark_name": "B", "verified": True,
         "filename": ".eval_results/o__b.yaml"},
        {**base, "dataset_id": "o/b", "benchmark_id": "o/b", "benchmark_name": "B", "filename": "README.md",
         "task_id": "default"},
        {**base, "dataset_id": "o/c", "benchmark_id": "o/c", "benchmark_name": "C", "verified": True, "stale": True,
         "filename": ".eval_results/o__c.yaml"},
        {**base, "dataset_id": "o/d", "benchmark_id": None, "benchmark_name": None, "filename": "README.md",
         "rank": None, "ranked": 0},
        {**base, "dataset_id": "o/b", "benchmark_id": "o/b", "benchmark_name": "B", "value": None,
         "error": "value must be a number", "filename": ".eval_results/x.yaml"},
    ]
    rows = eval_views.result_rows(results)
    assert [(r["dataset"], r["status"], r["board_url"]) for r in rows] == [
        ("o/b", "verified", "/datasets/o/b/leaderboard"), ("o/c", "stale", "/datasets/o/c/leaderboard"),
        ("o/d", "self-reported", None), ("o/b", "invalid", "/datasets/o/b/leaderboard")]
    assert rows[2]["benchmark_name"] == "o/d" and rows[2]["rank"] is None
    assert rows[3]["hint"] == "value must be a number" and rows[3]["score"] == "–"

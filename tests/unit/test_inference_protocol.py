"""Pure inference logic: request checking, task inference from body shape, batching, answer shapes."""

from __future__ import annotations

from collections import deque

import pytest

from hubstead.inference.engine.batching import padded_cost, take_batch
from hubstead.inference.protocol import InferenceError, can_serve, check_sampling, parse_job, task_for_body
from hubstead.inference.shapes import chat_chunk, task_answer


def test_take_batch_respects_the_padded_token_budget() -> None:
    pending = deque([("a", [10]), ("b", [10, 10]), ("c", [30]), ("d", [5])])
    batch = take_batch(pending, budget_tokens=40, lengths=lambda r: r[1], group=lambda r: "g")
    # a+b = 3 sequences x 10 = 30; adding c makes 4 x 30 = 120 > 40
    assert [r[0] for r in batch] == ["a", "b"]
    assert [r[0] for r in pending] == ["c", "d"]


def test_take_batch_always_serves_an_oversized_request_alone() -> None:
    pending = deque([("huge", [5000]), ("small", [3])])
    assert [r[0] for r in take_batch(pending, budget_tokens=100, lengths=lambda r: r[1], group=lambda r: 0)] == ["huge"]


def test_take_batch_keeps_other_groups_in_order() -> None:
    pending = deque([("a", 1), ("x", 2), ("b", 1), ("y", 2)])
    batch = take_batch(pending, budget_tokens=1000, lengths=lambda r: [4], group=lambda r: r[1])
    assert [r[0] for r in batch] == ["a", "b"]
    assert [r[0] for r in pending] == ["x", "y"]
    assert padded_cost([3, 7, 2]) == 21


def test_parse_job_checks_inputs_and_parameters() -> None:
    job = parse_job("text-classification", {"inputs": ["a", "b"], "parameters": {"top_k": 2}})
    assert job.inputs == ["a", "b"] and not job.single and job.parameters["top_k"] == 2
    with pytest.raises(InferenceError, match="Missing 'inputs'"):
        parse_job("text-classification", {"input": "x"})
    with pytest.raises(InferenceError, match="Unknown parameters"):
        parse_job("fill-mask", {"inputs": "x [MASK]", "parameters": {"temperature": 1}})
    with pytest.raises(InferenceError, match="not served"):
        parse_job("image-to-image", {"inputs": "x"})
    with pytest.raises(InferenceError, match="base64"):
        parse_job("image-classification", {"inputs": "%%%not base64%%%"})


def test_parse_job_accepts_each_client_generations_layout() -> None:
    legacy = parse_job("question-answering", {"inputs": None, "parameters": {}, "question": "q?", "context": "c"})
    assert legacy.inputs == {"question": "q?", "context": "c"}
    root = parse_job("feature-extraction", {"inputs": "hi", "normalize": True, "truncate": True})
    assert root.parameters["normalize"] is True
    similarity = parse_job("sentence-similarity", {"inputs": None, "source_sentence": "a", "sentences": ["b"]})
    assert similarity.inputs == {"source_sentence": "a", "sentences": ["b"]}


def test_task_follows_the_body_where_a_model_serves_several() -> None:
    assert task_for_body("sentence-similarity", {"inputs": "hello"}) == "feature-extraction"
    assert task_for_body("sentence-similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}}) == "sentence-similarity"
    assert task_for_body("text-classification", {"inputs": {"query": "q", "texts": ["a"]}}) == "text-ranking"
    assert task_for_body("fill-mask", {"inputs": "x"}) == "fill-mask"
    assert can_serve("fill-mask", "feature-extraction") and not can_serve("fill-mask", "text-generation")


def test_sampling_accepts_openai_and_tgi_names() -> None:
    assert check_sampling({"max_tokens": 5, "stop": "\n"})["max_new_tokens"] == 5
    assert check_sampling({"max_new_tokens": 7, "stop": ["a", "b"]})["stop"] == ["a", "b"]
    with pytest.raises(InferenceError, match="top_p"):
        check_sampling({"top_p": 2})
    with pytest.raises(InferenceError, match="stop"):
        check_sampling({"stop": [1, 2]})


def test_answer_shapes_follow_the_clients() -> None:
    labels = [[{"label": "POS", "score": 0.9}, {"label": "NEG", "score": 0.1}]]
    assert task_answer("text-classification", labels, True) == labels  # a list of lists, always
    zero = [{"sequence": "s", "labels": ["a", "b"], "scores": [0.7, 0.3]}]
    assert task_answer("zero-shot-classification", zero, True) == [{"label": "a", "score": 0.7}, {"label": "b", "score": 0.3}]
    assert task_answer("zero-shot-classification", zero, True, legacy_client=True)["labels"] == ["a", "b"]
    assert task_answer("summarization", [[{"summary_text": "x"}]], True) == [{"summary_text": "x"}]
    assert task_answer("automatic-speech-recognition", [{"text": "hi"}], True) == {"text": "hi"}
    chunk = chat_chunk("m", "id", 1, delta={"content": "x"})
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"][0]["delta"] == {"content": "x"}

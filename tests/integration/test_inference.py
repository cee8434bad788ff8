"""The inference API through real clients against a live server: InferenceClient for each task, the
openai client for chat and embeddings, raw HTTP for the lifecycle and bad input.

One server (SQLite) serves every model here; its config file routes one repo to an external engine
(the same server's /v1, standing in for vLLM) and serves another through ONNX Runtime. Answers are
compared with the same model run locally by transformers / sentence-transformers.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from inference_hub import METRICS_TOKEN, OWNER, Hub, push  # noqa: E402
from inference_models import png_bytes, wav_bytes  # noqa: E402


@pytest.fixture()
def hub(inference_hub: Hub) -> Hub:
    return inference_hub


@pytest.fixture()
def small_hub(small_inference_hub: Hub) -> Hub:
    return small_inference_hub


# --- tasks through InferenceClient -----------------------------------------------------------------


def _pipe(hub: Hub, task: str):  # type: ignore[no-untyped-def]
    from transformers import pipeline

    return pipeline(task, model=str(hub.models[task]))


def test_text_classification_matches_pipeline(hub: Hub) -> None:
    got = hub.client("text-classification").text_classification("I love this movie")
    want = _pipe(hub, "text-classification")("I love this movie", top_k=None)
    assert [(o.label, round(o.score, 5)) for o in got] == [(w["label"], round(w["score"], 5)) for w in want]
    top = hub.client("text-classification").text_classification("I love this movie", top_k=1)
    assert len(top) == 1 and top[0].label == want[0]["label"]


def test_text_ranking_scores_each_pair_like_the_cross_encoder(hub: Hub) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    query, texts = "where does sarah live?", ["sarah lives in london", "the weather is good today", "a cat and a dog"]
    response = hub.post("text-ranking", {"inputs": {"query": query, "texts": texts}, "parameters": {"return_text": True}})
    assert response.status_code == 200, response.text
    ranked = response.json()
    folder = hub.models["text-ranking"]
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        logits = model(**tokenizer([query] * 3, texts, return_tensors="pt", padding=True)).logits[:, 0]
    want = torch.sigmoid(logits).tolist()
    assert [r["index"] for r in ranked] == sorted(range(3), key=lambda i: -want[i])
    for item in ranked:
        assert item["score"] == pytest.approx(want[item["index"]], abs=1e-5) and item["text"] == texts[item["index"]]
    top = hub.post("text-ranking", {"inputs": {"query": query, "texts": texts}, "parameters": {"top_n": 1}}).json()
    assert len(top) == 1 and top[0]["index"] == ranked[0]["index"]
    classified = hub.post("text-ranking", {"inputs": "sarah lives in london"})  # plain text: its score as a label
    assert classified.status_code == 200 and classified.json()[0][0]["label"] == "LABEL_0"


def test_token_classification_aggregates_entities(hub: Hub) -> None:
    text = "my name is sarah and i live in london"
    got = hub.client("token-classification").token_classification(text, aggregation_strategy="simple")
    want = _pipe(hub, "token-classification")(text, aggregation_strategy="simple")
    assert [(g.entity_group, g.word, g.start, g.end) for g in got] == [(w["entity_group"], w["word"], w["start"], w["end"]) for w in want]
    assert all(text[g.start : g.end] == g.word for g in got)


def test_question_answering_finds_a_span_in_the_context(hub: Hub) -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    question, context = "where does sarah live?", "my name is sarah and i live in london"
    got = hub.client("question-answering").question_answering(question=question, context=context)
    assert context[got.start : got.end] == got.answer and 0 < got.score <= 1
    # Independent check: brute force over every span of the local model's logits.
    folder = hub.models["question-answering"]
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForQuestionAnswering.from_pretrained(folder)
    enc = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        out = model(**enc)
    ctx = [i for i, s in enumerate(enc.sequence_ids(0)) if s == 1]
    start_p = torch.softmax(out.start_logits[0][ctx], -1)
    end_p = torch.softmax(out.end_logits[0][ctx], -1)
    best = max((float(start_p[i] * end_p[j]), offsets[ctx[i]][0], offsets[ctx[j]][1])
                for i in range(len(ctx)) for j in range(i, min(len(ctx), i + 15)))
    assert (got.start, got.end) == (best[1], best[2])
    assert got.score == pytest.approx(best[0], rel=1e-4)
    # huggingface_hub 0.x sends question and context at the root with inputs null.
    legacy = hub.post("question-answering", {"inputs": None, "parameters": {}, "question": question, "context": context})
    assert legacy.status_code == 200 and legacy.json()["start"] == got.start


def test_fill_mask_matches_pipeline(hub: Hub) -> None:
    text = "paris is the [MASK] of france"
    got = hub.client("fill-mask").fill_mask(text)
    want = _pipe(hub, "fill-mask")(text)
    assert [(g.token_str, round(g.score, 5)) for g in got] == [(w["token_str"], round(w["score"], 5)) for w in want]
    bad = hub.post("fill-mask", {"inputs": "no mask token here"})
    assert bad.status_code == 400 and "mask" in bad.json()["error"].lower()


def test_zero_shot_in_both_client_generations_shapes(hub: Hub) -> None:
    labels = ["sports", "politics", "music"]
    got = hub.client("zero-shot-classification").zero_shot_classification("i love football", candidate_labels=labels)
    want = _pipe(hub, "zero-shot-classification")("i love football", candidate_labels=labels)
    assert [(g.label, round(g.score, 5)) for g in got] == [(lab, round(s, 5)) for lab, s in zip(want["labels"], want["scores"], strict=True)]
    legacy = hub.post("zero-shot-classification", {"inputs": "i love football", "parameters": {"candidate_labels": labels}},
                      headers={"user-agent": "unknown/None; hf_hub/0.30.2; python/3.11"})
    assert legacy.json()["labels"] == want["labels"]
    missing = hub.post("zero-shot-classification", {"inputs": "i love football"})
    assert missing.status_code == 400 and "candidate_labels" in missing.json()["error"]


@pytest.mark.parametrize("task", ["summarization", "translation"])
def test_seq2seq_matches_generate(hub: Hub, task: str) -> None:
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    text = "the cat is on the sea and the dog is in the house"
    generate = {"min_new_tokens": 4, "max_new_tokens": 6}
    client = hub.client(task)
    got = client.summarization(text, generate_parameters=generate) if task == "summarization" else \
        client.translation(text, generate_parameters=generate)
    folder = hub.models[task]
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForSeq2SeqLM.from_pretrained(folder)
    enc = tokenizer([text], return_tensors="pt")
    enc.pop("token_type_ids", None)
    with torch.no_grad():
        out = model.generate(**enc, **generate)
    want = tokenizer.batch_decode(out, skip_special_tokens=True)[0]
    assert (got.summary_text if task == "summarization" else got.translation_text) == want


def test_text_generation_stream_and_details(hub: Hub) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    client = hub.client("text-generation")
    plain = client.text_generation("hello world", max_new_tokens=8, temperature=0.0)
    streamed = "".join(client.text_generation("hello world", max_new_tokens=8, stream=True, temperature=0.0))
    detailed = client.text_generation("hello world", max_new_tokens=8, details=True, temperature=0.0)
    folder = hub.models["text-generation"]
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer("hello world", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
    generated = out[0][ids.shape[1]:]
    if 199 in generated.tolist():  # stop at the eos token, as the server does
        generated = generated[: generated.tolist().index(199)]
    want = tokenizer.decode(generated, skip_special_tokens=True)
    assert plain == want and streamed == want and detailed.generated_text == want
    assert detailed.details.generated_tokens >= 1 and detailed.details.finish_reason in ("length", "eos_token")
    assert all(t.logprob <= 0 for t in detailed.details.tokens)


def test_image_classification_raw_and_json(hub: Hub) -> None:
    import io

    from PIL import Image

    image = png_bytes()
    got = hub.client("image-classification").image_classification(image)
    want = _pipe(hub, "image-classification")(Image.open(io.BytesIO(image)).convert("RGB"), top_k=3)
    assert [(g.label, round(g.score, 5)) for g in got] == [(w["label"], round(w["score"], 5)) for w in want]
    top1 = hub.post("image-classification", {"inputs": base64.b64encode(image).decode(), "parameters": {"top_k": 1}})
    assert top1.status_code == 200 and [x["label"] for x in top1.json()] == [want[0]["label"]]
    broken = httpx.post(hub.model_url("image-classification"), content=b"\x89PNG not an image",
                        headers={"x-wait-for-model": "true"}, timeout=60)
    assert broken.status_code == 415 and "image" in broken.json()["error"]


def test_speech_recognition_from_wav(hub: Hub) -> None:
    from hubstead.inference.engine.pipelines import decode_audio

    audio = wav_bytes()
    got = hub.client("automatic-speech-recognition").automatic_speech_recognition(audio)
    samples, rate = decode_audio(audio)
    want = _pipe(hub, "automatic-speech-recognition")({"raw": samples, "sampling_rate": rate})
    assert got.text == want["text"]


# --- embeddings: real all-MiniLM-L6-v2 weights -----------------------------------------------------


def test_embeddings_equal_sentence_transformers(hub: Hub) -> None:
    from openai import OpenAI
    from sentence_transformers import SentenceTransformer

    texts = ["A man is eating food.", "The new movie is awesome", "hello"]
    reference = SentenceTransformer(str(hub.models["minilm"]), device="cpu").encode(texts)
    client = hub.client("minilm")
    one = client.feature_extraction(texts[0])
    np.testing.assert_allclose(np.asarray(one).reshape(-1), reference[0], atol=1e-5)
    similarity = client.sentence_similarity(texts[0], other_sentences=texts[1:])
    np.testing.assert_allclose(similarity, reference[1:] @ reference[0], atol=1e-5)
    oai = OpenAI(base_url=f"{hub.url}/v1", api_key=hub.read_token)
    default = oai.embeddings.create(model=f"{OWNER}/minilm", input=texts)  # base64 on the wire
    floats = oai.embeddings.create(model=f"{OWNER}/minilm", input=texts, encoding_format="float")
    for result in (default, floats):
        np.testing.assert_allclose(np.array([d.embedding for d in result.data]), reference, atol=1e-5)
    assert floats.usage.prompt_tokens > len(texts)
    short = oai.embeddings.create(model=f"{OWNER}/minilm", input="hello", dimensions=64, encoding_format="float")
    assert len(short.data[0].embedding) == 64


def test_replicas_share_the_load_and_answer_like_one_worker(hub: Hub) -> None:
    """Two worker processes for one model: both take requests under load, answers equal the single
    worker's, memory counts both, and one replica dying brings the pool back on the next call."""
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"sentence number {i} about {word}" for i, word in enumerate(["rain", "bread", "maps", "ships"] * 12)]
    headers = {"Authorization": f"Bearer {hub.read_token}"}

    def embed(model: str, text: str) -> list[float]:
        body = {"model": f"{OWNER}/{model}", "input": text, "encoding_format": "float"}
        response = httpx.post(f"{hub.url}/v1/embeddings", json=body, headers=headers, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()["data"][0]["embedding"]

    embed("minilm-replicas", "warm up")
    with ThreadPoolExecutor(16) as pool:
        replicated = list(pool.map(lambda t: embed("minilm-replicas", t), texts))
    single = [embed("minilm", t) for t in texts[:8]]
    np.testing.assert_allclose(np.array(replicated[:8]), np.array(single), atol=1e-5)

    def served() -> dict[str, Any]:
        status = httpx.get(f"{hub.url}/api/inference/status", headers={"Authorization": f"Bearer {hub.token}"}).json()
        return next(m for m in status["models"] if m["repo_id"] == f"{OWNER}/minilm-replicas" and m["state"] == "ready")

    model = served()
    replicas = model["replicas"]
    assert len(replicas) == 2 and len({r["pid"] for r in replicas}) == 2 and all(r["alive"] for r in replicas)
    assert all(r["requests"] > 0 for r in replicas), replicas  # the least busy replica gets each job
    assert sum(r["requests"] for r in replicas) == len(texts) + 1
    assert model["memory_bytes"] == sum(r["rss_bytes"] for r in replicas)

    os.kill(replicas[1]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and all(r["alive"] for r in served()["replicas"]):
        time.sleep(0.2)
    np.testing.assert_allclose(embed("minilm-replicas", texts[0]), replicated[0], atol=1e-5)
    assert {r["pid"] for r in served()["replicas"]}.isdisjoint({r["pid"] for r in replicas})


def test_onnx_forms_are_gated_and_reported(hub: Hub) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["A man is eating food.", "The new movie is awesome", "Someone plays a guitar on a stage tonight."]
    reference = SentenceTransformer(str(hub.models["minilm"]), device="cpu").encode(texts)
    for name, floor in (("minilm-onnx", 0.999), ("minilm-int8", 0.95)):
        vectors = np.asarray(hub.post(name, {"inputs": texts}).json())
        cosines = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
        assert cosines.min() >= floor, (name, cosines)
    listed = {m["id"]: m for m in httpx.get(f"{hub.url}/v1/models", headers={"Authorization": f"Bearer {hub.read_token}"}).json()["data"]}
    assert listed[f"{OWNER}/minilm-onnx"]["served_by"]["form"] == "onnx-fp32"
    assert listed[f"{OWNER}/minilm-int8"]["served_by"]["form"] == "onnx-int8"
    assert "cosine" in listed[f"{OWNER}/minilm-int8"]["served_by"]["form_reason"]
    assert listed[f"{OWNER}/minilm"]["served_by"]["form"] == "pytorch"


# --- chat: real SmolLM2-135M-Instruct weights ------------------------------------------------------


def _reference_chat(hub: Hub, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = hub.models["smollm"]
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0][ids.shape[1]:], skip_special_tokens=True)


@pytest.mark.slow
def test_chat_with_openai_client_streamed_and_not(hub: Hub) -> None:
    from openai import OpenAI

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    want = _reference_chat(hub, messages, 24)
    oai = OpenAI(base_url=f"{hub.url}/v1", api_key=hub.read_token)
    reply = oai.chat.completions.create(model=f"{OWNER}/smollm", messages=messages, max_tokens=24, temperature=0)
    assert reply.choices[0].message.content == want
    assert reply.usage.completion_tokens >= 1 and reply.choices[0].finish_reason in ("stop", "length")
    chunks = list(oai.chat.completions.create(model=f"{OWNER}/smollm", messages=messages, max_tokens=24, temperature=0,
                                              stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == want
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == reply.usage.completion_tokens
    completion = oai.completions.create(model=f"{OWNER}/smollm", prompt="The capital of France is", max_tokens=5, temperature=0)
    assert completion.choices[0].text.strip()
    models = {m.id for m in oai.models.list().data}
    assert {f"{OWNER}/smollm", f"{OWNER}/minilm"} <= models


@pytest.mark.slow
def test_chat_with_inference_client_on_the_model_url(hub: Hub) -> None:
    messages = [{"role": "user", "content": "Name three colors."}]
    want = _reference_chat(hub, messages, 16)
    client = hub.client("smollm")
    reply = client.chat_completion(messages, max_tokens=16, temperature=0)
    assert reply.choices[0].message.content == want
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat_completion(messages, max_tokens=16, temperature=0, stream=True))
    assert streamed == want


@pytest.mark.slow
def test_concurrent_streams_interleave_and_match_alone(hub: Hub) -> None:
    """Eight streams at once: each equals its answer when run alone (continuous batching is exact)."""
    from openai import OpenAI

    oai = OpenAI(base_url=f"{hub.url}/v1", api_key=hub.read_token)
    prompts = ["Count to five.", "Say hi.", "What is 2+2?", "Name a fruit.", "Describe the sea in one sentence.",
               "What color is the sky?", "Write a short greeting.", "List two animals."]
    alone = {p: oai.chat.completions.create(model=f"{OWNER}/smollm", messages=[{"role": "user", "content": p}],
                                            max_tokens=20, temperature=0).choices[0].message.content for p in prompts[:3]}
    results: dict[str, str] = {}
    arrivals: dict[str, list[float]] = {}

    def ask(prompt: str) -> None:
        stream = oai.chat.completions.create(model=f"{OWNER}/smollm", messages=[{"role": "user", "content": prompt}],
                                             max_tokens=20, temperature=0, stream=True)
        parts = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
                arrivals.setdefault(prompt, []).append(time.monotonic())
        results[prompt] = "".join(parts)

    before = hub.metric("hubstead_batch_size_sum", model=f"{OWNER}/smollm", kind="decode")
    steps_before = hub.metric("hubstead_batch_size_count", model=f"{OWNER}/smollm", kind="decode")
    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for prompt, answer in alone.items():
        assert results[prompt] == answer
    sizes = hub.metric("hubstead_batch_size_sum", model=f"{OWNER}/smollm", kind="decode") - before
    steps = hub.metric("hubstead_batch_size_count", model=f"{OWNER}/smollm", kind="decode") - steps_before
    assert steps and sizes / steps > 2, "decode steps should carry several streams at once"


@pytest.mark.slow
def test_remote_engine_serves_through_the_hub(hub: Hub) -> None:
    from openai import OpenAI

    oai = OpenAI(base_url=f"{hub.url}/v1", api_key=hub.read_token)
    messages = [{"role": "user", "content": "Say hello."}]
    direct = oai.chat.completions.create(model=f"{OWNER}/smollm", messages=messages, max_tokens=12, temperature=0)
    remote = oai.chat.completions.create(model=f"{OWNER}/remote-chat", messages=messages, max_tokens=12, temperature=0)
    assert remote.choices[0].message.content == direct.choices[0].message.content
    streamed = "".join(c.choices[0].delta.content or "" for c in oai.chat.completions.create(
        model=f"{OWNER}/remote-chat", messages=messages, max_tokens=12, temperature=0, stream=True) if c.choices)
    assert streamed == direct.choices[0].message.content
    listed = {m["id"]: m for m in httpx.get(f"{hub.url}/v1/models").json()["data"]}
    assert listed[f"{OWNER}/remote-chat"]["served_by"]["engine"].endswith("/v1")
    assert hub.metric("hubstead_request_count_total", model=f"{OWNER}/remote-chat") >= 2


@pytest.mark.slow
def test_client_disconnect_stops_generation(hub: Hub) -> None:
    body = {"model": f"{OWNER}/smollm", "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
            "max_tokens": 2000, "temperature": 0, "stream": True}
    headers = {"Authorization": f"Bearer {hub.read_token}"}
    with httpx.stream("POST", f"{hub.url}/v1/chat/completions", json=body, headers=headers, timeout=120) as response:
        for n, _ in enumerate(response.iter_lines()):
            if n > 10:
                break
    time.sleep(1.0)
    first = hub.metric("hubstead_generated_tokens_total", model=f"{OWNER}/smollm")
    time.sleep(1.5)
    assert hub.metric("hubstead_generated_tokens_total", model=f"{OWNER}/smollm") == first


# --- lifecycle, access and bad input ---------------------------------------------------------------


def test_cold_model_answers_503_with_estimated_time_then_serves(hub: Hub) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=hub.token)
    push(api, hub.models["text-classification"], "cold-classifier")
    # A request that asks not to wait; without the header the hub waits for the load (test_hf_api_gaps).
    cold = hub.post("cold-classifier", {"inputs": "hello"}, wait=False, headers={"x-wait-for-model": "false"})
    assert cold.status_code == 503
    assert cold.json()["estimated_time"] > 0 and int(cold.headers["retry-after"]) >= 1
    assert "loading" in cold.json()["error"]
    warm = hub.post("cold-classifier", {"inputs": "hello"}, wait=True)
    assert warm.status_code == 200 and warm.json()[0][0]["label"] in ("NEGATIVE", "POSITIVE")


def test_new_commit_reloads_the_model(hub: Hub) -> None:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub.url, token=hub.token)
    push(api, hub.models["text-classification"], "relabel")
    before = hub.post("relabel", {"inputs": "hello"}).json()[0]
    assert {x["label"] for x in before} == {"NEGATIVE", "POSITIVE"}
    config = json.loads((hub.models["text-classification"] / "config.json").read_text())
    config["id2label"] = {"0": "sad", "1": "happy"}
    config["label2id"] = {"sad": 0, "happy": 1}
    api.create_commit(f"{OWNER}/relabel", operations=[CommitOperationAdd("config.json", json.dumps(config).encode())],
                      commit_message="rename labels")
    after = hub.post("relabel", {"inputs": "hello"}).json()[0]
    assert {x["label"] for x in after} == {"sad", "happy"}
    assert [x["score"] for x in after] == [x["score"] for x in before]


def test_private_model_needs_a_token_with_access(hub: Hub) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=hub.token)
    push(api, hub.models["text-classification"], "secret-classifier", private=True)
    anonymous = hub.post("secret-classifier", {"inputs": "hello"}, token=None)
    assert anonymous.status_code == 404 and anonymous.headers["x-error-code"] == "RepoNotFound"
    stranger = hub.server.account("stranger")
    assert hub.post("secret-classifier", {"inputs": "hello"}, token=stranger.read_token).status_code == 404
    assert hub.post("secret-classifier", {"inputs": "hello"}).status_code == 200
    assert f"{OWNER}/secret-classifier" not in {m["id"] for m in httpx.get(f"{hub.url}/v1/models").json()["data"]}


@pytest.mark.parametrize(("body", "status", "words"), [
    ({}, 400, "inputs"),
    ({"inputs": 42}, 400, "string"),
    ({"inputs": ""}, 400, "empty"),
    ({"inputs": "hi", "parameters": {"top_k": "three"}}, 400, "top_k"),
    ({"inputs": "hi", "parameters": {"top_k": 0}}, 400, "top_k"),
    ({"inputs": "hi", "parameters": {"bogus": 1}}, 400, "bogus"),
    ({"inputs": "hi " * 500, "parameters": {"truncate": False}}, 413, "at most"),
])
def test_bad_input_is_refused_clearly(hub: Hub, body: dict[str, Any], status: int, words: str) -> None:
    response = hub.post("text-classification", body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_wrong_task_bad_json_and_unknown_model(hub: Hub) -> None:
    wrong = httpx.post(f"{hub.model_url('text-classification')}/pipeline/automatic-speech-recognition", json={"inputs": "x"})
    assert wrong.status_code == 400 and "does not serve" in wrong.json()["error"]
    garbage = httpx.post(hub.model_url("text-classification"), content=b"{not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 400 and "JSON" in garbage.json()["error"]
    missing = httpx.post(f"{hub.url}/models/{OWNER}/no-such-model", json={"inputs": "x"})
    assert missing.status_code == 404
    # these calls skip FastAPI (HubApp's direct path): errors still carry the Hub's headers
    for answer in (wrong, garbage, missing):
        assert answer.headers["x-error-message"] == answer.json()["error"] and answer.headers["x-request-id"]
    traced = hub.post("text-classification", {"inputs": "hello"}, headers={"X-Request-Id": "trace-42"})
    assert traced.status_code == 200 and traced.headers["x-request-id"] == "trace-42"
    chat_missing = httpx.post(f"{hub.url}/v1/chat/completions", json={"model": "dummy", "messages": [{"role": "user", "content": "hi"}]})
    assert chat_missing.status_code == 400 and "model" in chat_missing.json()["error"]["message"]
    long_truncated = hub.post("text-classification", {"inputs": "hi " * 500})
    assert long_truncated.status_code == 200


def test_unloadable_model_fails_in_words_and_others_keep_serving(hub: Hub) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=hub.token)
    broken = Path(tempfile.mkdtemp()) / "broken"
    shutil.copytree(hub.models["text-classification"], broken)
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    push(api, broken, "broken-classifier")
    response = hub.post("broken-classifier", {"inputs": "hello"})
    # The repo's files cannot be loaded: the repo's fault (422), in words, not the hub's (5xx).
    assert response.status_code == 422 and "could not be loaded" in response.json()["error"]
    assert hub.post("text-classification", {"inputs": "hello"}).status_code == 200
    assert httpx.get(f"{hub.url}/api/models/{OWNER}/broken-classifier").status_code == 200


def test_metrics_are_exposed_with_tgi_style_names(hub: Hub) -> None:
    hub.post("text-classification", {"inputs": "hello"})
    text = httpx.get(f"{hub.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    for name in ("hubstead_queue_size", "hubstead_batch_size_bucket", "hubstead_request_duration_seconds_bucket",
                 "hubstead_batch_inference_duration_seconds_bucket", "hubstead_loaded_models",
                 "hubstead_model_memory_bytes", "hubstead_tokens_per_second", "hubstead_request_count_total"):
        assert name in text, name
    status = httpx.get(f"{hub.url}/api/inference/status").json()
    assert any(m["repo_id"] == f"{OWNER}/text-classification" and m["memory_bytes"] > 0 for m in status["models"])


def test_base64_struct_layout_is_little_endian_float32() -> None:
    from hubstead.inference.shapes import embeddings

    encoded = embeddings("m", [[0.25, -0.5, 1.0]], 2, "base64")["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(encoded)) == (0.25, -0.5, 1.0)


# --- a server with a small memory budget and a short queue -----------------------------------------


def _loaded(hub: Hub) -> set[str]:
    status = httpx.get(f"{hub.url}/api/inference/status", headers={"Authorization": f"Bearer {hub.token}"}).json()
    return {m["repo_id"] for m in status["models"] if m["state"] == "ready"}


def test_memory_budget_evicts_least_recently_used(small_hub: Hub) -> None:
    assert small_hub.post("first", {"inputs": "hello"}).status_code == 200
    assert _loaded(small_hub) == {f"{OWNER}/first"}
    assert small_hub.post("second", {"inputs": "hello"}).status_code == 200
    assert _loaded(small_hub) == {f"{OWNER}/second"}
    assert small_hub.post("first", {"inputs": "hello"}).status_code == 200  # reloads on demand


def test_model_too_big_for_the_budget_is_refused(small_hub: Hub) -> None:
    response = small_hub.post("minilm", {"inputs": "hello"})
    assert response.status_code == 507
    assert "budget" in response.json()["error"] and "GiB" in response.json()["error"]
    assert small_hub.post("first", {"inputs": "hello"}).status_code == 200


def test_full_queue_answers_429_with_retry_after(small_hub: Hub) -> None:
    assert small_hub.post("writer", {"inputs": "hello", "parameters": {"max_new_tokens": 1}}).status_code == 200
    statuses: list[int] = []
    retry_after: list[str] = []

    def ask() -> None:
        response = small_hub.post("writer", {"inputs": "hello world", "parameters": {"max_new_tokens": 200}})
        statuses.append(response.status_code)
        if response.status_code == 429:
            retry_after.append(response.headers.get("retry-after", ""))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert statuses.count(200) >= 2 and statuses.count(429) >= 1, statuses
    assert all(value.isdigit() for value in retry_after)


def test_core_app_does_not_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from hubstead.config import load_settings\n"
        "from hubstead.app import create_app\n"
        f"app = create_app(load_settings(data_dir={str(tmp_path)!r}))\n"
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'sentence_transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_a_crashed_worker_is_replaced_on_the_next_call(small_hub: Hub) -> None:
    import os
    import signal

    assert small_hub.post("first", {"inputs": "hello"}).status_code == 200
    status = httpx.get(f"{small_hub.url}/api/inference/status", headers={"Authorization": f"Bearer {small_hub.token}"}).json()
    pid = next(m["pid"] for m in status["models"] if m["repo_id"] == f"{OWNER}/first" and m["state"] == "ready")
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    again = small_hub.post("first", {"inputs": "hello"})
    assert again.status_code == 200, again.text
    assert httpx.get(f"{small_hub.url}/healthz").status_code == 200

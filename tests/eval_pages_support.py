"""Shared by the evaluation pages' tests (HTTP and Chromium): a tiny sequence classifier built from a config, a
benchmark it fits (text classification, accuracy) and one it does not (token classification)."""

from __future__ import annotations

from pathlib import Path

from train_support import VOCAB, word_tokenizer

SENTIMENT = """name: {name}
description: Is the sentence positive or negative?
evaluation_framework: hubstead
tasks:
  - id: sentiment
    split: test
    metric: accuracy
    task_type: text-classification
    text_column: text
    label_column: label
"""
TAGGING = """name: Tiny tagging
evaluation_framework: hubstead
tasks:
  - id: ner
    split: test
    metric: f1
    task_type: token-classification
    tokens_column: tokens
    tags_column: tags
"""
TAGGING_ROWS = [{"tokens": ["sarah", "lives", "in", "paris"], "tags": [1, 0, 0, 2]}] * 4


def tiny_classifier(folder: Path) -> Path:
    """A tiny BERT with a two-label sequence-classification head (random weights) and its word tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    word_tokenizer(folder)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=0, num_labels=2,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(config).save_pretrained(str(folder))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny classifier for evaluation tests\n")
    return folder

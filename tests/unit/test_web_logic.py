"""Pure logic of the web front: card rendering and sanitizing, name hints, snippets, the task taxonomy."""

from __future__ import annotations

from hubstead.tasks import TASK_MODALITY, canonical_task
from hubstead.web.names import parse_model_name
from hubstead.web.render import highlight_file, render_markdown
from hubstead.web.snippets import snippets


def test_card_rendering_keeps_content_and_removes_scripts() -> None:
    card = (
        "---\nlicense: mit\n---\n# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('x')\n```\n\n"
        "Inline $E=mc^2$ math.\n\n<script>alert(1)</script><img src=\"x.png\" onerror=\"alert(2)\">"
        "<a href=\"javascript:alert(3)\">bad</a> <a href=\"https://example.org\">good</a>\n"
    )
    html = render_markdown(card, image_base="/alice/m/resolve/abc")
    assert "<h1>Title</h1>" in html and "<table>" in html
    assert 'class="highlight"' in html and "<math" in html
    assert "license: mit" not in html
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert 'src="/alice/m/resolve/abc/x.png"' in html
    assert 'href="https://example.org"' in html and "noopener" in html


def test_highlight_file_escapes() -> None:
    html = highlight_file("config.json", '{"a": "<b>"}')
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_name_hints() -> None:
    hint = parse_model_name("facebook/bart-large-mnli-finetuned-squad2-english")
    assert (hint.architecture, hint.size, hint.pretraining_data) == ("bart", "large", "mnli")
    assert hint.finetuned and hint.finetuning_data == "squad2" and hint.language == "en"
    small = parse_model_name("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
    assert small.architecture == "smollm2" and small.size == "135M" and "gguf" in small.formats
    assert "instruct" in small.variants


def test_snippets_use_the_hub_url_and_task() -> None:
    items = snippets(repo_id="a/b", repo_type="model", library="transformers", task="sentiment-analysis", hub_url="http://hub:8000")
    titles = [s.title for s in items]
    assert titles[:2] == ["transformers: pipeline", "transformers: Auto classes"]
    assert 'pipeline("text-classification", model="a/b")' in items[0].code
    assert "AutoModelForSequenceClassification" in items[1].code
    assert all("http://hub:8000" in s.code for s in items)
    st = snippets(repo_id="a/st", repo_type="model", library="sentence-transformers", task="sentence-similarity", hub_url="h")
    assert st[0].title == "sentence-transformers"
    ds = snippets(repo_id="a/d", repo_type="dataset", library=None, task=None, hub_url="h")
    assert 'load_dataset("a/d")' in ds[0].code and "--repo-type dataset" in ds[1].code


def test_task_aliases_and_modalities() -> None:
    assert canonical_task("ner") == "token-classification"
    assert canonical_task("translation_en_to_fr") == "translation"
    assert canonical_task("conversational") == "text-generation"
    assert TASK_MODALITY["fill-mask"] == "Natural Language Processing"
    assert TASK_MODALITY["depth-estimation"] == "Computer Vision"


def test_one_taxonomy_for_pages_and_inference() -> None:
    """Pages and the inference API resolve synonyms from the same table: every alias names a task of the
    taxonomy, inference keeps text2text-generation a task of its own while pages list it under text
    generation, and every task inference serves is one the taxonomy knows (or folds into one it knows)."""
    from hubstead.inference.protocol import SERVED_TASKS, normalize_task
    from hubstead.tasks import ALIASES, LISTED_UNDER

    for alias, task in ALIASES.items():
        assert task in TASK_MODALITY, alias
        assert normalize_task(alias) == task == canonical_task(alias)
    assert normalize_task("reranking") == "text-ranking" and canonical_task("asr") == "automatic-speech-recognition"
    assert normalize_task("text2text-generation") == "text2text-generation"
    assert canonical_task("text2text-generation") == "text-generation"
    for task in SERVED_TASKS:
        assert canonical_task(task) in TASK_MODALITY or task in LISTED_UNDER, task

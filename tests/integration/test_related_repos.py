"""A model page's related repos (``search.related``): the model tree (base_model chain up; fine-tunes, adapters,
quantizations and merges down), the datasets its card names, and the spaces that use it; a private relative
shows only to those who may see it."""

from __future__ import annotations

import httpx
from huggingface_hub import HfApi

from support import LiveServer, web_session


def _repo(api: HfApi, repo_id: str, card: str, *, repo_type: str = "model", private: bool = False) -> None:
    api.create_repo(repo_id, repo_type=repo_type, private=private, space_sdk="static" if repo_type == "space" else None)
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo_id, repo_type=repo_type)


def test_model_tree_linked_datasets_and_spaces(server: LiveServer) -> None:
    owner = server.account("treeowner", password="pw-tree-owner-1")
    other = server.account("treeother", password="pw-tree-other-1")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    other_api = HfApi(endpoint=server.url, token=other.write_token)
    ns = owner.name
    _repo(api, f"{ns}/grandparent", "---\nlicense: mit\n---\n# g\n")
    _repo(api, f"{ns}/base", f"---\nbase_model: {ns}/grandparent\ndatasets: [{ns}/corpus, nobody/missing]\n---\n# b\n")
    _repo(api, f"{ns}/corpus", "# data\n", repo_type="dataset")
    _repo(api, f"{ns}/tuned", f"---\nbase_model: {ns}/base\n---\n# t\n")
    _repo(api, f"{ns}/lora", f"---\nbase_model: {ns}/base\nlibrary_name: peft\n---\n# l\n")
    _repo(api, f"{ns}/base-gguf", f"---\nbase_model: {ns}/base\ntags: [gguf]\n---\n# q\n")
    _repo(api, f"{ns}/demo", f"---\nsdk: static\nmodels: [{ns}/base]\n---\n# s\n", repo_type="space")
    _repo(other_api, f"{other.name}/secret-tune", f"---\nbase_model: {ns}/base\n---\n# p\n", private=True)

    page = httpx.get(f"{server.url}/{ns}/base")
    assert page.status_code == 200
    html = page.text
    assert "Model tree" in html and f'href="/{ns}/grandparent"' in html
    for heading, child in (("Fine-tunes", "tuned"), ("Adapters", "lora"), ("Quantizations", "base-gguf")):
        assert heading in html and f"{ns}/{child}" in html, heading
    assert "Merges" not in html
    assert f"{ns}/corpus" in html and "nobody/missing" in html
    assert f"spaces/{ns}/demo" in html
    assert "secret-tune" not in html  # a private derivative stays hidden from a visitor

    browser, _ = web_session(server, other.name, "pw-tree-other-1")
    as_other = browser.get(f"/{ns}/base")
    browser.close()
    assert as_other.status_code == 200 and f"{other.name}/secret-tune" in as_other.text  # its owner sees it

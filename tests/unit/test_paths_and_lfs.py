"""Pure logic: path and name validation, LFS pointers and .gitattributes rules, byte ranges, cards."""

from __future__ import annotations

import pytest

from hubstead.downloads import follows_head
from hubstead.errors import BadRequestError, InvalidPathError, InvalidRefNameError, InvalidRepoIdError
from hubstead.repos.cards import index_fields, parse_card_yaml
from hubstead.repos.files import RangeNotSatisfiableError, parse_range
from hubstead.repos.lfs.pointers import LfsPointer, LfsRules, default_gitattributes, parse_pointer
from hubstead.repos.paths import normalize_path_in_repo, split_repo_id, validate_branch_name


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/file.bin", "weird name (1).txt", "ünïcode/ok", ".gitattributes"])
def test_valid_paths(path: str) -> None:
    assert normalize_path_in_repo(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs",
        "../x",
        "a/../b",
        "a/./b",
        "a//b",
        ".git/x",
        "x/.GIT/y",
        "a\\b",
        "nul\x00",
        "x" * 256,
        "d/" * 101 + "f",
    ],
)
def test_invalid_paths(path: str) -> None:
    with pytest.raises(InvalidPathError):
        normalize_path_in_repo(path)


def test_repo_ids() -> None:
    assert split_repo_id("alice/bert-base_v1.0") == ("alice", "bert-base_v1.0")
    for bad in [
        "alice",
        "a/b/c",
        "alice/-x",
        "alice/x-",
        "alice/a--b",
        "alice/a..b",
        "alice/x.git",
        "al ice/x",
        "alice/" + "x" * 97,
    ]:
        with pytest.raises(InvalidRepoIdError):
            split_repo_id(bad)


def test_branch_names() -> None:
    assert validate_branch_name("feature/one") == "feature/one"
    for bad in ["", "a..b", "a b", "x.lock", "-x", "refs/heads/x", "a~1", "a^", "a:b", "a//b", "x/"]:
        with pytest.raises(InvalidRefNameError):
            validate_branch_name(bad)


def test_pointer_round_trip_and_rejects_other_files() -> None:
    pointer = LfsPointer(oid="a" * 64, size=123)
    assert parse_pointer(pointer.to_bytes()) == pointer
    assert parse_pointer(b"version https://git-lfs.github.com/spec/v1\noid sha256:xyz\nsize 1\n") is None
    assert parse_pointer(b"hello") is None
    assert parse_pointer(pointer.to_bytes() + b"x" * 2000) is None


def test_gitattributes_rules_follow_git_matching() -> None:
    rules = LfsRules(default_gitattributes("model"))
    assert rules.matches("model.safetensors") and rules.matches("deep/dir/model.safetensors")
    assert (
        rules.matches("x.tar.gz") and rules.matches("saved_model/variables/data") and rules.matches("events.tfevents.1")
    )
    assert not rules.matches("config.json") and not rules.matches("README.md")
    assert LfsRules(default_gitattributes("dataset")).matches("images/cat.png")
    custom = LfsRules("*.bin filter=lfs diff=lfs merge=lfs -text\nkeep/*.bin -filter\n/root-only.dat filter=lfs\n")
    assert custom.matches("a/b.bin") and not custom.matches("keep/small.bin")
    assert custom.matches("root-only.dat") and not custom.matches("sub/root-only.dat")


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-5", 10) == (2, 5)
    assert parse_range("bytes=0-100000", 10) == (0, 9)
    assert parse_range("bytes=7-", 10) == (7, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=-30", 10) == (0, 9)
    with pytest.raises(RangeNotSatisfiableError):
        parse_range("bytes=10-", 10)
    with pytest.raises(BadRequestError):
        parse_range("chars=1-2", 10)


def test_download_dedup_pairs_head_then_get_only() -> None:
    assert follows_head("HEAD", 0, "GET", 0.1, window=30) is True  # hf_hub_download's GET: not a new download
    assert follows_head("GET-paired", 0.1, "GET", 0.2, window=30) is False
    assert follows_head("HEAD", 0.2, "GET", 100, window=30) is False  # too late to be the same download
    assert follows_head("GET", 100, "GET", 100.1, window=30) is False
    assert follows_head("HEAD", 0, "HEAD", 0.1, window=30) is False


def test_card_and_index_fields() -> None:
    readme = "---\nlicense: apache-2.0\npipeline_tag: fill-mask\nlanguage: [en, fr]\ntags: [a, b]\nbase_model: org/base\ndatasets: squad\n---\n# X"
    assert parse_card_yaml(readme)["license"] == "apache-2.0"
    assert parse_card_yaml("no header") is None
    assert parse_card_yaml("---\n: : bad yaml [\n---\n") is None
    fields = index_fields(
        repo_type="model", readme=readme, config_json=b'{"model_type": "bert"}', root_files=["model.safetensors"]
    )
    assert fields.pipeline_tag == "fill-mask" and fields.library_name == "transformers"
    assert fields.languages == ["en", "fr"] and fields.base_models == ["org/base"] and fields.datasets == ["squad"]
    assert {
        "a",
        "b",
        "bert",
        "safetensors",
        "transformers",
        "fill-mask",
        "en",
        "fr",
        "license:apache-2.0",
        "dataset:squad",
        "base_model:org/base",
    } == set(fields.tags)

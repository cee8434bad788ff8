"""The card's "From the name" hint claims only what a name says (issue 23: all-MiniLM-L6-v2 read as "Data l6"),
and the header's search splits a query into words with clear limits."""

from __future__ import annotations

import pytest

from hubstead.errors import BadRequestError
from hubstead.search.everywhere import terms_of
from hubstead.web.names import parse_model_name


def test_layer_and_version_words_are_not_data() -> None:
    facts = dict(parse_model_name("sentence-transformers/all-MiniLM-L6-v2").facts())
    assert facts == {"Architecture": "minilm", "Layers": "6", "Version": "v2"}
    assert "Data" not in dict(parse_model_name("acme/bert-base-projectx").facts())  # an unknown word: no claim
    assert dict(parse_model_name("acme/roberta-large-imdb").facts())["Data"] == "imdb"  # a known data set


def test_query_words_and_limits() -> None:
    assert terms_of("  Reviews   SENTIMENT ") == ["reviews", "sentiment"]
    assert terms_of("") == []
    with pytest.raises(BadRequestError):
        terms_of("x" * 201)
    with pytest.raises(BadRequestError):
        terms_of("a b c d e f g h i")

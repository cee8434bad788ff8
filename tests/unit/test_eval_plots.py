"""The leaderboard's scatter (``evals.plots``): dots where the log-size axis and the score axis put them, the
frontier of the best model at each size, empty and one-point boards, unknown sizes counted not drawn, every label
escaped, and the human parameter counts the pages show."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hubstead.evals.plots import Point, frontier, human_params, scatter_svg

SVG = "{http://www.w3.org/2000/svg}"


def _points(svg: str) -> dict[str, tuple[float, float]]:
    root = ET.fromstring(svg)
    found = {}
    for node in root.iter():
        if node.get("class") == "point":
            found[node.get("data-model") or ""] = (float(node.get("data-x") or 0), float(node.get("data-y") or 0))
    return found


def test_dots_sit_on_a_log_size_axis_and_a_linear_score_axis() -> None:
    """720x380: the plot spans x 60..696 and y 30..318. Sizes 1M and 100M are the axis' ends (decades 6..8), so
    10M is the middle; scores 0.4..1.0 are the score axis' ends (ticks 0.4, 0.6, 0.8, 1.0), so 0.7 is the middle."""
    svg = scatter_svg([Point("a/small", 1_000_000, 0.4, "/a/small"), Point("b/mid", 10_000_000, 0.7, "/b/mid"),
                       Point("c/large", 100_000_000, 1.0, "/c/large", verified=True)], 720, 380)
    assert _points(svg) == {"a/small": (60.0, 318.0), "b/mid": (378.0, 174.0), "c/large": (696.0, 30.0)}
    root = ET.fromstring(svg)
    links = {a.get("data-model"): a.get("href") for a in root.iter(f"{SVG}a")}
    assert links == {"a/small": "/a/small", "b/mid": "/b/mid", "c/large": "/c/large"}
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "x-tick"]
    assert ticks == ["1M", "10M", "100M"]
    y_ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "y-tick"]
    assert y_ticks == ["0.4", "0.6", "0.8", "1"]
    labels = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "model size (parameters, log scale)" in labels and "score (↑ higher is better)" in labels
    verified = {a.get("data-model"): a.get("data-verified") for a in root.iter(f"{SVG}a")}
    assert verified["c/large"] == "true" and verified["a/small"] == "false"


def test_the_frontier_keeps_the_best_model_at_each_size() -> None:
    """A larger model that scores below a smaller one is off the frontier; lower-is-better flips the test."""
    points = [Point("s", 10**6, 0.5), Point("m", 10**7, 0.4), Point("l", 10**8, 0.9), Point("xl", 10**9, 0.8)]
    assert [p.label for p in frontier(points)] == ["s", "l"]
    assert [p.label for p in frontier(points, higher_is_better=False)] == ["s", "m"]
    svg = scatter_svg(points)
    assert 'class="frontier"' in svg


def test_an_empty_board_and_unknown_sizes_draw_a_note_not_a_broken_chart() -> None:
    """No points: a message. Points without a size (None, 0) or with a non-finite score: counted in a note."""
    empty = scatter_svg([])
    ET.fromstring(empty)
    assert "No results with a known model size to plot" in empty and _points(empty) == {}
    svg = scatter_svg([Point("x/unknown", None, 0.5), Point("x/zero", 0, 0.5), Point("x/nan", 10**6, float("nan")),
                       Point("x/known", 10**6, 0.5)])
    assert list(_points(svg)) == ["x/known"]
    assert "3 models without a known size not drawn" in svg


def test_one_point_gets_a_decade_and_a_score_range_around_it() -> None:
    """A single model (one size, one score) is drawn inside the plot, not divided by zero."""
    svg = scatter_svg([Point("solo/model", 124_000_000, 0.5)], 720, 380)
    ((x, y),) = _points(svg).values()
    assert 60 <= x <= 696 and 30 <= y <= 318
    assert "124M" in svg


def test_labels_and_links_are_escaped() -> None:
    """A model id, title or link with markup stays text: the SVG still parses and holds no injected element."""
    evil = 'x"/><script>alert(1)</script>'
    svg = scatter_svg([Point(evil, 10**6, 0.5, href='/m?a="b"&c<d>'), Point("ok", 10**7, 0.6)],
                      title="<b>Board</b>", y_label="acc & <f1>")
    root = ET.fromstring(svg)
    assert not [n for n in root.iter() if n.tag.endswith("script") or n.tag.endswith("b")]
    assert root.find(f"{SVG}title").text == "<b>Board</b>"  # type: ignore[union-attr]
    assert {a.get("href") for a in root.iter(f"{SVG}a")} == {'/m?a="b"&c<d>'}
    assert evil in [n.get("data-model") for n in root.iter() if n.get("class") == "point"]
    assert "<script>" not in svg and re.search(r"acc &amp; &lt;f1&gt;", svg)


def test_the_scatter_is_deterministic_and_many_points_keep_their_names_in_tooltips() -> None:
    """Same points, same bytes; over eight dots the names move into tooltips (no pile of overlapping labels)."""
    points = [Point(f"org/m{i}", 10 ** (6 + i % 4) * (i + 1), 0.1 * (i % 9)) for i in range(20)]
    assert scatter_svg(points) == scatter_svg(list(points))
    root = ET.fromstring(scatter_svg(points))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "org/m3" not in texts
    assert any("org/m3: " in (t.text or "") for t in root.iter(f"{SVG}title"))


def test_human_parameter_counts() -> None:
    """The pages' size column: 124M, 1.1B, 7B, 560k, 12, and blank for unknown."""
    assert [human_params(n) for n in (124_000_000, 1_100_000_000, 7_000_000_000, 560_000, 12, None, 0,
                                      1_500_000_000_000, 10_400_000)] == [
        "124M", "1.1B", "7B", "560k", "12", "", "", "1.5T", "10M"]


def test_names_of_dots_that_coincide_do_not_overlap() -> None:
    """Two models of one size and score: one name above the dot, the other below it (never drawn on top of each
    other); a third at the same place keeps its name in the tooltip only."""
    points = [Point(f"org/model-{c}", 10**9, 0.8) for c in "abc"] + [Point("org/small", 10**6, 0.2)]
    root = ET.fromstring(scatter_svg(points))
    names = {t.text: float(t.get("y") or 0) for t in root.iter(f"{SVG}text") if (t.text or "").startswith("org/")}
    assert set(names) == {"org/model-a", "org/model-b", "org/small"}
    assert abs(names["org/model-a"] - names["org/model-b"]) >= 12

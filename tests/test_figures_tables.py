"""Figures and tables say what they show: the PPL axis follows ``ppl.condition``, no panel is drawn from a
single point (the figure says what is needed instead), the main table's caption names the benchmark
scored, the comparison with the paper holds only published cells (else one line), and the report groups
its items as the paper does, each with a subcategory."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from gift.published import (
    COLUMNS,
    NEEDS_RUN,
    comparison_rows,
    has_published_numbers,
    load_published,
    ours_from_scores,
)
from gift.report import figure_ppl, figure_selection, iterations_panel_note, ppl_axis_label
from gift.tables import benchmarks_scored, main_caption

ROOT = Path(__file__).resolve().parent.parent


def test_the_ppl_axis_names_the_configured_condition():
    assert (
        ppl_axis_label("chain")
        == "Perplexity of the code under the description that produced it (ppl.condition: chain)"
    )
    assert ppl_axis_label("seed") == "Perplexity of the code under the seed description (ppl.condition: seed)"


def _axis_labels(monkeypatch):
    """Every x label and text a figure function sets, captured from the real matplotlib axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    seen = []
    real_xlabel, real_text = Axes.set_xlabel, Axes.text
    monkeypatch.setattr(Axes, "set_xlabel", lambda self, s, *a, **k: (seen.append(s), real_xlabel(self, s, *a, **k))[1])
    monkeypatch.setattr(
        Axes, "text", lambda self, x, y, s, *a, **k: (seen.append(s), real_text(self, x, y, s, *a, **k))[1]
    )
    return seen


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_figure_ppl_labels_its_axis_by_the_condition(tmp_path, monkeypatch):
    seen = _axis_labels(monkeypatch)
    f = _jsonl(tmp_path / "gibbs.jsonl", [{"task_id": "p", "ppl": 1.5}, {"task_id": "p", "ppl": 2.5}])
    figure_ppl([f], str(tmp_path / "ppl.png"), condition="chain")
    assert (tmp_path / "ppl.png").exists() and (tmp_path / "ppl.pdf").exists()
    assert ppl_axis_label("chain") in seen and not any("seed description" in s for s in seen)


def test_the_iterations_panel_needs_two_values():
    assert iterations_panel_note([3, 3]).startswith("Not drawn: all methods use 3 iteration(s).")
    assert "no method trains on the Gibbs pool" in iterations_panel_note([])
    assert "config/ablations/iterations.yaml" in iterations_panel_note([3])
    assert iterations_panel_note([1, 3]) == ""


def _selection_df(iterations):
    return pd.DataFrame(
        [
            {"pool": "gibbs", "weighting": w, "temperature": 2.0, "iterations": it, "pass@1 (greedy)": 10.0 * k}
            for k, (w, it) in enumerate(zip(["uniform", "softmax"], iterations, strict=True))
        ]
    )


def test_figure_selection_says_in_words_what_a_single_point_lacks(tmp_path, monkeypatch):
    seen = _axis_labels(monkeypatch)
    sel = _jsonl(tmp_path / "gift.jsonl", [{"task_id": "p", "ppl": 2.0}])
    figure_selection(_selection_df([3, 3]), [sel], str(tmp_path / "sel.png"), condition="seed")
    assert any(s.startswith("Not drawn: all methods use 3 iteration(s)") for s in seen), seen
    assert "Gibbs iterations used" not in seen and "PPL of the drawn code (ppl.condition: seed)" in seen
    seen.clear()
    figure_selection(_selection_df([1, 3]), [sel], str(tmp_path / "sel2.png"))
    assert "Gibbs iterations used" in seen and not any(str(s).startswith("Not drawn") for s in seen)


@pytest.mark.parametrize(
    "columns, dataset, expected",
    [
        (
            ["method", "MBPP+ pass@1 (greedy)", "MBPP+ pass@3 (sampled)", "MBPP pass@1 (greedy)"],
            "mbppplus",
            "on 20 held-out MBPP+ problems, scored as MBPP+ (base + plus inputs) and as MBPP (base inputs),",
        ),
        (["method", "pass@1 (greedy)"], "codeinsight", "on 20 held-out CodeInsight problems, scored by each"),
    ],
)
def test_the_main_caption_names_the_benchmark_scored(columns, dataset, expected):
    caption = main_caption(columns, 20, dataset, "default", 10000)
    assert expected in caption, caption
    assert "mbpp problems" not in caption


def test_benchmarks_scored_reads_the_column_names():
    assert benchmarks_scored(["method", "MBPP+ pass@1 (greedy)", "MBPP pass@1 (greedy)"]) == ["MBPP+", "MBPP"]
    assert benchmarks_scored(["method", "pass@1 (greedy)"]) == []


def _scores(tmp_path, method, value):
    d = tmp_path / "eval" / method
    d.mkdir(parents=True)
    (d / "scores.json").write_text(json.dumps({"model": method, "pass@1_greedy": value}))
    return str(d / "scores.json")


def test_the_comparison_holds_only_published_cells(tmp_path):
    ours = ours_from_scores(
        [_scores(tmp_path, "base", 0.3), _scores(tmp_path, "gift", 0.5)], model="deepseek-coder-6.7b", dataset="mbpp"
    )
    empty = pd.DataFrame(columns=COLUMNS)
    assert comparison_rows(empty, ours).empty  # nothing published: no grid of empty cells
    pub = pd.DataFrame(
        [
            ["1", "5", "deepseek-coder-6.7b", "mbpp", "gift", "pass@1", 45.0, "Table 1"],
            ["1", "5", "deepseek-coder-6.7b", "mbpp", "rft", "pass@1", 40.0, "Table 1"],
        ],
        columns=COLUMNS,
    )
    rows = comparison_rows(pub, ours).set_index("method")
    assert list(rows.index) == ["gift", "rft"]  # the run's base row has no published counterpart: no row
    assert rows.loc["gift", "this run"] == "50.0" and rows.loc["gift", "difference"] == "+5.0"
    assert rows.loc["rft", "this run"] == NEEDS_RUN and rows.loc["rft", "difference"] == ""


def test_has_published_numbers_reads_the_shipped_file(tmp_path):
    shipped = ROOT / "data/published/results.csv"
    assert has_published_numbers(shipped) == (len(load_published(shipped)) > 0)
    f = tmp_path / "r.csv"
    f.write_text(",".join(COLUMNS) + "\n")
    assert not has_published_numbers(f)
    f.write_text(",".join(COLUMNS) + "\n1,5,m,d,gift,pass@1,45.0,Table 1\n")
    assert has_published_numbers(f)
    assert not has_published_numbers(tmp_path / "missing.csv")


PAPER_GROUPS = {"Main results", "Selection", "Chain", "Training", "Analysis"}


def test_every_report_item_has_a_paper_category_and_a_subcategory():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    items = re.findall(r"report\((.*?)\n\s*\)", text, flags=re.S)
    assert len(items) >= 12
    for item in items:
        cats = re.findall(r'category="([^"]+)"', item)
        assert cats and cats[0] in PAPER_GROUPS, item
        assert "subcategory=" in item, item

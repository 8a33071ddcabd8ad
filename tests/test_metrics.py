"""Metric math on hand-made cases whose values are computed by hand in the comments."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from evaluation.metrics import (
    accuracy,
    empty_rate,
    exact_match,
    mean_interval,
    mean_log_prob,
    t_critical,
    top_k_accuracy,
)
from evaluation.report import (
    PREDICTIONS,
    ResultRow,
    format_table,
    make_row,
    read_predictions,
    write_csv,
    write_predictions,
)

GOLDS = ["הארץ", "ארץ", "אור", "מים"]


def test_exact_match_ignores_surrounding_punctuation_and_unicode_form() -> None:
    assert exact_match("הארץ.", "הארץ")
    assert exact_match('"שלום",', "שלום")
    assert exact_match("e\u0301", "\u00e9")  # NFD vs NFC of é
    assert not exact_match("ארץ", "הארץ")
    assert not exact_match("", "")  # an empty gold word never counts as found
    assert not exact_match("", "הארץ")


def test_accuracy_top_k_and_empty_rate_by_hand() -> None:
    predictions = ["הארץ.", "שמים", "", "מים"]  # right, wrong, empty, right
    assert accuracy(predictions, GOLDS) == 0.5  # 2 / 4
    assert empty_rate(predictions) == 0.25  # 1 / 4
    candidates = [
        ["שמים", "הארץ"],  # gold 2nd: counts
        ["a", "b", "c", "d", "e", "ארץ"],  # gold 6th: not in the top 5
        [],  # nothing ranked
        ["מים"],
    ]
    assert top_k_accuracy(candidates, GOLDS, k=5) == 0.5  # 2 / 4
    assert top_k_accuracy(candidates, GOLDS, k=6) == 0.75  # 3 / 4
    assert top_k_accuracy(candidates, GOLDS, k=1) == 0.25  # only "מים"
    with pytest.raises(ValueError):
        accuracy(["x"], GOLDS)


def test_mean_log_prob_by_hand() -> None:
    assert mean_log_prob([-1.0, -2.0, -6.0]) == -3.0
    with pytest.raises(ValueError):
        mean_log_prob([])


@pytest.mark.parametrize("df, expected", [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451),
                                          (9, 2.2621572), (30, 2.0422725)])
def test_t_critical_matches_the_table(df: int, expected: float) -> None:
    assert t_critical(0.95, df) == pytest.approx(expected, abs=1e-6)


def test_mean_interval_matches_scipy() -> None:
    from scipy import stats

    values = [0.0137, 0.0068, 0.0068, 0.0233, 0.0041]  # the demo's five sampled accuracies
    interval = mean_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (interval.low, interval.high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    with pytest.raises(ValueError):
        t_critical(0.95, 0)


def test_mean_interval_over_seeds_by_hand() -> None:
    # values 0.2, 0.4, 0.3: mean 0.3, sample sd 0.1, se 0.1/√3, t(0.975, df 2) = 4.302653
    interval = mean_interval([0.2, 0.4, 0.3])
    half = 4.302652729749464 * 0.1 / math.sqrt(3)
    assert interval.mean == pytest.approx(0.3)
    assert interval.half_width == pytest.approx(half)  # 0.248414
    assert (interval.low, interval.high) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    assert interval.n == 3 and interval.confidence == 0.95
    one = mean_interval([0.4])  # one seed: a mean but no interval
    assert one.mean == 0.4 and one.low is one.high is one.half_width is None
    same = mean_interval([0.5, 0.5])
    assert same.half_width == 0.0
    with pytest.raises(ValueError):
        mean_interval([])


def test_make_row_combines_every_metric_by_hand() -> None:
    row = make_row(
        "news", "tall", GOLDS,
        greedy=["הארץ", "x", "", "מים"],  # 2 / 4 right, 1 empty
        candidates=[["הארץ"], ["y", "ארץ"], [], []],  # 2 / 4 in the top 5
        sampled={0: ["הארץ", "x", "x", "x"], 1: ["הארץ", "ארץ", "x", "x"], 2: ["הארץ", "ארץ", "אור", "x"]},
        log_probs=[-1.0, -2.0, -3.0, -4.0], seconds=1.234)
    assert row.accuracy == 0.5 and row.empty_greedy == 0.25 and row.top5_accuracy == 0.5
    # per-seed accuracies 0.25, 0.5, 0.75: mean 0.5, sd 0.25, half-width 4.302653 · 0.25 / √3
    assert row.sampled_accuracy == pytest.approx(0.5)
    assert row.sampled_ci_half_width == pytest.approx(4.302652729749464 * 0.25 / math.sqrt(3))
    assert row.seeds == 3 and row.mean_log_prob == -2.5 and row.examples == 4 and row.seconds == 1.23


def test_unscorable_metrics_are_blank(tmp_path) -> None:
    row = make_row("wiki", "naive", ["א"], ["א"], None, {}, None, 0.0)
    assert row.top5_accuracy is None and row.mean_log_prob is None and row.sampled_accuracy is None
    assert row.seeds == 0
    write_csv([row], tmp_path / "m.csv")
    with (tmp_path / "m.csv").open(encoding="utf-8") as fh:
        (record,) = list(csv.DictReader(fh))
    assert record["mean_log_prob"] == "" and record["accuracy"] == "1.0"
    table = format_table([row])
    assert "naive" in table and "100.00" in table


def test_result_row_fields_are_the_csv_columns() -> None:
    names = list(ResultRow.__dataclass_fields__)
    assert names[:4] == ["dataset", "approach", "examples", "accuracy"]
    assert {"sampled_ci_low", "sampled_ci_high", "top5_accuracy", "mean_log_prob"} <= set(names)


def test_markdown_table_from_saved_rows() -> None:
    """The README's table is rebuilt from metrics.json rows: same numbers as the printed table."""
    from dataclasses import asdict

    from evaluation.report import format_markdown, rows_from_json

    row = make_row("test", "tall", ["א", "ב"], ["א", "ג"], [["א"], ["ב"]], {0: ["א", "ב"], 1: ["א", "ג"]},
                   None, 1.0)
    md = format_markdown(rows_from_json([json.loads(json.dumps(asdict(row)))]))
    header, rule, line = md.splitlines()
    assert header.count("|") == rule.count("|") == line.count("|") == 9
    assert "| test | tall | 2 | 50.00 | 75.00 ± " in line and "| 100.00 |  | 0.00 |" in line


def test_predictions_round_trip_and_pick_one_approach(tmp_path) -> None:
    records = [{"approach": "tall", "prefix": "ויאמר", "gold": "אלהים", "greedy": "אלהים"},
               {"approach": "naive", "prefix": "ויאמר", "gold": "אלהים", "greedy": ""}]
    path = tmp_path / PREDICTIONS
    write_predictions(path, records)
    assert "אלהים" in path.read_text(encoding="utf-8")  # Hebrew stays readable, not \u-escaped
    assert read_predictions(path) == records
    assert read_predictions(path, "naive") == records[1:]
    with pytest.raises(ValueError, match=r"no 'direct' predictions \(it holds naive, tall\)"):
        read_predictions(path, "direct")


def test_a_broken_predictions_line_is_named(tmp_path) -> None:
    path = tmp_path / PREDICTIONS
    path.write_text('{"approach": "tall"}\n\n{"approach": "tall"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: not JSON"):
        read_predictions(path)
    path.write_text('{"approach": "tall"}\n["tall"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not an evaluation record"):
        read_predictions(path)

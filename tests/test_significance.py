"""Paired significance tests: exact McNemar and the paired bootstrap, by hand and against scipy."""

import json

import pytest

from evaluation.significance import compare, format_markdown, main, mcnemar_exact, paired_bootstrap


def test_mcnemar_counts_only_the_disagreements_by_hand():
    a = [True] * 7 + [False] * 20 + [True] * 5
    b = [False] * 7 + [False] * 20 + [True] * 5  # 7 only-a, 0 only-b; 25 concordant pairs do not count
    assert mcnemar_exact(a, b) == (7, 0, pytest.approx(2 * 0.5 ** 7))
    assert mcnemar_exact(b, a)[2] == mcnemar_exact(a, b)[2]  # two-sided
    assert mcnemar_exact([True, False], [True, False]) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="same examples"):
        mcnemar_exact([True], [True, False])


def test_paired_bootstrap_is_seeded_and_brackets_the_difference():
    a = [True] * 11 + [False] * 716 + [True] * 0 + [False] * 4
    b = [False] * 11 + [False] * 716 + [True] * 4
    diff, low, high = paired_bootstrap(a, b, resamples=2000, seed=0)
    assert diff == pytest.approx((11 - 4) / 731)
    assert low < diff < high and (low, high) == paired_bootstrap(a, b, resamples=2000, seed=0)[1:]
    assert (low, high) != paired_bootstrap(a, b, resamples=2000, seed=1)[1:]
    assert paired_bootstrap([True, False], [True, False]) == (0.0, 0.0, 0.0)


def _records(approach, words, golds, dataset="d"):
    return [{"dataset": dataset, "approach": approach, "gold": g, "greedy": w} for w, g in zip(words, golds)]


def test_compare_pairs_tall_with_every_other_approach_per_dataset(tmp_path, capsys):
    golds = ["א", "ב", "ג", "ד"]
    records = (_records("tall", ["א", "ב", "x", "x"], golds) + _records("naive", ["א", "x", "x", "ד."], golds)
               + _records("tall", ["א"], ["א"], "other"))
    (row,) = compare(records, resamples=500)
    assert (row.reference, row.approach, row.n) == ("tall", "naive", 4)
    assert (row.only_reference, row.only_approach) == (1, 1) and row.mcnemar_p == 1.0  # "ד." matches "ד"
    assert row.difference == 0.0 and "tall vs naive" in format_markdown([row])
    with pytest.raises(ValueError, match="different examples"):
        compare(_records("tall", ["א"], ["א"]) + _records("naive", ["א"], ["ב"]))
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert main([str(path), "--resamples", "200", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["approach"] == "naive"
    assert main([str(tmp_path / "missing.jsonl")]) == 2

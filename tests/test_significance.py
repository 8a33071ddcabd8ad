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


def test_pooled_over_one_seed_is_the_mcnemar_test_again():
    from evaluation.significance import pooled_over_seeds

    for only_a, only_b in ((2, 13), (12, 6)):
        a = [True] * only_a + [False] * only_b + [True] * 60 + [False] * 656
        b = [False] * only_a + [True] * only_b + [True] * 60 + [False] * 656
        pooled = pooled_over_seeds([a], [b])
        assert (pooled.a_better, pooled.b_better, pooled.seeds, pooled.n) == (only_a, only_b, 1, len(a))
        # sign flips of ±1 differences are the binomial test on the discordant pairs; Monte Carlo error ≈ 0.005 at most
        assert pooled.permutation_p == pytest.approx(mcnemar_exact(a, b)[2], abs=0.015)
        assert (pooled.difference, pooled.ci_low, pooled.ci_high) == pytest.approx(paired_bootstrap(a, b))


def test_pooling_counts_each_example_once_however_many_seeds_repeat_it():
    from evaluation.significance import pooled_over_seeds

    a = [True] * 9 + [False] * 3 + [False] * 200
    b = [False] * 9 + [True] * 3 + [False] * 200
    one = pooled_over_seeds([a], [b], resamples=2000)
    three = pooled_over_seeds([a, a, a], [b, b, b], resamples=2000)
    assert three.permutation_p == one.permutation_p and three.a_better == 9 and three.seeds == 3
    # the seeds' hits concatenated would look like 27 against 9 independent examples: a much smaller p
    assert mcnemar_exact(a * 3, b * 3)[2] < one.permutation_p / 10


def test_pooling_averages_seeds_that_disagree_and_is_seeded():
    from evaluation.significance import pooled_over_seeds

    a = [[True, True, False, False], [True, False, False, False]]
    b = [[False, True, True, False], [False, True, False, False]]
    pooled = pooled_over_seeds(a, b, resamples=500, seed=3)
    # per example a − b averaged over the two seeds: +1, −0.5, −0.5, 0
    assert (pooled.a_better, pooled.b_better) == (1, 2)
    assert pooled.a_accuracy == pytest.approx(3 / 8) and pooled.b_accuracy == pytest.approx(3 / 8)
    assert pooled.difference == pytest.approx(0.0) and pooled.permutation_p == pytest.approx(1.0)
    assert pooled == pooled_over_seeds(a, b, resamples=500, seed=3)
    same = pooled_over_seeds([[True, False]] * 2, [[True, False]] * 2)
    assert (same.permutation_p, same.difference, same.ci_low, same.ci_high) == (1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="seeds × examples"):
        pooled_over_seeds([[True, False]], [[True, False], [True, False]])
    with pytest.raises(ValueError, match="seeds × examples"):
        pooled_over_seeds([True, False], [True, False])

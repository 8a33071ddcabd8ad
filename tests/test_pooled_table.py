"""experiments/pooled_table.py: every ablation row kept as records, pooled against TALL at the same seeds, Holm-adjusted
within the row, as one table whose verdict follows the adjusted p-values."""

import json

import pytest

from evaluation.significance import holm
from experiments import pooled_table

N = 40


def record(row: str, seed: int, greedy: int, top5: int) -> dict:
    """A run record whose first `greedy` (`top5`) of N examples are hit greedily (in the top five), on both splits."""
    split = {"n": N, "examples_sha256": "same examples", "greedy": "1" * greedy + "0" * (N - greedy),
             "top-5": "1" * top5 + "0" * (N - top5), "top_word": "הארץ", "top_word_count": 3}
    return {"row": row, "seed": seed, "selected": "best", "source": "test", "dev": split, "test": dict(split)}


def write(folder, *records):
    folder.mkdir(exist_ok=True)
    for r in records:
        (folder / f"{r['row']}-s{r['seed']}.json").write_text(json.dumps(r, ensure_ascii=False), encoding="utf-8")


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])  # 4×, 3× (then 2× kept up), 1×
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []


def test_rows_are_pooled_over_the_seeds_tall_shares_in_the_ablation_tables_order(tmp_path):
    write(tmp_path, record("tall", 0, 10, 12), record("tall", 1, 11, 13),
          record("no-scale-matching", 0, 8, 4), record("no-scale-matching", 1, 10, 3),
          record("no-llm", 0, 12, 12), record("no-llm", 1, 11, 13),
          record("concat-bridge", 5, 30, 30))  # no tall at seed 5: nothing to pair with
    results = pooled_table.pool_all(tmp_path, resamples=500, min_seeds=2)
    assert list(results) == ["no-llm", "no-scale-matching"]
    assert results["no-llm"]["seeds"] == [0, 1] and results["no-llm"]["per_seed"] == [+2, 0]
    assert results["no-scale-matching"]["per_seed"] == [-2, -1]
    scale = results["no-scale-matching"]
    assert scale["what"].startswith("without our embedding-scale matching")
    assert scale["test"]["top-5"]["difference"] == pytest.approx((3.5 - 12.5) / N)
    raw = [scale[s][m]["permutation_p"] for s in ("dev", "test") for m in ("greedy", "top-5")]
    assert [scale["holm"][s][m] for s in ("dev", "test") for m in ("greedy", "top-5")] == holm(raw)
    assert scale["holm"]["test"]["top-5"] < 0.05 <= results["no-llm"]["holm"]["test"]["greedy"]


def comparison(difference: float, p: float) -> dict:
    return {"difference": difference, "permutation_p": p}


def result(ps: dict[tuple[str, str], float], adjusted: dict[tuple[str, str], float]) -> dict:
    return {s: {m: comparison(-0.01, ps[s, m]) for m in ("greedy", "top-5")} for s in ("dev", "test")} | {
        "holm": {s: {m: adjusted[s, m] for m in ("greedy", "top-5")} for s in ("dev", "test")}}


KEYS = [("dev", "greedy"), ("dev", "top-5"), ("test", "greedy"), ("test", "top-5")]


def test_the_verdict_follows_the_adjusted_p_values_and_names_what_only_the_raw_ones_pass():
    strong = result(dict(zip(KEYS, [0.5, 0.5, 0.5, 0.001])), dict(zip(KEYS, [1, 1, 1, 0.004])))
    borderline = result(dict(zip(KEYS, [0.5, 0.3, 0.6, 0.02])), dict(zip(KEYS, [1, 0.9, 1, 0.08])))
    text = pooled_table.verdict({"no-scale-matching": strong, "no-translation": borderline})
    assert ("no-scale-matching (test top-5 1.00 points lower, Holm p = 0.0040) differs from TALL; "
            "no-translation (smallest Holm p 0.080) does not on any of the four.") in text
    assert "Unadjusted, no-translation's test top-5 1.00 points lower, p = 0.020 would pass 0.05 too" in text
    level = pooled_table.verdict({"no-translation": borderline, "no-llm": result(dict.fromkeys(KEYS, 0.9),
                                                                                    dict.fromkeys(KEYS, 1.0))})
    assert level == ("With each row's four comparisons Holm-adjusted (level 0.05), no row differs from TALL on any of "
                     "the four (no-translation (smallest Holm p 0.080) and no-llm (smallest Holm p 1)). Unadjusted, "
                     "no-translation's test top-5 1.00 points lower, p = 0.020 would pass 0.05 too; adjusted, it does "
                     "not.")


def test_the_readme_block_is_rewritten_in_place_and_only_when_it_changes(tmp_path, capsys):
    runs = tmp_path / "runs"
    write(runs, record("tall", 0, 10, 12), record("no-llm", 0, 14, 15))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{pooled_table.POOLED_START}\nold\n{pooled_table.POOLED_END}\noutro\n", encoding="utf-8")
    out = tmp_path / "pooled.json"
    results = pooled_table.main(["--records", str(runs), "--resamples", "300", "--min-seeds", "1", "--json", str(out),
                                 "--readme", str(readme)])
    assert json.loads(out.read_text(encoding="utf-8")) == results
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith(f"{pooled_table.POOLED_END}\noutro\n") and "old" not in text
    assert "| no-llm | LLM bypassed" in text and "| 0 | 35.00 / 25.00 | +10.00 (" in text and "| +4 |" in text
    assert "block rewritten" in capsys.readouterr().out
    pooled_table.main(["--records", str(runs), "--resamples", "300", "--min-seeds", "1", "--readme", str(readme)])
    assert "block rewritten" not in capsys.readouterr().out and readme.read_text(encoding="utf-8") == text


def test_nothing_to_pool_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit):
        pooled_table.main(["--records", str(tmp_path / "missing")])
    write(tmp_path / "runs", record("tall", 0, 10, 12), record("no-llm", 1, 14, 15))
    with pytest.raises(SystemExit, match="no ablation row has records at 1 or more seeds TALL has one at"):
        pooled_table.main(["--records", str(tmp_path / "runs"), "--min-seeds", "1"])
    write(tmp_path / "runs", record("no-llm", 0, 14, 15))
    with pytest.raises(SystemExit, match=r"at 3 or more seeds TALL has one at \(fewer than 3 seeds: no-llm\)"):
        pooled_table.main(["--records", str(tmp_path / "runs")])
    with pytest.raises(SystemExit):
        pooled_table.main(["--records", str(tmp_path / "runs"), "--min-seeds", "0"])


def test_a_row_joins_the_table_from_min_seeds_on_and_is_listed_until_then(tmp_path, capsys):
    write(tmp_path, *(record("tall", s, 10, 12) for s in (0, 1, 2)),
          *(record("no-llm", s, 12, 12) for s in (0, 1, 2)),
          record("adapter-x2", 0, 9, 12), record("adapter-x2", 2, 11, 12),
          record("bridges-2", 1, 10, 12), record("bridges-2", 7, 10, 12))  # seed 7 has no TALL to pair with
    assert pooled_table.waiting(tmp_path) == {"adapter-x2": [0, 2], "bridges-2": [1]}
    assert list(pooled_table.pool_all(tmp_path, resamples=200)) == ["no-llm"]
    assert list(pooled_table.pool_all(tmp_path, resamples=200, min_seeds=1)) == ["no-llm", "adapter-x2", "bridges-2"]
    pooled_table.main(["--records", str(tmp_path), "--resamples", "200"])
    text = capsys.readouterr().out
    assert "| no-llm |" in text and "| adapter-x2 |" not in text
    assert text.rstrip().endswith(
        "Kept as records, but pooled only from 3 seeds on: adapter-x2 (seeds 0 and 2) and bridges-2 (seed 1).")
    write(tmp_path, record("adapter-x2", 1, 10, 12))  # its third seed
    pooled_table.main(["--records", str(tmp_path), "--resamples", "200"])
    text = capsys.readouterr().out
    assert "| adapter-x2 | adapter hidden factor" in text and "| 0, 1 and 2 |" in text
    assert text.rstrip().endswith("pooled only from 3 seeds on: bridges-2 (seed 1).")


def test_the_forest_plot_draws_each_difference_with_its_interval_and_fills_what_holm_passes(tmp_path):
    from matplotlib.colors import to_hex

    from experiments.pooled_plot import MEASURES, forest, write_forest

    write(tmp_path, record("tall", 0, 10, 12), record("tall", 1, 11, 13), record("no-scale-matching", 0, 8, 4),
          record("no-scale-matching", 1, 10, 3), record("no-llm", 0, 12, 12), record("no-llm", 1, 11, 13))
    results = pooled_table.pool_all(tmp_path, resamples=500, min_seeds=2)
    fig = forest(results)
    test_panel = fig.axes[0]
    assert [t.get_text() for t in test_panel.get_yticklabels()] == ["no-llm (2 seeds)", "no-scale-matching (2 seeds)"]
    drawn = {}
    for container, (measure, row) in zip(test_panel.containers, [(m, r) for m in MEASURES for r in results],
                                         strict=True):
        line = container.lines[0]
        drawn[measure, row] = (line.get_xdata()[0], to_hex(line.get_markerfacecolor()))
    for (measure, row), (x, face) in drawn.items():
        c = results[row]["test"][measure]
        assert x == pytest.approx(100 * c["difference"])
        significant = results[row]["holm"]["test"][measure] < 0.05
        assert (face != "#ffffff") == significant, (measure, row)
    assert drawn["top-5", "no-scale-matching"][1] == MEASURES["top-5"][1]  # the one filled marker
    out = tmp_path / "forest.svg"
    write_forest(results, out)
    text = out.read_text(encoding="utf-8")
    assert "no-scale-matching (2 seeds)" in text and "Date" not in text  # text kept as text, no timestamp
    write_forest(results, tmp_path / "again.svg")
    assert (tmp_path / "again.svg").read_bytes() == out.read_bytes()
    with pytest.raises(ValueError, match="name it \\*.svg"):
        write_forest(results, tmp_path / "forest.png")
    with pytest.raises(SystemExit):
        pooled_table.main(["--records", str(tmp_path), "--plot", str(tmp_path / "forest.png")])


def test_each_row_shows_its_trainable_parameters_against_talls_and_a_redefined_rows_count_is_dropped(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"rows": [
        {"name": "tall", "changes": {}, "trainable_parameters": 2_516_512},
        {"name": "bridges-2", "changes": {"bridge_in": {"layers": 2}, "bridge_out": {"layers": 2}},
         "trainable_parameters": 3_677_824},
        {"name": "no-llm", "changes": {"bypass_llm": False}, "trainable_parameters": 1},
        {"name": "adapter-x2", "changes": {"adapter_in": {"hidden_factor": 2.0}}, "trainable_parameters": 5}]}),
        encoding="utf-8")
    counts = pooled_table.parameter_counts(metrics)
    # no-llm's and adapter-x2's changes are not theirs now; one-piece-targets changes the data only: TALL's model
    assert counts == {"tall": 2_516_512, "bridges-2": 3_677_824, "one-piece-targets": 2_516_512,
                      "one-piece-targets-3-epochs": 2_516_512, "two-piece-targets-3-epochs": 2_516_512}
    rows = json.loads(metrics.read_text(encoding="utf-8"))["rows"]
    subword = {"name": "subword-framing", "changes": {"framing": "subword", "loss": "last"}, "trainable_parameters": 7}
    metrics.write_text(json.dumps({"rows": rows + [subword]}), encoding="utf-8")
    with_subword = pooled_table.parameter_counts(metrics)  # a row that differs only in decoding has the same count
    assert with_subword["subword-framing"] == with_subword["subword-framing-wordstart"] == 7
    assert "no-llm" not in with_subword and with_subword["tall"] == 2_516_512
    write(tmp_path / "runs", *(record(row, s, 10, 12) for row in ("tall", "no-llm", "bridges-2") for s in (0, 1, 2)))
    results = pooled_table.pool_all(tmp_path / "runs", resamples=200, counts=counts)
    assert results["bridges-2"]["trainable_parameters"] == {"row": 3_677_824, "tall": 2_516_512}
    text = pooled_table.markdown(results)
    assert "| 0, 0, 0 | 3,677,824 (+46 %) |" in text and "| 0, 0, 0 | — |" in text
    assert "the row's trainable parameters and how many more than TALL's 2,516,512, as" in text
    with pytest.raises(SystemExit):  # a named metrics file that is not there is an error, not a column of dashes
        pooled_table.main(["--records", str(tmp_path / "runs"), "--ablations", str(tmp_path / "missing.json")])

"""experiments/seed_pooled.py and run_record.py: a row's runs at several seeds (result files in build/, or the
committed run records) become one pooled test against TALL."""

import json

import pytest

from demo_build.build import parse_args
from demo_build.context import BuildContext
from evaluation.significance import pooled_over_seeds
from experiments.full_budget_ablation import SHIPPED
from experiments.run_record import main as record_main
from experiments.run_record import record_name, shipped_record
from experiments.seed_pooled import HEADER, main, pair_from_result, pooled

GOLDS = ["יהוה", "המלך", "לו", "את", "הארץ", "לי"]


def records(greedy, top5):
    """Six examples; greedy[i] / top5[i]: whether example i is hit greedily / in the top five."""
    return [{"dataset": "d", "approach": "tall", "prefix": f"p{i}", "gold": g, "greedy": g if hit else "x",
             "candidates": ["x"] * 4 + ([g] if hit or hit5 else ["y"])}
            for i, (g, hit, hit5) in enumerate(zip(GOLDS, greedy, top5))]


def write_predictions(path, recs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")


def write_run(folder, row, seed, reference, recs, selected="best"):
    """An experiment folder as full_budget_ablation leaves it: dev and test predictions and the result file."""
    write_predictions(folder / "adapters" / "selection" / selected / "predictions.jsonl", recs)
    write_predictions(folder / "test" / "predictions.jsonl", recs)
    extra = {"step": 3, "total_steps": 3 + seed, "sentences": 9, "train_examples": 8 - seed}  # the checkpoint's
    (folder / "adapters" / selected).mkdir(parents=True, exist_ok=True)
    (folder / "adapters" / selected / "config.json").write_text(json.dumps({"extra": extra}))
    result = {"row": row, "seed": seed, "reference": reference, "selection": {"selected": selected}}
    name = "result.json" if reference in (SHIPPED, None) else f"result-against-{reference.rsplit('/', 1)[-1]}.json"
    (folder / name).write_text(json.dumps(result, ensure_ascii=False))
    return folder / name


A = ([1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0])
B = ([0, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0])


def test_each_seed_is_paired_with_tall_at_that_seed_and_pooled_per_split_and_measure(tmp_path, capsys):
    tall1 = write_run(tmp_path / "full-tall-s1", "tall", 1, SHIPPED, records(*B)).parent
    tall2 = write_run(tmp_path / "full-tall-s2", "tall", 2, SHIPPED, records(*A)).parent
    row1 = write_run(tmp_path / "full-x-s1", "no-llm", 1, str(tall1), records(*A))
    row2 = write_run(tmp_path / "full-x-s2", "no-llm", 2, str(tall2), records(*A), selected="last")
    out = tmp_path / "pooled.json"
    result = main([str(row1), str(row2), "--resamples", "500", "--json", str(out)])
    assert json.loads(out.read_text()) == result and result["seeds"] == [1, 2] and result["row"] == "no-llm"
    expected = pooled_over_seeds([A[0], A[0]], [B[0], A[0]], resamples=500)
    assert result["test"]["greedy"] == result["dev"]["greedy"] == expected.as_dict()
    assert result["test"]["top-5"] == pooled_over_seeds([A[1], A[1]], [B[1], A[1]], resamples=500).as_dict()
    printed = capsys.readouterr().out
    assert "no-llm against TALL, pooled over seeds [1, 2]" in printed and HEADER in printed
    assert "| test (6) | greedy | 2 | 33.33 | 33.33 | 1 / 1 | +0.00" in printed


def test_the_shipped_tall_is_seed_0s_reference(tmp_path):
    build = parse_args(["--workdir", str(tmp_path / "build")])
    ctx = BuildContext(args=build, workdir=tmp_path / "build", out=tmp_path / "out")
    write_predictions(ctx.out / "eval" / "predictions.jsonl", records(*B))
    write_predictions(ctx.workdir / "adapters" / "selection" / "last" / "predictions.jsonl", records(*B))
    (ctx.out / "metrics.json").write_text(json.dumps({"adapters": {"selection": {"selected": "last"}}}))
    row0 = write_run(tmp_path / "full-x-s0", "no-llm", 0, SHIPPED, records(*A))
    result = pooled([pair_from_result(row0, ctx)], resamples=200)
    assert result["dev"]["greedy"]["b_accuracy"] == pytest.approx(2 / 6)
    assert (result["dev"]["greedy"]["a_better"], result["dev"]["greedy"]["b_better"]) == (1, 1)
    assert result["test"]["top-5"]["b_accuracy"] == pytest.approx(4 / 6)


def test_runs_that_cannot_be_pooled_are_refused(tmp_path):
    tall1 = write_run(tmp_path / "full-tall-s1", "tall", 1, SHIPPED, records(*B)).parent
    row1 = write_run(tmp_path / "full-x-s1", "no-llm", 1, str(tall1), records(*A))
    row2_vs_seed1 = write_run(tmp_path / "full-x-s2", "no-llm", 2, str(tall1), records(*A))
    other_row = write_run(tmp_path / "full-y-s2", "concat-bridge", 2, str(tall1), records(*A))
    with pytest.raises(SystemExit, match="same seed"):
        main([str(row1), str(row2_vs_seed1)])
    with pytest.raises(SystemExit, match="one row at a time"):
        main([str(row1), str(other_row)])
    with pytest.raises(SystemExit, match="each seed once"):
        main([str(row1), str(row1)])
    fewer = write_run(tmp_path / "full-z-s1", "no-llm", 1, str(tall1), records(*A)[:5])
    with pytest.raises(SystemExit, match="not all on the same examples"):
        main([str(fewer)])
    other_gold = [{**r, "gold": "אחר"} if i == 0 else r for i, r in enumerate(records(*A))]
    relabelled = write_run(tmp_path / "full-w-s1", "no-llm", 1, str(tall1), other_gold)
    with pytest.raises(SystemExit, match="not all on the same examples"):
        main([str(relabelled)])


def shipped_build(tmp_path, recs):
    """A build folder and demo out folder holding the shipped TALL's dev (selection run) and test predictions."""
    workdir, out = tmp_path / "build", tmp_path / "out"
    write_predictions(out / "eval" / "predictions.jsonl", recs)
    write_predictions(workdir / "adapters" / "selection" / "best" / "predictions.jsonl", recs)
    (out / "metrics.json").write_text(json.dumps({"adapters": {"selection": {"selected": "best"}}}))
    return workdir, out


def test_records_pool_exactly_as_the_run_folders_they_were_made_from(tmp_path):
    workdir, out = shipped_build(tmp_path, records(*B))
    tall1 = write_run(tmp_path / "full-tall-s1", "tall", 1, SHIPPED, records(*A)).parent
    row0 = write_run(tmp_path / "full-x-s0", "no-llm", 0, SHIPPED, records(*A))
    row1 = write_run(tmp_path / "full-x-s1", "no-llm", 1, str(tall1), records(*B), selected="last")
    ctx = BuildContext(args=parse_args(["--workdir", str(workdir)]), workdir=workdir, out=out)
    from_results = pooled([pair_from_result(p, ctx) for p in (row0, row1)], resamples=300)

    runs = tmp_path / "runs"
    record_main([str(tall1), str(row0.parent), str(row1.parent), "--out", str(runs)])
    shipped = shipped_record(ctx)
    (runs / record_name(shipped)).write_text(json.dumps(shipped, ensure_ascii=False), encoding="utf-8")
    assert sorted(p.name for p in runs.iterdir()) == ["no-llm-s0.json", "no-llm-s1.json", "tall-s0.json", "tall-s1.json"]
    assert shipped["selected"] == "best" and shipped["source"] == SHIPPED
    assert shipped["test"]["greedy"] == "011000" and shipped["test"]["top-5"] == "111100"
    assert json.loads((runs / "no-llm-s1.json").read_text())["selected"] == "last"
    # what each run trained on, from its chosen checkpoint (here seed-dependent, so each is its own run's)
    assert json.loads((runs / "no-llm-s1.json").read_text())["training"] == {"sentences": 9, "examples": 7, "steps": 4,
                                                                         "chosen_step": 3}
    assert json.loads((runs / "no-llm-s0.json").read_text())["training"] == {"sentences": 9, "examples": 8, "steps": 3,
                                                                         "chosen_step": 3}
    assert "training" not in shipped  # the shipped checkpoint does not say its example count
    assert (shipped["test"]["top_word"], shipped["test"]["top_word_count"]) == ("x", 4)

    from_records = main(["--records", str(runs), "--row", "no-llm", "--resamples", "300"])
    assert from_records["seeds"] == [0, 1]
    for split in ("dev", "test"):
        assert from_records[split] == from_results[split]
    assert main(["--records", str(runs), "--row", "no-llm", "--seeds", "1", "--resamples", "300"])["seeds"] == [1]
    with pytest.raises(SystemExit, match=r"at seeds \[2\]"):
        main(["--records", str(runs), "--row", "no-llm", "--seeds", "1", "2"])
    with pytest.raises(SystemExit, match="no seed with both"):
        main(["--records", str(runs), "--row", "concat-bridge"])
    (runs / "no-llm-s1.json").write_text((runs / "no-llm-s1.json").read_text().replace('"011000"', '"01100"'))
    with pytest.raises(ValueError, match="not 6 characters"):
        main(["--records", str(runs), "--row", "no-llm"])
    with pytest.raises(SystemExit):
        main(["--records", str(runs)])  # a row is needed


def test_against_pairs_a_row_with_another_row_at_the_same_seeds(tmp_path, capsys):
    """--against ROW: the row against another row (not TALL), seed by seed, as the README's mechanism test does."""
    runs = tmp_path / "runs"
    folders = [write_run(tmp_path / f"full-{row}-s{s}", row, s, SHIPPED, records(*hits)).parent
               for row, hits in (("tall", A), ("no-llm", A), ("concat-bridge", B)) for s in (1, 2)]
    record_main([*map(str, folders), "--out", str(runs)])
    result = main(["--records", str(runs), "--row", "no-llm", "--against", "concat-bridge", "--resamples", "300"])
    assert result["reference"] == "concat-bridge" and result["seeds"] == [1, 2]
    assert result["test"]["greedy"] == pooled_over_seeds([A[0]] * 2, [B[0]] * 2, resamples=300).as_dict()
    against_tall = main(["--records", str(runs), "--row", "no-llm", "--resamples", "300"])
    assert against_tall["reference"] == "tall" and against_tall["test"]["greedy"]["difference"] == 0
    assert "no-llm against concat-bridge, pooled over seeds [1, 2]" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not with itself"):
        main(["--records", str(runs), "--row", "no-llm", "--against", "no-llm"])
    with pytest.raises(SystemExit, match="no seed with both"):
        main(["--records", str(runs), "--row", "no-llm", "--against", "bridges-2"])
    with pytest.raises(SystemExit):
        main([str(folders[2] / "result.json"), "--against", "concat-bridge"])  # result files name their reference


def test_a_run_that_never_finished_has_no_record(tmp_path):
    (tmp_path / "full-x-s3").mkdir()
    with pytest.raises(SystemExit, match="no result"):
        record_main([str(tmp_path / "full-x-s3"), "--out", str(tmp_path / "runs")])


def test_a_record_counts_the_greedy_words_that_are_not_words_of_the_training_hebrew():
    from experiments.run_record import split_record

    recs = [{"prefix": f"p{i}", "gold": "שלום", "greedy": g, "candidates": [g]}
            for i, g in enumerate(["שלום", "ה", "", "שלום.", "תבדו"])]
    record = split_record(recs, {"שלום", "בית"})
    assert record["unseen_count"] == 2  # ה and תבדו; the empty word is not a word, "שלום." is שלום
    assert "unseen_count" not in split_record(recs)  # hits only, as seed_pooled pairs run folders

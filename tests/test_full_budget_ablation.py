"""experiments/full_budget_ablation.py: a row paired with the shipped TALL on the same examples, never on others."""

import pytest

from experiments.full_budget_ablation import main, paired


def rec(prefix, gold, greedy, candidates=()):
    return {"dataset": "he_test", "approach": "tall", "prefix": prefix, "gold": gold, "greedy": greedy,
            "candidates": list(candidates)}


def test_a_row_is_paired_with_the_shipped_tall_on_greedy_and_top5_hits():
    shipped = [rec("א", "יהוה", "יהוה", ["יהוה"]), rec("ב", "המלך", "יהוה", ["יהוה", "המלך"]),
               rec("ג", "לו", "לי", ["לי"])]
    row = [rec("א", "יהוה", "הארץ", ["הארץ"]), rec("ב", "המלך", "המלך", ["המלך"]), rec("ג", "לו", "לו", ["לו"])]
    out = paired("concat-bridge", row, shipped)
    greedy = out["greedy"]
    assert (greedy["reference"], greedy["approach"], greedy["n"]) == ("tall", "concat-bridge", 3)
    assert (greedy["only_reference"], greedy["only_approach"]) == (1, 2)
    assert greedy["reference_accuracy"] == pytest.approx(1 / 3) and greedy["approach_accuracy"] == pytest.approx(2 / 3)
    assert out["top5"] | {"mcnemar_p": None} == {"row": 2, "shipped": 2, "only_row": 1, "only_shipped": 1,
                                                  "mcnemar_p": None}
    with pytest.raises(SystemExit, match="not on the same examples"):
        paired("concat-bridge", row[:2], shipped)
    with pytest.raises(ValueError, match="other than 'tall'"):  # the retrained reference needs its own label
        paired("tall", row, shipped)
    assert paired("tall@seed1", row, shipped)["greedy"]["approach"] == "tall@seed1"


def test_the_reference_row_and_unknown_rows_are_refused(tmp_path):
    for name in ("tall", "no-such-row"):
        with pytest.raises(SystemExit, match="unknown row"):
            main([name, "--workdir", str(tmp_path / "build"), "--out", str(tmp_path / "out")])


def test_a_row_at_another_seed_is_the_shipped_run_with_one_change_and_that_seed(tmp_path):
    from demo_build.build import parse_args
    from demo_build.context import BuildContext
    from demo_build.tall_stages import ADAPTER_SEED, adapter_config
    from experiments.full_budget_ablation import row_config

    build = parse_args(["--workdir", str(tmp_path / "build")])
    ctx = BuildContext(args=build, workdir=tmp_path / "build", out=tmp_path / "out")
    shipped = adapter_config(ctx, tmp_path / "run")
    row, config = row_config(ctx, "tall", 1, tmp_path / "run")  # the reference retrained: only the seed differs
    assert row.changes == {} and config.seed == 1 != ADAPTER_SEED
    assert config.model == shipped.model and {**vars(config), "seed": ADAPTER_SEED} == vars(shipped)
    row, config = row_config(ctx, "no-scale-matching", 1, tmp_path / "run")
    assert config.seed == 1 and config.model.match_llm_scale is False and shipped.model.match_llm_scale is True
    row, config = row_config(ctx, "no-scale-matching", ADAPTER_SEED, tmp_path / "run")
    assert config.seed == ADAPTER_SEED
    # a row that changes the run's data, not the model: the shipped model, its training verses filtered
    row, config = row_config(ctx, "one-piece-targets", 1, tmp_path / "run")
    assert row.changes == {} and config.model == shipped.model and shipped.max_target_pieces is None
    assert {**vars(config), "seed": ADAPTER_SEED, "max_target_pieces": None} == vars(shipped)
    assert config.max_target_pieces == 1
    row, longer = row_config(ctx, "one-piece-targets-3-epochs", 1, tmp_path / "run")
    assert longer.max_target_pieces == 1 and (longer.epochs, shipped.epochs) == (3, 2)
    assert {**vars(longer), "epochs": 2} == vars(config)  # the one-piece row, one epoch longer
    row, two = row_config(ctx, "two-piece-targets-3-epochs", 1, tmp_path / "run")
    assert {**vars(two), "max_target_pieces": 1} == vars(longer)  # the three-epoch row, two-piece targets kept too


def test_the_400_step_table_trains_a_rows_data_change_too(tmp_path):
    from demo_build.ablation_stages import _train_config, ablations
    from demo_build.build import parse_args
    from demo_build.context import BuildContext

    ctx = BuildContext(args=parse_args(["--workdir", str(tmp_path)]), workdir=tmp_path, out=tmp_path / "out")
    base = ctx.tall_config()
    rows = {r.name: r for r in ablations(base)}
    one_piece = _train_config(ctx, base, rows["one-piece-targets"], tmp_path / "run")
    reference = _train_config(ctx, base, rows["tall"], tmp_path / "run")
    assert one_piece.max_target_pieces == 1 and reference.max_target_pieces is None
    assert {**vars(one_piece), "max_target_pieces": None} == vars(reference)


def test_a_row_is_paired_with_the_shipped_tall_or_with_another_finished_experiment(tmp_path):
    import json

    from demo_build.build import parse_args
    from demo_build.context import BuildContext
    from experiments.full_budget_ablation import reference_predictions

    build = parse_args(["--workdir", str(tmp_path / "build")])
    ctx = BuildContext(args=build, workdir=tmp_path / "build", out=tmp_path / "out")
    ctx.out.mkdir()
    (ctx.out / "metrics.json").write_text(json.dumps({"adapters": {"selection": {"selected": "last"}}}))
    assert reference_predictions(ctx, None) == (tmp_path / "build/adapters/selection/last/predictions.jsonl",
                                                tmp_path / "out/eval/predictions.jsonl")
    other = tmp_path / "full-tall-s1"
    with pytest.raises(SystemExit, match="no result.json"):  # an unfinished experiment is never a reference
        reference_predictions(ctx, other)
    other.mkdir()
    (other / "result.json").write_text(json.dumps({"selection": {"selected": "best"}}))
    assert reference_predictions(ctx, other) == (other / "adapters/selection/best/predictions.jsonl",
                                                 other / "test/predictions.jsonl")

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


def test_reproduce_is_the_shipped_run_itself_and_only_that(tmp_path):
    from demo_build.build import parse_args
    from demo_build.context import BuildContext
    from demo_build.tall_stages import ADAPTER_SEED, adapter_config
    from experiments.full_budget_ablation import row_config

    ctx = BuildContext(args=parse_args(["--workdir", str(tmp_path / "build")]), workdir=tmp_path / "build",
                       out=tmp_path / "out")
    row, config = row_config(ctx, "tall", ADAPTER_SEED, tmp_path / "run", reproduce=True)
    assert row.changes == {} and row.train == {} and vars(config) == vars(adapter_config(ctx, tmp_path / "run"))
    for name, seed in (("tall", 1), ("concat-bridge", ADAPTER_SEED)):
        with pytest.raises(SystemExit, match="--reproduce retrains the shipped TALL"):
            row_config(ctx, name, seed, tmp_path / "run", reproduce=True)


def test_reproduction_counts_the_same_words_and_compares_the_weights_as_shipped(tmp_path):
    import torch
    from safetensors.torch import save_file

    from experiments.full_budget_ablation import reproduction

    ours, shipped = tmp_path / "ours", tmp_path / "shipped"
    ours.mkdir(), shipped.mkdir()
    weight = torch.tensor([1.0, 2.0, 3.0])
    save_file({"a": weight, "b": weight + 1e-5}, str(ours / "model.safetensors"))  # fp32, as a run keeps them
    save_file({"a": weight.half(), "b": weight.half()}, str(shipped / "model.safetensors"))  # fp16, as shipped
    theirs = [rec("א", "יהוה", "יהוה", ["יהוה", "לו"]), rec("ב", "לו", "לי", ["לי", "לו"])]
    mine = [rec("א", "יהוה", "יהוה", ["יהוה", "המלך"]), rec("ב", "לו", "לו", ["לו", "לי"])]
    out = reproduction(ours, shipped, {"test": (mine, theirs)})
    assert out["test"] | {"same_translation": None} == {
        "examples": 2, "same_greedy": 1, "same_candidates": 0, "same_sampled": None, "same_translation": None,
        "log_prob_largest_difference": None}
    # a difference of 1e-5 is below fp16's resolution at these values: as shipped, both tensors are the same
    assert out["weights"] == {"tensors": 2, "identical": 2, "max_abs_difference": 0.0, "dtype": "torch.float16"}
    save_file({"a": weight, "b": weight + 0.01}, str(ours / "model.safetensors"))
    moved = reproduction(ours, shipped, {})["weights"]
    assert moved["identical"] == 1 and moved["max_abs_difference"] == pytest.approx(0.01, abs=2e-3)
    save_file({"a": weight}, str(ours / "model.safetensors"))
    with pytest.raises(SystemExit, match="different tensors"):
        reproduction(ours, shipped, {})


def test_a_retrained_curve_is_compared_step_by_step_on_the_steps_both_evaluated():
    from experiments.full_budget_ablation import curve_agreement

    shipped = [{"step": 250, "train_loss": 3.5, "dev_loss": 4.2, "dev_accuracy": 0.05},
               {"step": 500, "train_loss": 3.2, "dev_loss": 4.08, "dev_accuracy": 0.075}]
    ours = [{"step": 20, "train_loss": 5.3, "dev_loss": None, "dev_accuracy": None},  # a logged, unevaluated step
            {"step": 250, "train_loss": 3.5 + 1e-6, "dev_loss": 4.2, "dev_accuracy": 0.05},
            {"step": 500, "train_loss": 3.2, "dev_loss": 4.08 - 2e-7, "dev_accuracy": 0.0725}]
    out = curve_agreement(ours, shipped)
    assert out["steps"] == 2 and out["same_dev_accuracy"] == 1
    assert out["train_loss_largest_difference"] == pytest.approx(1e-6)
    assert out["dev_loss_largest_difference"] == pytest.approx(2e-7)
    with pytest.raises(SystemExit, match="no evaluated step"):
        curve_agreement(ours[:1], shipped)

"""experiments/same_predictions.py: how close two evaluations of the same examples are, never of different ones."""

import json

import pytest

from experiments.same_predictions import main, same_predictions, same_rows


def rec(approach, prefix, greedy, candidates, sampled, log_prob, translation="t"):
    return {"dataset": "he_test", "approach": approach, "prefix": prefix, "gold": "לו", "greedy": greedy,
            "candidates": candidates, "sampled": sampled, "log_prob": log_prob, "translation": translation}


def test_counts_what_is_the_same_per_approach():
    theirs = [rec("tall", "א", "לו", ["לו", "לי"], ["לו"], -1.0), rec("tall", "ב", "לי", ["לי"], ["לי"], -2.0),
              rec("naive", "א", "המלך", [], ["המלך"], None)]
    ours = [rec("tall", "א", "לו", ["לי", "לו"], ["לו"], -1.0 + 1e-6), rec("tall", "ב", "לי", ["לי"], ["לו"], -2.5),
            rec("naive", "א", "המלך", [], ["המלך"], None, translation="other")]
    out = same_predictions(ours, theirs)
    assert out["he_test/tall"] | {"log_prob_largest_difference": None} == {
        "examples": 2, "same_greedy": 2, "same_translation": 2, "same_candidates": 1, "same_sampled": 1,
        "log_prob_largest_difference": None}
    assert out["he_test/tall"]["log_prob_largest_difference"] == pytest.approx(0.5)
    assert out["he_test/naive"]["same_translation"] == 0 and out["he_test/naive"]["log_prob_largest_difference"] is None
    unsampled = same_predictions([{**r, "sampled": []} for r in ours], theirs)  # scored with --seeds 0
    assert unsampled["he_test/tall"]["same_sampled"] is None and unsampled["he_test/tall"]["same_greedy"] == 2


def test_different_examples_or_approaches_are_refused():
    theirs = [rec("tall", "א", "לו", [], [], -1.0)]
    with pytest.raises(ValueError, match="different examples"):
        same_predictions([rec("tall", "ב", "לו", [], [], -1.0)], theirs)
    with pytest.raises(ValueError, match="no approach in common"):
        same_predictions([rec("naive", "א", "לו", [], [], -1.0)], theirs)
    both = same_predictions(theirs, theirs + [rec("naive", "א", "לו", [], [], -1.0)])  # a re-scored subset
    assert list(both) == ["he_test/tall"] and both["he_test/tall"]["same_greedy"] == 1


def test_rows_report_their_largest_difference(tmp_path):
    row = {"dataset": "he_test", "approach": "tall", "accuracy": 0.045, "sampled_accuracy": 0.026,
           "top5_accuracy": 0.123, "mean_log_prob": -11.2678, "empty_greedy": 0.0}
    assert same_rows([row], [{**row, "mean_log_prob": -11.2679}])["he_test/tall"] == pytest.approx(1e-4)
    assert same_rows([row], [row])["he_test/tall"] == 0.0
    for name, records, rows in (("a", [rec("tall", "א", "לו", [], [], -1.0)], [row]),
                                ("b", [rec("tall", "א", "לי", [], [], -1.0)], [{**row, "accuracy": 0.0}])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (tmp_path / name / "metrics.json").write_text(json.dumps({"rows": rows}))
    out = main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "same.json")])
    assert out["predictions"]["he_test/tall"]["same_greedy"] == 0
    assert out["rows_largest_difference"]["he_test/tall"] == pytest.approx(0.045)
    assert json.loads((tmp_path / "same.json").read_text()) == out


def test_weights_are_compared_as_the_reference_stores_them(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.tensor([0.5, 1.0])}, str(tmp_path / "shipped.safetensors"))  # fp32 reference here
    save_file({"w": torch.tensor([0.5, 1.25]).half()}, str(tmp_path / "ours.safetensors"))
    out = main(["--weights", str(tmp_path / "shipped.safetensors"), str(tmp_path / "ours.safetensors")])
    assert out == {"tensors": 1, "identical": 0, "max_abs_difference": 0.25, "dtype": "torch.float32"}
    save_file({"v": torch.tensor([0.5])}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="different tensors"):
        main(["--weights", str(tmp_path / "shipped.safetensors"), str(tmp_path / "other.safetensors")])


def test_two_baseline_runs_are_compared_loss_by_loss_and_weight_by_weight(tmp_path):
    import torch
    from safetensors.torch import save_file

    for name, losses, w in (("shipped", [7.4, 9.1, 5.0], 0.5), ("again", [7.4, 9.1, 5.2], 0.75)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "baseline.json").write_text(json.dumps({"losses": losses}))
        save_file({"lora": torch.tensor([w])}, str(tmp_path / name / "adapter_model.safetensors"))
    out = main(["--baseline", str(tmp_path / "shipped"), str(tmp_path / "again")])
    assert out["losses"] | {"largest_difference": None} == {"steps": 3, "same": 2, "first_different_step": 3,
                                                            "largest_difference": None, "final": [5.0, 5.2]}
    assert out["losses"]["largest_difference"] == pytest.approx(0.2)
    assert out["weights"]["max_abs_difference"] == 0.25 and out["weights"]["identical"] == 0
    (tmp_path / "again" / "baseline.json").write_text(json.dumps({"losses": [7.4, 9.1]}))
    with pytest.raises(ValueError, match="not the same budget"):
        main(["--baseline", str(tmp_path / "shipped"), str(tmp_path / "again")])

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


def test_the_reference_row_and_unknown_rows_are_refused(tmp_path):
    for name in ("tall", "no-such-row"):
        with pytest.raises(SystemExit, match="unknown row"):
            main([name, "--workdir", str(tmp_path / "build"), "--out", str(tmp_path / "out")])

"""experiments/seed_table.py: a finished run's result file becomes one table row, its figures read, not typed."""

import json

from experiments.full_budget_ablation import SHIPPED, paired
from experiments.seed_table import HEADER, chosen_text, main, p_text


def rec(prefix, gold, greedy, candidates):
    return {"dataset": "he_test", "approach": "tall", "prefix": prefix, "gold": gold, "greedy": greedy,
            "candidates": candidates}


def write_run(folder, row, seed, reference, ours, theirs, selection):
    (folder / "test").mkdir(parents=True)
    (folder / "test" / "predictions.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ours), encoding="utf-8")
    label = f"{row}@seed{seed}"
    result = {"row": row, "seed": seed, "reference": reference, "selection": selection,
              "dev": paired(label, ours, theirs), "test": paired(label, ours, theirs)}
    name = "result.json" if reference == SHIPPED else f"result-against-{reference.rsplit('/', 1)[-1]}.json"
    (folder / name).write_text(json.dumps(result, ensure_ascii=False))
    return folder / name


def test_p_values_print_with_two_significant_digits():
    assert [p_text(p) for p in (0.0524788, 0.0023, 0.05, 0.7358, 1.0, 0.999)] == [
        "0.052", "0.0023", "0.050", "0.74", "1", "1"]


def test_the_chosen_checkpoint_says_when_best_was_last_and_what_the_other_one_found():
    assert chosen_text({"selected": "best", "steps": {"best": 2622, "last": 2622}}) == "best = last (2,622)"
    assert chosen_text({"selected": "best", "steps": {"best": 1750, "last": 2622}, "mcnemar_p": 0.79,
                        "hits": {"best": {"greedy": 95}, "last": {"greedy": 93}}}) == "best (1,750); last/ 93, p = 0.79"


def test_each_result_file_is_one_row_against_the_reference_it_names(tmp_path, capsys):
    shipped = [rec("א", "יהוה", "יהוה", ["יהוה"]), rec("ב", "המלך", "יהוה", ["יהוה", "המלך"]),
               rec("ג", "לו", "לי", ["לי"]), rec("ד", "את", "יהוה", ["יהוה"])]
    tall1 = [rec("א", "יהוה", "הארץ", ["הארץ"]), rec("ב", "המלך", "המלך", ["המלך"]), rec("ג", "לו", "לו", ["לו"]),
             rec("ד", "את", "לו", ["לו", "את"])]
    row1 = [rec(r["prefix"], r["gold"], "הארץ", ["הארץ"]) for r in shipped[:3]] + [rec("ד", "את", "את", ["את"])]
    best_is_last = {"selected": "best", "steps": {"best": 2500, "last": 2622},
                    "hits": {"best": {"greedy": 2, "top5": 3}, "last": {"greedy": 2, "top5": 3}}, "mcnemar_p": 1.0}
    last_chosen = {"selected": "last", "steps": {"best": 1750, "last": 2622},
                   "hits": {"best": {"greedy": 0, "top5": 0}, "last": {"greedy": 1, "top5": 1}}, "mcnemar_p": 1.0}
    reference = write_run(tmp_path / "full-tall-s1", "tall", 1, SHIPPED, tall1, shipped, best_is_last)
    against = write_run(tmp_path / "full-no-llm-s1", "no-llm", 1, str(tmp_path / "full-tall-s1"), row1, tall1,
                        last_chosen)
    table = main([str(reference), str(against)])
    assert table == capsys.readouterr().out.strip()
    lines = table.split("\n")
    assert "\n".join(lines[:2]) == HEADER and len(lines) == 4
    assert lines[2] == ("| tall (1) vs shipped tall (0) | best (2,500), last/ as many dev hits | 2 vs 1 | 2 / 1, p = 1 "
                        "| 3 vs 2 (1) | 2 vs 1 | 2 / 1, p = 1 | 3 vs 2 (1) | לו 50.0 % |")
    assert lines[3] == ("| no-llm (1) vs tall (1) | last (2,622); best/ 0, p = 1 | 1 vs 2 | 1 / 2, p = 1 | 1 vs 3 (0.50) "
                        "| 1 vs 2 | 1 / 2, p = 1 | 1 vs 3 (0.50) | הארץ 75.0 % |")

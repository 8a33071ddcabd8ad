"""Issue 13's scorecard (demo_build.targets): each verdict follows its threshold, and the shipped files agree."""

import copy
import json

import pytest

from demo_build import targets
from tall_model.config import demo_dir

DEMO = demo_dir()


@pytest.fixture(scope="module")
def shipped() -> dict:
    return json.loads((DEMO / "metrics.json").read_text(encoding="utf-8"))


def row(lines: list[str], starts: str) -> list[str]:
    """The cells of the table row whose first cell starts with `starts`."""
    (found,) = [ln for ln in lines if ln.startswith(f"| {starts}")]
    return [c.strip() for c in found.strip("|").split("|")]


def tall_row(m: dict) -> dict:
    return next(r for r in m["next_word"]["rows"] if r["approach"] == "tall")


def test_greedy_and_top5_verdicts_follow_the_thresholds(shipped):
    m = copy.deepcopy(shipped)
    tall_row(m)["accuracy"], tall_row(m)["top5_accuracy"] = 0.04, 0.1199
    cells = row(targets.output_rows(m), "greedy exact match")
    assert cells[1:3] == ["4.00 %", "yes"]  # the threshold itself meets it
    assert row(targets.output_rows(m), "top-5")[1:3] == ["11.99 %", "**no**"]
    tall_row(m)["accuracy"] = 0.0399
    assert row(targets.output_rows(m), "greedy exact match")[2] == "**no**"


def test_every_paper_baseline_must_be_below_at_p_001(shipped):
    m = copy.deepcopy(shipped)
    assert row(targets.output_rows(m), "above every paper baseline")[2] == "yes"
    naive = next(r for r in m["next_word"]["significance"] if r["approach"] == "naive")
    naive["mcnemar_p"] = 0.02  # significant at 0.05, not at the 0.01
    cells = row(targets.output_rows(m), "above every paper baseline")
    assert cells[2] == "**no**" and "0.02 (naive)" in cells[1]
    naive["mcnemar_p"], naive["difference"] = 1e-9, -0.01  # significant, but the baseline is the higher one
    assert row(targets.output_rows(m), "above every paper baseline")[2] == "**no**"


def test_the_word_ngram_reference_is_not_a_baseline_but_is_reported(shipped):
    m = copy.deepcopy(shipped)
    m["word_ngram"]["vs_tall"].update(mcnemar_p=1e-6, difference=-0.02)  # the n-gram well above TALL
    assert row(targets.output_rows(m), "above every paper baseline")[2] == "yes"
    (note,) = [ln for ln in targets.ngram_note(m) if ln]
    assert "significantly lower" in note and "not one of the paper's baselines" in note


def test_the_top_word_row_scores_each_decoding_on_its_own_outputs(shipped):
    m = copy.deepcopy(shipped)
    m["next_word"]["output_stats"]["tall"].update(top_count=21, top_share=21 / 731)
    m["prior"]["output"].update(top_count=23, top_share=23 / 731)
    cells = row(targets.output_rows(m), "no greedy word above 3 %")
    assert cells[2] == "yes" and "21 of 731 (2.9 %)" in cells[1]
    assert cells[4] == "**no**" and "23 of 731 (3.1 %)" in cells[3]


def test_without_a_prior_stage_its_column_is_empty(shipped):
    m = copy.deepcopy(shipped)
    del m["prior"]
    cells = row(targets.output_rows(m), "greedy exact match")
    assert cells[3:] == ["—", "—"]


def test_loops_distinguish_plain_greedy_from_the_guarded_one(shipped):
    m = copy.deepcopy(shipped)
    for t in m["translators"].values():
        t["test_greedy"]["loops"], t["test_greedy_guarded"]["loops"] = 0.05, 0.0
    assert row(targets.backbone_rows(m), "greedy outputs in a repetition loop")[2] == \
        "**no** for plain greedy; yes with the guard"
    for t in m["translators"].values():
        t["test_greedy"]["loops"] = 0.019
    assert row(targets.backbone_rows(m), "greedy outputs in a repetition loop")[2] == "yes"
    for t in m["translators"].values():
        t["test_greedy"]["loops"] = t["test_greedy_guarded"]["loops"] = 0.03
    assert row(targets.backbone_rows(m), "greedy outputs in a repetition loop")[2] == "**no**"


def test_chrf_perplexity_size_and_build_time(shipped):
    m = copy.deepcopy(shipped)
    m["translators"]["he-en"]["test_greedy"]["chrF"] = 37.99
    m["lm"]["test_books_ppl_fp16"]["token_ppl"] = 50.0
    m["sizes_mb"]["total_demo_dir"] = 60.01
    m["build_minutes"] = {"he-en": 100.0, "en-he": 50.0}
    lines = targets.backbone_rows(m)
    assert row(lines, "he-en greedy chrF")[2] == "**no**" and row(lines, "en-he greedy chrF")[2] == "yes"
    assert row(lines, "LM test perplexity")[2] == "yes"
    assert row(lines, "`checkpoints/demo/`")[2] == "**no**"
    assert row(lines, "whole build")[1:] == ["150 min (the 2 stages' minutes in build_log.json)", "yes"]
    m["build_minutes"]["lm"] = 0.5
    assert row(targets.backbone_rows(m), "whole build")[2] == "**no**"


def test_stage_minutes_leave_out_the_cards_stage_and_unfinished_ones():
    log = {"stages": {"he-en": {"status": "done", "minutes": 58.6}, "lm": {"status": "running", "minutes": 3.0},
                      "adapters": {"status": "done", "minutes": 21.1}, "cards": {"status": "done", "minutes": 0.0}}}
    assert targets.stage_minutes(log) == {"he-en": 58.6, "adapters": 21.1}


def test_the_shipped_build_minutes_are_its_build_log(shipped):
    log = json.loads((DEMO / "build_log.json").read_text(encoding="utf-8"))
    assert shipped["build_minutes"] == targets.stage_minutes(log)  # the cards stage ran after the last stage


def test_the_shipped_prior_is_paired_with_every_baseline_of_the_table(shipped):
    """The prior stage pairs its test predictions with each baseline of the evaluate stage, on the same examples."""
    prior, rows = shipped["prior"], {r["approach"]: r for r in shipped["next_word"]["rows"]}
    paired = {c["approach"]: c for c in prior["vs_baselines"]}
    assert set(paired) == set(rows) - {"tall"}
    for name, c in paired.items():
        assert c["reference"] == "tall, prior-corrected" and c["n"] == rows[name]["examples"]
        assert c["reference_accuracy"] == pytest.approx(prior["greedy"])
        assert c["approach_accuracy"] == pytest.approx(rows[name]["accuracy"])
        assert (c["only_reference"] - c["only_approach"]) / c["n"] == pytest.approx(c["difference"])

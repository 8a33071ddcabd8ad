"""The README's seed-pooled figures are those of benchmarks/results/pooled-*.json (experiments.seed_pooled --json),
and those whose runs are kept as records (benchmarks/results/runs, experiments.run_record) are what the records give,
so a rerun that changes them, or an edit that retypes them, fails here."""

import json
import re
from pathlib import Path

import pytest

from demo_build.results import listed
from evaluation.report import read_predictions
from experiments import seed_pooled
from experiments.run_record import read_record, split_record
from experiments.seed_table import p_text

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "results" / "runs"


def pooled(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"pooled-{name}.json").read_text(encoding="utf-8"))


def seed_list(result: dict) -> str:
    """A pooled result's seeds as the README writes them: "0, 1 and 2"."""
    return listed([str(s) for s in result["seeds"]])


def hits(record: dict, split: str = "test", measure: str = "greedy") -> int:
    return record[split][measure].count("1")


def gains(row: str, seeds: list[int], split: str = "test", measure: str = "greedy") -> list[int]:
    """Per seed, the row's hits minus TALL's at the same seed, from the kept records."""
    return [hits(read_record(RUNS / f"{row}-s{s}.json"), split, measure)
            - hits(read_record(RUNS / f"tall-s{s}.json"), split, measure) for s in seeds]


def points(x: float) -> str:
    return f"{100 * x:.2f}"


def signed(x: float) -> str:
    """Points with their sign, as the README prints them (a true minus sign)."""
    return f"{100 * x:+.2f}".replace("-", "−")


@pytest.fixture(scope="module")
def readme() -> str:
    return " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # the README's own line breaks aside


def test_every_pooled_result_pairs_each_seed_with_tall_on_every_example():
    for name, row in (("no-scale", "no-scale-matching"), ("concat", "concat-bridge"), ("no-llm", "no-llm"),
                      ("no-translation", "no-translation")):
        result = pooled(name)
        assert result["row"] == row and result["seeds"] == sorted(set(result["seeds"])) and len(result["seeds"]) >= 3
        for split, n in (("dev", 1126), ("test", 731)):
            assert {c["n"] for c in result[split].values()} == {n}
            assert {c["seeds"] for c in result[split].values()} == {len(result["seeds"])}


def test_the_scale_matching_sentence_is_the_pooled_result(readme):
    test, dev = pooled("no-scale")["test"], pooled("no-scale")["dev"]
    top5, greedy = test["top-5"], test["greedy"]  # row = without scale matching, so TALL's gain is −difference
    assert (f"scale matching adds {points(-top5['difference'])} points of test-book top-5 "
            f"({points(top5['b_accuracy'])} % against {points(top5['a_accuracy'])} %, 95 % CI "
            f"{points(-top5['ci_high'])} … {points(-top5['ci_low'])}, p = {top5['permutation_p']:.1g})") in readme
    assert (f"and {points(-dev['greedy']['difference'])} dev-book greedy points "
            f"(p = {p_text(dev['greedy']['permutation_p'])};") in readme
    assert f"(+{points(-greedy['difference'])} points, p = {p_text(greedy['permutation_p'])})" in readme


def test_the_concat_and_no_llm_sentence_is_the_pooled_result(readme):
    concat, no_llm = pooled("concat"), pooled("no-llm")
    assert (f"The first two stay level when pooled (the concatenating bridge over seeds {seed_list(concat)}, "
            f"bypassing the LLM over seeds {seed_list(no_llm)})") in readme
    extra = gains("concat-bridge", concat["seeds"])
    assert min(extra) > 0, extra  # "more test words at every seed"
    greedy, top5 = concat["test"]["greedy"], concat["test"]["top-5"]
    assert top5["difference"] < 0  # "lower"
    assert (f"The concatenating bridge finds more test words at every seed ({', '.join(f'+{x}' for x in extra)}), "
            f"but pooled that is +{points(greedy['difference'])} points, p = {p_text(greedy['permutation_p'])}, and "
            f"its test top-5 is {points(-top5['difference'])} points lower (p = {p_text(top5['permutation_p'])})"
            ) in readme
    test = no_llm["test"]
    assert (f"Bypassing the LLM changes test greedy by +{points(test['greedy']['difference'])} points "
            f"(p = {p_text(test['greedy']['permutation_p'])}) and test top-5 by "
            f"−{points(-test['top-5']['difference'])} (p = {p_text(test['top-5']['permutation_p'])})") in readme


def test_the_shipped_tall_record_is_the_shipped_demos_test_predictions():
    shipped = read_record(RUNS / "tall-s0.json")
    assert shipped["source"] == "the shipped TALL" and shipped["dev"]["n"] == 1126
    assert shipped["test"] == split_record(read_predictions(ROOT / "checkpoints" / "demo" / "eval" / "predictions.jsonl",
                                                            "tall"))


def test_pooled_results_with_records_are_what_the_records_give():
    for name, row in (("no-translation", "no-translation"), ("concat", "concat-bridge"), ("no-scale", "no-scale-matching")):
        kept = pooled(name)
        again = seed_pooled.pooled(seed_pooled.pairs_from_records(RUNS, row, kept["seeds"]))
        assert again["seeds"] == kept["seeds"]
        for split in ("dev", "test"):
            for measure, c in again[split].items():
                assert c == pytest.approx(kept[split][measure]), (name, split, measure)


def test_the_retrained_talls_in_the_readme_are_their_records(readme):
    """The README's per-seed TALL figures, for every seed whose run is kept as a record."""
    sentence = re.search(r"retrained at seeds 1, 2 and 3, finds (\d+), (\d+) and (\d+) dev-book words against the "
                         r"shipped one's (\d+) \(.*?\) and (\d+), (\d+) and (\d+) test-book words against (\d+)\*\*",
                         readme)
    assert sentence, "the README's sentence on TALL retrained at seeds 1, 2 and 3 is gone or reworded"
    typed = [int(x) for x in sentence.groups()]
    readme_hits = {0: (typed[3], typed[7]), **{s: (typed[s - 1], typed[s + 3]) for s in (1, 2, 3)}}
    talls = {record["seed"]: record for record in map(read_record, RUNS.glob("tall-s*.json"))}
    assert {0, 1} <= set(talls)
    for seed, record in talls.items():
        found = (hits(record, "dev"), hits(record))
        assert found == readme_hits[seed], (seed, found, readme_hits[seed])


def test_the_no_translation_sentence_is_the_pooled_result(readme):
    result = pooled("no-translation")
    greedy, top5 = result["test"]["greedy"], result["test"]["top-5"]
    assert (f"without the translation input, pooled over seeds {seed_list(result)}, test greedy changes by "
            f"{signed(greedy['difference'])} points (p = {p_text(greedy['permutation_p'])}) and test top-5 by "
            f"{signed(top5['difference'])} (p = {p_text(top5['permutation_p'])})") in readme
    # Holm over the four measures tested (dev and test, greedy and top-5): the smallest p times four.
    measures = [c["permutation_p"] for split in ("dev", "test") for c in result[split].values()]
    assert len(measures) == 4 and min(measures) == top5["permutation_p"]
    assert (f"not once corrected for the four measures tested (Holm, p = {p_text(min(1.0, 4 * min(measures)))}), and "
            f"dev top-5 is level (p = {p_text(result['dev']['top-5']['permutation_p'])})") in readme


def test_the_scale_matching_per_seed_figures_are_their_records(readme):
    """The README's per-seed differences without scale matching, against TALL at the same seed, from the records."""
    sentence = re.search(r"TALL without it found fewer dev-book words at all three seeds tried \((.*?);.*?\) and fewer "
                         r"test-book top-5 words \((.*?);.*?\), with test greedy hits (.*?)\. ", readme)
    assert sentence, "the README's per-seed sentence on scale matching is gone or reworded"
    typed = [[int(x.replace("−", "-")) for x in group.split(", ")] for group in sentence.groups()]
    seeds = pooled("no-scale")["seeds"]
    assert typed == [gains("no-scale-matching", seeds, split, measure)
                     for split, measure in (("dev", "greedy"), ("test", "top-5"), ("test", "greedy"))]

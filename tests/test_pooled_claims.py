"""The README's seed-pooled figures are those of benchmarks/results/pooled-*.json (experiments.seed_pooled --json),
so a rerun that changes them, or an edit that retypes them, fails here."""

import json
from pathlib import Path

import pytest

from experiments.seed_table import p_text

ROOT = Path(__file__).resolve().parents[1]


def pooled(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"pooled-{name}.json").read_text(encoding="utf-8"))


def points(x: float) -> str:
    return f"{100 * x:.2f}"


@pytest.fixture(scope="module")
def readme() -> str:
    return " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # the README's own line breaks aside


def test_every_pooled_result_is_three_seeds_against_tall_at_the_same_seed():
    for name, row in (("no-scale", "no-scale-matching"), ("concat", "concat-bridge"), ("no-llm", "no-llm")):
        result = pooled(name)
        assert result["row"] == row and result["seeds"] == [0, 1, 2]
        for split, n in (("dev", 1126), ("test", 731)):
            assert {c["n"] for c in result[split].values()} == {n} and {c["seeds"] for c in result[split].values()} == {3}


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
    concat, no_llm = pooled("concat")["test"], pooled("no-llm")["test"]
    assert (f"pooled that is +{points(concat['greedy']['difference'])} points, "
            f"p = {p_text(concat['greedy']['permutation_p'])}") in readme
    assert (f"Bypassing the LLM changes test greedy by +{points(no_llm['greedy']['difference'])} points "
            f"(p = {p_text(no_llm['greedy']['permutation_p'])}) and test top-5 by "
            f"−{points(-no_llm['top-5']['difference'])} (p = {p_text(no_llm['top-5']['permutation_p'])})") in readme

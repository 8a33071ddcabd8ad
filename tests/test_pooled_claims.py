"""The README's seed-pooled figures are those of benchmarks/results/pooled.json (experiments.pooled_table --json),
which is what the kept run records give (benchmarks/results/runs, experiments.run_record), and its generated block
is the table those records give, so a rerun that changes them, or an edit that retypes them, fails here."""

import json
import re
from pathlib import Path

import pytest

from demo_build.results import listed, read_block
from evaluation.report import read_predictions
from evaluation.significance import mcnemar_exact
from experiments import pooled_table
from experiments.pooled_plot import write_forest
from experiments.run_record import hits as record_hits
from experiments.run_record import read_record, split_record
from experiments.seed_pooled import pairs_from_records
from experiments.seed_pooled import pooled as seed_pooled
from experiments.seed_table import p_text
from tall_model.word_list import demo_word_list, read_word_list

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "results" / "runs"
NUMBER_WORDS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten",
                11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen"}  # how the README writes a count of rows


def pooled_rows() -> dict:
    """Every row of pooled.json (experiments.pooled_table --json), in the table's order."""
    return json.loads((ROOT / "benchmarks" / "results" / "pooled.json").read_text(encoding="utf-8"))


def pooled(row: str) -> dict:
    return pooled_rows()[row]


def hits(record: dict, split: str = "test", measure: str = "greedy") -> int:
    return record[split][measure].count("1")


def gains(row: str, seeds: list[int], split: str = "test", measure: str = "greedy") -> list[int]:
    """Per seed, the row's hits minus TALL's at the same seed, from the kept records."""
    return [hits(read_record(RUNS / f"{row}-s{s}.json"), split, measure)
            - hits(read_record(RUNS / f"tall-s{s}.json"), split, measure) for s in seeds]


def points(x: float) -> str:
    return f"{100 * x:.2f}"


def signed(x: float) -> str:
    """A difference in points as the README writes it: "+0.41", "−0.20"."""
    return f"{100 * x:+.2f}".replace("-", "−")


def per_seed_words(row: dict) -> str:
    """A pooled row's per-seed test-word gains as the README writes them: "+6, −3, 0"."""
    return ", ".join(f"{g:+d}".replace("-", "−").replace("+0", "0") for g in row["per_seed"])


@pytest.fixture(scope="module")
def readme() -> str:
    return " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # the README's own line breaks aside


def en_he_pieces(word: str, tokenizer) -> int:
    return len(tokenizer(text_target=word, add_special_tokens=False)["input_ids"])


def shipped_tall_steps() -> int:
    """The shipped TALL's training steps (its checkpoint's config)."""
    return json.loads((ROOT / "checkpoints" / "demo" / "tall" / "config.json").read_text())["extra"]["steps"]


def table_wide_holm(rows: dict) -> tuple[int, dict]:
    """(how many comparisons, {(row, split, measure): Holm p}) over every row's four measures in the table."""
    from evaluation.significance import holm

    keys = [(row, split, m) for row in rows for split in ("dev", "test") for m in ("greedy", "top-5")]
    return len(keys), dict(zip(keys, holm([rows[r][split][m]["permutation_p"] for r, split, m in keys]), strict=True))


def test_every_pooled_row_pairs_each_seed_with_tall_on_every_example():
    rows = pooled_rows()
    assert {"no-llm", "concat-bridge", "no-translation", "no-scale-matching"} <= set(rows)
    for row, result in rows.items():
        assert result["row"] == row and result["seeds"] == sorted(set(result["seeds"])) and len(result["seeds"]) >= 3
        for split, n in (("dev", 1126), ("test", 731)):
            assert {c["n"] for c in result[split].values()} == {n}
            assert {c["seeds"] for c in result[split].values()} == {len(result["seeds"])}


def test_pooled_json_the_readme_table_and_its_plot_are_what_the_records_give(tmp_path):
    counts = pooled_table.parameter_counts(ROOT / pooled_table.ABLATION_METRICS)
    again = pooled_table.pool_all(RUNS, counts=counts)
    kept = pooled_rows()
    assert list(again) == list(kept)
    for row, result in again.items():
        assert result["seeds"] == kept[row]["seeds"] and result["per_seed"] == kept[row]["per_seed"]
        assert result["trainable_parameters"] == kept[row]["trainable_parameters"] == {"row": counts[row],
                                                                                       "tall": counts["tall"]}
        for split in ("dev", "test"):
            for measure, c in result[split].items():
                assert c == pytest.approx(kept[row][split][measure]), (row, split, measure)
                assert result["holm"][split][measure] == pytest.approx(kept[row]["holm"][split][measure])
    block = read_block(ROOT / "README.md", pooled_table.POOLED_START, pooled_table.POOLED_END)
    assert block == pooled_table.markdown(again, pooled_table.waiting(RUNS)), "regenerate it: python -m experiments.pooled_table --readme README.md"
    write_forest(again, tmp_path / "forest.svg")
    assert (tmp_path / "forest.svg").read_bytes() == (ROOT / "docs" / "pooled_ablations.svg").read_bytes()
    assert "(docs/pooled_ablations.svg)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_bridge_llm_and_translation_rows_never_differ_in_greedy_hits(readme):
    """"Neither ... differs significantly from TALL in greedy hits, on the dev or the test books, at any seed tried,
    nor pooled": each seed's own exact McNemar test, from the records, and the pooled Holm p."""
    assert ("Neither the concatenating bridge, nor **bypassing the LLM**, nor dropping the translation input differs "
            "significantly from TALL in greedy hits, on the dev or the test books, at any seed tried, nor pooled") in readme
    for row in ("concat-bridge", "no-llm", "no-translation"):
        for seed in pooled(row)["seeds"]:
            ours, tall = read_record(RUNS / f"{row}-s{seed}.json"), read_record(RUNS / f"tall-s{seed}.json")
            for split in ("dev", "test"):
                _, _, p = mcnemar_exact(record_hits(ours, split, "greedy"), record_hits(tall, split, "greedy"))
                assert p >= 0.05, (row, seed, split, p)
        assert min(pooled(row)["holm"][split]["greedy"] for split in ("dev", "test")) >= 0.05, row


def test_the_scale_matching_sentence_is_the_pooled_result(readme):
    test, dev = pooled("no-scale-matching")["test"], pooled("no-scale-matching")["dev"]
    top5, greedy = test["top-5"], test["greedy"]  # row = without scale matching, so TALL's gain is −difference
    assert (f"scale matching adds {points(-top5['difference'])} points of test-book top-5 "
            f"({points(top5['b_accuracy'])} % against {points(top5['a_accuracy'])} %, 95 % CI "
            f"{points(-top5['ci_high'])} … {points(-top5['ci_low'])}, p = {top5['permutation_p']:.1g})") in readme
    assert (f"and {points(-dev['greedy']['difference'])} dev-book greedy points "
            f"(p = {p_text(dev['greedy']['permutation_p'])};") in readme
    assert f"(+{points(-greedy['difference'])} points, p = {p_text(greedy['permutation_p'])})" in readme


def test_the_concat_and_no_translation_sentences_are_their_records(readme):
    concat = pooled("concat-bridge")
    assert min(concat["per_seed"]) > 0 and concat["per_seed"] == gains("concat-bridge", concat["seeds"])
    assert concat["test"]["greedy"]["permutation_p"] >= 0.05 and concat["test"]["top-5"]["difference"] < 0
    assert ("concatenating bridge finds more test words than TALL at every seed, but pooled that is within noise, and "
            "its top-5 is a little lower") in readme
    no_translation = pooled("no-translation")
    top5 = gains("no-translation", no_translation["seeds"], "test", "top-5")
    assert (len(no_translation["seeds"]), sum(g < 0 for g in top5)) == (4, 3), top5
    assert no_translation["test"]["top-5"]["permutation_p"] < 0.05 <= no_translation["holm"]["test"]["top-5"]
    assert no_translation["dev"]["top-5"]["permutation_p"] >= 0.05
    assert ("Without the translation input, test top-5 is lower at three of the four seeds, significant only before "
            "the correction for four measures, and dev top-5 is level") in readme


def test_the_shipped_tall_record_is_the_shipped_demos_test_predictions():
    shipped = read_record(RUNS / "tall-s0.json")
    assert shipped["source"] == "the shipped TALL" and shipped["dev"]["n"] == 1126
    words = set(read_word_list(demo_word_list()))
    assert shipped["test"] == split_record(read_predictions(ROOT / "checkpoints" / "demo" / "eval" / "predictions.jsonl",
                                                            "tall"), words)


def test_the_retrained_talls_in_the_readme_are_their_records(readme):
    """The README's per-seed TALL figures (dev and test greedy hits, dev McNemar p against the shipped TALL, test
    greedy and top-5 accuracy) for every seed whose run is kept as a record, and for no other."""
    sentence = re.search(r"TALL itself, retrained at seeds ([\d, and]+?), finds ([\d, and]+?) dev-book words against "
                         r"the shipped one's (\d+) \(p = ([\d., ]+)\) and ([\d, and]+?) test-book words against "
                         r"(\d+)\*\* \(greedy ([\d.,% ]+); top-5 ([\d.,% ]+)\)", readme)
    assert sentence, "the README's sentence on TALL retrained at other seeds is gone or reworded"
    seeds, dev, shipped_dev, ps, test, shipped_test, greedy, top5 = sentence.groups()
    seeds = [int(x) for x in re.findall(r"\d+", seeds)]
    talls = {record["seed"]: record for record in map(read_record, RUNS.glob("tall-s*.json"))}
    shipped = talls.pop(0)
    assert seeds == sorted(talls), "every retrained TALL kept as a record is in the sentence"
    assert (int(shipped_dev), int(shipped_test)) == (hits(shipped, "dev"), hits(shipped))
    assert [int(x) for x in re.findall(r"\d+", dev)] == [hits(talls[s], "dev") for s in seeds]
    assert [int(x) for x in re.findall(r"\d+", test)] == [hits(talls[s]) for s in seeds]
    assert ps.split(", ") == [p_text(mcnemar_exact(record_hits(talls[s], "dev", "greedy"),
                                                   record_hits(shipped, "dev", "greedy"))[2]) for s in seeds]
    for typed, measure in ((greedy, "greedy"), (top5, "top-5")):
        assert typed.split(", ") == [f"{100 * hits(talls[s], 'test', measure) / talls[s]['test']['n']:.2f} %"
                                     for s in seeds]


def test_the_scale_matching_per_seed_figures_are_their_records(readme):
    """The README's per-seed differences without scale matching, against TALL at the same seed, from the records."""
    sentence = re.search(r"TALL without it found fewer dev-book words at all three seeds tried \((.*?);.*?\) and fewer "
                         r"test-book top-5 words \((.*?);.*?\), with test greedy hits (.*?)\. ", readme)
    assert sentence, "the README's per-seed sentence on scale matching is gone or reworded"
    typed = [[int(x.replace("−", "-")) for x in group.split(", ")] for group in sentence.groups()]
    seeds = pooled("no-scale-matching")["seeds"]
    assert typed == [gains("no-scale-matching", seeds, split, measure)
                     for split, measure in (("dev", "greedy"), ("test", "top-5"), ("test", "greedy"))]


def top_word_share(row: str, seed: int) -> float:
    test = read_record(RUNS / f"{row}-s{seed}.json")["test"]
    return 100 * test["top_word_count"] / test["n"]


def test_the_frozen_decoder_sentence_is_its_records(readme):
    rows = pooled_rows()
    number = NUMBER_WORDS[len(rows)]
    assert f"short budget can hide a difference, so {number} rows were also trained" in readme

    def lower_everywhere(result: dict) -> bool:
        return all(result[s][m]["difference"] < 0 and result["holm"][s][m] < 0.05
                   for s in ("dev", "test") for m in ("greedy", "top-5"))

    assert [row for row, result in rows.items() if lower_everywhere(result)] == ["frozen-decoder"]  # "the one row"
    seeds = rows["frozen-decoder"]["seeds"]
    frozen, tall = ([top_word_share(row, s) for s in seeds] for row in ("frozen-decoder", "tall"))
    assert (f"most frequent test word takes {min(frozen):.1f}–{max(frozen):.1f} % of the test examples at those seeds "
            f"(TALL's: {min(tall):.1f}–{max(tall):.1f} %)") in readme


def test_the_adapter_size_sentence_is_their_records(readme):
    """"halving or doubling their hidden factor ... found more test-book words than TALL at each of three seeds ...
    but neither passes the Holm correction": the per-seed gains, pooled differences and p-values from the records."""
    half, double = pooled("adapter-x0.5"), pooled("adapter-x2")
    for row in (half, double):
        assert row["seeds"] == [0, 1, 2] and min(row["per_seed"]) > 0
        assert min(row["holm"][s][m] for s in ("dev", "test") for m in ("greedy", "top-5")) >= 0.05
        assert row["test"]["top-5"]["difference"] < 0 and row["dev"]["greedy"]["permutation_p"] >= 0.05
    assert half["per_seed"] == gains("adapter-x0.5", [0, 1, 2]) and double["per_seed"] == gains("adapter-x2", [0, 1, 2])

    greedy = [row["test"]["greedy"] for row in (half, double)]
    assert points(greedy[0]["difference"]) == points(greedy[1]["difference"])  # the sentence says "for both"
    assert (f"found more test-book words than TALL at each of three seeds ({per_seed_words(half)} and {per_seed_words(double)}), "
            f"{points(greedy[0]['difference'])} points pooled for both (p = {p_text(greedy[0]['permutation_p'])} and "
            f"{p_text(greedy[1]['permutation_p'])}), but neither passes the Holm correction") in readme
    assert (f"dev-book greedy level (p = {p_text(half['dev']['greedy']['permutation_p'])} and "
            f"{p_text(double['dev']['greedy']['permutation_p'])})") in readme


def test_the_bridge_depth_sentence_is_its_records(readme):
    """"Bridges of depth 2 ... are level with TALL on all four measures (test words per seed ...; every Holm p = 1)"."""
    deeper = pooled("bridges-2")
    assert deeper["per_seed"] == gains("bridges-2", deeper["seeds"]) and deeper["seeds"] == [0, 1, 2]
    assert all(p == 1 for split in deeper["holm"].values() for p in split.values()), deeper["holm"]
    assert (f"**Bridges of depth 2** (against the demo's 1) are level with TALL on all four measures (test words per "
            f"seed {per_seed_words(deeper)}; every Holm p = 1)") in readme


def test_the_subword_framing_sentence_is_its_records(readme):
    """"The paper's subword framing ... is level with TALL on all four measures too (test words per seed ...; every
    Holm p = 1), but N–M of its 731 greedy test words are not words of the training Hebrew at all (TALL's: a–b)"."""
    framing = pooled("subword-framing")
    seeds = framing["seeds"]
    assert seeds == [0, 1, 2] and framing["per_seed"] == gains("subword-framing", seeds)
    assert all(p == 1 for split in framing["holm"].values() for p in split.values()), framing["holm"]
    made_up, tall = ([read_record(RUNS / f"{row}-s{s}.json")["test"]["unseen_count"] for s in seeds]
                     for row in ("subword-framing", "tall"))
    assert min(made_up) > 10 * max(tall)  # "makes up far more"
    assert (f"level with TALL on all four measures too (test words per seed {per_seed_words(framing)}; every Holm "
            f"p = 1), but {min(made_up)}–{max(made_up)} of its 731 greedy test words are not words of the training "
            f"Hebrew at all (TALL's: {min(tall)}–{max(tall)})") in readme


def test_the_word_start_sentence_is_its_records(readme):
    """"Held to pieces that start a word ... keeps every test word its free piece found and finds a, b and c more
    (exact McNemar p = ...), makes up N ..., and finds more test words than TALL at every seed: ..., the largest gain
    of any row. Holm-corrected ... its smallest p is x, so by the table's rule ... But seeds ... were run because ...
    showed the lead, and on those later seeds alone ..., and across all ... comparisons its test p becomes y: a lead
    that shrinks on fresh seeds, not an established gain. Both are in effect one-piece predictors ..."."""
    from transformers import AutoTokenizer

    held = pooled("subword-framing-wordstart")
    seeds = held["seeds"]
    assert held["per_seed"] == gains("subword-framing-wordstart", seeds)
    held_records = [read_record(RUNS / f"subword-framing-wordstart-s{s}.json") for s in seeds]
    free_seeds = [s for s in seeds if (RUNS / f"subword-framing-s{s}.json").exists()]  # the free row's seeds
    both = [(held_records[seeds.index(s)], read_record(RUNS / f"subword-framing-s{s}.json")) for s in free_seeds]
    assert len(both) >= 3
    assert all(w[split]["top-5"] == f[split]["top-5"] for w, f in both for split in ("dev", "test"))  # same weights
    found = [mcnemar_exact(record_hits(w, "test", "greedy"), record_hits(f, "test", "greedy")) for w, f in both]
    assert all(lost == 0 for _, lost, _ in found)
    made_up = sorted({w["test"]["unseen_count"] for w in held_records})
    assert f"bit for bit on both splits at each of seeds {listed([str(s) for s in free_seeds])}, so these" in readme
    said = (f"keeps every test word its free piece found and finds {listed([str(g) for g, _, _ in found])} more "
            f"(exact McNemar p = "
            f"{', '.join(p_text(p) for _, _, p in found)}), makes up "
            + (f"{made_up[0]} of its 731 greedy test words at each seed" if len(made_up) == 1 else
               f"{made_up[0]}–{made_up[-1]} of its 731 greedy test words"))
    assert said in readme
    test, dev = held["test"]["greedy"], held["dev"]["greedy"]
    assert all(g > 0 for g in held["per_seed"]) and dev["difference"] > 0  # "more test words than TALL at every seed"
    rows = pooled_rows()
    ranked = sorted(rows, key=lambda r: -rows[r]["test"]["greedy"]["difference"])
    assert ranked[:2] == ["one-piece-targets-3-epochs", "subword-framing-wordstart"]  # "the largest gain ... but one"
    assert (f"finds more test words than TALL at every seed: {per_seed_words(held)}, {points(test['a_accuracy'])} "
            f"against {points(test['b_accuracy'])} % pooled (+{points(test['difference'])} points, 95 % CI "
            f"+{points(test['ci_low'])} … +{points(test['ci_high'])}, p = {p_text(test['permutation_p'])}; dev greedy "
            f"+{points(dev['difference'])} points, p = {p_text(dev['permutation_p'])}; top-5 level)") in readme
    assert min(held["test"]["top-5"]["permutation_p"], held["dev"]["top-5"]["permutation_p"]) >= 0.05
    smallest = min(p for split in held["holm"].values() for p in split.values())
    gaining = [r for r in rows if any(rows[r][s][m]["difference"] > 0 and rows[r]["holm"][s][m] < 0.05
                                      for s in ("dev", "test") for m in ("greedy", "top-5"))]
    if smallest < 0.05:
        assert gaining == ["subword-framing-wordstart", "one-piece-targets-3-epochs"]
        assert (f"Holm-corrected for the row's four measures its smallest p is {p_text(smallest)}, so by the table's "
                "rule it finds more words than TALL, as only the three-epoch one-piece row below also does") in readme
    else:
        assert f"its smallest p is {p_text(smallest)}, short of 0.05" in readme
    # the seeds run after seeds 0-2 (the free row's) had shown the lead, pooled alone
    later = [s for s in seeds if s not in free_seeds]
    fresh = seed_pooled(pairs_from_records(RUNS, "subword-framing-wordstart", later))
    assert (f"But seeds {listed([str(s) for s in later])} were run because seeds {listed([str(s) for s in free_seeds])} "
            f"showed the lead, and on those later seeds alone the gain is {signed(fresh['test']['greedy']['difference'])} "
            f"test points (p = {p_text(fresh['test']['greedy']['permutation_p'])}; dev "
            f"{signed(fresh['dev']['greedy']['difference'])}, p = {p_text(fresh['dev']['greedy']['permutation_p'])})"
            ) in readme
    # one-piece predictors: the en→he pieces of the gold words and of the shipped TALL's greedy words
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "checkpoints" / "demo" / "en-he")
    shipped = read_predictions(ROOT / "checkpoints" / "demo" / "eval" / "predictions.jsonl", "tall")
    one_piece = [en_he_pieces(r["gold"], tokenizer) == 1 for r in shipped]
    tall = [read_record(RUNS / f"tall-s{s}.json") for s in seeds]

    def one_piece_hits(records: list[dict]) -> str:
        """"all 244" or "210 of 211": how many of the records' greedy test hits are one-piece words."""
        found = [single for r in records for hit, single in zip(record_hits(r, "test", "greedy"), one_piece,
                                                                  strict=True) if hit]
        return f"all {len(found)}" if all(found) else f"{sum(found)} of {len(found)}"
    assert (f"of their greedy test hits over the {NUMBER_WORDS[len(seeds)]} seeds, {one_piece_hits(held_records)} of "
            f"the held row's and {one_piece_hits(tall)} of TALL's are words of one en→he piece") in readme
    greedy_one_piece = sum(en_he_pieces(r["greedy"], tokenizer) == 1 for r in shipped)
    assert (f"({sum(one_piece)} of the 731 test words are), and {greedy_one_piece} of the shipped TALL's 731 greedy "
            "words are one piece too") in readme
    comparisons, family = table_wide_holm(rows)
    across = family["subword-framing-wordstart", "test", "greedy"]
    assert across >= 0.05
    assert (f"across all {NUMBER_WORDS[len(rows)]} rows' {comparisons} comparisons its test p becomes {p_text(across)}: "
            "a lead that shrinks on fresh seeds, not an established gain") in readme


def test_the_depth_4_sentence_is_its_records(readme):
    deepest = pooled("bridges-4")
    assert deepest["seeds"] == [0, 1, 2] and deepest["per_seed"] == gains("bridges-4", deepest["seeds"])
    counts = deepest["trainable_parameters"]
    more = round(100 * (counts["row"] - counts["tall"]) / counts["tall"])
    top5 = deepest["test"]["top-5"]
    assert top5["difference"] < 0 and top5["permutation_p"] < 0.05 <= deepest["holm"]["test"]["top-5"]
    assert min(p for split in deepest["holm"].values() for p in split.values()) >= 0.05
    assert deepest["holm"]["test"]["greedy"] == 1
    assert (f"**Bridges of depth 4**, at {more} % more trainable parameters, find as many test words "
            f"({per_seed_words(deepest)}; Holm p = 1) and a lower test top-5 only before the correction "
            f"(p = {p_text(top5['permutation_p'])}, Holm p = {p_text(deepest['holm']['test']['top-5'])})") in readme


def test_the_one_piece_sentence_is_its_records(readme):
    """"Taught only one-piece words (... trained only on the a of b training verses ...; two epochs as TALL, so c
    steps against its d ...), the word framing is never behind TALL (...), but pooled that is within noise: ...
    Against the held subword row at the same seeds ... its greedy is level (...). All n of its greedy test hits are
    one-piece words ... on e % of TALL's steps ... Its chosen checkpoint was its last (step c) at every seed"."""
    from transformers import AutoTokenizer

    row = pooled("one-piece-targets")
    seeds = row["seeds"]
    assert len(seeds) == 6 and row["per_seed"] == gains("one-piece-targets", seeds)
    records = [read_record(RUNS / f"one-piece-targets-s{s}.json") for s in seeds]
    (training,) = {json.dumps(r["training"], sort_keys=True) for r in records}  # the same data and budget each seed
    training = json.loads(training)
    tall_steps = shipped_tall_steps()
    assert (f"trained only on the {training['examples']:,} of {training['sentences']:,} training verses whose last word "
            f"is one subword piece") in readme
    assert f"two epochs as TALL, so {training['steps']:,} steps against its {tall_steps:,}" in readme
    assert f"on {round(100 * training['steps'] / tall_steps)} % of TALL's steps" in readme
    assert training["chosen_step"] == training["steps"]  # "its chosen checkpoint was its last ... at every seed"
    assert f"Its chosen checkpoint was its last (step {training['steps']:,}) at every seed" in readme
    dev_gains = gains("one-piece-targets", seeds, "dev")
    assert min(row["per_seed"]) >= 0 and min(dev_gains) >= 0  # "never behind TALL"
    dev_words = ", ".join(f"{g:+d}".replace("+0", "0") for g in dev_gains)
    assert (f"the word framing is never behind TALL (test words per seed {per_seed_words(row)}; dev {dev_words}), but "
            "pooled that is within noise") in readme
    test, dev, top5 = row["test"]["greedy"], row["dev"]["greedy"], row["test"]["top-5"]
    smallest = min(p for split in row["holm"].values() for p in split.values())
    assert min(test["permutation_p"], dev["permutation_p"], top5["permutation_p"]) >= 0.05 and smallest >= 0.05
    assert (f"test greedy {points(test['a_accuracy'])} against {points(test['b_accuracy'])} % "
            f"({signed(test['difference'])} points, 95 % CI {signed(test['ci_low'])} … {signed(test['ci_high'])}, "
            f"p = {p_text(test['permutation_p'])}), dev greedy {signed(dev['difference'])} "
            f"(p = {p_text(dev['permutation_p'])}), test top-5 {signed(top5['difference'])} "
            f"(p = {p_text(top5['permutation_p'])}), smallest Holm p {p_text(smallest)}") in readme
    held = "subword-framing-wordstart"
    versus = seed_pooled(pairs_from_records(RUNS, "one-piece-targets", seeds, held), reference=held)
    level = [versus[split]["greedy"] for split in ("test", "dev")]
    assert all(c["permutation_p"] >= 0.05 for c in level)  # "level"
    assert (f"its greedy is level (test {signed(level[0]['difference'])} points, p = {p_text(level[0]['permutation_p'])}; "
            f"dev {signed(level[1]['difference'])}, p = {p_text(level[1]['permutation_p'])})") in readme
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "checkpoints" / "demo" / "en-he")
    shipped = read_predictions(ROOT / "checkpoints" / "demo" / "eval" / "predictions.jsonl", "tall")
    one_piece = [en_he_pieces(r["gold"], tokenizer) == 1 for r in shipped]
    found = [single for r in records for hit, single in zip(record_hits(r, "test", "greedy"), one_piece, strict=True)
             if hit]
    assert all(found) and all(r["test"]["unseen_count"] == 0 for r in records)
    assert (f"All {len(found)} of its greedy test hits are one-piece words and none of its greedy words is made "
            "up") in readme
    theirs = pooled(held)["test"]["greedy"]["difference"]
    assert theirs / 2 < test["difference"] < theirs  # "most of the held row's lead comes back" (most, not more)


def test_the_three_epoch_one_piece_sentence_is_its_records(readme):
    """"Given a third epoch (...: c steps, e % of TALL's; seeds 0, 1 and 2, run after ..., then seeds 3, 4 and 5, queued
    together ...), it finds more words than TALL at each seed (...): ... Holm p a (test) and b (dev) within the row, the
    largest gain of any row, and ... more than the two-epoch row at the same seeds (...). ... But the fresh seeds ...
    alone, run to confirm it, give ... and across the table's n comparisons its test p is q (dev r)"."""
    name = "one-piece-targets-3-epochs"
    row, rows = pooled(name), pooled_rows()
    seeds = row["seeds"]
    first, fresh_seeds = seeds[:3], seeds[3:]  # 0-2 designed after the two-epoch row; 3-5 run to confirm
    records = [read_record(RUNS / f"{name}-s{s}.json") for s in seeds]
    steps = {r["training"]["steps"] for r in records}
    tall_steps = shipped_tall_steps()
    assert len(steps) == 1 and row["per_seed"] == gains(name, seeds) and fresh_seeds
    (steps,) = steps
    assert (f"(`{name}`: {steps:,} steps, {round(100 * steps / tall_steps)} % of TALL's; seeds "
            f"{listed([str(s) for s in first])}, run after the two-epoch row was seen, then seeds "
            f"{listed([str(s) for s in fresh_seeds])}, queued together") in readme
    dev_gains = gains(name, seeds, "dev")
    assert min(row["per_seed"]) > 0 and min(dev_gains) > 0  # "more words than TALL at each seed"
    assert (f"at each seed (test {per_seed_words(row)}; dev {', '.join(f'{g:+d}' for g in dev_gains)})") in readme
    test, dev = row["test"]["greedy"], row["dev"]["greedy"]
    holm_test, holm_dev = row["holm"]["test"]["greedy"], row["holm"]["dev"]["greedy"]
    assert holm_dev < 0.05 <= holm_test  # "it finds more dev words than TALL"
    assert min(row["test"]["top-5"]["permutation_p"], row["dev"]["top-5"]["permutation_p"]) >= 0.05  # "top-5 level"
    assert (f"{points(test['a_accuracy'])} against {points(test['b_accuracy'])} % test greedy pooled "
            f"({signed(test['difference'])} points, 95 % CI {signed(test['ci_low'])} … {signed(test['ci_high'])}, "
            f"p = {p_text(test['permutation_p'])}; dev greedy {signed(dev['difference'])}, "
            f"p = {p_text(dev['permutation_p'])}; top-5 level), Holm p {p_text(holm_test)} (test) and "
            f"{p_text(holm_dev)} (dev) within the row, the largest gain of any row") in readme
    assert max(rows, key=lambda r: rows[r]["test"]["greedy"]["difference"]) == name
    versus = seed_pooled(pairs_from_records(RUNS, name, seeds, "one-piece-targets"), reference="one-piece-targets")
    more, more_dev = versus["test"]["greedy"], versus["dev"]["greedy"]
    assert (f"and {points(more['difference'])} test points more than the two-epoch row at the same seeds "
            f"(p = {p_text(more['permutation_p'])}; dev {signed(more_dev['difference'])}, "
            f"p = {p_text(more_dev['permutation_p'])})") in readme
    fresh = seed_pooled(pairs_from_records(RUNS, name, fresh_seeds))
    assert min(fresh[split]["greedy"]["permutation_p"] for split in ("test", "dev")) >= 0.05  # not confirmed
    assert (f"But the fresh seeds {listed([str(s) for s in fresh_seeds])} alone, run to confirm it, give "
            f"{signed(fresh['test']['greedy']['difference'])} test points (p = "
            f"{p_text(fresh['test']['greedy']['permutation_p'])}; dev {signed(fresh['dev']['greedy']['difference'])}, "
            f"p = {p_text(fresh['dev']['greedy']['permutation_p'])})") in readme
    comparisons, family = table_wide_holm(rows)
    across, across_dev = family[name, "test", "greedy"], family[name, "dev", "greedy"]
    assert min(across, across_dev) >= 0.05
    assert (f"across the table's {comparisons} comparisons its test p is {p_text(across)} "
            f"(dev {p_text(across_dev)})") in readme


def test_the_two_piece_sentence_is_its_records(readme):
    """"Keeping the two-piece words too (...: three epochs on the a of b training verses whose last word is at most two
    pieces, c steps; seeds ... queued together ...), ... test words per seed ...; dev ...: pooled test greedy ...
    Against the three-epoch one-piece row at the same seeds ... The dev rule chose step ..."."""
    name, one_piece = "two-piece-targets-3-epochs", "one-piece-targets-3-epochs"
    row = pooled(name)
    seeds = row["seeds"]
    records = [read_record(RUNS / f"{name}-s{s}.json") for s in seeds]
    trained = [r["training"] for r in records]
    (sizes,) = {(t["examples"], t["sentences"], t["steps"]) for t in trained}  # the same data and budget each seed
    examples, sentences, steps = sizes
    assert examples > read_record(RUNS / f"{one_piece}-s0.json")["training"]["examples"]  # the one-piece verses and more
    assert (f"(`{name}`: three epochs on the {examples:,} of {sentences:,} training verses whose last word is at most "
            f"two pieces, {steps:,} steps; seeds {listed([str(s) for s in seeds])} queued together") in readme
    dev_gains = ", ".join(f"{g:+d}".replace("+0", "0") for g in gains(name, seeds, "dev"))
    assert row["per_seed"] == gains(name, seeds)
    assert f"test words per seed {per_seed_words(row)}; dev {dev_gains}" in readme
    test, dev, top5 = row["test"]["greedy"], row["dev"]["greedy"], row["test"]["top-5"]
    assert (f"test greedy {points(test['a_accuracy'])} against {points(test['b_accuracy'])} % "
            f"({signed(test['difference'])} points, 95 % CI {signed(test['ci_low'])} … {signed(test['ci_high'])}, "
            f"p = {p_text(test['permutation_p'])}), dev greedy {signed(dev['difference'])} "
            f"(p = {p_text(dev['permutation_p'])}), test top-5 {signed(top5['difference'])} "
            f"(p = {p_text(top5['permutation_p'])})") in readme
    versus = seed_pooled(pairs_from_records(RUNS, name, seeds, one_piece), reference=one_piece)
    v_test, v_dev = versus["test"]["greedy"], versus["dev"]["greedy"]
    assert (f"Against the three-epoch one-piece row at the same seeds it finds {signed(v_test['difference'])} test "
            f"points (p = {p_text(v_test['permutation_p'])}; dev {signed(v_dev['difference'])}, "
            f"p = {p_text(v_dev['permutation_p'])})") in readme
    chosen = listed([f"{t['chosen_step']:,}" for t in trained])
    assert f"The dev rule chose step {chosen} of {steps:,}" in readme

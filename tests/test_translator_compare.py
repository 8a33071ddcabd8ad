"""demo_build/translator_compare.py on the shipped he→en: the scores are the stage's scoring of the same outputs, and a
model compared with itself is not "better"."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch

from demo_build import data as dd
from demo_build.scoring import GEN_CANDIDATES, LENGTH_RATIO, score, translate
from tall_model.config import demo_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("translator-data")
    splits = dd.split_verses()
    dd.write_jsonl(folder / "dev.jsonl", [p for p in splits["dev"] if p.en][:3])
    no_english = [p for p in splits["test"] if not p.en][:2]  # Song of Songs: not scored (dd.scored_pairs)
    dd.write_jsonl(folder / "test.jsonl", [p for p in splits["test"] if p.en][:4] + no_english)
    return folder


def test_each_model_is_scored_as_the_stage_scores_and_tested_against_the_first(data, capsys):
    from transformers import MarianMTModel

    from demo_build.marian_tokenizer import load_marian_tokenizer
    from demo_build.translator_compare import main

    shipped = demo_dir() / "he-en"
    rows = main([f"base={shipped}", f"again={shipped}", "--data", str(data), "--direction", "he-en"])
    assert [(r["model"], r["split"], r["decoding"], r["n"]) for r in rows] == [
        (m, s, d, n) for m in ("base", "again") for s, n in (("dev", 3), ("test", 4)) for d in ("greedy", "greedy_nrep3")]
    test = dd.scored_pairs(data, "test")
    assert len(test) == 4 and len(dd.read_jsonl(data / "test.jsonl")) == 6
    model = MarianMTModel.from_pretrained(str(shipped), dtype=torch.float32)
    hyp = translate(model, load_marian_tokenizer(shipped), [p.he for p in test], GEN_CANDIDATES["greedy"],
                    LENGTH_RATIO["he-en"])
    expected = score(hyp, [p.en for p in test])
    base_test = next(r for r in rows if (r["model"], r["split"], r["decoding"]) == ("base", "test", "greedy"))
    assert (base_test["chrF"], base_test["BLEU"]) == (expected["chrF"], expected["BLEU"])
    again = [r for r in rows if r["model"] == "again"]
    assert all(r["p_vs_base"] == 1.0 and r["differ_from_base"] == 0 for r in again)  # every swap ties them
    assert all(r["loops_vs_base"] == [0, 0, 1.0] for r in again)
    assert all("p_vs_base" not in r for r in rows if r["model"] == "base")
    assert "| again | test | greedy | 4 |" in capsys.readouterr().out


def test_a_model_must_be_a_name_and_an_exported_folder(tmp_path):
    from demo_build.translator_compare import parse_model

    assert parse_model(f"x={demo_dir() / 'he-en'}") == ("x", demo_dir() / "he-en")
    for bad in (str(demo_dir() / "he-en"), f"={demo_dir() / 'he-en'}", f"x={tmp_path}"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=FOLDER"):
            parse_model(bad)


def test_the_randomization_test_finds_a_real_difference_and_not_a_one_verse_one():
    from demo_build.translator_compare import paired_p

    refs = [f"and the lord spake unto moses saying {i}" for i in range(40)]
    good = list(refs)
    bad = [f"the the the {i}" for i in range(40)]
    assert paired_p(refs, bad, good, trials=500) < 0.01
    once = list(bad)
    once[0] = refs[0]  # one verse better: swapping that verse alone gives the same |difference|
    assert paired_p(refs, bad, once, trials=500) > 0.3
    assert paired_p(refs, bad, bad, trials=500) == 1.0


def test_loops_are_counted_per_verse_and_paired_with_the_first_model(monkeypatch):
    import demo_build.translator_compare as tc
    from demo_build.scoring import in_loop

    assert in_loop("and the king , and the king , and the king") and not in_loop("and the king , and the king")
    loop, clean = "we we we we we", "we went home"
    hyps = {"base": [loop] * 6 + [clean] * 4, "fixed": [clean] * 5 + [loop] + [clean] * 4}
    monkeypatch.setattr(tc, "outputs", lambda folder, direction, splits: {("test", "greedy"): hyps[folder.name]})
    splits = {"test": (["src"] * 10, ["we went home"] * 10)}
    rows = tc.compare({"base": Path("base"), "fixed": Path("fixed")}, "he-en", splits)
    fixed = rows[1]
    assert (rows[0]["loops"], fixed["loops"]) == (0.6, 0.1)
    only_base, only_fixed, p = fixed["loops_vs_base"]
    assert (only_base, only_fixed) == (5, 0) and p == pytest.approx(2 / 2 ** 5)  # exact two-sided binomial
    assert fixed["differ_from_base"] == 5

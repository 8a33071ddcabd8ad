"""The shipped offline demo (checkpoints/demo/): it is the default of the CLI and the app, loads with no network,
and predicts Hebrew words for held-out (test-book) prefixes.

These tests do not skip: the demo is part of the product, so a clone without it is broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from demo_build import data as dd  # noqa: E402
from tall_model.config import demo_dir  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HEBREW_WORD = "".join(chr(c) for c in range(0x05D0, 0x05EB))


def _examples() -> list[dict]:
    return [json.loads(line) for line in (demo_dir() / "test_examples.jsonl").open(encoding="utf-8")]


@pytest.fixture(scope="module")
def demo():
    from tall_model import load

    started = time.perf_counter()
    model = load("demo")
    return model, time.perf_counter() - started


def test_demo_loads_offline_with_its_trained_adapters(demo):
    model, seconds = demo
    assert model.source == "adapters from checkpoints/demo/tall on preset demo"
    assert model.config.preset == "demo" and not model.training
    # the backbones are stored in fp16 but load in fp32, the adapters' dtype (transformers 5 would keep fp16)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    # "a few seconds": measured 1.6 s on 2 cores after imports; the bound only catches a hang (e.g. a hub lookup)
    assert seconds < 30, seconds


def test_demo_predicts_hebrew_words_for_test_book_prefixes(demo):
    from tall_model.predict import predict

    model = demo[0]
    examples = _examples()
    assert {e["id"].split(".")[0] for e in examples} <= set(dd.TEST_BOOKS)
    for pred in predict(model, [e["prefix"] for e in examples[:3]]):
        assert pred.word and all(ch in HEBREW_WORD for ch in pred.word), pred.word
        english = pred.translation.split()
        assert english and sum(w.isascii() for w in english) / len(english) >= 0.9, pred.translation


def test_cli_defaults_to_the_demo():
    prefix = _examples()[0]["prefix"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "tall_model", "--json", prefix], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "checkpoints/demo/tall" in done.stderr
    record = json.loads(done.stdout.splitlines()[0])  # --json: one object per prefix and line
    assert record["prefix"] == prefix and record["translation"]
    assert all(ch in HEBREW_WORD for ch in record["word"]) and record["word"]


def test_cli_word_choice_best_candidate_takes_the_likeliest_candidate():
    prefix = _examples()[0]["prefix"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "tall_model", "--json", "--word-choice", "best_candidate", prefix],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[0])
    best_word, _ = max(record["candidates"], key=lambda c: c[1])  # [word, probability] pairs
    assert record["word"] == best_word


def test_cli_candidate_pool_is_passed_on_and_validated(capsys):
    from tall_model.__main__ import main  # in this process: three CLI processes cost a minute of loading

    prefixes = [e["prefix"] for e in _examples()]
    threads = ["--threads", str(torch.get_num_threads())]  # main sets torch's threads: keep this process's
    runs = {}
    for pool in ("0", "1", "40"):
        code = main(["--json", "--candidate-pool", pool, *threads, *prefixes])
        runs[pool] = (code, *capsys.readouterr())
    assert runs["0"][0] == 2 and "candidate_pool" in runs["0"][2]
    assert runs["1"][0] == runs["40"][0] == 0
    narrow, wide = ([json.loads(line)["candidates"] for line in runs[p][1].splitlines()] for p in ("1", "40"))
    assert len(narrow) == len(wide) == len(prefixes) and all(len(c) == 5 for c in narrow + wide)
    for few, many in zip(narrow, wide):  # rank by rank at least as likely: more first pieces searched
        assert all(m[1] >= f[1] - 1e-6 for f, m in zip(few, many))
    assert narrow != wide


def test_app_uses_the_demo_without_fallback():
    from tall_app.models import choose_preset, demo_available

    assert demo_available()
    preset, notice = choose_preset("demo")
    assert preset == "demo" and "tiny" not in (notice or "")


def test_shipped_evaluation_covers_every_test_verse():
    table = json.loads((demo_dir() / "eval" / "metrics.json").read_text())
    n_test = len(dd.split_verses()["test"])
    rows = {r["approach"]: r for r in table["rows"]}
    assert set(rows) == {"tall", "direct", "naive", "soft-prompt", "fine-tuned"}
    # one example per distinct test verse (the reader drops one verbatim repeat of the 732)
    assert all(r["examples"] >= 0.95 * n_test and r["seeds"] == 5 for r in rows.values())


def test_the_shipped_prior_belongs_to_the_shipped_adapters_and_carries_the_chosen_weight(demo):
    from tall_model import Decoding
    from tall_model.predict import predict
    from tall_model.prior import demo_prior, log_prior

    model = demo[0]
    logp, weight = log_prior(model, demo_prior())
    assert weight == json.loads((demo_dir() / "metrics.json").read_text())["prior"]["weight"]
    assert logp.exp().sum().item() == pytest.approx(1.0, rel=1e-3)
    prefixes = [e["prefix"] for e in _examples()[:8]]
    free = predict(model, prefixes, output_attentions=False)
    corrected = predict(model, prefixes, output_attentions=False, decoding=Decoding(prior=str(demo_prior())))
    assert [r.candidates for r in corrected] == [r.candidates for r in free]  # the model's own ranking
    assert any(c.word != f.word for c, f in zip(corrected, free))
    assert all(c.word and all(ch in HEBREW_WORD for ch in c.word) for c in corrected)


def test_the_shipped_ngram_carries_the_fusion_setting_chosen_on_dev(demo):
    from tall_model.predict import predict
    from tall_model.word_ngram import NGRAM_FILE, load_ngram

    fusion = json.loads((demo_dir() / "metrics.json").read_text())["fusion"]
    ngram = load_ngram(demo_dir() / NGRAM_FILE)
    assert (ngram.fusion_weight, ngram.fusion_discount) == (fusion["weight"], fusion["discount"])
    assert {"weight": fusion["weight"], "discount": fusion["discount"]}.items() <= fusion["dev_chosen"].items()
    model = demo[0]
    prefixes = [e["prefix"] for e in _examples()[:8]]
    free = predict(model, prefixes, output_attentions=False)
    fused = predict(model, prefixes, output_attentions=False,
                    decoding=model.config.decoding.replace(ngram=str(demo_dir() / NGRAM_FILE)))
    assert all(r.word == r.candidates[0].word for r in fused)
    assert any([c.word for c in r.candidates] != [c.word for c in f.candidates] for r, f in zip(fused, free))
    assert all(r.word and all(ch in HEBREW_WORD for ch in r.word) for r in fused)


def test_the_shipped_ngram_counts_training_verses_only():
    from baselines.word_ngram import NGRAM_FILE, load_ngram

    path = demo_dir() / NGRAM_FILE
    shipped = json.loads((demo_dir() / "metrics.json").read_text())["word_ngram"]
    ngram = load_ngram(path)
    assert ngram.order == shipped["order"] and ngram.sentences == shipped["sentences"]
    counted = set(json.loads(path.read_text(encoding="utf-8"))["sentences"])
    splits = dd.split_verses()
    assert counted <= {v.he for v in splits["train"]}  # no test-book (or dev-book) verse is counted
    assert not counted & {v.he for v in splits["test"]}

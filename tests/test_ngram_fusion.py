"""benchmarks/ngram_fusion.py: the pooled candidates, the weighed ranking, the 3 % rule and TALL's scores."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.tall import tall_gold_log_probs
from baselines.word_ngram import WordNgram
from benchmarks.ngram_fusion import choose, pooled_candidates, ranking, read_out, score

NGRAM = WordNgram(["א ב ג", "א ב ד", "א ב ג", "ה ו ז"], order=3)
# per verse: (word, log P_TALL, log S_ngram, log P̄ of the first piece)
HAND = [[("x", -1.0, -3.0, -1.0), ("gold", -2.0, -0.5, -4.0)],
        [("y", -1.0, -2.0, -0.5), ("gold2", -1.5, -2.0, -3.0), ("z", -9.0, -0.1, -1.0)]]


def test_the_pool_is_tall_s_words_then_the_ngram_s_each_once() -> None:
    records = [{"prefix": "א ב", "candidates": ["ד", "ק.", ""]}, {"prefix": "ה ו", "candidates": []}]
    assert pooled_candidates(records, NGRAM, 2) == [["ד", "ק", "ג"], ["ז", "א"]]


def test_the_weights_move_the_answer_from_tall_to_the_ngram() -> None:
    assert [ranking(w, 0.0)[0] for w in HAND] == ["x", "y"]  # TALL alone
    assert [ranking(w, 1.0)[0] for w in HAND] == ["gold", "y"]  # −1 − 3 < −2 − 0.5
    assert [ranking(w, math.inf)[0] for w in HAND] == ["gold", "z"]  # the n-gram's order
    assert ranking(HAND[1], 0.0, prior_weight=1.0)[0] == "gold2"  # −1.5 + 3 beats −1 + 0.5
    assert ranking([("a", -1.0, -2.0, 0.0), ("b", -3.0, -2.0, 0.0)], math.inf) == ["a", "b"]  # TALL breaks ties
    common = [("common", -1.0, -1.0, 0.0, -2.0), ("rare", -1.5, -1.0, 0.0, -6.0)]  # 5th: log P_train
    assert ranking(common, 1.0) == ["common", "rare"]
    assert ranking(common, 1.0, discount=0.5) == ["rare", "common"]  # −2 + 1 < −2.5 + 3


def test_the_rule_takes_the_most_hits_within_the_top_word_ceiling() -> None:
    golds = ["gold", "gold2"]
    rows = [read_out(HAND, golds, lam, w) for lam, w in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]]
    assert [sum(r["hits"]) for r in rows] == [0, 1, 2, 2] and all(r["mu"] == 0.0 for r in rows)  # the prior alone: −2 + 4 beats −1 + 1
    assert rows[3]["greedy"] == ["gold", "gold2"] and rows[3]["top_share"] == 0.5
    assert all(all(r["top5"]) for r in rows)  # every pool here has at most five words
    assert choose(rows, None) is rows[2]  # a tie on greedy and top-5 hits: the first of the best
    assert choose(rows[:2], None) is rows[1]
    capped = [dict(rows[0], top_share=0.02), dict(rows[3], top_share=0.5)]
    assert choose(capped, 0.03) is capped[0]
    assert choose([dict(rows[3], top_share=0.5)], 0.03)["lambda"] == 1.0  # nothing within: all rows compete


def test_tall_s_feature_is_its_whole_word_score_and_the_prior_s_is_the_first_piece(tiny_model) -> None:
    records = [{"prefix": "בראשית ברא אלהים את", "translation": "In the beginning", "candidates": ["השמים"]}]
    prior = torch.linspace(-5.0, -1.0, tiny_model.hr_lr.lm_head.weight.shape[0])
    (scored,) = score(tiny_model, NGRAM, prior, records, [["השמים", "ג"]])
    expected = tall_gold_log_probs(tiny_model, [records[0]["prefix"]] * 2, ["השמים", "ג"], ["In the beginning"] * 2)
    assert [s[0] for s in scored] == ["השמים", "ג"]
    assert [s[1] for s in scored] == pytest.approx(expected, abs=1e-4)
    assert scored[1][2] == pytest.approx(NGRAM.backoff_log_score(records[0]["prefix"], "ג"))
    first = tiny_model.backbones.hr_lr_tokenizer(text_target="השמים")["input_ids"][0]
    assert scored[0][3] == pytest.approx(float(prior[first]))

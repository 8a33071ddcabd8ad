"""benchmarks/ngram_rerank.py on the tiny model: TALL's word scores are the training loss's, and K = 1 is the n-gram."""

from __future__ import annotations

import pytest
import torch

from baselines.word_ngram import WordNgram
from benchmarks.ngram_rerank import choose, score_candidates, table, word_log_probs


def test_a_word_score_is_minus_the_training_loss_summed_over_its_pieces(tiny_model):
    prefixes, english = ["בראשית ברא אלהים את", "ויאמר אלהים"], ["In the beginning", "And God said"]
    words = ["השמים", "יהי"]
    together = word_log_probs(tiny_model, prefixes, english, words)
    for i in range(2):
        batch = tiny_model.make_batch(prefixes[i:i + 1], english[i:i + 1], words[i:i + 1])
        with torch.no_grad():
            loss = tiny_model(batch).loss  # mean over the word's pieces and the verse's end
        assert together[i] == pytest.approx(-float(loss) * int(batch.loss_mask.sum()), abs=1e-3)  # padding-free


def test_k_one_is_the_ngram_and_a_larger_k_takes_tall_s_best(tiny_model):
    ngram = WordNgram(["א ב ג", "א ב ד", "א ב ג", "ה ו ז"], order=3)
    scored = score_candidates(tiny_model, ngram, ["א ב", "ה ו"], ["a b", "e f"], k=2)
    assert [w for w, _ in scored[0]] == ["ג", "ד"] and [w for w, _ in scored[1]][0] == "ז"
    assert choose(scored, 1) == ["ג", "ז"]
    hand = [[("x", -5.0), ("gold", -1.0)], [("gold2", -2.0), ("y", -1.0)], []]
    assert choose(hand, 2) == ["gold", "y", ""]
    rows = table(hand, ["gold", "gold2", "z"], ks=(1, 2))
    assert (rows[0]["hits"], rows[1]["hits"]) == (1, 1)
    assert (rows[1]["only_this"], rows[1]["only_ngram"]) == (1, 1) and rows[1]["mcnemar_p"] == 1.0

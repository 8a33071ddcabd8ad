"""The word n-gram reference (baselines/word_ngram.py): counts, backoff ranking, seeded sampling, bad input."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from baselines.word_ngram import (
    MAX_ORDER,
    NGRAM_FILE,
    NgramError,
    WordNgram,
    WordNgramApproach,
    load_ngram,
    save_ngram,
)
from tall_model.decoding import GREEDY

CORPUS = [
    "ויאמר משה אל העם.",  # punctuation is stripped as exact match strips it
    "ויאמר משה אל אהרן",
    "ויאמר משה אל העם",
    "וידבר יהוה אל משה",
    "וידבר יהוה אל משה",
    "וידבר יהוה אל משה",
]


def test_the_longest_seen_context_ranks_first_and_shorter_ones_fill_in() -> None:
    ngram = WordNgram(CORPUS, order=3)
    assert ngram.ranked("ויאמר משה אל", 5)[:2] == ["העם", "אהרן"]  # after "משה אל": העם 2, אהרן 1
    assert ngram.ranked("וידבר יהוה אל", 1) == ["משה"]  # after "יהוה אל" only משה
    # "אל" alone was followed by משה 3, העם 2, אהרן 1: the bigram fills after the trigram's two words
    assert ngram.ranked("ויאמר משה אל", 3) == ["העם", "אהרן", "משה"]
    # an unseen last word backs off to the unigram counts (משה and אל 6 times each, then ויאמר and וידבר 3)
    assert set(ngram.ranked("שלום", 2)) == {"משה", "אל"}
    bigram = WordNgram(CORPUS, order=2)  # sees only "אל": משה wins there
    assert bigram.ranked("ויאמר משה אל", 1) == ["משה"]


def test_the_backoff_score_is_the_relative_count_times_alpha_per_dropped_word() -> None:
    ngram = WordNgram(CORPUS, order=3)
    # after "משה אל": העם 2 of 3
    assert ngram.backoff_log_score("ויאמר משה אל", "העם") == pytest.approx(math.log(2 / 3))
    # משה never follows "משה אל"; after "אל" it is 3 of 6: one word dropped
    assert ngram.backoff_log_score("ויאמר משה אל", "משה") == pytest.approx(math.log(0.4) + math.log(3 / 6))
    # an unseen context drops to the unigram: יהוה is 3 of 24 words, two words dropped
    assert ngram.backoff_log_score("שלום לך", "יהוה") == pytest.approx(2 * math.log(0.4) + math.log(3 / 24))
    # a word never counted: one count in the corpus plus one, with every context word dropped
    assert ngram.backoff_log_score("ויאמר משה אל", "שלום") == pytest.approx(2 * math.log(0.4) - math.log(25))
    assert ngram.backoff_log_score("ויאמר משה אל", "העם.") == ngram.backoff_log_score("ויאמר משה אל", "העם")
    # the unigram frequency, add-one: יהוה 3 of 24 words, a word never counted 1 of 25
    assert ngram.log_frequency("יהוה") == pytest.approx(math.log(4 / 25))
    assert ngram.log_frequency("שלום") == pytest.approx(math.log(1 / 25))
    # the score orders words as the ranking does
    ranked = ngram.ranked("ויאמר משה אל", 3)
    scores = [ngram.backoff_log_score("ויאמר משה אל", w) for w in ranked]
    assert scores == sorted(scores, reverse=True)


def test_the_approach_predicts_ranks_and_samples_reproducibly() -> None:
    approach = WordNgramApproach(WordNgram(CORPUS, order=3), "corpus.txt")
    (greedy,) = approach.predict(["ויאמר משה אל"], num_candidates=3)
    assert greedy.word == "העם" and greedy.candidates == ["העם", "אהרן", "משה"]
    assert approach.predict(["ויאמר משה אל"])[0].candidates is None
    prefixes = ["ויאמר משה אל"] * 200
    drawn = [o.word for o in approach.predict(prefixes, decoding=GREEDY.sampled(0).replace(temperature=1.0))]
    assert drawn == [o.word for o in approach.predict(prefixes, decoding=GREEDY.sampled(0).replace(temperature=1.0))]
    counts = Counter(drawn)
    assert set(counts) == {"העם", "אהרן"}  # only what followed the longest context
    assert 100 < counts["העם"] < 170  # 2 : 1 at temperature 1
    other_seed = [o.word for o in approach.predict(prefixes, decoding=GREEDY.sampled(1).replace(temperature=1.0))]
    assert other_seed != drawn
    assert approach.describe() == {"name": "word-ngram", "order": 3, "corpus": "corpus.txt", "sentences": 6}


def test_bad_order_and_empty_corpus_are_refused() -> None:
    with pytest.raises(NgramError, match="order must be"):
        WordNgram(CORPUS, order=0)
    with pytest.raises(NgramError, match="order must be"):
        WordNgram(CORPUS, order=MAX_ORDER + 1)
    with pytest.raises(NgramError, match="no words"):
        WordNgram([" . ", ""], order=2)


def test_a_saved_ngram_loads_with_its_order_and_bad_files_are_refused(tmp_path) -> None:
    path = save_ngram(tmp_path / NGRAM_FILE, CORPUS, 2, "six verses")
    loaded = load_ngram(path)
    assert loaded.order == 2 and loaded.sentences == 6
    assert loaded.ranked("ויאמר משה אל", 3) == WordNgram(CORPUS, 2).ranked("ויאמר משה אל", 3)
    with pytest.raises(NgramError, match="order must be"):
        save_ngram(tmp_path / "bad.json", CORPUS, 0, "x")
    assert not (tmp_path / "bad.json").exists()  # refused before writing
    for name, content in (("garbage.json", b"\xff\xfe not json"), ("list.json", b"[1, 2]"),
                          ("other.json", json.dumps({"format": "something-else", "sentences": []}).encode()),
                          ("order.json", json.dumps({"format": "tall-word-ngram", "order": "4",
                                                     "sentences": CORPUS}).encode())):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(NgramError, match=name):
            load_ngram(tmp_path / name)
    with pytest.raises(NgramError, match="missing.json"):
        load_ngram(tmp_path / "missing.json")


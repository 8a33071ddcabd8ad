"""Decoding.word_list: TALL predicts only listed words (greedy, sampled, candidates, cached and uncached), and a
bad list is a clear error."""

from __future__ import annotations

import pytest
import torch

from tall_model import Decoding, load
from tall_model.predict import predict, predict_uncached
from tall_model.word_list import WordListError, WordTrie, read_word_list

from conftest import HEBREW_PREFIX

PREFIXES = [HEBREW_PREFIX, "ויאמר אלהים יהי", "והארץ היתה תהו"]


@pytest.fixture(scope="module")
def listed(tmp_path_factory, verses):
    """Eight words of the training verses, with a duplicate, a blank line and surrounding spaces."""
    words = list(dict.fromkeys(w for v in verses for w in v.split() if len(w) > 2))[:8]
    path = tmp_path_factory.mktemp("words") / "words.txt"
    path.write_text("\n".join([f"  {words[0]} ", "", *words, words[1]]) + "\n", encoding="utf-8")
    return path, words


def test_the_file_reads_as_distinct_words_in_order(listed):
    path, words = listed
    assert read_word_list(path) == words


@pytest.mark.parametrize("seed", [None, 0, 1, 2, 3])
def test_every_prediction_and_candidate_is_a_listed_word(tiny_model, listed, seed):
    path, words = listed
    decoding = Decoding(word_list=str(path), temperature=1.5, top_k=0, top_p=1.0)
    decoding = decoding if seed is None else decoding.sampled(seed)
    for r in predict(tiny_model, PREFIXES, decoding=decoding, output_attentions=False):
        assert r.word in words
        assert r.candidates and all(c.word in words for c in r.candidates)
        assert len({c.word for c in r.candidates}) == len(r.candidates)


def test_without_a_list_the_tiny_model_makes_up_words(tiny_model, listed):
    """The restriction is not vacuous: free decoding says words outside the list."""
    _, words = listed
    free = predict(tiny_model, PREFIXES, output_attentions=False)
    assert any(c.word not in words for r in free for c in r.candidates)


def test_a_single_word_list_forces_that_word(tiny_model, tmp_path, listed):
    _, words = listed
    one = tmp_path / "one.txt"
    one.write_text(words[3] + "\n", encoding="utf-8")
    for decoding in (Decoding(word_list=str(one)), Decoding(word_list=str(one)).sampled(5)):
        r = predict(tiny_model, HEBREW_PREFIX, decoding=decoding, output_attentions=False)
        assert r.word == words[3] and [c.word for c in r.candidates] == [words[3]]
        assert 0 < r.word_prob <= 1  # the model's own probabilities, not renormalised


def test_cached_and_uncached_paths_agree_under_a_list(tiny_model, listed):
    path, _ = listed
    decoding = Decoding(word_list=str(path))
    for prefix in PREFIXES:
        fast = predict(tiny_model, prefix, decoding=decoding, output_attentions=False)
        slow = predict_uncached(tiny_model, prefix, decoding=decoding)
        assert fast.word == slow.word


def test_trie_paths_ends_and_length_limit():
    trie = WordTrie([[5, 6, 7], [5, 6], [9], [5, 6]], max_pieces=2)  # [5, 6, 7] cannot finish in 2 pieces
    assert (trie.words, trie.too_long) == (2, 1)
    word_start = torch.zeros(12, dtype=torch.bool)
    word_start[[5, 9, 10]] = True
    end_of_word = word_start.clone()
    end_of_word[2] = True  # </s>
    assert trie.first_pieces(word_start).nonzero().flatten().tolist() == [5, 9]
    after_5 = WordTrie.step(trie.root, 5)
    assert not after_5.ends and after_5.allowed(end_of_word).nonzero().flatten().tolist() == [6]
    after_56 = WordTrie.step(after_5, 6)
    assert after_56.ends and not after_56.children
    assert after_56.allowed(end_of_word).tolist() == end_of_word.tolist()  # only the word's end may follow
    assert WordTrie.step(after_5, 7) is None


def test_bad_lists_are_clear_errors(tiny_model, tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(WordListError, match="not found"):
        predict(tiny_model, HEBREW_PREFIX, decoding=Decoding(word_list=str(missing)))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(WordListError, match="not UTF-8"):
        read_word_list(latin1)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(WordListError, match="no words"):
        read_word_list(blank)
    with pytest.raises(ValueError, match="word_list must be a file name"):
        Decoding(word_list="  ")


def test_a_subword_model_refuses_a_word_list(tiny_config, backbones, listed):
    path, _ = listed
    subword = load(tiny_config.changed({"framing": "subword", "loss": "last"}), backbones=backbones)
    with pytest.raises(ValueError, match="framing 'subword'"):
        predict(subword, HEBREW_PREFIX, decoding=Decoding(word_list=str(path)))

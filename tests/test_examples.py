"""Training examples: word and subword framing, position sampling, leak-free dev split."""

from __future__ import annotations

import pytest

from tall_data.examples import Example, make_examples, split_examples, word_core

SENTENCES = [
    "הילד הלך לבית הספר היום.",
    'הוא אמר "שלום" לכולם',
    "מזג האוויר נאה מאוד בחוץ — ממש!",
]


class FakePieceTokenizer:
    """SentencePiece-like: each word becomes 3-character pieces, the first marked with '▁'."""

    def tokenize(self, text: str) -> list[str]:
        pieces = []
        for word in text.split():
            chunks = [word[i : i + 3] for i in range(0, len(word), 3)]
            pieces += ["▁" + chunks[0], *chunks[1:]]
        return pieces

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace("▁", " ").strip()


def test_word_framing_last_word() -> None:
    examples = make_examples(SENTENCES)
    assert examples[0] == Example("הילד הלך לבית הספר", "היום", SENTENCES[0], 4)
    assert examples[1] == Example('הוא אמר "שלום"', "לכולם", SENTENCES[1], 3)
    # the last word with letters is the target; "—" alone is never a target
    assert (examples[2].prefix, examples[2].target, examples[2].position) == ("מזג האוויר נאה מאוד בחוץ —", "ממש", 6)
    assert len(examples) == len(SENTENCES)


def test_word_core_strips_punctuation_but_keeps_geresh() -> None:
    assert word_core('"שלום",') == "שלום"
    assert word_core("הביתה׃") == "הביתה"
    assert word_core("פרופ'") == "פרופ'" and word_core("צ׳") == "צ׳"
    assert word_core('צה"ל.') == 'צה"ל'
    assert word_core("—") == ""


def test_positions_all_count_and_min_prefix() -> None:
    sentence = "אחת שתיים שלוש ארבע חמש"
    examples = make_examples([sentence], positions="all")
    assert [ex.position for ex in examples] == [1, 2, 3, 4]
    assert [ex.target for ex in examples] == ["שתיים", "שלוש", "ארבע", "חמש"]
    assert examples[1].prefix == "אחת שתיים"
    assert len(make_examples([sentence], positions="all", min_prefix_words=3)) == 2
    assert make_examples(["מילה"], positions="all") == []  # no prefix possible


def test_sampled_positions_are_seeded() -> None:
    sentences = [" ".join(f"מילה{i}" for i in range(n)) for n in (10, 12, 3)]
    first = make_examples(sentences, positions=2, seed=7)
    assert first == make_examples(sentences, positions=2, seed=7)
    assert [sum(ex.sentence == s for ex in first) for s in sentences] == [2, 2, 2]
    others = [make_examples(sentences, positions=2, seed=s) for s in range(5)]
    assert any(o != first for o in others)
    assert len(make_examples(sentences, positions=50)) == 9 + 11 + 2  # capped at the valid positions


def test_subword_framing_last_piece() -> None:
    tok = FakePieceTokenizer()
    (ex,) = make_examples(["הילד הלך לבית הספר"], framing="subword", piece_tokenizer=tok)
    # pieces: ▁היל ד ▁הלך ▁לבי ת ▁הספ ר → target "ר", prefix decodes the rest
    assert (ex.prefix, ex.target, ex.position) == ("הילד הלך לבית הספ", "ר", 6)
    (ex,) = make_examples(["אני כאן עם אבא"], framing="subword", piece_tokenizer=tok)
    assert (ex.prefix, ex.target) == ("אני כאן עם", "אבא")  # the ▁ marker is dropped


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="needs piece_tokenizer"):
        make_examples(SENTENCES, framing="subword")
    with pytest.raises(ValueError, match="only positions='last'"):
        make_examples(SENTENCES, framing="subword", positions="all", piece_tokenizer=FakePieceTokenizer())
    with pytest.raises(ValueError, match="framing must be"):
        make_examples(SENTENCES, framing="char")  # type: ignore[arg-type]
    for bad in (0, -1, True, "first"):
        with pytest.raises(ValueError, match="positions must be"):
            make_examples(SENTENCES, positions=bad)  # type: ignore[arg-type]


def test_dev_split_is_by_sentence_and_seeded() -> None:
    sentences = [f"משפט מספר {i} כאן" for i in range(20)]
    examples = make_examples(sentences, positions="all")
    train, dev = split_examples(examples, 0.25, seed=3)
    train_s, dev_s = {ex.sentence for ex in train}, {ex.sentence for ex in dev}
    assert not train_s & dev_s
    assert len(dev_s) == 5 and len(train) + len(dev) == len(examples)
    assert (train, dev) == split_examples(examples, 0.25, seed=3)
    assert split_examples(examples, 0.25, seed=4)[1] != dev
    assert split_examples(examples, 0.0, seed=0) == (examples, [])
    assert len({ex.sentence for ex in split_examples(examples[:6], 0.01, seed=0)[1]}) == 1  # at least one
    with pytest.raises(ValueError, match="dev_fraction"):
        split_examples(examples, 1.0, seed=0)


def test_short_target_sentences_keep_verses_whose_last_word_core_is_short() -> None:
    """The last word is measured as the word framing's target (punctuation stripped); a one-word sentence has no
    example and is dropped."""
    from tall_data.examples import short_target_sentences

    tok = FakePieceTokenizer()
    sentences = ["אני הולך הביתה.", "הוא אמר לא!", "שלום", "ילד ילדה ילדים"]
    # targets: הביתה (5 letters: 2 pieces), לא (1), ילדים (2); "שלום" alone has no prefix
    assert short_target_sentences(sentences, tok, 1) == ["הוא אמר לא!"]
    assert short_target_sentences(sentences, tok, 2) == ["אני הולך הביתה.", "הוא אמר לא!", "ילד ילדה ילדים"]

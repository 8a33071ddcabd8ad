"""benchmarks/decoder_ceiling.py on the tiny model: its memories are the en→he model's own encoder path, and its
report pairs each memory with TALL."""

from __future__ import annotations

import json

import torch

from benchmarks.decoder_ceiling import TALL, ceiling, english_memory, read_verses, report, word_from_english
from tall_model.batching import target_pieces
from tall_model.predict import WordDecoder, predict
from tall_model.sampling import piece_masks


def test_an_english_memory_decodes_as_the_en_he_model_itself_would(tiny_model):
    english, prefix = "And God said, Let there be light", "ויאמר אלהים"
    tok = tiny_model.backbones.hr_lr_tokenizer
    ids = [tiny_model.hr_lr.config.decoder_start_token_id, *target_pieces(tiny_model, prefix)]
    with torch.no_grad():
        own = tiny_model.hr_lr(**tok(english, return_tensors="pt"), decoder_input_ids=torch.tensor([ids])).logits
        other = tiny_model.hr_lr(**tok("Nothing like it", return_tensors="pt"), decoder_input_ids=torch.tensor([ids]))
    decoder = WordDecoder(tiny_model, english_memory(tiny_model, english), 0, ids[1:], False)
    assert torch.allclose(decoder.logits[0], own[0, -1], atol=1e-4)
    assert not torch.allclose(decoder.logits[0], other.logits[0, -1], atol=1e-4)  # the memory matters
    masks = piece_masks(tok, tiny_model.hr_lr.lm_head.weight.shape[0], "cpu")
    first = own[0, -1].masked_fill(~masks[0], float("-inf")).argmax()  # the likeliest word-start piece
    word = word_from_english(tiny_model, english, prefix, masks)
    assert word and word.startswith(tok.decode([int(first)], skip_special_tokens=True).strip())


def test_the_ceiling_pairs_every_memory_with_tall(tiny_model, tmp_path):
    from tall_model.tiny import bible_lines

    hebrew, english = bible_lines(6)
    data = tmp_path / "verses.jsonl"
    rows = [{"he": h, "en": e} for h, e in zip(hebrew, english)] + [{"he": "שלום", "en": "peace"},
                                                                      {"he": "אין אנגלית כאן", "en": ""}]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    verses = read_verses(str(data))
    assert len(verses) == 6  # one word, or no English: left out
    translations = ["In the beginning"] * 6
    words = ceiling(tiny_model, verses, translations)
    assert set(words) == {TALL, "full-verse English", "prefix English", "nothing"}
    assert words[TALL] == [p.word for p in predict(tiny_model, [v[0] for v in verses], translations=translations,
                                                   output_attentions=False, num_candidates=0)]
    golds = [v[1] for v in verses]
    table = report({TALL: golds[:3] + ["x"] * 3, "other": ["x"] * 3 + golds[3:]}, golds)
    assert table[0] == {"memory": TALL, "n": 6, "hits": 3, "accuracy": 0.5, "top_word": "x", "top_share": 0.5}
    assert (table[1]["only_this"], table[1]["only_tall"], table[1]["hits"]) == (3, 3, 3)
    assert table[1]["mcnemar_p"] == 1.0

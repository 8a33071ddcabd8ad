"""Shallow fusion with a word n-gram (Decoding.ngram / ngram_weight): words scored as candidates, the fused ranking,
validation and the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tall_model import Decoding
from tall_model.__main__ import main as cli
from tall_model.batching import target_pieces
from tall_model.candidates import CandidateWord, scored_words
from tall_model.fusion import fused
from tall_model.predict import WordDecoder, _encode, fit_prefix, predict
from tall_model.sampling import piece_masks
from tall_model.word_ngram import NgramError, WordNgram, cached_ngram, load_ngram, save_ngram

ENGLISH = "In the beginning"
PREFIX = "ויאמר אלהים יהי"
BEST = Decoding(word_choice="best_candidate")


@torch.no_grad()
def _decoder(model, prefix: str):
    used = fit_prefix(model, prefix)[0]
    encoding, _, _ = _encode(model, [used], [ENGLISH])
    decoder = WordDecoder(model, encoding, 0, target_pieces(model, used), False)
    return decoder, piece_masks(model.backbones.hr_lr_tokenizer, decoder.logits.shape[-1], model.device)


def test_scored_words_match_the_search_s_own_probabilities(tiny_model):
    """A word the search found, scored again as a given word, has the search's probability; words that cannot be
    decoded within max_pieces are left out."""
    found = predict(tiny_model, PREFIX, translations=ENGLISH, output_attentions=False, decoding=BEST,
                    num_candidates=5).candidates
    decoder, masks = _decoder(tiny_model, PREFIX)
    tok = tiny_model.backbones.hr_lr_tokenizer
    again = scored_words(decoder, masks, [c.word for c in found], 8, tok)
    assert [c.word for c in again] == [c.word for c in found]
    assert [c.prob for c in again] == pytest.approx([c.prob for c in found], rel=1e-3)
    assert [c.ids for c in again] == [c.ids for c in found]
    long_word = "אבגדהוזחטיכלמנסעפצקרשת"
    assert len(target_pieces(tiny_model, long_word)) > 2
    assert [c.word for c in scored_words(decoder, masks, [found[0].word, long_word], 2, tok)] == [found[0].word]
    assert decoder.logits is not None and torch.equal(decoder.logits, _decoder(tiny_model, PREFIX)[0].logits)


def test_the_fused_ranking_adds_the_weighted_ngram_score_and_subtracts_the_prior():
    ngram = WordNgram(["א ב ג", "א ב ג", "א ב ד"], order=3)
    words = [CandidateWord("ד", 0.5, ["▁ד"], [3]), CandidateWord("ג", 0.2, ["▁ג"], [4])]
    assert [c.word for c in fused(words, ngram, "א ב", 0.0, None)] == ["ד", "ג"]
    # λ = 1: log .5 + log 1/3 = −1.79 still beats log .2 + log 2/3 = −2.01; λ = 2: −2.89 against −2.42
    assert [c.word for c in fused(words, ngram, "א ב", 1.0, None)] == ["ד", "ג"]
    assert [c.word for c in fused(words, ngram, "א ב", 2.0, None)] == ["ג", "ד"]
    bias = torch.zeros(8)
    bias[4] = math.log(10)  # the prior takes log 10 off ג
    assert [c.word for c in fused(words, ngram, "א ב", 2.0, bias)] == ["ד", "ג"]
    # a discount of frequent words: ג is 2 of 9 counted words, ד 1 of 9 (add-one: 3 / 10 and 2 / 10); at λ = 2,
    # μ = 2: −2.89 − 2 log .2 = 0.33 against −2.42 − 2 log .3 = −0.01
    assert [c.word for c in fused(words, ngram, "א ב", 2.0, None, discount=2.0)] == ["ד", "ג"]


def _ngram_file(tmp_path, word: str, prefix: str = PREFIX):
    """An n-gram that has seen `word` after the prefix's last words many times."""
    return str(save_ngram(tmp_path / "ngram.json", [f"{prefix} {word}"] * 20 + ["אור טוב"], 3, "test"))


def test_a_heavy_ngram_weight_brings_its_word_in_and_first(tiny_model, tmp_path):
    free = predict(tiny_model, PREFIX, translations=ENGLISH, decoding=BEST, output_attentions=False,
                   num_candidates=10)
    word = next(w for w in ["מים", "רקיע", "תהום", "שמים", "אור", "יבשה"] if w not in {c.word for c in free.candidates})
    fusion = BEST.replace(ngram=_ngram_file(tmp_path, word), ngram_weight=16.0)
    r = predict(tiny_model, PREFIX, translations=ENGLISH, decoding=fusion, num_candidates=5)
    assert r.word == word and r.candidates[0].word == word
    assert any("weighed with the word n-gram (λ = 16)" in n for n in r.notes)
    assert [p.token_id for p in r.pieces] == r.candidates[0].ids  # its pieces stepped, attention rows recorded
    assert r.decoder_attention.weights.shape[2] == len(r.pieces)
    decoder, masks = _decoder(tiny_model, PREFIX)
    (alone,) = scored_words(decoder, masks, [word], 8, tiny_model.backbones.hr_lr_tokenizer)
    assert r.candidates[0].prob == pytest.approx(alone.prob, rel=1e-3)  # TALL's own probability, not the fused score
    # a weight of 0 is plain best_candidate, and sampling ignores the n-gram
    off = predict(tiny_model, PREFIX, translations=ENGLISH, output_attentions=False,
                  decoding=fusion.replace(ngram_weight=0.0), num_candidates=5)
    assert [c.word for c in off.candidates] == [c.word for c in free.candidates[:5]] and not off.notes
    sampled = [predict(tiny_model, PREFIX, translations=ENGLISH, output_attentions=False,
                       decoding=d.sampled(3), num_candidates=5).word for d in (BEST, fusion)]
    assert sampled[0] == sampled[1]


def test_fusion_respects_the_word_list(tiny_model, tmp_path):
    listed = tmp_path / "words.txt"
    listed.write_text("בראשית\nברא\nהשמים\nהארץ\n", encoding="utf-8")
    fusion = BEST.replace(ngram=_ngram_file(tmp_path, "מים"), ngram_weight=16.0, word_list=str(listed))
    r = predict(tiny_model, PREFIX, translations=ENGLISH, decoding=fusion, output_attentions=False)
    assert r.word in {"בראשית", "ברא", "השמים", "הארץ"} and all(c.word != "מים" for c in r.candidates)


def test_fusion_settings_are_validated_and_described(tmp_path):
    with pytest.raises(ValueError, match="name its file"):
        Decoding(word_choice="best_candidate", ngram_weight=1.0)
    with pytest.raises(ValueError, match="best_candidate"):
        Decoding(ngram="x.json", ngram_weight=1.0)
    for bad in (-1, 17, True, "2"):
        with pytest.raises(ValueError, match="ngram_weight"):
            Decoding(word_choice="best_candidate", ngram="x.json", ngram_weight=bad)
    with pytest.raises(ValueError, match="best_candidate"):
        Decoding(ngram="x.json")  # the file's own weight: fusion all the same
    assert not Decoding(ngram="x.json", ngram_weight=0).fuses_ngram
    fusion = Decoding(word_choice="best_candidate", ngram="x.json", ngram_weight=2)
    assert fusion.describe() == "greedy (best candidate word), n-gram fusion (λ=2)"
    assert fusion.replace(ngram_weight=None).describe() == "greedy (best candidate word), n-gram fusion"
    assert fusion.replace(ngram_discount=1).describe() == "greedy (best candidate word), n-gram fusion (λ=2, μ=1)"
    for bad in (-0.5, 17, True):
        with pytest.raises(ValueError, match="ngram_discount"):
            fusion.replace(ngram_discount=bad)
    with pytest.raises(ValueError, match="name its file"):
        Decoding(word_choice="best_candidate", ngram_discount=1.0)
    assert "fusion" not in fusion.sampled(1).describe()
    assert Decoding.from_dict(fusion.to_dict()) == fusion
    with pytest.raises(NgramError, match="not a readable word n-gram"):
        cached_ngram(tmp_path / "missing.json")


def test_the_cli_passes_the_ngram_on_and_refuses_a_bad_file(tmp_path, capsys):
    """On the shipped demo (its config chooses best_candidate): an n-gram that always saw one word after the prefix
    makes it the answer at a heavy weight; a file that is not an n-gram is one line on stderr and exit code 2."""
    prefix, word = "ויאמר יהוה אל", "העץ"
    args = [prefix, "--json", "--threads", str(torch.get_num_threads())]  # main sets torch's threads: keep ours
    assert cli(args + ["--ngram", _ngram_file(tmp_path, word, prefix), "--ngram-weight", "16"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["word"] == word and any("weighed with the word n-gram" in n for n in printed["notes"])
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    assert cli(args + ["--ngram", str(bad), "--ngram-weight", "1"]) == 2
    assert "not a word n-gram file" in capsys.readouterr().err


def test_the_file_s_own_weight_is_the_default_and_a_file_without_one_needs_a_weight(tiny_model, tmp_path):
    sentences = [f"{PREFIX} מים"] * 20
    weighted = save_ngram(tmp_path / "weighted.json", sentences, 3, "test", fusion_weight=16.0)
    plain = save_ngram(tmp_path / "plain.json", sentences, 3, "test")
    assert load_ngram(weighted).fusion_weight == 16.0 and load_ngram(plain).fusion_weight is None
    own = predict(tiny_model, PREFIX, translations=ENGLISH, output_attentions=False,
                  decoding=BEST.replace(ngram=str(weighted)))
    given = predict(tiny_model, PREFIX, translations=ENGLISH, output_attentions=False,
                    decoding=BEST.replace(ngram=str(plain), ngram_weight=16.0))
    assert own.word == given.word == "מים"
    assert [c.word for c in own.candidates] == [c.word for c in given.candidates]
    with pytest.raises(ValueError, match="carries no fusion weight"):
        predict(tiny_model, PREFIX, translations=ENGLISH, decoding=BEST.replace(ngram=str(plain)))
    with pytest.raises(NgramError, match="fusion weight"):
        save_ngram(tmp_path / "bad.json", sentences, 3, "test", fusion_weight=-1)
    payload = json.loads(weighted.read_text(encoding="utf-8"))
    (tmp_path / "tampered.json").write_text(json.dumps(payload | {"fusion_weight": "heavy"}), encoding="utf-8")
    with pytest.raises(NgramError, match="tampered.json: a fusion weight"):
        load_ngram(tmp_path / "tampered.json")
    (tmp_path / "tampered.json").write_text(json.dumps(payload | {"fusion_discount": -2}), encoding="utf-8")
    with pytest.raises(NgramError, match="tampered.json: a fusion weight or discount"):
        load_ngram(tmp_path / "tampered.json")
    with pytest.raises(NgramError, match="only goes with a fusion weight"):
        save_ngram(tmp_path / "bad.json", sentences, 3, "test", fusion_discount=1.0)


def test_the_file_s_own_discount_is_the_default_and_the_decoding_s_overrides_it(tiny_model, tmp_path, monkeypatch):
    import tall_model.fusion as fusion_module

    seen = []
    real = fusion_module.fused
    monkeypatch.setattr(fusion_module, "fused", lambda *a, **k: seen.append((a[3], a[5])) or real(*a, **k))
    sentences = [f"{PREFIX} מים"] * 20
    carried = str(save_ngram(tmp_path / "mu.json", sentences, 3, "test", fusion_weight=0.75, fusion_discount=1.5))
    weight_only = str(save_ngram(tmp_path / "lambda.json", sentences, 3, "test", fusion_weight=0.75))
    for decoding in (BEST.replace(ngram=carried), BEST.replace(ngram=carried, ngram_discount=0.0),
                     BEST.replace(ngram=weight_only)):
        predict(tiny_model, PREFIX, translations=ENGLISH, decoding=decoding, output_attentions=False)
    assert seen == [(0.75, 1.5), (0.75, 0.0), (0.75, 0.0)]


def test_evaluation_weighs_with_the_ngram_by_the_best_whole_word():
    """The tiny preset decodes piece by piece; naming an n-gram makes evaluation's TALL rank whole words (a weight of
    0 leaves the checkpoint's choice alone)."""
    from evaluation.evaluate import base_decoding

    assert base_decoding("tiny").word_choice == "pieces"
    fused = base_decoding("tiny", ngram="x.json", ngram_weight=None)
    assert fused.word_choice == "best_candidate" and fused.fuses_ngram and fused.ngram_weight is None
    assert base_decoding("tiny", ngram="x.json", ngram_weight=0).word_choice == "pieces"


def test_predict_passes_the_discount_to_the_fused_ranking(tiny_model, tmp_path, monkeypatch):
    import tall_model.fusion as fusion_module

    seen = []
    real = fusion_module.fused
    monkeypatch.setattr(fusion_module, "fused", lambda *a, **k: seen.append((a[3], a[5])) or real(*a, **k))
    decoding = BEST.replace(ngram=_ngram_file(tmp_path, "מים"), ngram_weight=0.75, ngram_discount=1.0)
    r = predict(tiny_model, PREFIX, translations=ENGLISH, decoding=decoding, output_attentions=False)
    assert seen == [(0.75, 1.0)] and any("(λ = 0.75, μ = 1)" in n for n in r.notes)


def test_the_fusion_speed_benchmark_times_both_decodings(capsys):
    from benchmarks.fusion_speed import main as bench

    medians = bench(["--repeats", "1", "--threads", str(torch.get_num_threads())])
    assert set(medians) == {"free", "fused"} and all(s > 0 for s in medians.values())
    assert "fused / free:" in capsys.readouterr().out

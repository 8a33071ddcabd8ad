"""The Decoding radio's choices as the app turns them into a `Decoding` (tall_app/predicting.py: parse_decoding,
for_model): greedy and sampling, the best whole word, the training words, the prior, the word n-gram, and the
files they need."""

from __future__ import annotations

import pytest

from tall_app.predicting import for_model, parse_decoding
from tall_model import Decoding
from tall_model.prior import demo_prior
from tall_model.word_list import demo_word_list


def test_parse_decoding():
    assert parse_decoding("greedy") == Decoding() and parse_decoding(None).describe() == "greedy"
    assert parse_decoding("greedy, best whole word") == Decoding(word_choice="best_candidate")
    d = parse_decoding("sampling", "0.5", 10, 0.9, 7.0)
    assert isinstance(d, Decoding)
    assert (d.sample, d.temperature, d.top_k, d.top_p, d.seed) == (True, 0.5, 10, 0.9, 7)
    assert "seed 7" in d.describe() and "T=0.5" in d.describe()
    assert parse_decoding("sampling") == Decoding().sampled(0)  # empty controls keep Decoding's defaults
    assert parse_decoding("sampling", None, "", None, 3) == Decoding().sampled(3)
    for args, match in [((0, 40, 0.9, 0), "Temperature must be greater than 0"), ((0.6, -1, 0.9, 0), "Top-k"),
                        ((0.6, 5, 1.5, 0), "Top-p"), (("x", 5, 0.9, 0), "Temperature must be a number"),
                        ((0.6, 5, 0.9, -3), "Seed"), ((float("nan"), 5, 0.9, 0), "Temperature must be a finite"),
                        ((0.6, "inf", 0.9, 0), "Top-k must be a number")]:
        with pytest.raises(ValueError, match=match):
            parse_decoding("sampling", *args)
    with pytest.raises(ValueError, match="greedy or sampling"):
        parse_decoding("beam")


def test_decoding_choice_keeps_the_models_translation_settings():
    class Model:  # what for_model reads
        class config:  # noqa: N801
            decoding = Decoding(translation_max_new_tokens=24, max_word_pieces=5, temperature=1.3)

    greedy = for_model(parse_decoding("greedy"), Model)
    assert not greedy.sample and greedy.translation_max_new_tokens == 24 and greedy.max_word_pieces == 5
    sampled = for_model(parse_decoding("sampling", 0.9, 7, 0.8, 4), Model)
    assert sampled == Decoding(True, 0.9, 7, 0.8, 4, max_word_pieces=5, translation_max_new_tokens=24)
    base = parse_decoding("sampling", None, None, None, 2, base=Model.config.decoding)
    assert base.temperature == 1.3 and base.seed == 2 and base.translation_max_new_tokens == 24
    # the word choice and the word list reach the model too (the best-word mode used to be dropped here)
    best = for_model(parse_decoding("greedy, best whole word"), Model)
    assert best.word_choice == "best_candidate" and best.translation_max_new_tokens == 24
    listed = for_model(parse_decoding("greedy, training words only"), Model)
    assert listed.word_list == str(demo_word_list()) and not listed.sample and listed.max_word_pieces == 5
    # the list and the prior build on the best whole word, as the demo table scores them; "greedy" is the paper's
    assert listed.word_choice == "best_candidate" and greedy.word_choice == "pieces"


def test_prior_mode_uses_the_demo_prior_with_the_weight_it_carries():
    class Model:  # what for_model reads
        class config:  # noqa: N801
            decoding = Decoding(translation_max_new_tokens=24, prior_weight=2.0)

    corrected = for_model(parse_decoding("greedy, prior-corrected"), Model)
    assert corrected.prior == str(demo_prior()) and corrected.prior_weight is None and not corrected.sample
    assert corrected.word_choice == "best_candidate"
    assert corrected.translation_max_new_tokens == 24 and for_model(parse_decoding("greedy"), Model).prior is None


def test_ngram_mode_weighs_with_the_demo_ngram_at_the_weight_it_carries(monkeypatch, tmp_path):
    import tall_app.predicting as predicting
    from tall_model.config import demo_dir
    from tall_model.word_ngram import NGRAM_FILE

    class Model:  # what for_model reads
        class config:  # noqa: N801
            decoding = Decoding(translation_max_new_tokens=24)

    fused = for_model(parse_decoding("greedy, with the word n-gram"), Model)
    assert fused.ngram == str(demo_dir() / NGRAM_FILE) and fused.ngram_weight is None and fused.fuses_ngram
    assert fused.word_choice == "best_candidate" and not fused.sample and fused.translation_max_new_tokens == 24
    assert for_model(parse_decoding("greedy, best whole word"), Model).ngram is None  # only where the mode asks
    assert fused.ngram_discount is None  # the μ the file carries

    class Fused:  # a checkpoint whose own decoding fuses at its own λ and μ: the radio decides both
        class config:  # noqa: N801
            decoding = Decoding(word_choice="best_candidate", ngram="own.json", ngram_weight=1.0, ngram_discount=0.5)

    assert for_model(parse_decoding("greedy, with the word n-gram"), Fused).ngram_discount is None
    plain = for_model(parse_decoding("greedy, best whole word"), Fused)  # was refused: a μ left without its n-gram
    assert (plain.ngram, plain.ngram_weight, plain.ngram_discount) == (None, None, None) and not plain.fuses_ngram
    monkeypatch.setattr(predicting, "demo_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="n-gram .* is missing .*--stages ngram,fusion"):
        parse_decoding("greedy, with the word n-gram")


def test_a_checkpoints_own_word_list_and_prior_replace_the_demos(tmp_path):
    run = tmp_path / "my-run"
    (run / "best").mkdir(parents=True)
    (run / "training_words.txt").write_text("שלום\n", encoding="utf-8")
    (run / "best" / "first_piece_prior.safetensors").write_bytes(b"")

    class Model:  # a checkpoint loaded from run/best (tall_model.checkpoint.from_pretrained sets `directory`)
        directory = run / "best"

        class config:  # noqa: N801
            decoding = Decoding()

    listed = for_model(parse_decoding("greedy, training words only"), Model)
    assert listed.word_list == str(run / "training_words.txt") and listed.prior is None
    corrected = for_model(parse_decoding("greedy, prior-corrected"), Model)
    assert corrected.prior == str(run / "best" / "first_piece_prior.safetensors") and corrected.word_list is None
    assert for_model(parse_decoding("greedy"), Model).word_list is None  # only where the mode asks for one
    Model.directory = tmp_path / "elsewhere" / "best"  # no files of its own: the demo's
    assert for_model(parse_decoding("greedy, training words only"), Model).word_list == str(demo_word_list())


def test_prior_mode_without_the_file_is_a_clear_error(monkeypatch, tmp_path):
    import tall_app.predicting as predicting

    monkeypatch.setattr(predicting, "demo_prior", lambda: tmp_path / "first_piece_prior.safetensors")
    with pytest.raises(ValueError, match="prior .* is missing .*--stages prior"):
        parse_decoding("greedy, prior-corrected")


def test_training_words_mode_without_the_list_is_a_clear_error(monkeypatch, tmp_path):
    import tall_app.predicting as predicting

    monkeypatch.setattr(predicting, "demo_word_list", lambda: tmp_path / "training_words.txt")
    with pytest.raises(ValueError, match="training word list .* is missing .*--stages word-list"):
        parse_decoding("greedy, training words only")

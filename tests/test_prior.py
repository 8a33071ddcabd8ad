"""Decoding.prior: the greedy word's first piece chosen with the model's own prior divided out; the prior file belongs
to one model, and a bad or foreign file is a clear error."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from tall_model import Decoding, load
from tall_model.predict import first_piece_logits, predict, predict_uncached
from tall_model.prior import DEFAULT_WEIGHT, KEY, PriorError, estimate_prior, log_prior, main, save_prior
from tall_model.translate import translate

from conftest import HEBREW_PREFIX

PREFIXES = [HEBREW_PREFIX, "ויאמר אלהים יהי", "והארץ היתה תהו"]


@pytest.fixture(scope="module")
def english(tiny_model):
    return translate(tiny_model, PREFIXES)


@pytest.fixture(scope="module")
def estimated(tiny_model, english, tmp_path_factory):
    prior = estimate_prior(tiny_model, PREFIXES, english, batch_size=2)
    return prior, save_prior(tiny_model, prior, tmp_path_factory.mktemp("prior") / "p.safetensors", 3, "test")


def _against(tiny_model, english, tmp_path, piece_of) -> tuple[list, str]:
    """Free predictions and a prior file that puts almost all mass on each free greedy word's first piece."""
    free = predict(tiny_model, PREFIXES, translations=english, output_attentions=False)
    vocab = tiny_model.hr_lr.lm_head.weight.shape[0]
    prior = torch.full((vocab,), 1e-6)
    for r in free:
        prior[piece_of(r)] = 0.3
    return free, str(save_prior(tiny_model, prior / prior.sum(), tmp_path / "peaked.safetensors", 3, "test"))


def test_the_prior_is_the_mean_first_piece_distribution(tiny_model, english, estimated):
    prior, _ = estimated
    one_by_one = torch.stack([first_piece_logits(tiny_model, [p], [e])[0].softmax(-1)
                              for p, e in zip(PREFIXES, english)]).mean(0)
    assert prior.shape == one_by_one.shape and math.isclose(float(prior.sum()), 1.0, rel_tol=1e-4)
    torch.testing.assert_close(prior, one_by_one, atol=1e-5, rtol=1e-4)  # batching and padding change nothing


def test_the_file_round_trips_as_log_probabilities(tiny_model, estimated):
    prior, path = estimated
    logp, weight = log_prior(tiny_model, path)
    torch.testing.assert_close(logp.exp(), prior.clamp_min(1e-12))
    assert weight == DEFAULT_WEIGHT  # a file without a chosen weight


def test_the_weight_a_file_carries_is_used_unless_the_decoding_names_one(tiny_model, english, tmp_path):
    free, path = _against(tiny_model, english, tmp_path, lambda r: r.pieces[0].token_id)
    logp, _ = log_prior(tiny_model, path)
    weighted = save_prior(tiny_model, logp.exp().cpu(), tmp_path / "w.safetensors", 3, "test", weight=1.0)
    assert log_prior(tiny_model, weighted)[1] == 1.0
    carried = predict(tiny_model, PREFIXES, translations=english, output_attentions=False,
                      decoding=Decoding(prior=str(weighted)))
    named = predict(tiny_model, PREFIXES, translations=english, output_attentions=False,
                    decoding=Decoding(prior=str(weighted), prior_weight=1.0))
    overruled = predict(tiny_model, PREFIXES, translations=english, output_attentions=False,
                        decoding=Decoding(prior=str(weighted), prior_weight=0.0))
    assert [r.word for r in carried] == [r.word for r in named] != [r.word for r in free]
    assert [r.word for r in overruled] == [r.word for r in free]


def test_a_prior_on_the_greedy_pieces_changes_the_greedy_words(tiny_model, english, tmp_path):
    free, path = _against(tiny_model, english, tmp_path, lambda r: r.pieces[0].token_id)
    corrected = predict(tiny_model, PREFIXES, translations=english, output_attentions=False,
                        decoding=Decoding(prior=path, prior_weight=1.0))
    for f, c in zip(free, corrected):
        assert c.pieces[0].token_id != f.pieces[0].token_id
        assert [x.word for x in c.candidates] == [x.word for x in f.candidates]  # the model's own ranking
        own = first_piece_logits(tiny_model, [f.prefix], [f.translation])[0].softmax(-1)
        assert math.isclose(c.pieces[0].prob, float(own[c.pieces[0].token_id]), rel_tol=1e-4)  # not re-weighted
    weightless = predict(tiny_model, PREFIXES, translations=english, output_attentions=False,
                         decoding=Decoding(prior=path, prior_weight=0.0))
    assert [r.word for r in weightless] == [r.word for r in free]


def test_best_candidate_is_ranked_with_the_prior(tiny_model, english, tmp_path):
    best = Decoding(word_choice="best_candidate")
    free, path = _against(tiny_model, english, tmp_path, lambda r: r.candidates[0].ids[0])
    corrected = predict(tiny_model, PREFIXES, translations=english, output_attentions=False,
                        decoding=best.replace(prior=path, prior_weight=1.0))
    free = predict(tiny_model, PREFIXES, translations=english, output_attentions=False, decoding=best)
    assert all(c.word != f.word and c.word in [x.word for x in f.candidates] for f, c in zip(free, corrected))


def test_cached_and_uncached_paths_agree_with_a_prior(tiny_model, english, tmp_path):
    _, path = _against(tiny_model, english, tmp_path, lambda r: r.pieces[0].token_id)
    decoding = Decoding(prior=path, prior_weight=1.0)
    for prefix in PREFIXES:
        assert predict(tiny_model, prefix, decoding=decoding, output_attentions=False).word == \
            predict_uncached(tiny_model, prefix, decoding=decoding).word


def test_a_prior_of_other_adapters_is_refused(estimated):
    _, path = estimated
    other = load("tiny", seed=1)
    with pytest.raises(PriorError, match="other adapters"):
        predict(other, HEBREW_PREFIX, decoding=Decoding(prior=str(path)), output_attentions=False)


def test_broken_prior_files_are_clear_errors(tiny_model, tmp_path):
    vocab = tiny_model.hr_lr.lm_head.weight.shape[0]
    garbage, wrong_shape, foreign = tmp_path / "garbage.safetensors", tmp_path / "short.safetensors", tmp_path / "x"
    garbage.write_bytes(b"\x00\x01not a safetensors file")
    save_prior(tiny_model, torch.full((vocab - 1,), 1 / (vocab - 1)), wrong_shape, 1, "test")
    save_file({KEY: torch.ones(vocab)}, str(foreign))
    nan, heavy = tmp_path / "nan.safetensors", tmp_path / "heavy.safetensors"
    save_prior(tiny_model, torch.full((vocab,), float("nan")), nan, 1, "test")
    save_prior(tiny_model, torch.full((vocab,), 1 / vocab), heavy, 1, "test", weight=1e9)
    for path, why in ((tmp_path / "missing.safetensors", "not found"), (garbage, "not a readable safetensors"),
                      (wrong_shape, "covers"), (foreign, "not a TALL first-piece prior"),
                      (nan, "not a probability vector"), (heavy, "unusable weight")):
        with pytest.raises(PriorError, match=why):
            log_prior(tiny_model, path)


@pytest.mark.parametrize("changes", [{"prior_weight": -0.5}, {"prior_weight": float("nan")}, {"prior": " "},
                                     {"prior_weight": 5}])
def test_bad_prior_settings_are_refused(changes):
    with pytest.raises(ValueError, match="prior"):
        Decoding(**changes)


def test_the_command_refuses_bad_input_in_one_line(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("שלום עולם".encode("utf-8")[:3] + b"\xff\xfe\n")
    english = tmp_path / "english.txt"
    english.write_text("hello there world\n", encoding="utf-8")
    for data, why in ((tmp_path / "missing.txt", "No such file"), (latin1, "not UTF-8"),
                      (english, "no sentence of two or more words with Hebrew")):
        with pytest.raises(SystemExit, match=why):
            main(["tiny", "--data", str(data), "--out", str(tmp_path / "p.safetensors")])
    assert not (tmp_path / "p.safetensors").exists()


def test_the_command_writes_a_prior_for_the_checkpoint(tiny_model, tmp_path, verses, capsys):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "cli.safetensors"
    corpus.write_text("\n".join(verses) + "\n", encoding="utf-8")
    main(["tiny", "--data", str(corpus), "--out", str(out), "--limit", "4"])
    assert "over 4 prefixes" in capsys.readouterr().out
    assert log_prior(tiny_model, out)[0].shape == (tiny_model.hr_lr.lm_head.weight.shape[0],)


def test_the_decoding_benchmark_pairs_each_variant_with_the_papers_greedy(tiny_model, estimated, tmp_path, verses):
    from benchmarks.word_choice import compare_variants, variants

    _, path = estimated
    assert set(variants(None, None)) == {"pieces", "best_candidate"}
    options = variants(str(path), "words.txt")
    assert set(options) == {"pieces", "best_candidate", "prior", "best_candidate+prior", "word_list",
                            "word_list+prior"}
    del options["word_list"], options["word_list+prior"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(verses[:4]) + "\n", encoding="utf-8")
    out = compare_variants(tiny_model, str(corpus), str(tmp_path / "cache.sqlite"), options)
    assert out["n"] == 4 and all(0 <= out[name]["hits"] <= 4 for name in options)
    assert "mcnemar_p" in out["prior"] and "mcnemar_p" not in out["pieces"]
    assert out["prior"]["only_this"] - out["prior"]["only_pieces"] == out["prior"]["hits"] - out["pieces"]["hits"]

"""Inference: word boundaries, cached == uncached, attention maps, bad input."""

import pytest
import torch

from tall_model import Decoding
from tall_model.predict import predict, predict_uncached
from tall_model.sampling import WORD_START

from conftest import HEBREW_PREFIX


def test_prediction_has_every_part(tiny_model):
    r = predict(tiny_model, HEBREW_PREFIX, translations="In the beginning God created the heaven and")
    assert r.translation.startswith("In the beginning")
    assert r.word and r.pieces and " " not in r.word
    assert len(r.candidates) == 5
    probs = [c.prob for c in r.candidates]
    assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
    assert len(r.llm_next) == 5 and all(0 <= p <= 1 for _, p in r.llm_next)
    assert not r.sampled and r.seed is None


def test_word_stops_at_a_word_boundary(tiny_model):
    tok = tiny_model.backbones.hr_lr_tokenizer
    for seed in range(6):
        decoding = Decoding(temperature=1.5, top_k=0, top_p=1.0).sampled(seed)
        r = predict(tiny_model, HEBREW_PREFIX, decoding=decoding, translations="And God")
        pieces = [p.piece for p in r.pieces]
        assert pieces[0].startswith(WORD_START), pieces
        assert not any(p.startswith(WORD_START) for p in pieces[1:]), pieces
        assert tok.eos_token not in pieces and tok.pad_token not in pieces
        assert len(pieces) <= decoding.max_word_pieces


@pytest.mark.parametrize("sample", [False, True])
def test_cached_prediction_equals_paper_recomputation(tiny_model, sample):
    for seed in (0, 1, 2):
        decoding = tiny_model.config.decoding.replace(sample=sample, seed=seed)
        fast = predict(tiny_model, HEBREW_PREFIX, decoding=decoding, output_attentions=False)
        slow = predict_uncached(tiny_model, HEBREW_PREFIX, decoding=decoding)
        assert fast.translation == slow.translation
        assert [p.token_id for p in fast.pieces] == [p.token_id for p in slow.pieces]
        assert [p.prob for p in fast.pieces] == pytest.approx([p.prob for p in slow.pieces], rel=1e-4)


def test_sampling_is_seeded(tiny_model):
    hot = Decoding(temperature=2.0, top_k=0, top_p=1.0)
    words = [predict(tiny_model, HEBREW_PREFIX, decoding=hot.sampled(s), translations="And God").word for s in range(8)]
    assert words == [predict(tiny_model, HEBREW_PREFIX, decoding=hot.sampled(s), translations="And God").word
                     for s in range(8)]
    assert len(set(words)) > 1  # high temperature over a random model: seeds must matter


def test_batch_equals_single(tiny_model):
    prefixes = [HEBREW_PREFIX, "ויאמר אלהים יהי"]
    batch = predict(tiny_model, prefixes, translations=["In the beginning", "And God said"])
    for prefix, translation, b in zip(prefixes, ["In the beginning", "And God said"], batch):
        single = predict(tiny_model, prefix, translations=translation)
        assert single.word == b.word
        assert single.pieces[0].prob == pytest.approx(b.pieces[0].prob, rel=1e-4)


def test_attention_maps_are_distributions_with_labels(tiny_model):
    r = predict(tiny_model, HEBREW_PREFIX, translations="In the beginning God")
    cfg = tiny_model.config
    a = r.bridge_in_attention
    assert a.weights.shape[:2] == (cfg.bridge_in.layers, cfg.bridge_in.heads)
    assert a.weights.shape[2:] == (len(a.query_tokens), len(a.key_tokens))
    assert torch.allclose(a.weights.sum(-1), torch.ones(a.weights.shape[:-1]), atol=1e-5)
    d = r.decoder_attention
    dec = tiny_model.hr_lr.config
    assert d.weights.shape[:2] == (dec.decoder_layers, dec.decoder_attention_heads)
    assert d.weights.shape[2] == len(r.pieces) == len(d.query_tokens)
    assert d.weights.shape[3] == len(a.query_tokens) == len(d.key_tokens)
    assert torch.allclose(d.weights.sum(-1), torch.ones(d.weights.shape[:-1]), atol=1e-5)


def test_greedy_word_is_the_top_candidate(tiny_model):
    r = predict(tiny_model, HEBREW_PREFIX, translations="In the beginning")
    assert r.candidates[0].word == r.word


PREFIXES = [HEBREW_PREFIX, "ויאמר אלהים יהי", "והארץ היתה תהו ובהו וחשך על", "ויקרא אלהים לאור"]


def test_best_candidate_word_is_the_likeliest_whole_word(tiny_model):
    """word_choice="best_candidate": the candidate with the highest whole-word probability, its pieces stepped
    through the decoder (probabilities and attention rows as if generated)."""
    best = Decoding(word_choice="best_candidate")
    for prefix in PREFIXES:
        r = predict(tiny_model, prefix, translations="In the beginning", decoding=best, num_candidates=0)
        full = predict(tiny_model, prefix, translations="In the beginning", decoding=best)
        assert r.word == full.word == full.candidates[0].word
        assert full.candidates[0].prob == max(c.prob for c in full.candidates)
        assert [p.token_id for p in full.pieces] == full.candidates[0].ids
        assert full.candidates[0].prob <= full.word_prob + 1e-9  # the candidate's also pays P(end of word)
        assert full.decoder_attention.weights.shape[2] == len(full.pieces)
        pieces = predict(tiny_model, prefix, translations="In the beginning")
        pieces_prob = next((c.prob for c in pieces.candidates if c.word == pieces.word), 0.0)
        assert full.candidates[0].prob >= pieces_prob
        for search in ("first_pieces", "beam"):  # no attention asked: the search's own piece probabilities
            quick = predict(tiny_model, prefix, translations="In the beginning", output_attentions=False,
                            decoding=best.replace(candidate_search=search), num_candidates=0)
            stepped = predict(tiny_model, prefix, translations="In the beginning",
                              decoding=best.replace(candidate_search=search), num_candidates=0)
            assert quick.word == stepped.word and quick.decoder_attention is None
            assert [p.token_id for p in quick.pieces] == [p.token_id for p in stepped.pieces]
            assert [p.prob for p in quick.pieces] == pytest.approx([p.prob for p in stepped.pieces], rel=1e-4)


def test_a_wider_candidate_pool_ranks_more_completed_words(tiny_model):
    """The candidates are the top `candidate_pool` first pieces completed and ranked by whole-word probability: the
    five shown from a wider pool are, rank by rank, at least as likely, and a pool of 1 still fills the list."""
    for prefix in PREFIXES:
        found = {pool: predict(tiny_model, prefix, translations="In the beginning", output_attentions=False,
                               decoding=Decoding(word_choice="best_candidate", candidate_pool=pool)).candidates
                 for pool in (1, 5, 30)}
        assert len(found[1]) == len(found[5]) == 5  # never fewer than asked for
        assert [c.word for c in found[1]] == [c.word for c in found[5]]  # pool ≤ the list: the list's own search
        assert all(wide.prob >= narrow.prob - 1e-9 for wide, narrow in zip(found[30], found[5]))
    assert any([c.word for c in predict(tiny_model, p, translations="In the beginning", output_attentions=False,
                                        decoding=Decoding(candidate_pool=30)).candidates]
               != [c.word for c in predict(tiny_model, p, translations="In the beginning", output_attentions=False,
                                           decoding=Decoding(candidate_pool=5)).candidates] for p in PREFIXES)
    with pytest.raises(ValueError, match="candidate_pool"):
        Decoding(candidate_pool=0)


def _whole_word_prob(model, prefix: str, translation: str, ids: list[int]) -> float:
    """P(pieces) · P(the word ends after them), stepped one piece at a time through stage 7 (no batch, no beam)."""
    from tall_model.batching import target_pieces
    from tall_model.predict import WordDecoder, _encode, fit_prefix
    from tall_model.sampling import piece_masks

    used = fit_prefix(model, prefix)[0]
    encoding, _, _ = _encode(model, [used], [translation])
    decoder = WordDecoder(model, encoding, 0, target_pieces(model, used), False)
    _, end_of_word, never = piece_masks(model.backbones.hr_lr_tokenizer, decoder.logits.shape[-1], model.device)
    prob, logits = 1.0, decoder.logits
    for token_id in ids:
        prob *= float(logits.reshape(-1).float().softmax(-1)[token_id])
        logits = decoder.step(token_id)
    return prob * float(logits.reshape(-1).float().softmax(-1).masked_fill(never, 0)[end_of_word].sum())


def test_candidates_have_exact_whole_word_probabilities_in_both_searches(tiny_model):
    """Every candidate's probability is its pieces' and its end's, as if stepped alone; the list is ranked and has
    no empty word; the first-piece search holds one word per first piece."""
    english = "In the beginning"
    for prefix in PREFIXES:
        for search in ("first_pieces", "beam"):
            found = predict(tiny_model, prefix, translations=english, output_attentions=False, num_candidates=8,
                            decoding=Decoding(candidate_search=search, candidate_pool=8)).candidates
            assert len(found) == 8 and all(c.word for c in found)
            assert [c.prob for c in found] == sorted((c.prob for c in found), reverse=True)
            for c in found[:4]:
                assert c.prob == pytest.approx(_whole_word_prob(tiny_model, prefix, english, c.ids), rel=1e-3)
            if search == "first_pieces":
                assert len({c.ids[0] for c in found}) == len(found)
    with pytest.raises(ValueError, match="candidate_search"):
        Decoding(candidate_search="wide")


def test_beam_search_finds_listed_words_that_share_a_first_piece(tiny_model, tmp_path):
    """The tiny en→he pieces begin every one of these words with the bare word-start piece: one completion per first
    piece can offer only one of them, a beam over whole words offers several, all listed."""
    listed = tmp_path / "words.txt"
    words = ["בראשית", "ברא", "השמים", "הארץ", "טוב", "אחד", "יום", "קרא"]
    listed.write_text("\n".join(words), encoding="utf-8")
    for prefix in PREFIXES:
        found = {search: predict(tiny_model, prefix, translations="In the beginning", output_attentions=False,
                                 decoding=Decoding(candidate_search=search, word_list=str(listed),
                                                   word_choice="best_candidate"))
                 for search in ("first_pieces", "beam")}
        assert len(found["first_pieces"].candidates) == 1
        beam = found["beam"]
        assert beam.word in words and len(beam.candidates) == 5 and all(c.word in words for c in beam.candidates)
        assert len({c.ids[0] for c in beam.candidates}) == 1  # five words, one first piece


def test_word_choice_is_validated_and_described():
    with pytest.raises(ValueError, match="word_choice"):
        Decoding(word_choice="beam")
    assert Decoding(word_choice="best_candidate").describe() == "greedy (best candidate word)"
    assert Decoding(word_choice="best_candidate").sampled(1).describe().startswith("sampled")


@pytest.mark.parametrize("bad, message", [("", "empty"), ("   \n\t ", "empty"),
                                          ("hello world", "no Hebrew"), ("1234 !?", "no Hebrew")])
def test_bad_prefix_gets_a_clear_error(tiny_model, bad, message):
    with pytest.raises(ValueError, match=message):
        predict(tiny_model, bad)


def test_long_prefix_is_cut_from_the_left_and_says_so(tiny_model):
    long_prefix = " ".join([HEBREW_PREFIX] * 40)
    r = predict(tiny_model, long_prefix, translations="In the beginning")
    assert r.truncated and r.notes
    assert long_prefix.endswith(r.prefix_used) and len(r.prefix_used) < len(long_prefix)
    short = predict(tiny_model, HEBREW_PREFIX, translations="In the beginning")
    assert not short.truncated


def test_concat_ablation_batch_equals_single(tiny_model):
    from tall_model import TallModel

    torch.manual_seed(0)
    model = TallModel(tiny_model.config.replace(bridge_in_mode="concat"), tiny_model.backbones).eval()
    prefixes = ["ויאמר", HEBREW_PREFIX]  # different Hebrew lengths: padding sits between Hebrew and English
    batch = predict(model, prefixes, translations=["And", "In the beginning"])
    for prefix, translation, b in zip(prefixes, ["And", "In the beginning"], batch):
        single = predict(model, prefix, translations=translation)
        assert single.word == b.word
        assert single.pieces[0].prob == pytest.approx(b.pieces[0].prob, rel=1e-4)
    assert batch[0].bridge_in_attention is None and batch[0].decoder_attention is not None


def test_attention_labels_never_show_broken_characters(tiny_model):
    # Hebrew inside the English makes byte-level BPE split letters in half; such a token alone decodes to U+FFFD
    r = predict(tiny_model, HEBREW_PREFIX, translations="God said אור and there was")
    labels = r.bridge_in_attention.query_tokens + r.decoder_attention.key_tokens + [t for t, _ in r.llm_next]
    assert labels and all(label and "\ufffd" not in label for label in labels)


def test_a_subword_piece_is_held_to_word_starts_only_when_asked():
    """The paper's subword framing takes the likeliest of all pieces, even one that continues a word (here piece 3,
    the likeliest); subword_word_start holds it to word starts (piece 2, the likeliest of those)."""
    from tall_model.predict import generate_word

    word_start = torch.tensor([False, True, True, False])
    masks = (word_start, word_start | torch.tensor([True, False, False, False]), torch.zeros(4, dtype=torch.bool))
    logits = torch.tensor([[0.0, 1.0, 2.0, 5.0]])

    def never_called(token_id):
        raise AssertionError("a subword model predicts one piece")

    free = generate_word(logits, never_called, masks, Decoding(), None, subword=True)
    held = generate_word(logits, never_called, masks, Decoding(subword_word_start=True), None, subword=True)
    assert [p.token_id for p in free] == [3] and [p.token_id for p in held] == [2]
    with pytest.raises(ValueError, match="subword_word_start must be true or false"):
        Decoding(subword_word_start="yes")


def test_a_subword_pick_skips_the_bare_word_start_only_when_asked():
    """Piece 2 is the word-start marker alone (the empty word) and the likeliest word start: held, the pick is it;
    held and skipping it, the next word start (piece 1); free and skipping, still the likeliest of all (piece 3)."""
    from tall_model.predict import generate_word

    word_start, bare = torch.tensor([False, True, True, False]), torch.tensor([False, False, True, False])
    masks = (word_start, word_start | torch.tensor([True, False, False, False]), torch.zeros(4, dtype=torch.bool))
    logits = torch.tensor([[0.0, 1.0, 2.0, 5.0]])

    def pick(**settings):
        return [p.token_id for p in generate_word(logits, None, masks, Decoding(**settings), None, subword=True,
                                                  bare=bare)]
    assert pick(subword_word_start=True) == [2]
    assert pick(subword_word_start=True, subword_skip_bare_start=True) == [1]
    assert pick(subword_skip_bare_start=True) == [3]
    # a word list whose words start with ▁ alone (piece 2) or piece 1: skipping still holds among its words
    from tall_model.word_list import WordTrie
    trie = WordTrie([[2, 0], [1]], max_pieces=2)
    listed = [p.token_id for p in generate_word(logits, None, masks, Decoding(subword_word_start=True,
                                                                              subword_skip_bare_start=True),
                                                None, subword=True, trie=trie, bare=bare)]
    assert listed == [1]
    with pytest.raises(ValueError, match="needs the mask of bare word-start pieces"):
        generate_word(logits, None, masks, Decoding(subword_skip_bare_start=True), None, subword=True)
    with pytest.raises(ValueError, match="subword_skip_bare_start must be true or false"):
        Decoding(subword_skip_bare_start=1)


def test_a_subword_model_skips_the_bare_word_start_from_its_own_decoding(tiny_config, backbones):
    """With ▁ alone made the likeliest piece of every prediction, a held subword checkpoint predicts the empty word
    unless its decoding skips it, in the cached and the uncached path."""
    from tall_model import load

    prefixes = [HEBREW_PREFIX, "ויאמר אלהים יהי"]
    translations = ["In the beginning", "And God said"]
    words = {}
    for skip in (False, True):
        model = load(tiny_config.changed({"framing": "subword", "loss": "last", "decoding": {
            "subword_word_start": True, "subword_skip_bare_start": skip}}), backbones=backbones, seed=0)
        marker = model.backbones.hr_lr_tokenizer.convert_tokens_to_ids(WORD_START)
        bias = model.hr_lr.final_logits_bias.clone()
        model.hr_lr.final_logits_bias[..., marker] = 1e4
        try:
            fast = predict(model, prefixes, translations=translations)
            slow = predict_uncached(model, prefixes[1])
        finally:
            model.hr_lr.final_logits_bias.copy_(bias)  # the backbones are shared with other tests
        words[skip] = ([r.pieces[0].piece for r in fast], slow.pieces[0].piece)
    assert words[False] == ([WORD_START, WORD_START], WORD_START)
    assert all(p.startswith(WORD_START) and p != WORD_START for p in [*words[True][0], words[True][1]]), words


def test_a_subword_model_predicts_a_word_start_from_its_own_decoding(tiny_config, backbones):
    """Through predict (cached and uncached), the flag comes from the checkpoint's decoding like any other."""
    from tall_model import load

    held = load(tiny_config.changed({"framing": "subword", "loss": "last",
                                     "decoding": {"subword_word_start": True}}), backbones=backbones, seed=0)
    prefixes = [HEBREW_PREFIX, "ויאמר אלהים יהי", "והארץ היתה", "וירא אלהים את"]
    translations = ["In the beginning", "And God said", "And the earth was", "And God saw the"]
    for r in predict(held, prefixes, translations=translations):
        assert len(r.pieces) == 1 and r.pieces[0].piece.startswith(WORD_START), r.pieces
    slow = predict_uncached(held, prefixes[1])
    assert len(slow.pieces) == 1 and slow.pieces[0].piece.startswith(WORD_START)


def test_the_cli_holds_a_subword_checkpoints_piece_to_word_starts_when_asked(tiny_config, backbones, tmp_path, capsys):
    """--subword-word-start reaches the decoding of a saved subword checkpoint, and --no-subword-word-start turns off
    a checkpoint's own; the free piece (the paper's) of this random model continues a word."""
    import json

    from tall_model import load
    from tall_model.__main__ import main as cli
    from tall_model.checkpoint import save_pretrained

    args = ["ויאמר אלהים יהי", "--preset", "tiny", "--json", "--translation", "And God said",
            "--threads", str(torch.get_num_threads())]
    printed = {}
    for held in (False, True):
        config = tiny_config.changed({"framing": "subword", "loss": "last", "decoding": {"subword_word_start": held}})
        folder = save_pretrained(load(config, backbones=backbones, seed=0), tmp_path / f"subword-{held}")
        for flag in ([], ["--subword-word-start"], ["--no-subword-word-start"]):
            assert cli(args + ["--checkpoint", str(folder), *flag]) == 0
            printed[held, tuple(flag)] = json.loads(capsys.readouterr().out)["pieces"]
    starts = {key: pieces[0][0].startswith(WORD_START) for key, pieces in printed.items()}
    assert starts == {(False, ()): False, (False, ("--subword-word-start",)): True,
                      (False, ("--no-subword-word-start",)): False, (True, ()): True,
                      (True, ("--subword-word-start",)): True, (True, ("--no-subword-word-start",)): False}
    assert all(len(pieces) == 1 for pieces in printed.values())


def test_the_cli_passes_the_bare_start_skip_on_and_off(tiny_config, backbones, tmp_path, monkeypatch, capsys):
    """--subword-skip-bare-start / --no-subword-skip-bare-start reach the decoding predict gets; without either,
    the checkpoint's own setting holds."""
    import tall_model.__main__ as cli_module
    from tall_model import load
    from tall_model.checkpoint import save_pretrained

    config = tiny_config.changed({"framing": "subword", "loss": "last", "decoding": {"subword_skip_bare_start": True}})
    folder = save_pretrained(load(config, backbones=backbones, seed=0), tmp_path / "skips")
    seen = []

    def recording_predict(model, prefix, decoding, **kwargs):
        seen.append(decoding.subword_skip_bare_start)
        return predict(model, prefix, decoding=decoding, **kwargs)
    monkeypatch.setattr(cli_module, "predict", recording_predict)
    args = ["ויאמר אלהים יהי", "--checkpoint", str(folder), "--json", "--translation", "And God said",
            "--threads", str(torch.get_num_threads())]
    for flag in ([], ["--no-subword-skip-bare-start"], ["--subword-skip-bare-start"]):
        assert cli_module.main(args + flag) == 0
        capsys.readouterr()
    assert seen == [True, False, True]

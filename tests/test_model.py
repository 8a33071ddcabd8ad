"""Stages, gradients, frozen modes and ablations of the TALL model on tiny local backbones."""

import pytest
import torch

from tall_model import TallModel, load
from tall_model.backbones import BackboneNotFoundError, load_backbones

from conftest import HEBREW_PREFIX


def _batch(model):
    return model.make_batch([HEBREW_PREFIX, "ויאמר אלהים"], ["In the beginning God created", "And God said"],
                            ["הארץ", "יהי אור"[:3]])


def test_every_stage_has_the_specified_shape(tiny_model):
    m = tiny_model
    b = _batch(m)
    B, S1 = b.src_ids.shape
    S2 = b.en_ids.shape[1]
    d, d_enc, d_dec = m.llm.config.hidden_size, m.lr_hr.config.d_model, m.hr_lr.config.d_model
    with torch.no_grad():
        hebrew = m.lr_hr.get_encoder()(input_ids=b.src_ids, attention_mask=b.src_mask).last_hidden_state
        assert hebrew.shape == (B, S1, d_enc)
        aligned = m.align_in(hebrew, b.src_mask)
        assert aligned.shape == (B, S1, d)
        assert torch.all(aligned[b.src_mask == 0] == 0)  # padded positions zeroed
        enc = m.encode_prefix(b.src_ids, b.src_mask, b.en_ids, b.en_mask)
        assert enc.llm_states.shape == (B, S2, d)
        assert enc.memory.shape == (B, S2, d_dec)
        assert len(enc.bridge_in_attentions) == m.config.bridge_in.layers
        assert enc.bridge_in_attentions[0].shape == (B, m.config.bridge_in.heads, S2, S1)
        logits, _, _ = m.decode(enc, b.decoder_input_ids)
        assert logits.shape == (*b.decoder_input_ids.shape, m.hr_lr.lm_head.weight.shape[0])


def test_backward_reaches_only_trainable_parameters(tiny_model):
    m = tiny_model
    m.zero_grad(set_to_none=True)
    m.train()
    try:
        out = m(_batch(m))
        assert torch.isfinite(out.loss)
        out.loss.backward()
        trainable = {id(p) for p in m.trainable_parameters()}
        for name, p in m.named_parameters():
            if id(p) in trainable:
                assert p.grad is not None and p.grad.abs().sum() > 0, name
            else:
                assert p.grad is None and not p.requires_grad, name
    finally:
        m.zero_grad(set_to_none=True)
        m.eval()


def test_frozen_modules_stay_in_eval_mode_under_train(tiny_model):
    m = tiny_model
    m.train()
    try:
        for name in ("lr_hr", "llm", "hr_lr"):
            assert all(not mod.training for mod in getattr(m, name).modules()), name
        assert m.bridge_in.training and m.align_out.training
    finally:
        m.eval()


def test_position_tables_are_fixed_buffers_not_parameters(tiny_model):
    names = [n for n, _ in tiny_model.named_parameters() if n.split(".")[0] in ("bridge_in", "bridge_out")]
    assert names and not any("positions" in n for n in names)
    assert "bridge_in.positions.table" not in tiny_model.trainable_state_dict()
    table = tiny_model.bridge_in.positions.table
    assert torch.allclose(table[0, : table.shape[1] // 2], torch.zeros(table.shape[1] // 2))  # sin(0)


def test_loss_covers_the_whole_word_and_its_end_or_only_the_last_piece(tiny_model):
    m = tiny_model
    word_pieces = len(m.backbones.hr_lr_tokenizer(text_target="השמים")["input_ids"]) - 1
    b = m.make_batch([HEBREW_PREFIX], ["x"], ["השמים"])
    assert int(b.loss_mask.sum()) == word_pieces + 1
    ends = b.labels[0][b.loss_mask[0].bool()]
    assert int(ends[-1]) == m.backbones.hr_lr_tokenizer.eos_token_id
    last = TallModel.__new__(TallModel)
    last.__dict__.update(m.__dict__)
    last.config = m.config.replace(loss="last")
    b2 = last.make_batch([HEBREW_PREFIX], ["x"], ["השמים"])
    assert int(b2.loss_mask.sum()) == 1
    assert int(b2.labels[0][b2.loss_mask[0].bool()][0]) == int(ends[-2])


def test_decoder_is_teacher_forced_on_prefix_plus_word(tiny_model):
    m = tiny_model
    b = m.make_batch([HEBREW_PREFIX], ["x"], ["השמים"])
    tok = m.backbones.hr_lr_tokenizer
    full = tok(text_target=HEBREW_PREFIX + " השמים")["input_ids"]
    assert b.labels[0].tolist() == full
    assert b.decoder_input_ids[0, 0] == m.hr_lr.config.decoder_start_token_id
    assert b.decoder_input_ids[0, 1:].tolist() == full[:-1]


@pytest.mark.parametrize("change", [dict(bypass_llm=True), dict(bridge_in_mode="concat"),
                                    dict(bridge_in_mode="hebrew_only"), dict(framing="subword", loss="last")])
def test_ablations_train(tiny_model, change):
    torch.manual_seed(0)
    model = TallModel(tiny_model.config.replace(**change), tiny_model.backbones).train()
    batch = model.make_batch([HEBREW_PREFIX], ["In the beginning"], ["השמים"], [HEBREW_PREFIX + " השמים"])
    out = model(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in model.align_in.parameters())
    model.zero_grad(set_to_none=True)
    if change.get("bridge_in_mode") in ("concat", "hebrew_only"):
        assert model.bridge_in.layers[0].encoder_attn is None


def test_hebrew_only_ablation_ignores_the_translation(tiny_model):
    """No translation input: the LLM sees the aligned Hebrew alone, so any English gives the same loss."""
    torch.manual_seed(0)
    model = TallModel(tiny_model.config.replace(bridge_in_mode="hebrew_only"), tiny_model.backbones).eval()
    losses = [model(model.make_batch([HEBREW_PREFIX], [english], ["השמים"])).loss.item()
              for english in ("In the beginning", "And the earth was without form and void")]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    crossing = TallModel(tiny_model.config, tiny_model.backbones).eval()  # the full model does read it
    full = [crossing(crossing.make_batch([HEBREW_PREFIX], [english], ["השמים"])).loss.item()
            for english in ("In the beginning", "And the earth was without form and void")]
    assert full[0] != pytest.approx(full[1], abs=1e-6)


def test_qwen_style_llm_works_through_the_same_code():
    from tall_model import preset_config

    cfg = preset_config("tiny-qwen").changed({"decoding": {"translation_max_new_tokens": 8}})
    model = load(cfg)
    assert model.llm.config.model_type == "qwen2"
    out = model(model.make_batch([HEBREW_PREFIX], ["In the beginning"], ["השמים"]))
    out.loss.backward()
    assert model.bridge_in.layers[0].fc1.weight.grad is not None


def test_missing_backbone_fails_fast_with_a_helpful_message(tiny_config, monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.time()
    with pytest.raises(BackboneNotFoundError) as err:
        load_backbones(tiny_config.replace(llm="bigscience/bloomz-560m-not-here"))
    assert time.time() - start < 5
    assert "bigscience/bloomz-560m-not-here" in str(err.value) and "LLM" in str(err.value)
    with pytest.raises(BackboneNotFoundError, match="no such local directory"):
        load_backbones(tiny_config.replace(lr_hr_translator="./no/such/dir"))


def test_releasing_translation_parts_keeps_tall_working(tiny_config):
    from tall_model.translate import translate

    torch.manual_seed(0)
    model = load(tiny_config).eval()  # no dropout: the two losses must be comparable
    dims = model.backbones.dims()
    before = sum(p.numel() for p in model.parameters())
    batch = model.make_batch([HEBREW_PREFIX], ["In the beginning"], ["השמים"])
    loss_before = model(batch).loss
    freed = model.release_translation_parts()
    assert freed > 0 and sum(p.numel() for p in model.parameters()) == before - freed
    assert torch.allclose(model(batch).loss, loss_before)  # stages 1 and 7 untouched
    assert model.backbones.dims() == dims  # checkpoints saved afterwards still match full backbones
    with pytest.raises(RuntimeError, match="released"):
        translate(model, [HEBREW_PREFIX])


def test_translate_batches_by_length_keeps_order_and_caps_runaway_output(tiny_config):
    """Sorted batching returns each text's own translation, and a translation never runs past
    LENGTH_RATIO × source + LENGTH_SLACK pieces (the random tiny translator never stops on its own)."""
    from tall_model.batching import source_ids
    from tall_model.translate import LENGTH_RATIO, LENGTH_SLACK, translate

    torch.manual_seed(0)
    model = load(tiny_config.changed({"decoding": {"translation_max_new_tokens": 200}}))
    texts = ["ויאמר אלהים יהי אור ויהי אור וירא", "בראשית", HEBREW_PREFIX, "ויאמר"]
    together = translate(model, texts, batch_size=2)
    assert together == [translate(model, [t])[0] for t in texts]
    tok = model.backbones.lr_hr_tokenizer
    for text, english in zip(texts, together):
        n_source = len(source_ids(model, text)[0])
        assert len(tok(english, add_special_tokens=False)["input_ids"]) <= LENGTH_RATIO * n_source + LENGTH_SLACK + 2

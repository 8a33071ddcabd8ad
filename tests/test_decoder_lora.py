"""decoder_lora_rank (ours, not the paper's): stage 7's own LoRA copy of the en→he decoder. It starts as the
paper's frozen decoder, saves only its LoRA factors (keys pinned), round-trips, never touches the shared backbone,
and its factors train."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from tall_model import TallConfig, TallModel
from tall_model.checkpoint import from_pretrained, save_pretrained
from tall_model.params import parameter_report
from tall_model.predict import predict
from tests.test_train import config
from training.train import train

from conftest import HEBREW_PREFIX

RANK = 4


def lora_keys(layers: int) -> set[str]:
    """Written out by hand: a rename breaks saved checkpoints."""
    linears = [f"{attn}.{p}" for attn in ("self_attn", "encoder_attn") for p in ("q_proj", "k_proj", "v_proj",
                                                                                  "out_proj")] + ["fc1", "fc2"]
    return {f"decoder_lora.layers.{i}.{lin}.lora_{ab}.default.weight" for i in range(layers) for lin in linears
            for ab in "AB"}


@pytest.fixture()
def with_lora(tiny_model):
    torch.manual_seed(3)
    model = TallModel(tiny_model.config.replace(decoder_lora_rank=RANK), tiny_model.backbones)
    model.load_state_dict(tiny_model.state_dict(), strict=False)  # the same adapters as the rank-0 model
    return model.eval()


def first_piece_prob(model, prefix=HEBREW_PREFIX):
    return predict(model, prefix, translations="In the beginning").pieces[0].prob


def test_rank_zero_is_the_paper_and_the_rank_is_validated(tiny_model):
    assert tiny_model.decoder_lora is None and "decoder_lora" not in tiny_model.trainable_modules()
    for bad in (-1, 2.5, "8"):
        with pytest.raises(ValueError, match="decoder_lora_rank"):
            TallConfig(decoder_lora_rank=bad)


def test_untrained_lora_is_the_frozen_decoder_and_the_backbone_stays_untouched(tiny_model, with_lora):
    layers = len(tiny_model.hr_lr.get_decoder().layers)
    lora = {k for k in with_lora.trainable_state_dict() if k.startswith("decoder_lora.")}
    assert lora == lora_keys(layers)  # only the factors: no copied frozen weight is saved
    extra = sum(p.numel() for p in with_lora.trainable_parameters()) - sum(
        p.numel() for p in tiny_model.trainable_parameters())
    d, ffn = tiny_model.hr_lr.config.d_model, tiny_model.hr_lr.config.decoder_ffn_dim
    assert extra == layers * RANK * (8 * 2 * d + 2 * (d + ffn)) == parameter_report(with_lora).decoder_lora
    assert first_piece_prob(with_lora) == pytest.approx(first_piece_prob(tiny_model), abs=1e-6)  # B = 0
    assert not any("lora" in n for n, _ in tiny_model.hr_lr.named_parameters())
    assert with_lora.decoder_lora.embed_tokens is tiny_model.hr_lr.get_decoder().embed_tokens  # shared, not copied
    with_lora.train()
    assert not with_lora.decoder_lora.training  # no dropout in the copy, as in the frozen decoder


def test_lora_checkpoint_round_trips(with_lora, tmp_path):
    with torch.no_grad():
        for name, p in with_lora.decoder_lora.named_parameters():
            if "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p))
    changed = first_piece_prob(with_lora)
    out = save_pretrained(with_lora, tmp_path / "ckpt")
    saved = load_file(str(out / "model.safetensors"))
    assert lora_keys(len(with_lora.decoder_lora.layers)) <= set(saved)
    loaded = from_pretrained(out, backbones=with_lora.backbones)
    assert loaded.config.decoder_lora_rank == RANK
    assert first_piece_prob(loaded) == pytest.approx(changed, abs=1e-6)
    frozen = TallModel(with_lora.config.replace(decoder_lora_rank=0), with_lora.backbones)
    frozen.load_state_dict(loaded.state_dict(), strict=False)  # the same adapters, stage 7 frozen
    assert first_piece_prob(frozen.eval()) != pytest.approx(changed, abs=1e-6)  # the factors changed it


def test_training_moves_the_lora_factors(tmp_path, verses, backbones):
    cfg = config(tmp_path, "lora")
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(decoder_lora_rank=RANK), dev_fraction=0.0, max_steps=2,
                              epochs=1)
    torch.set_num_threads(1)
    result = train(cfg, sentences=verses[:8], backbones=backbones)
    saved = load_file(str(tmp_path / "lora" / "last" / "model.safetensors"))
    assert any(k.endswith("lora_B.default.weight") and v.abs().sum() > 0 for k, v in saved.items())
    assert result.step == 2
    assert not any("lora" in n for n, _ in backbones.hr_lr.named_parameters())


def test_the_experiment_pairs_greedy_and_top5_hits_on_the_same_examples():
    from experiments.decoder_lora import paired

    ours = [{"prefix": "א", "gold": "ב", "greedy": "ב", "candidates": ["ב", "ג"]},
            {"prefix": "ג", "gold": "ד", "greedy": "ה", "candidates": ["ה", "ד"]}]
    theirs = [{"prefix": "א", "gold": "ב", "greedy": "ג", "candidates": ["ג"]},
              {"prefix": "ג", "gold": "ד", "greedy": "ד", "candidates": ["ד"]}]
    result = paired(ours, theirs)
    assert result["greedy"] | {"mcnemar_p": 1.0} == {"hits": 1, "reference_hits": 1, "only_this": 1,
                                                      "only_reference": 1, "mcnemar_p": 1.0}
    assert (result["top5"]["hits"], result["top5"]["only_this"], result["top5"]["only_reference"]) == (2, 1, 0)
    with pytest.raises(SystemExit, match="same examples"):
        paired(ours, theirs[::-1])


def test_int8_backbones_get_lora_on_their_dequantised_decoder(with_lora, tiny_config, tmp_path):
    """--quantize int8 (inference only) shares int8 backbones; stage 7's copy is rebuilt from their rounded weights
    so the trained factors still apply, close to the fp32 model, and the shared decoder stays int8."""
    from tall_model.backbones import load_backbones
    from tall_model.quantize import quantize_backbones

    torch.manual_seed(5)
    with torch.no_grad():
        for name, p in with_lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)  # trained factors: the output moves away from the frozen decoder's
    save_pretrained(with_lora, tmp_path / "ck")
    own = quantize_backbones(load_backbones(tiny_config), "int8")  # in place: not the shared fixture's
    loaded = from_pretrained(tmp_path / "ck", backbones=own).eval()
    assert not any("quantized" in type(m).__module__ for m in loaded.decoder_lora.modules())
    assert any("quantized" in type(m).__module__ for m in own.hr_lr.get_decoder().modules())
    assert {k for k in loaded.trainable_state_dict() if "lora_" in k} == lora_keys(len(loaded.decoder_lora.layers))
    for key, value in with_lora.trainable_state_dict().items():
        assert torch.equal(loaded.trainable_state_dict()[key], value), key
    assert first_piece_prob(loaded) == pytest.approx(first_piece_prob(with_lora), abs=0.05)

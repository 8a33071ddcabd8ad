"""Adapter checkpoints: only trainable tensors, exact round trip, clear refusals."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tall_model import TallModel
from tall_model.checkpoint import CheckpointError, from_pretrained, save_pretrained
from tall_model.predict import predict

from conftest import HEBREW_PREFIX


def _expected_keys(layers_in: int, layers_out: int) -> set[str]:
    """The saved key list, written out by hand: a rename of any module breaks old checkpoints."""
    keys = {f"{name}.net.{i}.{p}" for name in ("align_in", "align_out") for i in (0, 1, 4, 5)
            for p in ("weight", "bias")}
    proj = ("q_proj", "k_proj", "v_proj", "out_proj")
    for bridge, layers, attns in (("bridge_in", layers_in, ("self_attn", "encoder_attn")),
                                  ("bridge_out", layers_out, ("self_attn",))):
        for i in range(layers):
            prefix = f"{bridge}.layers.{i}"
            for attn in attns:
                keys |= {f"{prefix}.{attn}.{pr}.{p}" for pr in proj for p in ("weight", "bias")}
                keys |= {f"{prefix}.{attn}_layer_norm.{p}" for p in ("weight", "bias")}
            keys |= {f"{prefix}.{m}.{p}" for m in ("fc1", "fc2", "final_layer_norm") for p in ("weight", "bias")}
    return keys


@pytest.fixture()
def trained(tiny_model):
    """A model whose trainable parts differ from a fresh init (so a broken load would show)."""
    torch.manual_seed(5)
    model = TallModel(tiny_model.config, tiny_model.backbones)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_save_writes_only_trainable_tensors_config_and_card(trained, tmp_path):
    out = save_pretrained(trained, tmp_path / "ckpt")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    tensors = load_file(str(out / "model.safetensors"))
    cfg = trained.config
    assert set(tensors) == _expected_keys(cfg.bridge_in.layers, cfg.bridge_out.layers)
    assert sum(t.numel() for t in tensors.values()) == sum(p.numel() for p in trained.trainable_parameters())
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["llm"] == cfg.llm and meta["backbone_dims"]["llm_hidden_size"] == 64
    card = (out / "README.md").read_text()
    assert "trainable params" in card and cfg.llm in card


def test_round_trip_gives_identical_outputs(trained, tmp_path):
    save_pretrained(trained, tmp_path / "ckpt")
    loaded = from_pretrained(tmp_path / "ckpt", backbones=trained.backbones)
    for key, value in trained.trainable_state_dict().items():
        assert torch.equal(value, loaded.trainable_state_dict()[key]), key
    a = predict(trained, HEBREW_PREFIX, translations="In the beginning")
    b = predict(loaded, HEBREW_PREFIX, translations="In the beginning")
    assert a.word == b.word and a.pieces[0].prob == b.pieces[0].prob
    fresh = from_pretrained(tmp_path / "ckpt")  # backbones loaded from the config's paths
    assert torch.equal(fresh.align_in.net[0].weight, trained.align_in.net[0].weight)


def test_saving_again_replaces_atomically(trained, tmp_path):
    save_pretrained(trained, tmp_path / "ckpt")
    save_pretrained(trained, tmp_path / "ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no staging or backup left behind


def test_other_dimensions_are_refused_naming_both_sides(trained, tmp_path):
    out = save_pretrained(trained, tmp_path / "ckpt")
    meta = json.loads((out / "config.json").read_text())
    meta["backbone_dims"]["llm_hidden_size"] = 1024
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"llm_hidden_size is 1024 in the checkpoint but 64"):
        from_pretrained(out, backbones=trained.backbones)


def test_checkpoint_for_another_llm_is_refused(trained, tmp_path):
    from tall_model import preset_config
    from tall_model.backbones import load_backbones

    out = save_pretrained(trained, tmp_path / "ckpt")
    qwen = load_backbones(preset_config("tiny-qwen"))
    with pytest.raises(CheckpointError, match=r"other backbones: the LLM is sha256:\w+ in the checkpoint \(.*\) but "
                                              r"sha256:\w+ as loaded from '.*qwen'"):
        from_pretrained(out, backbones=qwen)


def test_tensor_shape_mismatch_names_the_tensor(trained, tmp_path):
    out = save_pretrained(trained, tmp_path / "ckpt")
    meta = json.loads((out / "config.json").read_text())
    meta["config"]["bridge_out"]["ffn"] = 32
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"tensor bridge_out\.layers\.0\.fc1\.(weight|bias) has shape \(64,.*but \(32,"):
        from_pretrained(out, backbones=trained.backbones)


def test_missing_and_unexpected_keys_are_errors(trained, tmp_path):
    out = save_pretrained(trained, tmp_path / "ckpt")
    tensors = load_file(str(out / "model.safetensors"))
    tensors.pop("align_in.net.0.weight")
    tensors["lm_head.weight"] = torch.zeros(2)
    save_file(tensors, str(out / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing \['align_in.net.0.weight'\].*unexpected \['lm_head.weight'\]"):
        from_pretrained(out, backbones=trained.backbones)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "model.safetensors").write_bytes(b"\x80\x03not safetensors"), "not a readable safetensors"),
    (lambda d: (d / "config.json").write_text("{broken"), "not valid JSON"),
    (lambda d: (d / "config.json").unlink(), "config.json is missing"),
    (lambda d: (d / "config.json").write_text('{"format": "other"}'), "not a TALL adapter config"),
])
def test_corrupt_checkpoints_are_refused(trained, tmp_path, damage, message):
    out = save_pretrained(trained, tmp_path / "ckpt")
    damage(out)
    with pytest.raises(CheckpointError, match=message):
        from_pretrained(out, backbones=trained.backbones)


# Every TallConfig field is either one a load may change (LOAD_TIME) or one that shapes the model or its task.
# A new field must be added to one of the two lists: this test makes that a decision, not an accident.
SHAPES_THE_MODEL = {"lr_hr_translator", "llm", "hr_lr_translator", "adapter_hidden_factor", "dropout", "bridge_in",
                    "bridge_out", "match_llm_scale", "decoder_lora_rank", "framing", "loss", "bridge_in_mode",
                    "bypass_llm"}


def test_load_time_fields_are_one_explicit_list():
    import dataclasses
    import inspect

    from tall_model import LOAD_TIME, TallConfig, load

    fields = {f.name for f in dataclasses.fields(TallConfig)} - {"preset"}
    assert set(LOAD_TIME) == {"decoding"} and fields == SHAPES_THE_MODEL | set(LOAD_TIME)
    keyword = {n for n, p in inspect.signature(load).parameters.items() if p.kind is p.KEYWORD_ONLY}
    # translation_engine (what writes the he→en text) and quantize (int8 frozen layers for inference): not saved,
    # like device and dtype they shape no trainable tensor
    assert keyword == {"backbones", "device", "dtype", "decoding", "seed", "translation_engine", "quantize"}


def test_a_checkpoint_keeps_every_field_that_shapes_the_model(tiny_model, tmp_path):
    from tall_model import Decoding, load

    config = tiny_model.config.replace(match_llm_scale=False, bypass_llm=True, framing="subword", loss="last",
                                       decoder_lora_rank=2)
    out = save_pretrained(TallModel(config, tiny_model.backbones), tmp_path / "ckpt")
    loaded = load(out, backbones=tiny_model.backbones, decoding=Decoding(temperature=1.3))
    assert loaded.config.decoding.temperature == 1.3
    assert loaded.config.replace(decoding=config.decoding) == config  # nothing else changed on the way
    with pytest.raises(TypeError):
        load(out, backbones=tiny_model.backbones, bypass_llm=False)


def test_format_1_checkpoints_still_load(trained, tmp_path):
    out = save_pretrained(trained, tmp_path / "ckpt")
    meta = json.loads((out / "config.json").read_text())
    meta["format_version"] = 1
    decoding = meta["config"].pop("decoding")
    meta["config"].update(seed=0, **{k: decoding[k] for k in ("temperature", "top_k", "top_p", "max_word_pieces",
                                                               "translation_beams", "translation_max_new_tokens")})
    del meta["backbone_fingerprints"]
    (out / "config.json").write_text(json.dumps(meta))
    loaded = from_pretrained(out, backbones=trained.backbones)
    assert loaded.config == trained.config


def test_checkpoint_directory_is_readable_by_others(trained, tmp_path):
    out = save_pretrained(trained, tmp_path / "ckpt")
    assert out.stat().st_mode & 0o755 == 0o755

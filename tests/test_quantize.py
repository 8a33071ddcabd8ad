"""Opt-in int8 inference (tall_model/quantize.py) on the tiny preset: what is quantised and what is not, checkpoints
still fit, outputs stay close to fp32, its own translation-cache key, CTranslate2 in int8, the app's flags, and the
refusals (GPU, bf16, unknown mode, training)."""

from __future__ import annotations

import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

from tall_model import load
from tall_model.backbones import load_backbones
from tall_model.checkpoint import save_pretrained
from tall_model.predict import predict
from tall_model.quantize import QuantizeError, check_mode
from tall_model.translate import translate, translator_id

PREFIXES = ["בראשית ברא אלהים את השמים ואת", "ויאמר אלהים יהי", "ויהי דבר יהוה אל יונה בן אמתי לאמר"]


@pytest.fixture(scope="module")
def int8_model(tiny_config):
    return load(tiny_config, quantize="int8")  # its own backbones: quantising is in place


def _linears(module):
    return [m for m in module.modules() if isinstance(m, (torch.nn.Linear, Int8Linear))]


def test_frozen_bodies_are_int8_and_heads_and_trainable_parts_are_not(int8_model, tiny_model):
    bb = int8_model.backbones
    assert bb.quantized == "int8"
    for body in (bb.lr_hr.get_encoder(), bb.lr_hr.get_decoder(), bb.llm.base_model, bb.hr_lr.get_decoder()):
        layers = _linears(body)
        assert layers and all(isinstance(m, Int8Linear) for m in layers)
    assert isinstance(bb.llm.get_output_embeddings(), Int8Linear) and type(bb.hr_lr.lm_head) is torch.nn.Linear
    trainable = [n for n, p in int8_model.named_parameters() if p.requires_grad]
    assert trainable == [n for n, p in tiny_model.named_parameters() if p.requires_grad]
    assert bb.dims() == tiny_model.backbones.dims()  # fixed before quantising: checkpoints still fit


def test_quantising_loaded_backbones_fixes_their_dims_first(tiny_config, tiny_model):
    from tall_model.quantize import quantize_backbones

    backbones = load_backbones(tiny_config)
    assert quantize_backbones(backbones, "int8") is backbones and backbones.quantized == "int8"
    assert backbones.dims() == tiny_model.backbones.dims()
    assert isinstance(backbones.llm.get_output_embeddings(), Int8Linear)


def test_a_checkpoint_of_the_fp32_model_loads_on_int8_backbones(tmp_path, tiny_model, int8_model):
    save_pretrained(tiny_model, tmp_path / "ckpt")
    loaded = load(tmp_path / "ckpt", backbones=int8_model.backbones, quantize="int8")
    assert loaded.backbones is int8_model.backbones and loaded.backbones.quantized == "int8"
    assert predict(loaded, PREFIXES[0]).word


def test_int8_stays_close_to_fp32_on_the_same_translation(tiny_model, int8_model):
    for prefix in PREFIXES:
        english = translate(tiny_model, [prefix])[0]
        ours = predict(int8_model, prefix, translations=english, num_candidates=0, output_attentions=False)
        theirs = predict(tiny_model, prefix, translations=english, num_candidates=0, output_attentions=False)
        assert abs(ours.pieces[0].prob - theirs.pieces[0].prob) < 0.05, prefix


def test_attribution_is_refused_on_int8_backbones(int8_model):
    from tall_model.attribution import AttributionError, attribute

    prediction = predict(int8_model, PREFIXES[0])
    with pytest.raises(AttributionError, match="needs gradients through the backbones.*quantised"):
        attribute(int8_model, prediction, method="input_x_gradient")


def test_the_llm_view_and_the_logit_lens_work_on_int8(int8_model, tiny_model):
    english = translate(tiny_model, [PREFIXES[1]])[0]
    ours = predict(int8_model, PREFIXES[1], translations=english, with_logit_lens=True)
    theirs = predict(tiny_model, PREFIXES[1], translations=english)
    assert len(ours.llm_next) == 5 and ours.llm_next[0][0] == theirs.llm_next[0][0]
    assert ours.logit_lens is not None


def test_int8_translations_have_their_own_cache_key(tiny_model, int8_model):
    assert translator_id(int8_model) == translator_id(tiny_model) + "|quantized=int8"


def test_ctranslate2_computes_in_int8_with_int8_backbones(tmp_path, int8_model):
    from tall_model.translate_ct2 import Ct2Translator, converted

    engine = load(int8_model.config, backbones=int8_model.backbones, translation_engine="ctranslate2",
                  quantize="int8")
    translator = Ct2Translator(engine, tmp_path)
    assert translator.translator.compute_type.startswith("int8")  # int8_float32: int8 weights, fp32 rest
    folders = [p for p in tmp_path.iterdir() if (p / "model.bin").is_file()]
    assert len(folders) == 1  # converted once, stored in int8: a quarter of the fp32 file (+ the fp32 embeddings)
    fp32 = converted(int8_model.backbones.folders["lr_hr_translator"],
                     int8_model.backbones.fingerprints()["lr_hr_translator"], tmp_path)
    assert fp32 != folders[0] and (folders[0] / "model.bin").stat().st_size < (fp32 / "model.bin").stat().st_size
    assert all(isinstance(t, str) for t in translator.translate(engine, PREFIXES, engine.config.decoding))
    assert translator_id(engine).endswith("|engine=ctranslate2|quantized=int8")


@pytest.mark.parametrize(("mode", "device", "dtype", "message"), [
    ("int4", None, None, "quantize must be one of none, int8"),
    ("int8", "cuda", None, "for fp32 backbones on the CPU"),
    ("int8", "cpu", torch.bfloat16, "for fp32 backbones on the CPU"),
])
def test_unusable_settings_are_refused(mode, device, dtype, message):
    with pytest.raises(QuantizeError, match=message):
        check_mode(mode, device, dtype)
    assert check_mode("none") is None and check_mode("int8", "cpu", torch.float32) == "int8"


def test_training_refuses_int8_backbones(tmp_path, int8_model, tiny_config):
    from training.train import train
    from training.train_config import TrainConfig

    config = TrainConfig(model=tiny_config, max_steps=1, out=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="quantised .*training needs the unquantised ones"):
        train(config, sentences=PREFIXES * 4, backbones=int8_model.backbones)
    assert not (tmp_path / "run").exists()


def test_the_app_cache_quantises_its_backbones_once_and_passes_the_engine(tmp_path):
    from tall_app.models import ModelCache

    cache = ModelCache(tmp_path, translation_engine="ctranslate2", quantize="int8")
    loaded = cache.get("tiny")
    assert loaded.model.backbones.quantized == "int8" and loaded.model.translation_engine == "ctranslate2"
    assert cache.backbones_for(loaded.model.config) is loaded.model.backbones
    assert loaded.model.backbones.dims() == load_backbones(loaded.model.config).dims()  # from the meta build
    with pytest.raises(QuantizeError, match="fp32 backbones on the CPU"):
        ModelCache(tmp_path, dtype="bf16", quantize="int8")
    with pytest.raises(ValueError, match="translation_engine must be one of"):
        ModelCache(tmp_path, translation_engine="marian-cpp")


def test_the_app_predicts_and_compares_on_int8(tmp_path):
    from tall_app.service import AppService

    service = AppService("tiny", root=tmp_path, overrides={"translation_max_new_tokens": 8}, quantize="int8")
    assert service.predict(PREFIXES[0], "tiny", None).prediction.word
    comparison = service.compare(PREFIXES[0], "tiny", None)
    assert {row[0] for row in comparison.rows} >= {"tall", "direct", "naive"}

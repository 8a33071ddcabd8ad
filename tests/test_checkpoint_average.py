"""Checkpoint averaging of a translator's snapshots (demo_build.checkpoint_average)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import MarianMTModel

from demo_build.checkpoint_average import MismatchedSnapshots, average_models, main
from demo_build.marian_tokenizer import load_marian_tokenizer
from tall_model import preset_config
from tall_model.backbones import model_folder


@pytest.fixture(scope="module")
def tiny_translator():
    return model_folder("lr_hr_translator", preset_config("tiny").lr_hr_translator)


def _shifted(src, out, by: float):
    """A copy of src whose every floating-point tensor is shifted by `by` (a stand-in for a later snapshot)."""
    model = MarianMTModel.from_pretrained(str(src), dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(by)
    model.save_pretrained(str(out))
    load_marian_tokenizer(src).save_pretrained(str(out))
    return out


def test_the_mean_of_three_snapshots_is_each_tensors_mean(tiny_translator, tmp_path):
    folders = [_shifted(tiny_translator, tmp_path / f"s{i}", by) for i, by in enumerate((0.0, 1.0, 5.0))]
    mean = average_models(folders).state_dict()
    first = MarianMTModel.from_pretrained(str(folders[0]), dtype=torch.float32).state_dict()
    for name, tensor in first.items():
        if name.endswith("embed_positions.weight"):  # sinusoidal, not a parameter: the same in every snapshot
            assert torch.equal(mean[name], tensor)
        elif tensor.is_floating_point() and name != "final_logits_bias":
            assert torch.allclose(mean[name], tensor + 2.0, atol=1e-5), name


def test_averaging_one_folder_gives_it_back_and_the_cli_exports_fp16(tiny_translator, tmp_path):
    main([str(tiny_translator), "--out", str(tmp_path / "avg"), "--export", str(tmp_path / "export")])
    before, after = load_file(str(tiny_translator / "model.safetensors")), load_file(
        str(tmp_path / "avg" / "model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k].float(), after[k]) for k in before)
    exported = load_file(str(tmp_path / "export" / "model.safetensors"))
    assert {t.dtype for t in exported.values()} == {torch.float16}
    assert load_marian_tokenizer(tmp_path / "export").get_vocab() == load_marian_tokenizer(tiny_translator).get_vocab()


def test_models_of_different_sizes_are_refused(tiny_translator, tmp_path):
    model = MarianMTModel.from_pretrained(str(tiny_translator), dtype=torch.float32)
    config = model.config
    config.d_model, config.encoder_ffn_dim = 2 * config.d_model, 2 * config.encoder_ffn_dim
    MarianMTModel(config).save_pretrained(str(tmp_path / "wider"))
    with pytest.raises(MismatchedSnapshots, match="has shape"):
        average_models([tiny_translator, tmp_path / "wider"])


def test_the_cli_refuses_a_folder_without_a_model(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty"), "--out", str(tmp_path / "avg")])
    assert "not a saved model" in capsys.readouterr().err


"""The one loader: presets, configs and checkpoints; seeds; device and dtype; backbone providers."""

import pytest
import torch

from tall_model import Decoding, load
from tall_model.checkpoint import save_pretrained
from tall_model.load import resolve_device, resolve_dtype


def test_a_config_gives_seeded_fresh_adapters_without_touching_the_callers_rng(tiny_config, tiny_model):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = load(tiny_config, backbones=tiny_model.backbones, seed=7)
    assert torch.rand(1) == before  # the caller's random stream goes on as if nothing was loaded
    b = load(tiny_config, backbones=tiny_model.backbones, seed=7)
    c = load(tiny_config, backbones=tiny_model.backbones, seed=8)
    assert torch.equal(a.align_in.net[0].weight, b.align_in.net[0].weight)
    assert not torch.equal(a.align_in.net[0].weight, c.align_in.net[0].weight)
    assert "untrained adapters (seed 7)" in a.source and not a.training


def test_a_backbone_provider_is_asked_with_the_checkpoints_config(tiny_model, tmp_path):
    out = save_pretrained(tiny_model, tmp_path / "ckpt")
    asked = []

    def provider(config):
        asked.append(config)
        return tiny_model.backbones

    model = load(out, backbones=provider, decoding=Decoding(top_k=5))
    assert len(asked) == 1 and asked[0].llm == tiny_model.config.llm
    assert model.backbones is tiny_model.backbones and model.config.decoding.top_k == 5
    assert model.source.startswith("adapters from ")


def test_device_and_dtype_are_checked_with_clear_messages():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert resolve_dtype("bf16") is torch.bfloat16 and resolve_dtype(None) is None
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("int3")


def test_unknown_preset_or_missing_checkpoint_is_a_clear_error(tmp_path):
    from tall_model.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="neither a preset .*demo.* nor a checkpoint directory"):
        load(str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match="'tiyn' is neither a preset"):
        load("tiyn")


def test_default_threads_follow_the_core_count(monkeypatch):
    import os

    import torch

    from tall_model.load import default_threads

    assert default_threads(3) == 3  # asked for: as asked
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert default_threads(0) == 1  # 2 cores: 1 thread (benchmarks/RESULTS.md, issue 10)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert default_threads(0) == torch.get_num_threads()


def test_a_missing_backbone_fails_before_any_backbone_loads(tiny_config, monkeypatch, tmp_path):
    import tall_model.backbones as bb

    loaded = []
    monkeypatch.setattr(bb, "_load", lambda role, *a, **k: loaded.append(role))
    config = tiny_config.replace(hr_lr_translator=str(tmp_path / "nowhere"))
    with pytest.raises(bb.BackboneNotFoundError, match="nowhere"):
        bb.load_backbones(config)
    assert loaded == []  # not even the LLM, which loads first

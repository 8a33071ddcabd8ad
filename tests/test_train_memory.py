"""The training memory levers change nothing but memory: recomputing the LLM's and the bridges' layers in the backward pass
(TrainConfig.low_memory; the bridges' dropout masks too) gives bitwise the same trained tensors, and glibc's freed memory goes back to the system.
The full-size figures are benchmarks/bench_paper.py's `--stage train` (benchmarks/RESULTS.md)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.test_train import config
from training.train import train


def test_low_memory_training_gives_identical_tensors(tmp_path, verses, backbones):
    runs = {}
    for low_memory in (False, True):
        cfg = dataclasses.replace(config(tmp_path, f"low-{low_memory}"), max_steps=3, low_memory=low_memory,
                                  eval_every=0, eval_limit=2)
        result = train(cfg, sentences=verses, backbones=backbones)
        runs[low_memory] = (load_file(f"{result.last_checkpoint}/model.safetensors"), result.history)
    (plain, plain_history), (low, low_history) = runs[False], runs[True]
    assert plain.keys() == low.keys() and len(plain) > 10
    assert all(torch.equal(plain[k], low[k]) for k in plain)
    assert [r["train_loss"] for r in plain_history] == [r["train_loss"] for r in low_history]
    # the shared backbones come back unpatched: their layers' forward is the class's again
    assert not any("forward" in vars(m) for m in backbones.llm.modules())


def test_checkpointed_layers_are_recomputed_and_predictions_unchanged(monkeypatch):
    from tall_model import load
    from tall_model.predict import predict

    model = load("tiny")
    before = predict(model, "ויהי דבר יהוה אל יונה", translations="And the word of the LORD came to Jonah")
    calls = []
    layer_class = type(model.llm.base_model.h[0])
    original = layer_class.forward

    def counted(self, *args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(layer_class, "forward", counted)
    llm_layers = model.llm.config.num_hidden_layers
    layers = model.checkpoint_layers()
    assert layers == llm_layers + len(model.bridge_in.layers) + len(model.bridge_out.layers)
    assert model.layer_checkpointing
    model.train()
    batch = model.make_batch(["ויהי דבר יהוה"], ["And the word of the LORD"], ["אל"])
    model(batch).loss.backward()
    assert calls == [True] * (2 * llm_layers)  # once forward, once recomputed in backward
    model.eval()
    after = predict(model, "ויהי דבר יהוה אל יונה", translations="And the word of the LORD came to Jonah")
    assert (after.word, [c.prob for c in after.candidates]) == (before.word, [c.prob for c in before.candidates])


def test_freed_memory_setting_is_accepted_by_glibc():
    # in a fresh process (mallopt is process-wide); the full-size effect is measured by bench_paper --stage train
    script = "from tall_model.memory import release_free_memory, return_freed_memory; print(return_freed_memory(), release_free_memory())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True" and out[1] in ("True", "False")  # trim: whether anything was left to give back

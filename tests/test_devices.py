"""--device and --dtype: a clear error for CUDA without a GPU in every command; frozen backbones in bf16 with fp32
trainable parts on the CPU (the path a GPU run takes with --dtype bf16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tall_model import load
from tall_model.load import DeviceError, resolve_device
from tall_model.predict import predict

REPO = Path(__file__).resolve().parent.parent
NO_GPU = "torch sees no CUDA GPU here"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without CUDA gives")
@pytest.mark.parametrize("command", [
    ["-m", "tall_model", "--preset", "tiny", "--device", "cuda", "ויהי"],
    ["-m", "training.train", "--preset", "tiny", "--data", "missing.txt", "--device", "cuda"],
    ["-m", "evaluation.evaluate", "--data", "missing.txt", "--device", "cuda"],
])
def test_cuda_without_a_gpu_is_one_clear_line(command):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and NO_GPU in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without CUDA gives")
def test_the_app_refuses_cuda_without_a_gpu_in_one_line():
    from tall_app.service import AppService

    with pytest.raises(DeviceError, match=NO_GPU):
        AppService("tiny", device="cuda")


def test_device_and_dtype_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="dtype must be one of"):
        load("tiny", dtype="int3")


def test_bf16_backbones_keep_fp32_trainable_parts_and_train():
    model = load("tiny", dtype="bf16", device="cpu")
    assert model.llm.dtype == torch.bfloat16 and model.hr_lr.dtype == torch.bfloat16
    assert {p.dtype for p in model.trainable_parameters()} == {torch.float32}
    result = predict(model, "ויהי דבר יהוה אל יונה", decoding=model.config.decoding.replace(
        translation_max_new_tokens=6))
    assert result.word and result.candidates
    model.train()
    batch = model.make_batch(["ויהי דבר"], ["And the word"], ["יהוה"])
    loss = model(batch).loss
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.align_in.parameters())

"""Opt-in int8 for CPU inference (`load(..., quantize="int8")`, `--quantize int8` in the app and the CLI).

The frozen backbones' linear layers become dynamically quantised int8 layers (int8 weights, activations quantised
per call; torch.ao's fbgemm/x86 kernels): the he→en translator's encoder and decoder, the LLM body and head, and
the en→he decoder. Embeddings, the en→he head and every trainable part stay fp32. When CTranslate2 writes the he→en text
(`translation_engine="ctranslate2"`) it computes in int8 too. Not exact: benchmarks/RESULTS.md reports the
agreement of predicted words with fp32 next to the time saved.

Inference only: torch has no backward for quantised linear layers (it returns no gradient and only warns), so
training refuses quantised backbones (training.train.build_model).
"""

from __future__ import annotations

import gc
import warnings

import torch

from .memory import release_free_memory

QUANTIZE_MODES = ("none", "int8")


class QuantizeError(ValueError):
    """A quantisation that cannot be used here (not on the CPU, not fp32 backbones, an unknown mode)."""


def check_mode(mode: str | None, device: torch.device | None = None, dtype: torch.dtype | None = None) -> str | None:
    """None for no quantisation; else the mode, if known and usable with that device and backbone dtype."""
    if mode in (None, "", "none"):
        return None
    if mode not in QUANTIZE_MODES:
        raise QuantizeError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}; got {mode!r}")
    if (device is not None and torch.device(device).type != "cpu") or dtype not in (None, torch.float32):
        raise QuantizeError(f"--quantize {mode} is for fp32 backbones on the CPU, not {dtype or 'fp32'} on "
                            f"{device}: drop --quantize, or use --device cpu without --dtype")
    return mode


def quantize_model(role: str, model, mode: str | None):
    """Quantise one frozen backbone in place (the parts of it TALL runs; see the module docstring) and return it;
    the memory its fp32 weights held goes back to the system. `role`: lr_hr_translator, llm or hr_lr_translator."""
    if check_mode(mode) is None:
        return model
    weight = model.get_input_embeddings().weight  # stays a float parameter after quantising
    check_mode(mode, weight.device, weight.dtype)
    bodies = {"lr_hr_translator": lambda m: [m.get_encoder(), m.get_decoder()],
              "llm": lambda m: [m.base_model], "hr_lr_translator": lambda m: [m.get_decoder()]}[role](model)
    with warnings.catch_warnings():
        # torch.ao's eager quantisation is deprecated in favour of torchao (not installed here); it still works in
        # the pinned torch, and its notices are the same on every load (benchmarks/RESULTS.md, issue 10)
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor.* are deprecated")
        for body in bodies:
            torch.ao.quantization.quantize_dynamic(body, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        if role == "llm":
            # its head too: predict reads the top English tokens, and in fp32 that one product reads the whole
            # 250k x 1024 matrix (1 GB for bloomz) per request; the en→he head stays fp32 (predict reads its size)
            head = next(name for name, module in model.named_modules() if module is model.get_output_embeddings())
            torch.ao.quantization.quantize_dynamic(model, {head}, dtype=torch.qint8, inplace=True)
    gc.collect()  # the replaced fp32 layers sit in reference cycles: without this their memory stays held
    release_free_memory()
    return model


def quantize_backbones(backbones, mode: str | None):
    """Quantise loaded backbones in place (once; a second call is a no-op) and return them. Their dims() are fixed
    first, so checkpoints trained on the fp32 backbones still fit them. (load_backbones(..., quantize=) quantises
    each model as it loads instead: a lower peak.)"""
    if check_mode(mode) is None or backbones.quantized == mode:
        return backbones
    fixed = backbones.dims()
    for role, model in (("lr_hr_translator", backbones.lr_hr), ("llm", backbones.llm),
                        ("hr_lr_translator", backbones.hr_lr)):
        quantize_model(role, model, mode)
    backbones.fixed_dims, backbones.quantized = fixed, mode
    return backbones

"""One way to get a TALL model: `load(preset, config or checkpoint)`, used by the CLI, the app, training, evaluation
and the approach registry.

What a load may change is the LOAD_TIME list of the config (decoding) and where the model lives (device, dtype of
the frozen backbones); everything that shapes the forward pass comes from the preset or the checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .backbones import load_backbones
from .checkpoint import CheckpointError, from_pretrained
from .config import PRESETS, TallConfig, demo_dir, portable, preset_config
from .decoding import Decoding
from .hub import looks_like_repo_id, resolve_checkpoint_repo
from .model import TallModel
from .quantize import check_mode, quantize_backbones
from .translate import check_engine

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def shipped_checkpoint(preset: str) -> Path | None:
    """The trained adapters a preset ships with, if any (only the demo does)."""
    path = demo_dir() / "tall"
    return path if preset == "demo" and (path / "config.json").is_file() else None


class DeviceError(ValueError):
    """A device or dtype that cannot be used here (CUDA asked for without a GPU, an unknown dtype)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`auto` (or None): CUDA when present, else the CPU. Asking for CUDA without it is a clear error."""
    name = str(device or "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} was asked for, but torch sees no CUDA GPU here; use --device cpu")
    return torch.device(name)


def default_threads(requested: int = 0) -> int:
    """Torch CPU threads for the app and the prediction CLI: `requested` when it is > 0; else 1 on a machine with at
    most 2 cores, else torch's default. Measured at full size on 2 shared cores (benchmarks/RESULTS.md, issue 10):
    a paper-bloomz Predict request took 2.7 s with 1 thread and 18.5 s with 2 while another process kept one core
    busy (torch's second thread waits on a busy core); a free 2-vCPU Space shares its cores the same way."""
    if requested > 0:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores <= 2 else torch.get_num_threads()


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise DeviceError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return DTYPES[dtype]


def load(source: str | Path | TallConfig = "demo", *, backbones=None, device=None, dtype=None,
         decoding: Decoding | None = None, seed: int = 0, translation_engine: str = "transformers",
         quantize: str | None = None) -> TallModel:
    """A TALL model in eval mode, with `model.source` saying what was loaded.

    source: a preset name (its shipped adapters if it has them, else fresh ones), a TallConfig (fresh
      adapters initialised from `seed`), an adapter checkpoint directory, or the Hub repo id of one
      (`owner/name`, from the local Hugging Face cache when offline; tall_model.hub).
    backbones: loaded Backbones to reuse, or a function TallConfig → Backbones (the app's cache).
    dtype: of the frozen backbones (default fp32); the trainable parts stay fp32.
    translation_engine: what writes the he→en text (transformers, or the opt-in ctranslate2: tall_model.translate_ct2).
    quantize: "int8" for CPU inference with int8 frozen backbones (tall_model.quantize; not exact, inference only).
      Backbones passed in are quantised in place: every model sharing them becomes int8.
    """
    check_engine(translation_engine)
    dtype, quantize = resolve_dtype(dtype), check_mode(quantize)
    if isinstance(source, str) and source in PRESETS:
        shipped = shipped_checkpoint(source)
        source = shipped if shipped is not None else preset_config(source)
    if isinstance(source, TallConfig):
        config = source if decoding is None else source.replace(decoding=decoding)
        if callable(backbones):
            backbones = backbones(config)
        backbones = backbones or load_backbones(config, dtype=dtype, quantize=quantize)  # quantised as each loads
        with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
            torch.manual_seed(seed)
            model = TallModel(config, backbones)
        model.source = f"preset {config.preset} with untrained adapters (seed {seed})"
    else:
        repo_id = str(source) if isinstance(source, str) and looks_like_repo_id(source) else None
        if repo_id:
            source = resolve_checkpoint_repo(repo_id)
        if not Path(source).is_dir():
            raise CheckpointError(f"{str(source)!r} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint "
                                  "directory.")
        model = from_pretrained(source, backbones=backbones, dtype=dtype, decoding=decoding)
        model.source = f"adapters from {repo_id or portable(str(source))} on preset {model.config.preset}"
    model.translation_engine = translation_engine
    model = model.to(resolve_device(device)).eval()
    quantize_backbones(model.backbones, quantize)
    return model

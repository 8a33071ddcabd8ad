"""Adapter checkpoints in PEFT's spirit: only the trainable tensors (safetensors), config.json and a model card.

Loading never unpickles, checks the backbones and every dimension, and refuses any mismatch with a message
that names both sides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .backbones import ROLES, Backbones, load_backbones
from .config import TallConfig, portable
from .decoding import Decoding
from .model import TallModel
from .params import parameter_report

FORMAT = "tall-adapters"
FORMAT_VERSION = 2  # 2: decoding as one object, backbone fingerprints; 1 is still read
WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or does not fit the backbones it is loaded onto."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, quota, permissions); the previous one was left as it was."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno  # ENOSPC, EDQUOT, EACCES...: kept for callers that test it


def write_failure(err: OSError | SafetensorError, directory: Path) -> CheckpointWriteError:
    """The failure `err` of writing `directory`, said plainly. safetensors reports a full disk as a SafetensorError
    ("I/O error: No space left on device (os error 28)"), not an OSError: its errno is read back from the text."""
    if isinstance(err, OSError):
        why, code = err.strerror or str(err), err.errno
    else:
        found = re.search(r"I/O error: (.*?) \(os error (\d+)\)", str(err))
        why, code = (found.group(1), int(found.group(2))) if found else (str(err), None)
    return CheckpointWriteError(f"could not write the checkpoint {directory.name}/ ({why}); the previous "
                                f"{directory.name}/, if any, is intact", code)


def save_pretrained(model: TallModel, directory, *, dtype: torch.dtype | None = None,
                    extra: dict | None = None) -> Path:
    """Write model.safetensors (trainable tensors only), config.json and README.md, atomically: a crash
    mid-write leaves the previous checkpoint, never half a new one."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in model.trainable_state_dict().items()}
    config = model.config.to_dict()
    for key in ROLES:
        config[key] = portable(config[key])
    report = parameter_report(model)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config,
            "backbone_fingerprints": model.backbones.fingerprints(),
            "backbone_revisions": model.backbones.revisions(),
            "backbone_dims": model.backbones.dims(), "parameters": report.as_dict(),
            "dtype": str(dtype or next(iter(tensors.values())).dtype).replace("torch.", "")}
    if extra:
        meta["extra"] = extra
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; a checkpoint is meant to be shared
    try:
        save_file(tensors, str(staging / WEIGHTS), metadata={"format": FORMAT})
        (staging / CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        (staging / CARD).write_text(model_card(meta, report), encoding="utf-8")
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            directory.rename(old)
        staging.rename(directory)
        if old is not None:
            shutil.rmtree(old)
    except CheckpointWriteError:
        raise
    except (OSError, SafetensorError) as err:
        raise write_failure(err, directory) from err
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return directory


def model_card(meta: dict, report) -> str:
    cfg = meta["config"]
    extra = meta.get("extra") or {}
    prints = meta.get("backbone_fingerprints") or {}
    revisions = meta.get("backbone_revisions") or {}

    def backbone(role: str) -> str:
        at = f" at revision `{revisions[role]}`" if revisions.get(role) else ""
        return f"`{cfg[role]}`{at} ({prints.get(role, '?')})"

    lines = [
        "---", "library_name: tall", "language: [he, en]", "tags: [tall, hebrew, adapters]", "---", "",
        f"# TALL adapters ({cfg['preset']})", "",
        "Trainable parts (alignment adapters and bridges) of TALL (arXiv 2506.05057) for predicting the next "
        "Hebrew word. Only these tensors are stored; the frozen backbones are loaded from:", "",
        f"- LR→HR translator (he→en): {backbone('lr_hr_translator')}",
        f"- LLM: {backbone('llm')}",
        f"- HR→LR translator (en→he): {backbone('hr_lr_translator')}", "",
        "The fingerprints (tall_model.fingerprint) identify the backbones by content; loading refuses others.", "",
        f"Task framing: `{cfg['framing']}`, loss: `{cfg['loss']}`, bridge-in: `{cfg['bridge_in_mode']}`"
        f"{', LLM bypassed' if cfg['bypass_llm'] else ''}.", "",
        "## Parameters", "", "```", str(report), "```", "",
    ]
    if extra:
        lines += ["## Training", "", "```json", json.dumps(extra, indent=2, ensure_ascii=False)[:4000], "```", ""]
    lines += ["## Use", "", "```python", "from tall_model import load",
              "from tall_model.predict import predict", "model = load('PATH')",
              "print(predict(model, 'בראשית ברא אלהים את').word)", "```", ""]
    return "\n".join(lines)


def read_checkpoint_config(directory) -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"No checkpoint directory at {directory}.")
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory} is not a TALL checkpoint: {name} is missing.")
    try:
        meta = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{directory / CONFIG} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{directory / CONFIG} is not a TALL adapter config (format {FORMAT!r} expected).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{directory} was written by a newer version (format {meta['format_version']}).")
    return meta


def check_backbones(meta: dict, backbones: Backbones, config: TallConfig) -> None:
    """The checkpoint's backbones are the loaded ones: same content fingerprints (format 2) and dimensions."""
    saved = meta.get("backbone_fingerprints") or {}
    loaded = backbones.fingerprints() if saved else {}
    problems = [f"{ROLES[role]} is {saved[role]} in the checkpoint ({getattr(config, role)!r}) but "
                f"{loaded.get(role)} as loaded from {str(backbones.folders.get(role))!r}"
                for role in saved if loaded.get(role) != saved[role]]
    if problems:
        raise CheckpointError("This checkpoint was trained on other backbones: " + "; ".join(problems) + ".")
    check_dims(meta.get("backbone_dims", {}), backbones.dims(), config)


def check_dims(expected: dict, actual: dict, config: TallConfig) -> None:
    owner = {"lr_hr": config.lr_hr_translator, "llm": config.llm, "hr_lr": config.hr_lr_translator}
    problems = [f"{key} is {value} in the checkpoint but {actual.get(key)} in the loaded backbone "
                f"{owner[key[:5] if key[:5] in owner else 'llm']!r}"
                for key, value in expected.items() if value != actual.get(key)]
    if problems:
        raise CheckpointError("This checkpoint was trained for other backbones: " + "; ".join(problems) + ".")


def load_tensors(model: TallModel, path: Path) -> None:
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    expected = model.trainable_state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match this model's trainable parts: "
                              f"missing {missing[:8]}{'…' if len(missing) > 8 else ''}, "
                              f"unexpected {unexpected[:8]}{'…' if len(unexpected) > 8 else ''}.")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"{path}: tensor {key} has shape {tuple(value.shape)} in the checkpoint but "
                                  f"{tuple(expected[key].shape)} in the model.")
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(tensors[key].to(target.dtype))


def checkpoint_config(directory, meta: dict | None = None) -> TallConfig:
    """The TallConfig a checkpoint was trained with."""
    meta = meta or read_checkpoint_config(directory)
    try:
        return TallConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{Path(directory) / CONFIG} has an invalid TALL config: {err}") from err


def from_pretrained(directory, backbones=None, dtype: torch.dtype | None = None,
                    decoding: Decoding | None = None) -> TallModel:
    """Load an adapter checkpoint onto its backbones.

    `backbones`: already loaded Backbones, or a function config → Backbones (a cache), or None to load the ones
    the checkpoint names. Only LOAD_TIME fields (decoding) may differ from the saved config."""
    directory = Path(directory)
    meta = read_checkpoint_config(directory)
    config = checkpoint_config(directory, meta)
    if decoding is not None:
        config = config.replace(decoding=decoding)
    if callable(backbones):
        backbones = backbones(config)
    backbones = backbones or load_backbones(config, dtype=dtype)
    check_backbones(meta, backbones, config)
    model = TallModel(config, backbones)
    load_tensors(model, directory / WEIGHTS)
    model.directory = directory  # where its own files (a word list, a prior) may lie: checkpoint_file
    return model.eval()


def checkpoint_file(model, name: str) -> Path | None:
    """A file `name` that belongs to a loaded checkpoint: in its folder, else in the folder above it (a training
    run's, which holds best/ and last/; the demo's, which holds tall/). None for fresh adapters or no such file."""
    directory = getattr(model, "directory", None)
    if directory is None:
        return None
    return next((f for f in (directory / name, directory.parent / name) if f.is_file()), None)

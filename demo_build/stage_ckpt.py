"""Mid-stage checkpoints of the backbone stages (translators, LM): weights, AdamW tensors and the torch RNG state in
safetensors, the loop's state in JSON (no pickle), so a resumed stage continues the same run (same batches, same
dropout masks) to the same step budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from tall_data.files import write_json
from training.train_state import load_optimizer_state, optimizer_state, replace_dir


def save_stage_ckpt(directory: Path, model, opt, state: dict) -> None:
    """Written beside and swapped in, so a crash mid-save keeps the previous checkpoint."""
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():  # left over by a crash during an earlier save
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))  # save_model handles tied embedding matrices
    tensors, info = optimizer_state(opt)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    save_file({"torch_cpu": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    write_json(tmp / "state.json", {"state": state, "optimizer": info})
    replace_dir(tmp, directory)


class StaleCheckpointError(RuntimeError):
    """A mid-stage checkpoint was written for other training data: resuming it would mix two runs."""


def load_stage_ckpt(directory: Path, model, opt, data_size: int | None = None) -> dict:
    """Restores model, optimizer and RNG in place; returns the loop state.  data_size: the number of training items
    of this run; a checkpoint saved with another number raises StaleCheckpointError (nothing is deleted)."""
    meta = json.loads((directory / "state.json").read_text())
    saved = meta["state"].get("data_size")
    if data_size is not None and saved is not None and saved != data_size:
        raise StaleCheckpointError(
            f"{directory} was saved while training on {saved} items, this run has {data_size} (other data, e.g. "
            f"another --versions-for): remove {directory} to start this stage afresh, or restore the old data")
    load_model(model, str(directory / "model.safetensors"))
    load_optimizer_state(opt, load_file(str(directory / "optimizer.safetensors")), meta["optimizer"])
    if (directory / "rng.safetensors").exists():
        torch.set_rng_state(load_file(str(directory / "rng.safetensors"))["torch_cpu"])
    return meta["state"]

"""Resumable training checkpoints: the weights plus everything else that "2N steps == N steps, stop, resume N"
needs (optimizer moments, scheduler, RNG states, epoch/step/position in the epoch's shuffle).

Layout of ``<run>/last/`` (nothing is pickled anywhere):

    model.safetensors, config.json, README.md   save_pretrained(): trainable tensors only, loadable by from_pretrained
    optimizer.safetensors                       AdamW tensors (moments, step counts), keyed state.<param index>.<name>
    trainer_state.json                          TrainConfig, step/epoch/position, scheduler, best metric, history
                                                accumulator, optimizer param_groups (plain JSON)
    rng-<rank>.safetensors / rng-<rank>.json    per process: torch (and CUDA) RNG tensors; python and numpy states

Why safetensors + JSON rather than torch.save: loading a pickle can run arbitrary code, so a checkpoint downloaded
from someone else would be a security risk; this format can at worst hold wrong numbers.

The whole directory is written next to ``last/`` and swapped in with renames, so a crash mid-save leaves the previous
resumable checkpoint intact, never a mix of an old optimizer with new weights.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tall_data.files import write_json
from tall_model.checkpoint import CheckpointError, CheckpointWriteError, save_pretrained, write_failure

OPTIMIZER = "optimizer.safetensors"
STATE = "trainer_state.json"
STATE_VERSION = 1


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split optimizer.state_dict() into tensors (for safetensors) and the JSON-safe rest."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, per_param in sd["state"].items():
        for name, value in per_param.items():
            key = f"state.{index}.{name}"
            if torch.is_tensor(value):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(info["scalars"].items()):
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()["param_groups"]
    if len(current) != len(info["param_groups"]):
        raise CheckpointError(f"the optimizer has {len(current)} parameter groups, the checkpoint "
                              f"{len(info['param_groups'])}")
    # JSON turned tuples (AdamW's betas) into lists; give them back their type
    groups = [{k: tuple(v) if isinstance(cur.get(k), tuple) else v for k, v in saved.items()}
              for cur, saved in zip(current, info["param_groups"])]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --------------------------------------------------------------------------- RNG

def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    info = {"python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    return tensors, info


def set_rng_state(tensors: dict[str, torch.Tensor], info: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = info["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = info["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# --------------------------------------------------------------------------- save / load

def save_resumable(accelerator, model, optimizer, directory, state: dict, extra: dict) -> Path:
    """Write a resumable checkpoint to `directory` from every process (each adds its own RNG state).

    Must be called by all processes together: it synchronises them with barriers."""
    directory = Path(directory)
    staging = directory.with_name(f".{directory.name}.staging")
    rank = accelerator.process_index
    accelerator.wait_for_everyone()
    try:
        if accelerator.is_main_process:
            if staging.exists():  # left over by a crash during an earlier save
                shutil.rmtree(staging)
            save_pretrained(model, staging, extra=extra)
            tensors, info = optimizer_state(optimizer)
            save_file(tensors, str(staging / OPTIMIZER))
            write_json(staging / STATE, {"version": STATE_VERSION, **state, "optimizer": info,
                                         "num_processes": accelerator.num_processes})
        accelerator.wait_for_everyone()
        tensors, info = rng_state()
        save_file(tensors, str(staging / f"rng-{rank}.safetensors"))
        write_json(staging / f"rng-{rank}.json", info)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            replace_dir(staging, directory)
    except (OSError, SafetensorError) as err:  # full disk, quota: free the half-written copy; `directory` is intact
        shutil.rmtree(staging, ignore_errors=True)
        raise (err if isinstance(err, CheckpointWriteError) else write_failure(err, directory)) from err
    accelerator.wait_for_everyone()
    return directory


def replace_dir(staging: Path, directory: Path) -> None:
    """Swap a fully written `staging` directory in for `directory` with renames: a crash leaves either the previous
    directory or the new one (or the previous one under .<name>.old), never a mix."""
    old = directory.with_name(f".{directory.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    if old.exists():
        shutil.rmtree(old)


def read_trainer_state(directory) -> dict:
    """trainer_state.json of a resumable checkpoint, with a message that says what is wrong if it is not one."""
    directory = Path(directory)
    path = directory / STATE
    if not path.is_file():
        old = directory.with_name(f".{directory.name}.old")
        hint = f" A save was interrupted: the previous checkpoint is in {old}." if old.is_dir() else ""
        raise CheckpointError(f"{directory} is not a resumable checkpoint ({STATE} is missing; only `last/` "
                              f"checkpoints written by training.train can be resumed).{hint}")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path} has trainer-state version {state.get('version')}, expected {STATE_VERSION}")
    return state


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is missing or not a readable safetensors file: {err}") from err


def restore_optimizer(directory, optimizer, state: dict) -> None:
    load_optimizer_state(optimizer, _load_safetensors(Path(directory) / OPTIMIZER), state["optimizer"])


def restore_rng(directory, rank: int) -> bool:
    """Restore this process's RNG state; False when the checkpoint has none for it (other process count)."""
    directory = Path(directory)
    if not (directory / f"rng-{rank}.safetensors").is_file():
        return False
    info = json.loads((directory / f"rng-{rank}.json").read_text(encoding="utf-8"))
    set_rng_state(_load_safetensors(directory / f"rng-{rank}.safetensors"), info)
    return True

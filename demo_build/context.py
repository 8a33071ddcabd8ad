"""What every build stage shares: the BuildContext (arguments, folders, metrics.json, the training-file list), the
Stage record, the build seed and a folder-size helper."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tall_model.config import TallConfig, on_backbones, preset_config

SEED = 1234
REPO = Path(__file__).resolve().parent.parent


@dataclass
class BuildContext:
    """One build: its parsed arguments, the work folder (build/demo: data, tokenizers, mid-stage checkpoints,
    caches) and the output folder (checkpoints/demo: what ships)."""

    args: argparse.Namespace
    workdir: Path
    out: Path
    seed: int = SEED

    def log(self, msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    def add_metrics(self, update: dict, replace: bool = False) -> None:
        """Merge into checkpoints/demo/metrics.json (one level deep: a stage's dict updates the stored one; with
        `replace`, it takes the stored one's place, so no field of an earlier run of the stage is left behind)."""
        merge_json(self.out / "metrics.json", update, replace)

    def metrics(self) -> dict:
        return read_json(self.out / "metrics.json")

    def add_training_files(self, paths) -> None:
        """Files a training stage read; they go into split_manifest.json."""
        path = self.workdir / "training_files.json"
        current = set(read_json(path, [])) | {repo_relative(p) for p in paths}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sorted(current), indent=1))

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def marian_tok_dir(self) -> Path:
        return self.workdir / "tok" / "marian"

    @property
    def lm_tok_dir(self) -> Path:
        return self.workdir / "tok" / "lm"

    def tall_config(self) -> TallConfig:
        """The TALL stages' model config: --tall-preset's, on the backbones --out holds (what this build trained or
        copied there) in place of the preset's, so TALL is trained and scored on the build's own backbones."""
        return on_backbones(preset_config(self.args.tall_preset), self.out)

    @property
    def backbone_dir(self) -> Path | None:
        """--out when it holds backbones other than the preset's (the `backbone_dir` of evaluate and the
        baselines), else None: the shipped build's commands stay `--preset demo`."""
        return self.out if self.tall_config() != preset_config(self.args.tall_preset) else None

    def preset_args(self) -> list:
        """The command-line options that name the TALL stages' backbones."""
        return ["--preset", self.args.tall_preset, *(["--backbone-dir", self.out] if self.backbone_dir else [])]

    def thread_options(self) -> tuple[int, ...]:
        """--threads N: train with N threads; --adaptive-threads also probes 1 thread (shared machine)."""
        return (self.args.threads, 1) if self.args.adaptive_threads else (self.args.threads,)


@dataclass
class Stage:
    """A build step: `run(ctx)` returns what goes into build_log.json; it is skipped when its done-marker and all
    its `outputs(ctx)` exist."""

    name: str
    run: Callable[[BuildContext], dict | None]
    outputs: Callable[[BuildContext], list] = field(default=lambda ctx: [])
    help: str = ""


def read_json(path: Path, default=None):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else ({} if default is None else default)


def merge_json(path: Path, update: dict, replace: bool = False) -> None:
    data = read_json(path)
    for key, value in update.items():
        if not replace and isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def repo_relative(path) -> str:
    """`path` relative to the repository when it is inside it (so written files hold no machine's path)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def machine() -> str:
    """The CPU a stage ran on, e.g. "AMD EPYC 7B13, 2 cores, AVX2": a stage's minutes mean little without it (the
    machines we are lent differ by about 2x on the same steps, benchmarks/RESULTS.md)."""
    names = [line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")]
    return f"{names[0] if names else platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores, " \
           f"{torch.backends.cpu.get_cpu_capability()}"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux
        return ""


def dir_mb(path: Path) -> float:
    """Size of every file under `path`, in MB (0.0 when it does not exist)."""
    if not path.exists():
        return 0.0
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 2)


def seed_everything(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

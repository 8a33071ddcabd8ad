"""One entry point for the CLI and the app: a preset, optionally with an adapter checkpoint."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import from_pretrained
from .config import demo_dir, preset_config
from .model import TallModel


def default_checkpoint(preset: str) -> Path | None:
    """The shipped adapters of a preset, if any (only the demo ships trained adapters)."""
    path = demo_dir() / "tall"
    return path if preset == "demo" and (path / "config.json").is_file() else None


def load_model(preset: str = "demo", checkpoint: str | Path | None = None, **overrides) -> tuple[TallModel, str]:
    """(model, a one-line description). Without a checkpoint the adapters are freshly initialised (seeded),
    which is only useful for tests and for training."""
    checkpoint = checkpoint or default_checkpoint(preset)
    if checkpoint is not None:
        model = from_pretrained(checkpoint, **overrides)
        return model, f"adapters from {checkpoint} on preset {model.config.preset}"
    config = preset_config(preset).replace(**overrides)
    return TallModel.from_config(config).eval(), f"preset {preset} with untrained adapters (seed {config.seed})"

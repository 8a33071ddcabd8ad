"""The models the Predict and Compare tabs use, loaded once and kept.

Backbones are cached per (he→en, LLM, en→he) triple, so switching between checkpoints of one preset only builds
the small trainable parts and loads their tensors. Each loaded model keeps its he→en translations (the frozen
translation depends only on the prefix). A model being trained lives in the training thread and never here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tall_model.checkpoint import CheckpointError, from_pretrained, read_checkpoint_config
from tall_model.config import REPO_ROOT, demo_dir, preset_config
from tall_model.model import TallModel

from .paths import CHECKPOINTS_ROOT, resolve_checkpoint

APP_PRESETS = ("demo", "tiny", "tiny-qwen", "mid")  # the presets that work offline (local backbones)
NO_CHECKPOINT = "(none: untrained adapters)"
TRANSLATION_CACHE_SIZE = 512


def demo_available(directory: Path | None = None) -> bool:
    """The shipped demo is usable: its adapters and its three backbones are all there."""
    directory = Path(directory or demo_dir())
    return all((directory / sub / "config.json").is_file() for sub in ("tall", "he-en", "lm", "en-he"))


def choose_preset(requested: str, demo_directory: Path | None = None) -> tuple[str, str]:
    """(preset to use, notice for the UI). `demo` falls back to `tiny` while checkpoints/demo/ is not built."""
    if requested not in APP_PRESETS:
        raise ValueError(f"Unknown preset {requested!r} for the app; choose one of {', '.join(APP_PRESETS)}.")
    if requested == "demo" and not demo_available(demo_directory):
        return "tiny", ("The demo model (checkpoints/demo/tall) is not built yet, so the app uses the **tiny** "
                        "preset: random weights, so its predictions are noise. Build the demo with "
                        "`python -m training.build_demo`, or train adapters in the Train tab.")
    return requested, ""


def available_presets() -> list[str]:
    return [p for p in APP_PRESETS if p != "demo" or demo_available()]


def _resolved(name: str) -> str:
    for candidate in (Path(name).expanduser(), REPO_ROOT / name):
        if candidate.is_dir():
            return str(candidate.resolve())
    return name


def backbone_key(config) -> tuple[str, str, str]:
    return (_resolved(config.lr_hr_translator), _resolved(config.llm), _resolved(config.hr_lr_translator))


@dataclass
class LoadedModel:
    model: TallModel
    description: str
    preset: str
    checkpoint: str | None
    translations: OrderedDict = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def translation(self, prefix_used: str) -> str:
        """The he→en translation of an (already fitted) prefix, translated once."""
        from tall_model.translate import translate

        with self.lock:
            if prefix_used in self.translations:
                self.translations.move_to_end(prefix_used)
                return self.translations[prefix_used]
        english = translate(self.model, [prefix_used])[0]
        with self.lock:
            self.translations[prefix_used] = english
            while len(self.translations) > TRANSLATION_CACHE_SIZE:
                self.translations.popitem(last=False)
        return english


class ModelCache:
    """Thread-safe cache of loaded models keyed by (preset, checkpoint name, checkpoint mtime).

    `overrides` are decoding settings applied to every model (tests shorten translations with them)."""

    def __init__(self, root: Path | None = None, overrides: dict | None = None, max_models: int = 4,
                 max_backbones: int = 2):
        self.root = Path(root or CHECKPOINTS_ROOT)
        self.overrides = dict(overrides or {})
        self.max_models, self.max_backbones = max_models, max_backbones
        self._models: OrderedDict = OrderedDict()
        self._backbones: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        self._loading: dict = {}

    def _backbones_for(self, config):
        from tall_model.backbones import load_backbones

        key = backbone_key(config)
        with self._lock:
            if key in self._backbones:
                self._backbones.move_to_end(key)
                return self._backbones[key]
        backbones = load_backbones(config)
        with self._lock:
            self._backbones[key] = backbones
            while len(self._backbones) > self.max_backbones:
                self._backbones.popitem(last=False)
        return backbones

    def _key(self, preset: str, checkpoint: str | None):
        if checkpoint:
            info = resolve_checkpoint(checkpoint, self.root)
            return (preset, info.name, info.mtime), info
        return (preset, None, 0.0), None

    def get(self, preset: str, checkpoint: str | None = None) -> LoadedModel:
        """The model for a preset (untrained adapters) or for a listed checkpoint on that preset.

        Raises ValueError (CheckpointError for a checkpoint that is corrupt or made for other backbones)."""
        if preset not in APP_PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(APP_PRESETS)}.")
        if checkpoint in ("", NO_CHECKPOINT):
            checkpoint = None
        key, info = self._key(preset, checkpoint)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            event = self._loading.get(key)
            owner = event is None
            if owner:
                event = self._loading[key] = threading.Event()
        if not owner:  # another request is loading the same model: wait for it
            event.wait()
            with self._lock:
                if key in self._models:
                    return self._models[key]
            return self.get(preset, checkpoint)
        try:
            loaded = self._load(preset, info)
            with self._lock:
                self._models[key] = loaded
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            return loaded
        finally:
            with self._lock:
                self._loading.pop(key, None)
            event.set()

    def _load(self, preset: str, info) -> LoadedModel:
        if preset == "demo" and not demo_available():
            raise ValueError("The demo model (checkpoints/demo/) is not built yet; choose the tiny preset.")
        config = preset_config(preset).replace(**self.overrides)
        if info is None:
            backbones = self._backbones_for(config)
            with torch.random.fork_rng(devices=[]):  # seeded init without disturbing a training thread's RNG
                torch.manual_seed(config.seed)
                model = TallModel(config, backbones).eval()
            return LoadedModel(model, f"preset {preset} with untrained adapters (seed {config.seed})", preset, None)
        meta = read_checkpoint_config(info.path)
        saved = meta.get("config") or {}
        theirs = tuple(_resolved(str(saved.get(k, ""))) for k in ("lr_hr_translator", "llm", "hr_lr_translator"))
        if theirs != backbone_key(config):
            raise CheckpointError(
                f"The checkpoint {info.name!r} was trained on preset {saved.get('preset', 'custom')!r} "
                f"(other backbones), but the selected preset is {preset!r}. Select preset "
                f"{saved.get('preset', 'custom')!r} to use it, or choose another checkpoint.")
        backbones = self._backbones_for(config)
        model = from_pretrained(info.path, backbones=backbones, **self.overrides)
        return LoadedModel(model, f"adapters {info.name} on preset {preset}", preset, info.name)

    def evict_checkpoint(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._models if k[1] == name]:
                del self._models[key]

    def loaded_keys(self) -> list[tuple]:
        with self._lock:
            return list(self._models)

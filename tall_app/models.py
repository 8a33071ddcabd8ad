"""The models the Predict and Compare tabs use, loaded once and kept.

Every model comes from `tall_model.load`, with this cache as its backbones provider: backbones are cached by the
content fingerprints of the three folders a config names (`config_fingerprints`), so switching between checkpoints
of one preset only builds the small trainable parts and loads their tensors, however the folders are spelled. Each
loaded model keeps its he→en translations (the frozen translation depends only on the prefix). A model being
trained lives in the training thread and never here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from tall_model import Decoding, TallModel, load
from tall_model.backbones import ROLES, BackboneNotFoundError, config_fingerprints, load_backbones, resolve_source
from tall_model.checkpoint import CheckpointError, checkpoint_config, read_checkpoint_config
from tall_model.config import TallConfig, demo_dir, preset_config
from tall_model.load import resolve_device, resolve_dtype
from tall_model.quantize import check_mode
from tall_model.translate import check_engine, translate

from .paths import CHECKPOINTS_ROOT, CheckpointInfo, resolve_checkpoint

APP_PRESETS = ("demo", "tiny", "tiny-qwen", "mid", "paper-bloomz", "paper-qwen")
HUB_PRESETS = ("paper-bloomz", "paper-qwen")  # backbones by hub id: usable when they resolve (cache or hub)
NO_CHECKPOINT = "(none: untrained adapters)"
TRANSLATION_CACHE_SIZE = 512
INIT_SEED = 0  # untrained adapters are initialised from this seed, so "untrained" is the same model every time


def demo_available(directory: Path | None = None) -> bool:
    """The shipped demo is usable: its adapters and its three backbones are all there."""
    directory = Path(directory or demo_dir())
    return all((directory / sub / "config.json").is_file() for sub in ("tall", "he-en", "lm", "en-he"))


def preset_unavailable(preset: str, demo_directory: Path | None = None) -> str | None:
    """Why a preset cannot be used here (None when it can). Hub presets need their three backbones in a local
    folder, the Hugging Face cache, or (when HF_HUB_OFFLINE is not set) the hub; nothing here waits on a network."""
    if preset == "demo":
        return None if demo_available(demo_directory) else "the demo model (checkpoints/demo/) is not built"
    if preset not in HUB_PRESETS:
        return None
    config = preset_config(preset)
    for role in ROLES:
        try:
            resolve_source(role, getattr(config, role))
        except BackboneNotFoundError as err:
            return str(err)
    return None


def choose_preset(requested: str, demo_directory: Path | None = None) -> tuple[str, str]:
    """(preset to use, notice for the UI). `demo` falls back to `tiny` while checkpoints/demo/ is not built; a
    paper preset whose backbones are missing falls back to the demo (or tiny), and the notice says why."""
    if requested not in APP_PRESETS:
        raise ValueError(f"Unknown preset {requested!r} for the app; choose one of {', '.join(APP_PRESETS)}.")
    if requested == "demo" and not demo_available(demo_directory):
        return "tiny", ("The demo model (checkpoints/demo/tall) is not built yet, so the app uses the **tiny** "
                        "preset: random weights, so its predictions are noise. Build the demo with "
                        "`python -m demo_build`, or train adapters in the Train tab.")
    reason = preset_unavailable(requested, demo_directory) if requested in HUB_PRESETS else None
    if reason:
        fallback, _ = choose_preset("demo", demo_directory)
        return fallback, f"The **{requested}** preset is not available, so the app uses **{fallback}**: {reason}"
    return requested, ""


def available_presets(demo_directory: Path | None = None) -> list[str]:
    return [p for p in APP_PRESETS if preset_unavailable(p, demo_directory) is None]


def missing_presets(demo_directory: Path | None = None) -> dict[str, str]:
    """preset → why it is not listed."""
    reasons = {p: preset_unavailable(p, demo_directory) for p in APP_PRESETS}
    return {p: r for p, r in reasons.items() if r}


def backbone_key(config: TallConfig) -> tuple:
    """What identifies a config's backbones: the content fingerprints of their three folders."""
    return tuple(sorted(config_fingerprints(config).items()))


def _same_backbones(meta: dict, saved: TallConfig, config: TallConfig) -> bool:
    """A checkpoint of another preset (or a custom one) still fits when its backbones have the same content."""
    try:
        theirs = tuple(sorted((meta.get("backbone_fingerprints") or config_fingerprints(saved)).items()))
        return theirs == backbone_key(config)
    except OSError:  # its backbones are not here at all
        return False


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


class _OnceCache:
    """A thread-safe LRU table whose values are built at most once at a time per key: a second request for a
    key being built waits for the first instead of building it again."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.RLock()
        self._building: dict = {}

    def get(self, key, build):
        while True:
            with self.lock:
                if key in self.items:
                    self.items.move_to_end(key)
                    return self.items[key]
                event = self._building.get(key)
                if event is None:
                    event = self._building[key] = threading.Event()
                    break
            event.wait()  # another thread is building it: use its result (or build it ourselves if it failed)
        try:
            value = build()
            with self.lock:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return value
        finally:
            with self.lock:
                self._building.pop(key, None)
            event.set()


class ModelCache:
    """Thread-safe cache of loaded models keyed by (preset, checkpoint name, checkpoint mtime).

    `overrides`: Decoding fields applied to every model on top of its own decoding (tests shorten translations).
    `device`, `dtype`: where every model lives and the dtype of its frozen backbones (one copy of each backbone
    set, on that device); `translation_engine`, `quantize`: as tall_model.load's, for every model."""

    def __init__(self, root: Path | None = None, overrides: dict | None = None, max_models: int = 4,
                 max_backbones: int = 2, device: str | None = None, dtype: str | None = None,
                 translation_engine: str = "transformers", quantize: str | None = None):
        self.root = Path(root or CHECKPOINTS_ROOT)
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        self.quantize = check_mode(quantize, self.device, self.dtype)
        self.inference = {"translation_engine": check_engine(translation_engine), "quantize": self.quantize}
        self.overrides = dict(overrides or {})
        Decoding.from_dict(self.overrides)  # unknown or invalid fields fail here, not at the first request
        self._models = _OnceCache(max_models)
        self._backbones = _OnceCache(max_backbones)

    def backbones_for(self, config: TallConfig):
        """The loaded backbones a config names (the `backbones` provider handed to `tall_model.load`)."""
        return self._backbones.get(backbone_key(config), lambda: load_backbones(config, dtype=self.dtype, quantize=self.quantize))

    def _decoding(self, config: TallConfig) -> Decoding:
        return Decoding.from_dict(self.overrides, base=config.decoding)

    def get(self, preset: str, checkpoint: str | None = None) -> LoadedModel:
        """The model for a preset (untrained adapters) or for a listed checkpoint on that preset.

        Raises ValueError (CheckpointError for a checkpoint that is corrupt or made for other backbones)."""
        if preset not in APP_PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(APP_PRESETS)}.")
        if checkpoint in ("", NO_CHECKPOINT):
            checkpoint = None
        info = resolve_checkpoint(checkpoint, self.root) if checkpoint else None
        key = (preset, info.name, info.mtime) if info else (preset, None, 0.0)
        return self._models.get(key, lambda: self._load(preset, info))

    def _load(self, preset: str, info: CheckpointInfo | None) -> LoadedModel:
        if preset == "demo" and not demo_available():
            raise ValueError("The demo model (checkpoints/demo/) is not built yet; choose the tiny preset.")
        reason = preset_unavailable(preset) if preset in HUB_PRESETS else None
        if reason:
            raise ValueError(f"The {preset} preset is not available: {reason}")
        config = preset_config(preset)
        if info is None:
            model = load(config, backbones=self.backbones_for, decoding=self._decoding(config), seed=INIT_SEED,
                         device=self.device, **self.inference)
            return LoadedModel(model, f"preset {preset} with untrained adapters (seed {INIT_SEED})", preset, None)
        if info.problem:
            raise CheckpointError(f"The checkpoint {info.name!r} is unusable: {info.problem}. Choose another one.")
        meta = read_checkpoint_config(info.path)  # read once: for the preset check and the decoding to start from
        saved = checkpoint_config(info.path, meta)
        if saved.preset != preset and not _same_backbones(meta, saved, config):
            raise CheckpointError(
                f"The checkpoint {info.name!r} was trained on preset {saved.preset!r} (other backbones), but the "
                f"selected preset is {preset!r}. Select preset {saved.preset!r} to use it, or choose another "
                "checkpoint.")
        # On its own preset, load() compares the content fingerprints and names both sides on a mismatch.
        model = load(info.path, backbones=self.backbones_for, decoding=self._decoding(saved), device=self.device,
                     **self.inference)
        return LoadedModel(model, f"adapters {info.name} on preset {preset}", preset, info.name)

    def evict_checkpoint(self, name: str) -> None:
        with self._models.lock:
            for key in [k for k in self._models.items if k[1] == name]:
                del self._models.items[key]

    def loaded_keys(self) -> list[tuple]:
        with self._models.lock:
            return list(self._models.items)

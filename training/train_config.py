"""Configuration, progress callbacks and result of a training run (see training/train.py)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tall_model.backbones import ROLES
from tall_model.config import PRESETS, TallConfig, portable, preset_config
from tall_model.hub import looks_like_repo_id
from tall_model.load import DTYPES
from training.train_data import TrainError

SCHEDULES = ("cosine", "epoch")
# Fields a resumed run may change: they do not affect the weights. Everything else comes from the checkpoint.
RESUME_OVERRIDES = ("resume", "out", "eval_every", "eval_limit", "log_every", "threads", "translation_cache",
                    "translation_batch_size", "data", "device", "push_to_hub", "low_memory")


def _default_model() -> TallConfig:
    return preset_config("tiny")


@dataclass
class TrainConfig:
    """Everything a run needs. `model` is the whole TallConfig (backbones, shapes, framing, loss, ablations,
    decoding), saved in every checkpoint; the rest is data, optimisation and output."""

    model: TallConfig = field(default_factory=_default_model)
    # data
    data: str | None = None  # .txt/.csv/.tsv/.jsonl corpus (not needed when train() is given sentences)
    max_sentences: int | None = None
    min_words: int = 3
    strip_marks: bool = False
    dev_fraction: float = 0.05
    dev_data: str | None = None  # a separate dev corpus (e.g. other books); then dev_fraction is not used
    positions: str | int = "last"  # "last", "all" or N sampled positions per sentence (word framing)
    # word framing: train only on examples whose target word is at most this many pieces of the he→en tokenizer (the
    # subword framing's pieces); dev is not filtered. None: every example. 1 teaches what the subword framing is
    # taught at a word boundary (experiments: the one-piece-targets row)
    max_target_pieces: int | None = None
    init: str | None = None  # start the trainable parts from this checkpoint (fresh optimizer)
    # optimisation
    epochs: int = 5
    max_steps: int = 0  # 0: no cap; otherwise the run (and its LR schedule) ends after this many steps
    batch_size: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.01
    schedule: str = "cosine"
    warmup_fraction: float = 0.02
    grad_clip: float = 1.0  # 0 disables clipping
    bf16: bool = False  # bf16 autocast for forward passes; weights, grads and optimizer stay fp32
    device: str = "auto"  # auto (CUDA when present), cpu or cuda; several processes: one device each (accelerate)
    dtype: str | None = None  # of the frozen backbones: fp32 (default), bf16 or fp16; trainable parts stay fp32
    seed: int = 0  # initialisation, dev split, positions, batch order, dropout
    # evaluation, logging, output
    eval_every: int = 0  # steps; 0 = at the end of every epoch (and always at the end of training)
    eval_limit: int = 1000  # dev examples used for evaluation (the first N of the dev split)
    log_every: int = 10  # steps between history rows
    out: str = "runs/tall"
    resume: str | None = None  # a run's last/ directory
    translation_cache: str | None = None  # SQLite file; default: translations.sqlite next to the run directory
    translation_batch_size: int = 32  # prefixes per he→en generate call of the cache fill (a GPU wants ~256)
    threads: int = 0  # torch CPU threads; 0 = torch's default. Use 1 per process when processes share few cores
    push_to_hub: str | None = None  # a Hub repo id: at the end, upload the best checkpoint (else last) there
    # Recompute each LLM and bridge layer in the backward pass instead of keeping its activations, and (when the run
    # owns its models) give freed memory back to the system: same gradients, less memory, a slower backward.
    low_memory: bool = True

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise TrainError(message)

        need(self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1")
        need(self.max_steps >= 0 and self.eval_every >= 0 and self.log_every >= 1, "max_steps, eval_every >= 0; "
             "log_every >= 1")
        need(self.lr > 0 and self.weight_decay >= 0 and self.grad_clip >= 0, "lr > 0, weight_decay and grad_clip >= 0")
        need(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        need(0 <= self.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        need(0 <= self.dev_fraction < 1, f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        need(self.threads >= 0 and self.eval_limit >= 0, "threads and eval_limit must be >= 0")
        need(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
             f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        need(self.push_to_hub is None or looks_like_repo_id(self.push_to_hub),
             f"push_to_hub must be a Hub repo id (owner/name), got {self.push_to_hub!r}")
        need(self.dtype is None or self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        need(self.positions in ("last", "all") or str(self.positions).isdigit() and int(self.positions) > 0,
             f"positions must be 'last', 'all' or a positive number, got {self.positions!r}")
        need(self.model.framing == "word" or self.positions == "last", "framing 'subword' (the paper's task) "
             "supports only positions 'last'")
        need(self.max_target_pieces is None or self.max_target_pieces >= 1,
             f"max_target_pieces must be a positive number (or unset), got {self.max_target_pieces!r}")
        need(self.model.framing == "word" or self.max_target_pieces is None, "max_target_pieces filters whole-word "
             "targets (framing 'word'); a subword target is one piece already")

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        """An experiment file (.json, .yaml/.yml) holding TrainConfig fields."""
        return cls.from_dict(read_experiment(path), source=str(path))

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        """`model` is a preset name, or a dict of TallConfig fields on top of its `preset` (default tiny), e.g.
        {"model": {"preset": "paper-bloomz", "framing": "subword", "loss": "last"}, "epochs": 5}."""
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainError(f"{source}: unknown TrainConfig field(s) {unknown}; known: {sorted(known)}")
        try:
            values["model"] = model_config(values.get("model", "tiny"))
        except (TypeError, ValueError) as err:
            raise TrainError(f"{source}: invalid model config: {err}") from err
        return cls(**values)

    def to_dict(self) -> dict:
        """Paths inside the repository relative to it, so files written here hold no machine's absolute path."""
        values = dataclasses.asdict(self)
        for key in ("data", "dev_data", "init", "out", "resume", "translation_cache"):
            if values[key]:
                values[key] = portable(values[key])
        for key in ROLES:
            values["model"][key] = portable(values["model"][key])
        return values


def read_experiment(path) -> dict:
    """The fields an experiment file (.json, .yaml/.yml) sets, as written."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"experiment file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # noqa: PLC0415 -- PyYAML, optional: only YAML experiments need it

        return yaml.safe_load(text)
    return json.loads(text)


def model_config(model: str | dict | TallConfig) -> TallConfig:
    """A TallConfig from a preset name, a (partial) dict on top of its `preset`, or itself."""
    if isinstance(model, TallConfig):
        return model
    if isinstance(model, str):
        return preset_config(model)
    preset = model.get("preset", "tiny")
    return (preset_config(preset) if preset in PRESETS else TallConfig()).changed(dict(model))


class Callbacks:
    """Progress hooks (called on the main process only). Subclass and override what you need; the CLI draws tqdm
    bars with them, the app a progress bar and a live loss plot."""

    def on_log(self, message: str) -> None: ...
    def on_translate(self, done: int, total: int) -> None: ...
    def on_start(self, total_steps: int, first_step: int) -> None: ...  # first_step > 0 when resuming
    def on_step(self, step: int, loss: float, lr: float) -> None: ...
    def on_eval(self, step: int, metrics: dict) -> None: ...
    def on_end(self, summary: dict) -> None: ...

    def should_stop(self) -> bool:
        """Polled after every step: True stops training after that step and saves a resumable last/."""
        return False


@dataclass
class TrainResult:
    run_dir: str
    step: int
    total_steps: int
    stopped: bool  # by should_stop() or Ctrl-C, before total_steps
    last_checkpoint: str  # resumable
    best_checkpoint: str | None  # None when nothing was evaluated (no dev split, or stopped before the first eval)
    best_metrics: dict | None
    final_metrics: dict | None  # dev metrics at the end (None when stopped)
    history: list[dict]
    translation_stats: dict  # TranslationCache stats on the main process: requested, hits, sent, calls
    resume_command: str


def lr_factor(step: int, config: TrainConfig, steps_per_epoch: int, total_steps: int) -> float:
    """LR multiplier for optimizer step `step` (0-based): a pure function of the step, so resuming is exact."""
    if config.schedule == "epoch":
        return 0.5 * (1 + math.cos(math.pi * (step // steps_per_epoch) / config.epochs))
    warmup = round(config.warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))


def resume_config(config: TrainConfig, state: dict) -> TrainConfig:
    """The checkpoint's settings, except for RESUME_OVERRIDES fields that `config` sets to a non-default value
    (so `TrainConfig(resume=path)` alone continues the run exactly as it was configured)."""
    saved = TrainConfig.from_dict(state["config"], source="trainer_state.json")
    defaults = TrainConfig()
    changed = {name: getattr(config, name) for name in RESUME_OVERRIDES
               if getattr(config, name) != getattr(defaults, name)}
    return dataclasses.replace(saved, **changed)

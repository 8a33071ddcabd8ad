"""Configuration, progress callbacks and result of a training run (see training/train.py)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from training.train_data import TrainError

SCHEDULES = ("cosine", "epoch")
# Fields a resumed run may change: they do not affect the weights. Everything else comes from the checkpoint.
RESUME_OVERRIDES = ("resume", "out", "eval_every", "eval_limit", "log_every", "threads", "translation_cache",
                    "translation_batch_size", "data")


@dataclass
class TrainConfig:
    # data
    data: str | None = None  # .txt/.csv/.tsv/.jsonl corpus (not needed when train() is given sentences)
    max_sentences: int | None = None
    min_words: int = 3
    strip_marks: bool = False
    dev_fraction: float = 0.05
    dev_data: str | None = None  # a separate dev corpus (e.g. other books); then dev_fraction is not used
    framing: str = "word"  # "word" (ours) or "subword" (the paper's)
    positions: str | int = "last"  # "last", "all" or N sampled positions per sentence (word framing)
    loss: str = "word"  # "word": all pieces of the missing word + its end; "last": the paper's single position
    # model
    preset: str = "tiny"
    model: dict = field(default_factory=dict)  # extra TallConfig fields, e.g. {"dropout": 0.2}
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
    seed: int = 0
    # evaluation, logging, output
    eval_every: int = 0  # steps; 0 = at the end of every epoch (and always at the end of training)
    eval_limit: int = 1000  # dev examples used for evaluation (the first N of the dev split)
    log_every: int = 10  # steps between history rows
    out: str = "runs/tall"
    resume: str | None = None  # a run's last/ directory
    translation_cache: str | None = None  # SQLite file; default: translations.sqlite next to the run directory
    translation_batch_size: int = 32
    threads: int = 0  # torch CPU threads; 0 = torch's default. Use 1 per process when processes share few cores

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
        need(self.framing in ("word", "subword"), f"framing must be 'word' or 'subword', got {self.framing!r}")
        need(self.loss in ("word", "last"), f"loss must be 'word' or 'last', got {self.loss!r}")
        need(self.positions in ("last", "all") or str(self.positions).isdigit() and int(self.positions) > 0,
             f"positions must be 'last', 'all' or a positive number, got {self.positions!r}")
        need(self.framing == "word" or self.positions == "last", "framing 'subword' (the paper's task) supports "
             "only positions 'last'")
        clash = sorted({"framing", "loss", "seed"} & set(self.model))
        need(not clash, f"set {clash} as training options (--framing, --loss, --seed), not inside `model`")

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        """An experiment file (.json, .yaml/.yml) holding TrainConfig fields."""
        path = Path(path)
        if not path.is_file():
            raise TrainError(f"experiment file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml  # PyYAML, only needed for YAML experiments

            values = yaml.safe_load(text)
        else:
            values = json.loads(text)
        return cls.from_dict(values, source=str(path))

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainError(f"{source}: unknown TrainConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


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

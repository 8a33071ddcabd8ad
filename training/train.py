"""Train TALL's trainable parts (alignment adapters and bridges) on a Hebrew corpus.

    python -m training.train --preset tiny --data corpus.txt --out runs/tiny
    python -m training.train --config experiments/tiny-smoke.json --data corpus.txt
    python -m training.train --resume runs/tiny/last              # continue exactly where it stopped
    accelerate launch --multi_gpu --num_processes 2 -m training.train --preset tiny --data corpus.txt --threads 1

Several processes: `accelerate launch --multi_gpu` (torchrun underneath) or `torchrun --nproc_per_node N -m ...`.
Without GPUs, train() then forms a gloo group on the CPU. (`accelerate launch --cpu --num_processes 2` starts ONE
process in accelerate 1.x: its multi-CPU mode needs mpirun.)

Pipeline: read_corpus → make_examples → dev split by sentence → translate every distinct prefix ONCE (SQLite
cache, shared by epochs, runs and processes) → AdamW over a seeded shuffle → dev exact match of greedy `predict`
(every --eval-every steps, or every epoch) → best/ and last/ (trainable tensors only) + history.json in --out.
last/ is resumable (training/train_state.py) and is rewritten at each evaluation, at the end, and when training
stops early: Callbacks.should_stop() (the app's Stop button) or Ctrl-C (a second Ctrl-C aborts without saving).

Choices (the paper's protocol is AdamW 5e-5, wd 0.01, batch 8, 5 epochs, cosine per epoch, fp32):
- schedule "cosine" (default) is cosine per *step* after a linear warmup (2 % of the steps). Stepping per epoch keeps
  the LR flat for a whole epoch and, for runs of one or two epochs or a --max-steps cap, hardly decays it at all;
  the warmup protects the freshly initialised post-norm bridges from full-size first updates. "epoch" reproduces
  the paper (CosineAnnealingLR(T_max=epochs) stepped per epoch, no warmup).
- --max-steps caps the run, and the schedule spans the capped length.
- --batch-size is per process (accelerate's convention): with P processes an optimizer step sees P × batch examples.
  The LR is not rescaled.
- seed (default 0) seeds python, numpy and torch (+ the process index, so dropout differs between processes), the
  trainable parts' initialisation, the dev split, the position sampling and each epoch's shuffle ([seed, epoch]).
- Weight decay applies to every trainable tensor, as in the authors' code.
- fp32 by default; --bf16 autocasts the forward passes only (on CPUs without bf16 instructions it is much slower).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, InitProcessGroupKwargs, PartialState
from huggingface_hub.errors import HfHubHTTPError
from tqdm.auto import tqdm

from tall_data.corpus import CorpusError
from tall_data.files import write_json
from tall_model.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    check_backbones,
    load_tensors,
    read_checkpoint_config,
    save_pretrained,
)
from tall_model.config import FRAMINGS, LOSSES, PRESETS
from tall_model.hub import push_to_hub
from tall_model.load import load, resolve_device
from tall_model.memory import release_free_memory, return_freed_memory
from tall_model.model import TallModel
from tall_model.translate import translate
from training.train_config import (
    RESUME_OVERRIDES,
    Callbacks,
    TrainConfig,
    TrainResult,
    lr_factor,
    read_experiment,
    resume_config,
)
from training.train_data import (
    TrainData,
    TrainError,
    epoch_batches,
    fill_prefix_cache,
    load_data,
    write_training_words,
)
from training.train_eval import evaluate, metric_key
from training.train_state import read_trainer_state, restore_optimizer, restore_rng, save_resumable

__all__ = ["Callbacks", "TrainConfig", "TrainError", "TrainResult", "train", "main"]


class _Interrupt:
    """SIGINT (Ctrl-C) asks for a graceful stop after the current step; a second Ctrl-C aborts at once.

    Installed only in the main thread (signal handlers cannot be set elsewhere, and the app trains in a worker
    thread and stops through Callbacks.should_stop instead)."""

    def __init__(self, on_log) -> None:
        self.requested, self.on_log, self.previous = False, on_log, None

    def __enter__(self) -> "_Interrupt":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next Ctrl-C raises KeyboardInterrupt
        self.on_log("Ctrl-C: stopping after this step and saving a resumable checkpoint (Ctrl-C again aborts "
                    "without saving)")

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def build_model(config: TrainConfig, backbones=None) -> TallModel:
    """config.model with fresh trainable parts (initialised from config.seed), or --init's tensors."""
    if getattr(backbones, "quantized", None):  # torch has no backward for int8 layers: gradients would be missing
        raise ValueError(f"these backbones are quantised ({backbones.quantized}, for inference only); training "
                         "needs the unquantised ones (load them without quantize / --quantize)")
    model = load(config.model, backbones=backbones, seed=config.seed, dtype=config.dtype, device="cpu")
    if config.init:
        check_backbones(read_checkpoint_config(config.init), model.backbones, model.config)
        load_tensors(model, Path(config.init) / "model.safetensors")
    return model


def train(config: TrainConfig, callbacks: Callbacks | None = None, sentences: list[str] | None = None,
          backbones=None) -> TrainResult:
    """Train and return a TrainResult; safe to call from a worker thread. `sentences` replaces reading
    `config.data`; `backbones` (tall_model.backbones.Backbones) reuses already loaded frozen models."""
    callbacks = callbacks or Callbacks()
    state = None
    if config.resume:
        state = read_trainer_state(config.resume)
        config = resume_config(config, state)
        config.out = str(Path(config.resume).parent)
    config.validate()
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    run = None
    try:
        run = _Run(config, callbacks, sentences, backbones, state)
        try:
            return run.train()
        except OSError as err:  # a full disk or a quota while saving: say what is safe and how to go on
            raise run.write_failed(err) from err
    finally:
        torch.set_num_threads(previous_threads)
        if run is not None and backbones is not None:  # shared backbones (the app's) go back as they came
            run.model.checkpoint_layers(False)


def _accelerator(device: str = "auto"):
    # Launched as several processes (torchrun, `accelerate launch --multi_gpu`) on a machine without GPUs:
    # accelerate forms a (gloo) process group only when told to use the CPU; otherwise every process would train
    # alone and all of them would write the same run directory.
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:
        resolved = resolve_device(device)  # --device cuda without a GPU: a clear error before anything loads
    except ValueError as err:
        raise TrainError(str(err)) from err
    # Long barrier timeout: a process may wait on the others for a whole round of the translate-once fill.
    accelerator = Accelerator(cpu=resolved.type == "cpu",
                              kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=12))])
    if distributed and accelerator.num_processes == 1:
        raise TrainError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but accelerate formed no process group")
    return accelerator


class _Run:
    """One training run, from data to the last checkpoint: set up in __init__, then train()."""

    def __init__(self, config: TrainConfig, callbacks: Callbacks, sentences, backbones, state) -> None:
        self.config, self.callbacks, self.state = config, callbacks, state
        self.accelerator = acc = _accelerator(config.device)
        self.main, self.rank, self.nproc = acc.is_main_process, acc.process_index, acc.num_processes
        self.log = callbacks.on_log if self.main else (lambda message: None)
        self.run_dir = Path(config.out)
        if state is None and (self.run_dir / "last").exists():
            raise TrainError(f"{self.run_dir} already holds a run. Continue it with --resume "
                             f"{self.run_dir / 'last'}, or choose another --out.")
        owns_models = backbones is None
        self.model = model = build_model(config, backbones).to(acc.device)
        if config.low_memory:
            model.checkpoint_layers()
        self.data: TrainData = load_data(config, model, sentences, self.log)
        if state is not None and state["data_fingerprint"] != self.data.fingerprint:
            raise TrainError("the training examples differ from those of the checkpoint (another corpus, or other "
                             "data options): an exact resume is impossible. Start a new run with --init instead.")
        self.translations, self.stats = fill_prefix_cache(config, acc, model, self.data, callbacks.on_translate,
                                                          self.log, translate_fn=lambda texts: translate(
                                                              model, texts, batch_size=config.translation_batch_size))
        if owns_models:  # ours alone: every prefix is translated, so the translation-only halves can go
            self.log(f"released {model.release_translation_parts():,} translation-only parameters "
                     "(all prefixes cached)")
            release_free_memory()
        self.steps_per_epoch = len(epoch_batches(len(self.data.train), 0, config.seed, config.batch_size,
                                                 self.nproc, self.rank))
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.params = model.trainable_parameters()
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, config, self.steps_per_epoch, self.total_steps))
        self.progress = {"step": 0, "epoch": 0, "position": 0, "elapsed": 0.0, "loss_sum": 0.0, "loss_count": 0,
                         "examples": 0, "train_seconds": 0.0, "best": None, "lr": config.lr}
        self.history: list[dict] = []
        self._restore_or_seed()
        self.best_dir, self.last_dir = self.run_dir / "best", self.run_dir / "last"

    def _restore_or_seed(self) -> None:
        config, state, progress = self.config, self.state, self.progress
        if state is None:
            np.random.seed(config.seed + self.rank)
            random.seed(config.seed + self.rank)
            torch.manual_seed(config.seed + self.rank)
            return
        load_tensors(self.model, Path(config.resume) / "model.safetensors")
        restore_optimizer(config.resume, self.optimizer, state)
        self.scheduler.load_state_dict(state["scheduler"])
        progress.update(state["progress"])
        self.history = [row for row in state["history"] if row["step"] <= progress["step"]]
        if not restore_rng(config.resume, self.rank):
            self.log(f"warning: no RNG state for process {self.rank} (the run used {state['num_processes']} "
                     "processes); dropout will differ from an uninterrupted run")
            torch.manual_seed(config.seed + self.rank + progress["step"])
        if progress["step"] >= self.total_steps:
            raise TrainError(f"{config.resume} is the end of a finished run ({progress['step']} steps). To train "
                             f"further, start a new run from it with --init {config.resume}.")
        self.log(f"Resumed {config.resume} at step {progress['step']} (epoch {progress['epoch']}, "
                 f"batch {progress['position']})")

    def summary(self, metrics=None) -> dict:
        return {"step": self.progress["step"], "total_steps": self.total_steps, "epoch": self.progress["epoch"],
                "train": self.config.to_dict(), "sentences": self.data.sentences,
                "train_examples": len(self.data.train), "dev_examples": len(self.data.dev), "processes": self.nproc,
                **({k: metrics[k] for k in ("dev_loss", "dev_accuracy")} if metrics else {})}

    def add_row(self, metrics=None) -> None:
        progress = self.progress
        totals = torch.tensor([progress["loss_sum"], progress["loss_count"], progress["examples"]],
                              dtype=torch.float64, device=self.accelerator.device)
        totals = self.accelerator.reduce(totals, "sum") if self.nproc > 1 else totals
        row = {"step": progress["step"],
               "epoch": round(progress["epoch"] + progress["position"] / self.steps_per_epoch, 4),
               "train_loss": float(totals[0] / totals[1]) if totals[1] else None,
               "dev_loss": metrics["dev_loss"] if metrics else None,
               "dev_accuracy": metrics["dev_accuracy"] if metrics else None,
               "lr": progress["lr"], "elapsed_s": round(time.perf_counter() - self.started, 2),
               "examples_per_s": round(float(totals[2]) / max(progress["train_seconds"], 1e-9), 3)}
        progress.update(loss_sum=0.0, loss_count=0, examples=0, train_seconds=0.0)
        self.history.append(row)
        if self.main:
            write_json(self.run_dir / "history.json", self.history, indent=1)

    def save_last(self) -> None:
        self.progress["elapsed"] = time.perf_counter() - self.started
        save_resumable(self.accelerator, self.model, self.optimizer, self.last_dir,
                       {"config": self.config.to_dict(), "data_fingerprint": self.data.fingerprint,
                        "progress": self.progress, "scheduler": self.scheduler.state_dict(), "history": self.history},
                       extra=self.summary(self.progress["best"]))

    def write_failed(self, err: OSError) -> CheckpointWriteError:
        """Why the run stopped, which checkpoint survived and the command that continues it."""
        why = str(err) if isinstance(err, CheckpointWriteError) else f"could not write ({err.strerror or err})"
        try:
            saved = read_trainer_state(self.last_dir)["progress"]["step"]
        except (CheckpointError, OSError, ValueError, KeyError):
            saved = None
        after = (f"The last complete checkpoint, {self.last_dir} (step {saved}), is intact: free disk space, then "
                 f"resume with: python -m training.train --resume {self.last_dir}" if saved is not None
                 else "No checkpoint had been saved yet: free disk space and start the run again.")
        return CheckpointWriteError(f"Training stopped at step {self.progress['step']}: {why}. {after}", err.errno)

    def run_eval(self) -> dict | None:
        metrics, progress = None, self.progress
        if self.main and self.data.dev:
            metrics = evaluate(self.model, self.data.dev[:self.config.eval_limit], self.translations,
                               batch_size=self.config.batch_size, bf16=self.config.bf16)
            self.callbacks.on_eval(progress["step"], metrics)
            if progress["best"] is None or metric_key(metrics) > metric_key(progress["best"]):
                progress["best"] = {k: metrics[k] for k in ("dev_loss", "dev_accuracy")} | {"step": progress["step"]}
                save_pretrained(self.model, self.best_dir, extra=self.summary(metrics))
        self.accelerator.wait_for_everyone()
        return metrics

    def step(self, ddp_model, indices: list[int]) -> float:
        """One optimizer step on one batch; returns its loss."""
        config, progress, data = self.config, self.progress, self.data
        tick = time.perf_counter()
        examples = [data.train[i] for i in indices]
        batch = self.model.make_batch([e.prefix for e in examples], [self.translations[e.prefix] for e in examples],
                                      [e.target for e in examples], [e.sentence for e in examples])
        with torch.autocast(self.accelerator.device.type, dtype=torch.bfloat16, enabled=config.bf16):
            out = ddp_model(batch)
        self.accelerator.backward(out.loss)
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, config.grad_clip)
        progress["lr"] = self.scheduler.get_last_lr()[0]  # the LR this step used
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = out.loss.detach().item()
        progress["step"] += 1
        progress["position"] += 1
        progress["loss_sum"] += loss
        progress["loss_count"] += 1
        progress["examples"] += len(indices)
        progress["train_seconds"] += time.perf_counter() - tick
        return loss

    def train(self) -> TrainResult:
        config, progress = self.config, self.progress
        ddp_model = self.accelerator.prepare(self.model)  # DDP across processes (a no-op wrapper on one process)
        ddp_model.train()
        self.started = time.perf_counter() - progress["elapsed"]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.main:
            write_training_words(self.run_dir, self.data.train)
            self.callbacks.on_start(self.total_steps, progress["step"])
        stopped, final, saved_step = False, None, -1
        with _Interrupt(self.log) as interrupt:
            while progress["step"] < self.total_steps and not stopped:
                batches = epoch_batches(len(self.data.train), progress["epoch"], config.seed, config.batch_size,
                                        self.nproc, self.rank)
                for indices in batches[progress["position"]:]:
                    loss = self.step(ddp_model, indices)
                    if progress["position"] == len(batches):
                        progress["epoch"], progress["position"] = progress["epoch"] + 1, 0
                    if self.main:
                        self.callbacks.on_step(progress["step"], loss, progress["lr"])
                    done = progress["step"] >= self.total_steps
                    eval_now = (config.eval_every and progress["step"] % config.eval_every == 0) or (
                        not config.eval_every and progress["position"] == 0)
                    if eval_now and not done:
                        self.add_row(self.run_eval())
                        self.save_last()
                        saved_step = progress["step"]
                    elif progress["step"] % config.log_every == 0 and not done:
                        self.add_row()
                    if (self.main and self.callbacks.should_stop()) or interrupt.requested:
                        self.accelerator.set_trigger()
                    if self.accelerator.check_trigger():  # every process stops at the same step
                        stopped = not done
                    if done or stopped:
                        break
            if not stopped:
                final = self.run_eval()
                self.add_row(final)
            if saved_step != progress["step"]:
                self.save_last()
        return self._result(stopped, final)

    def _result(self, stopped: bool, final: dict | None) -> TrainResult:
        result = TrainResult(str(self.run_dir), self.progress["step"], self.total_steps, stopped, str(self.last_dir),
                             str(self.best_dir) if self.best_dir.exists() else None, self.progress["best"], final,
                             self.history, self.stats, f"python -m training.train --resume {self.last_dir}")
        if self.main:
            self.callbacks.on_end(dataclasses.asdict(result))
        return result


# --------------------------------------------------------------------------- command line

class TqdmCallbacks(Callbacks):
    """The CLI's progress display: one bar for translation, one for steps, eval lines in between."""

    def __init__(self) -> None:
        self.tqdm, self.bar, self.translate_bar = tqdm, None, None

    def on_log(self, message: str) -> None:
        self.tqdm.write(message)

    def on_translate(self, done: int, total: int) -> None:
        if self.translate_bar is None:
            self.translate_bar = self.tqdm(total=total, desc="translating prefixes", unit="text")
        self.translate_bar.update(done - self.translate_bar.n)
        if done >= total:
            self.translate_bar.close()

    def on_start(self, total_steps: int, first_step: int) -> None:
        self.bar = self.tqdm(total=total_steps, initial=first_step, desc="training", unit="step")

    def on_step(self, step: int, loss: float, lr: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")

    def on_eval(self, step: int, metrics: dict) -> None:
        self.tqdm.write(f"step {step}: dev loss {metrics['dev_loss']:.4f}, dev exact match "
                        f"{100 * metrics['dev_accuracy']:.2f} % of {metrics['dev_examples']}")
        for s in metrics["samples"][:3]:
            self.tqdm.write(f"  {s['prefix'][-40:]} → {s['predicted']!r} (gold {s['target']!r})")

    def on_end(self, summary: dict) -> None:
        if self.bar is not None:
            self.bar.close()


MODEL_FLAGS = ("preset", "framing", "loss")  # shortcuts into TrainConfig.model


def parse_args(argv=None) -> argparse.Namespace:
    """Flags default to SUPPRESS, so the namespace holds only what was typed (it overrides --config)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 argument_default=argparse.SUPPRESS)
    ap.add_argument("--config", help="experiment file (.json/.yaml) of TrainConfig fields; flags override it")
    ap.add_argument("--preset", choices=PRESETS, help="the model's preset (default tiny)")
    ap.add_argument("--framing", choices=FRAMINGS, help="word (default) or the paper's subword")
    ap.add_argument("--loss", choices=LOSSES, help="word (default) or the paper's last")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "model":
            ap.add_argument(flag, type=json.loads, help='TallConfig fields as JSON on top of the preset, e.g. '
                                                        '\'{"dropout": 0.2, "decoding": {"translation_beams": 4}}\'')
        elif f.type == "bool":
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, help=f"default {f.default}")
        else:
            kind = {"int": int, "float": float, "int | None": int}.get(f.type, str)
            ap.add_argument(flag, type=kind, help=f"default {f.default}")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    typed = {k: v for k, v in vars(args).items() if k != "config"}
    if "resume" in typed:
        fixed = sorted(set(typed) - set(RESUME_OVERRIDES))
        if fixed or "config" in vars(args):
            raise TrainError(f"--resume continues a run with its saved settings; these cannot change: "
                             f"{', '.join('--' + k.replace('_', '-') for k in fixed) or '--config'}")
    values = read_experiment(args.config) if "config" in vars(args) else {}
    model = values.get("model") or {}
    model = {"preset": model} if isinstance(model, str) else dict(model)
    model.update(typed.pop("model", {}))
    model.update({k: typed.pop(k) for k in MODEL_FLAGS if k in typed})
    return TrainConfig.from_dict({**values, **typed, "model": model}, source=args.config if values else "flags")


def main(argv=None) -> int:
    try:
        config = config_from_args(parse_args(argv))
        if config.low_memory:  # this process is the run's alone; before loading, so the upcast's temporaries go too
            return_freed_memory()
        result = train(config, TqdmCallbacks())
    except (TrainError, CorpusError, CheckpointError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nAborted without saving. The translations done so far are cached; the last saved checkpoint (if "
              "any) can be resumed with --resume RUN/last.", file=sys.stderr)
        return 130
    if PartialState().is_main_process:
        if result.stopped:
            print(f"Stopped at step {result.step}/{result.total_steps}. Resume with:\n  {result.resume_command}")
        else:
            final = result.final_metrics or {}
            print(f"Done: {result.step} steps. Final dev exact match {100 * final.get('dev_accuracy', 0):.2f} %, "
                  f"dev loss {final.get('dev_loss', float('nan')):.4f}.")
        print(f"Checkpoints: {result.last_checkpoint} (resumable), best: {result.best_checkpoint}. "
              f"History: {Path(result.run_dir) / 'history.json'}")
        if config.push_to_hub and not result.stopped:
            return _push(result.best_checkpoint or result.last_checkpoint, config.push_to_hub)
    return 0


def _push(checkpoint: str, repo_id: str) -> int:
    """Upload the run's checkpoint; a failed upload loses nothing (the run directory stays) and says so."""
    try:
        url = push_to_hub(checkpoint, repo_id)
    except (OSError, ValueError, CheckpointError, HfHubHTTPError) as err:
        print(f"error: pushing {checkpoint} to {repo_id} failed ({type(err).__name__}: {err}); the checkpoint is "
              f"kept. Retry with: python -c \"from tall_model.hub import push_to_hub; "
              f"push_to_hub('{checkpoint}', '{repo_id}')\"", file=sys.stderr)
        return 3
    print(f"Pushed {checkpoint} to https://huggingface.co/{repo_id} ({url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

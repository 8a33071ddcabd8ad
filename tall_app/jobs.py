"""Training from the app: corpus preview, validated hyper-parameters and one background job at a time.

The job runs `training.train.train` in a daemon thread with callbacks that record progress; the app polls
`TrainingJobs.snapshot()` from a timer. Stop asks the trainer to stop at its next step (it leaves a resumable
`last/` checkpoint); Resume starts the same run again with `resume` set. The model being trained is built by
the trainer in its thread: the models used for prediction (`models.ModelCache`) are never touched.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from training.corpus import Corpus, read_corpus

from .paths import CHECKPOINTS_ROOT, run_directory, sanitize_run_name

MAX_UPLOAD_BYTES = 20_000_000  # the app's cap on an uploaded corpus (the CLI allows more)
IDLE, RUNNING, STOPPING, FINISHED, STOPPED, FAILED = "idle", "running", "stopping", "finished", "stopped", "failed"
ACTIVE_STATES = (RUNNING, STOPPING)
MAX_POINTS = 5000  # loss points kept for the plot (older ones are thinned)


class JobBusy(RuntimeError):
    """A training job is already running."""


class TrainingUnavailable(RuntimeError):
    """training/train.py is not in this build."""


# --------------------------------------------------------------------------- inputs

def preview_corpus(path, *, max_sentences: int | None = None, max_bytes: int = MAX_UPLOAD_BYTES,
                   strip_marks: bool = False) -> Corpus:
    """Read an uploaded corpus; CorpusError (a ValueError) with a clear message for any bad file."""
    if path is None or str(path) == "":
        raise ValueError("No corpus file: upload a .txt, .csv, .tsv or .jsonl file of Hebrew sentences.")
    return read_corpus(path, strip_marks=strip_marks, max_bytes=max_bytes, max_sentences=max_sentences)


@dataclass(frozen=True)
class TrainParams:
    run_name: str
    preset: str = "tiny"
    epochs: int = 1
    lr: float = 5e-5
    batch_size: int = 8
    max_sentences: int | None = None
    eval_every: int = 0  # 0: the trainer's default
    seed: int = 0


def parse_train_params(run_name, preset="tiny", epochs=1, lr=5e-5, batch_size=8, max_sentences=None,
                       eval_every=0, seed=0) -> TrainParams:
    """Validated hyper-parameters; ValueError naming the field otherwise. The run name is sanitized."""
    def integer(value, name, low, high, allow_none=False):
        if allow_none and value in (None, "", 0):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a whole number, got {value!r}.") from None
        if number != int(number) or not low <= number <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
        return int(number)

    try:
        rate = float(lr)
    except (TypeError, ValueError):
        raise ValueError(f"Learning rate must be a number, got {lr!r}.") from None
    if not 0 < rate <= 1:
        raise ValueError(f"Learning rate must be in (0, 1], got {lr!r}.")
    return TrainParams(
        run_name=sanitize_run_name(run_name), preset=str(preset),
        epochs=integer(epochs, "Epochs", 1, 100), lr=rate, batch_size=integer(batch_size, "Batch size", 1, 256),
        max_sentences=integer(max_sentences, "Max sentences", 1, 10_000_000, allow_none=True),
        eval_every=integer(eval_every or 0, "Evaluate every", 0, 1_000_000), seed=integer(seed, "Seed", 0, 2**31 - 1))


# --------------------------------------------------------------------------- the trainer, seen from the app

def default_runner(params: TrainParams, out_dir: Path, sentences: list[str], data_path: str | None,
                   resume: bool, callbacks, extra: dict | None = None) -> dict:
    """Run training.train.train with the app's parameters. `extra`: more TrainConfig fields (the app sets the
    translation cache; tests shorten evaluation). Fields this trainer does not know are left out."""
    try:
        from training import train as train_module
    except ImportError as err:
        raise TrainingUnavailable("Training is not available in this build (training/train.py is missing): "
                                  f"{err}") from err
    config_cls = train_module.TrainConfig
    known = {f.name for f in dataclasses.fields(config_cls)}
    values = {"preset": params.preset, "data": data_path, "epochs": params.epochs, "lr": params.lr,
              "batch_size": params.batch_size, "max_sentences": params.max_sentences, "seed": params.seed,
              "out": str(out_dir), "resume": str(out_dir / "last") if resume else None, **(extra or {})}
    if params.eval_every:
        values["eval_every"] = params.eval_every
    if resume:  # a resumed run keeps its saved settings; only these may change
        allowed = set(getattr(sys.modules.get("training.train_config"), "RESUME_OVERRIDES", ())) or known
        values = {k: v for k, v in values.items() if k in allowed}
    config = config_cls(**{k: v for k, v in values.items() if k in known})
    result = train_module.train(config, callbacks=callbacks, sentences=sentences)
    return _as_dict(result)


def _as_dict(result) -> dict:
    """Scalars of a trainer result or summary (long lists such as the history are left out)."""
    if result is None:
        return {}
    if dataclasses.is_dataclass(result):
        result = dataclasses.asdict(result)
    if not isinstance(result, dict):
        return {"result": str(result)}
    return {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool, type(None)))
            or (isinstance(v, dict) and len(v) <= 8 and all(isinstance(x, (int, float, str)) for x in v.values()))}


@dataclass
class JobSnapshot:
    state: str = IDLE
    run_name: str = ""
    preset: str = ""
    out_dir: str = ""
    total_steps: int = 0
    step: int = 0
    lr: float | None = None
    steps: list = field(default_factory=list)  # [{"step", "loss"}]
    evals: list = field(default_factory=list)  # [{"step", "metrics"}]
    message: str = ""
    error: str = ""
    summary: dict = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    resumed: bool = False
    log: list = field(default_factory=list)  # the trainer's last log lines
    version: int = 0  # grows with every change (the UI redraws only on change)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def fraction(self) -> float:
        if self.state == FINISHED:
            return 1.0
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0

    @property
    def elapsed(self) -> float:
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started


class _Recorder:
    """The callbacks object handed to the trainer; every method is thread-safe and cheap."""

    def __init__(self, jobs: "TrainingJobs"):
        self._jobs = jobs

    def _update(self, fn) -> None:
        with self._jobs._lock:
            fn(self._jobs._snap)
            self._jobs._snap.version += 1

    def on_start(self, total_steps, first_step=0, *args, **kwargs) -> None:
        def set_(s):
            s.total_steps, s.step = int(total_steps or 0), int(first_step or 0)
            s.steps[:] = [p for p in s.steps if p["step"] <= s.step]
            s.evals[:] = [e for e in s.evals if e["step"] <= s.step]
            s.message = f"training: {s.total_steps} steps" + (f" from step {s.step}" if s.step else "")
        self._update(set_)

    def on_log(self, message, *args, **kwargs) -> None:
        def set_(s):
            s.message = str(message)[:300]
            s.log.append(s.message)
            del s.log[:-50]
        self._update(set_)

    def on_translate(self, done, total, *args, **kwargs) -> None:
        def set_(s):
            s.message = f"translating prefixes (once, cached): {done}/{total}"
        self._update(set_)

    def __getattr__(self, name):  # hooks a newer trainer may add: ignored
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def on_step(self, step, loss, lr=None, *args, **kwargs) -> None:
        def set_(s):
            s.step = int(step)
            s.lr = None if lr is None else float(lr)
            s.steps.append({"step": int(step), "loss": float(loss)})
            if len(s.steps) > MAX_POINTS:
                s.steps[:] = s.steps[::2]
        self._update(set_)

    def on_eval(self, step, metrics, *args, **kwargs) -> None:
        clean = {k: float(v) for k, v in dict(metrics or {}).items() if isinstance(v, (int, float))}
        self._update(lambda s: s.evals.append({"step": int(step), "metrics": clean}))

    def on_end(self, summary=None, *args, **kwargs) -> None:
        self._update(lambda s: s.summary.update(_as_dict(summary)))

    def should_stop(self) -> bool:
        return self._jobs._stop.is_set()


Runner = Callable[..., dict]  # (params, out_dir, sentences, data_path, resume, callbacks) -> summary


class TrainingJobs:
    """At most one training job per process. `runner` is injectable (tests pass a fake)."""

    def __init__(self, runner: Runner | None = None, root: Path | None = None, extra: dict | None = None):
        if runner is None:
            def runner(*args):
                return default_runner(*args, extra=extra)
        self.runner = runner
        self.root = Path(root or CHECKPOINTS_ROOT)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._snap = JobSnapshot()
        self._thread: threading.Thread | None = None
        self._corpora: dict[str, tuple[list[str], str | None]] = {}  # run name -> (sentences, data path)
        self.on_finish: list[Callable[[JobSnapshot], None]] = []

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return dataclasses.replace(self._snap, steps=list(self._snap.steps), evals=list(self._snap.evals),
                                       summary=dict(self._snap.summary), log=list(self._snap.log))

    def is_running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self, params: TrainParams, sentences: list[str] | None = None, data_path: str | None = None,
              *, resume: bool = False) -> JobSnapshot:
        """Start (or resume) a run in the background. JobBusy if one is running; ValueError for bad input."""
        out_dir = run_directory(params.run_name, self.root)
        with self._lock:
            if self.is_running():
                raise JobBusy(f"A training job is already running (run {self._snap.run_name!r}, "
                              f"{self._snap.state}): stop it or wait for it to finish.")
            if resume:
                if sentences is None and params.run_name in self._corpora:
                    sentences, data_path = self._corpora[params.run_name]
                if not (out_dir / "last").is_dir() and not (out_dir / "best").is_dir():
                    raise ValueError(f"Nothing to resume: run {params.run_name!r} has no checkpoint yet "
                                     f"(start it first).")
            if not sentences:
                raise ValueError("No sentences to train on: upload a corpus and check its report first.")
            self._corpora[params.run_name] = (list(sentences), data_path)
            self._stop.clear()
            steps, evals = (self._previous_points(params.run_name, out_dir) if resume else ([], []))
            self._snap = JobSnapshot(state=RUNNING, run_name=params.run_name, preset=params.preset,
                                     out_dir=str(out_dir), started=time.time(), resumed=resume, steps=steps,
                                     evals=evals, message="resuming…" if resume else "starting…",
                                     version=self._snap.version + 1)
            self._thread = threading.Thread(target=self._run, name=f"tall-train-{params.run_name}",
                                            args=(params, out_dir, list(sentences), data_path, resume), daemon=True)
            self._thread.start()
            return self.snapshot()

    def _previous_points(self, run_name: str, out_dir: Path) -> tuple[list, list]:
        """The loss curve so far of a run being resumed: from this process, else from its history.json."""
        if self._snap.run_name == run_name and (self._snap.steps or self._snap.evals):
            return list(self._snap.steps), list(self._snap.evals)
        try:
            rows = json.loads((out_dir / "history.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return [], []
        rows = rows if isinstance(rows, list) else []
        rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("step"), int)]
        steps = [{"step": r["step"], "loss": float(r["train_loss"])} for r in rows
                 if isinstance(r.get("train_loss"), (int, float))]
        evals = [{"step": r["step"], "metrics": {"dev_accuracy": float(r["dev_accuracy"])}} for r in rows
                 if isinstance(r.get("dev_accuracy"), (int, float))]
        return steps, evals

    def _run(self, params, out_dir, sentences, data_path, resume) -> None:
        recorder = _Recorder(self)
        try:
            summary = self.runner(params, out_dir, sentences, data_path, resume, recorder)
            with self._lock:
                self._snap.summary.update(summary or {})
                stopped = bool(self._snap.summary.get("stopped", self._stop.is_set()))
                self._snap.state = STOPPED if stopped else FINISHED
                self._snap.message = (f"stopped at step {self._snap.step}; resume continues from {out_dir.name}/last"
                                      if stopped else f"finished: {self._snap.step} steps, saved to "
                                      f"checkpoints/{out_dir.name}")
        except Exception as err:  # shown in the UI; the traceback goes to the server log
            traceback.print_exc()
            with self._lock:
                self._snap.state = FAILED
                self._snap.error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
                self._snap.message = "training failed"
        finally:
            with self._lock:
                self._snap.finished = time.time()
                self._snap.version += 1
                snap = self.snapshot()
            for hook in list(self.on_finish):
                try:
                    hook(snap)
                except Exception:
                    traceback.print_exc()

    def stop(self) -> JobSnapshot:
        """Ask the running job to stop at its next step (it keeps a resumable checkpoint)."""
        with self._lock:
            if self.is_running():
                self._stop.set()
                self._snap.state = STOPPING
                self._snap.message = "stopping after the current step…"
                self._snap.version += 1
            return self.snapshot()

    def wait(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.is_running()


# --------------------------------------------------------------------------- display

def progress_html(snap: JobSnapshot) -> str:
    from .formatting import esc

    pct = 100 * snap.fraction
    colors = {RUNNING: "#4f6bed", STOPPING: "#a15c00", FINISHED: "#1f7a3d", STOPPED: "#a15c00", FAILED: "#b42318",
              IDLE: "#8a94a6"}
    color = colors.get(snap.state, "#4f6bed")
    if snap.state == IDLE:
        text = "No training job yet."
    else:
        last = f", loss {snap.steps[-1]['loss']:.4f}" if snap.steps else ""
        total = snap.total_steps or "?"
        text = (f"{snap.state}: run {snap.run_name} — step {snap.step}/{total}{last} — {snap.elapsed:.0f} s"
                + (f" — {snap.message}" if snap.message else ""))
    error = (f'<div style="color:#b42318; margin-top:4px">{esc(snap.error)}</div>' if snap.error else "")
    return (f'<div class="tall-progress" data-state="{esc(snap.state)}" data-step="{snap.step}" '
            f'data-total="{snap.total_steps}">'
            f'<div style="background:#e6e9f0; border-radius:6px; height:14px; overflow:hidden">'
            f'<div style="width:{pct:.1f}%; background:{color}; height:100%"></div></div>'
            f'<div style="margin-top:4px; color:#1f2733">{esc(text)}</div>{error}</div>')

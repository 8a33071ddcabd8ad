"""Training from the app: corpus preview, the Train form turned into a `TrainConfig`, and one background job at a
time.

The form's fields are TrainConfig fields, and their defaults are TrainConfig's (`form_defaults`); the preset picks
the model config (`TrainConfig.model`). The job runs `training.train.train` in a daemon thread with callbacks that
record progress; the app polls `TrainingJobs.snapshot()` from a timer. Stop asks the trainer to stop at its next step
(it leaves a resumable `last/` checkpoint); Resume starts the same run again with `resume` set. The model being
trained is built by the trainer in its thread: the models used for prediction (`models.ModelCache`) are never
touched. A run writes only to checkpoints/<run name>/, never into a shipped checkpoint (`paths.run_directory`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tall_data.corpus import Corpus, read_corpus
from tall_model.config import preset_config
from training.train import train
from training.train_config import TrainConfig

from .formatting import esc
from .owners import check_owner, claim
from .paths import CHECKPOINTS_ROOT, RunNameError, check_run_name, public_message, run_directory

MAX_UPLOAD_BYTES = 20_000_000  # the app's cap on an uploaded corpus (the CLI allows more)
IDLE, RUNNING, STOPPING, FINISHED, STOPPED, FAILED = "idle", "running", "stopping", "finished", "stopped", "failed"
ACTIVE_STATES = (RUNNING, STOPPING)
MAX_POINTS = 5000  # loss points kept for the plot (older ones are thinned)
FORM_FIELDS = ("epochs", "lr", "batch_size", "max_sentences", "eval_every", "seed")  # TrainConfig fields on the form


class JobBusy(RuntimeError):
    """A training job is already running."""


# --------------------------------------------------------------------------- inputs

def preview_corpus(path, *, max_sentences: int | None = None, max_bytes: int = MAX_UPLOAD_BYTES,
                   strip_marks: bool = False) -> Corpus:
    """Read an uploaded corpus; CorpusError (a ValueError) with a clear message for any bad file."""
    if path is None or str(path) == "":
        raise ValueError("No corpus file: upload a .txt, .csv, .tsv or .jsonl file of Hebrew sentences.")
    return read_corpus(path, strip_marks=strip_marks, max_bytes=max_bytes, max_sentences=max_sentences)


def form_defaults() -> dict:
    """The Train form's initial values: TrainConfig's own defaults (max sentences None, i.e. all, shows as 0)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in FORM_FIELDS}
    defaults["max_sentences"] = defaults["max_sentences"] or 0
    return defaults


def _whole(value, name: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a whole number, got {value!r}.") from None
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return int(number)


def parse_max_sentences(value) -> int | None:
    """The form's "Max sentences" (empty or 0: all) as TrainConfig.max_sentences."""
    if value is None or value == "" or value == 0:
        return None
    return _whole(value, "Max sentences", 1, 10_000_000)


def parse_lr(value) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"Learning rate must be a number, got {value!r}.") from None
    if not 0 < rate <= 1:
        raise ValueError(f"Learning rate must be in (0, 1], got {value!r}.")
    return rate


def train_config_from_form(run_name, preset, epochs=None, lr=None, batch_size=None, max_sentences=None,
                           eval_every=None, seed=None, *, root: Path | None = None,
                           options: dict | None = None) -> tuple[str, TrainConfig]:
    """(sanitized run name, the TrainConfig of that run) from the Train form; ValueError naming the field
    otherwise (RunNameError for an empty or reserved run name). A field left empty (None) keeps TrainConfig's
    default. The run writes to `root`/<run name>. `options`: more TrainConfig fields set by the app (its
    translation cache; tests shorten evaluation), where "model" is a partial dict of TallConfig changes made on
    top of the preset (`TallConfig.changed`)."""
    name = check_run_name(run_name)
    defaults = form_defaults()

    def pick(key, value):
        return defaults[key] if value is None or value == "" else value

    values = {"epochs": _whole(pick("epochs", epochs), "Epochs", 1, 100),
              "lr": parse_lr(pick("lr", lr)),
              "batch_size": _whole(pick("batch_size", batch_size), "Batch size", 1, 256),
              "max_sentences": parse_max_sentences(max_sentences),
              "eval_every": _whole(pick("eval_every", eval_every), "Evaluate every", 0, 1_000_000),
              "seed": _whole(pick("seed", seed), "Seed", 0, 2**31 - 1)}
    options = dict(options or {})
    model = preset_config(str(preset)).changed(options.pop("model", None) or {})
    config = TrainConfig(model=model, out=str(run_directory(name, root)), **values, **options)
    config.validate()
    return name, config


# --------------------------------------------------------------------------- the trainer, seen from the app

def default_runner(config: TrainConfig, sentences: list[str], callbacks) -> dict:
    """Run training.train.train on `config` with the corpus read by the app; the scalars of its result."""
    return _as_dict(train(config, callbacks=callbacks, sentences=sentences))


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
        return self._jobs._stop.is_set() or self._jobs.time_is_up()


Runner = Callable[..., dict]  # (config: TrainConfig, sentences, callbacks) -> summary


class TrainingJobs:
    """At most one training job per process. `runner` is injectable (tests pass a fake)."""

    def __init__(self, runner: Runner | None = None, root: Path | None = None, max_seconds: float | None = None):
        """`max_seconds`: how long one start (or resume) of a run may train before it stops with a resumable
        checkpoint, so that one visitor cannot hold the shared trainer for ever (None: no limit)."""
        self.runner = runner or default_runner
        self.root = Path(root or CHECKPOINTS_ROOT)
        self.max_seconds = max_seconds
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

    def time_is_up(self) -> bool:
        with self._lock:
            return bool(self.max_seconds and self._snap.started and time.time() - self._snap.started > self.max_seconds)

    def is_running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def run_dir(self, config: TrainConfig) -> Path:
        """The run directory of `config`: one of this manager's run directories (never a shipped checkpoint nor
        anything outside the root), else RunNameError."""
        out_dir = Path(config.out)
        if run_directory(out_dir.name, self.root).resolve() != out_dir.resolve():
            raise RunNameError(f"A run from the app writes only to {self.root.name}/<run name>/, not to "
                               f"{config.out!r}.")
        return out_dir

    def start(self, config: TrainConfig, sentences: list[str] | None = None, *,
              resume: bool = False, owner: str | None = None) -> JobSnapshot:
        """Start (or resume) the run `config` describes in the background (`train_config_from_form`); a resumed
        run keeps its saved settings except those RESUME_OVERRIDES allows. JobBusy if one is running; ValueError
        for bad input."""
        out_dir = self.run_dir(config)
        name = out_dir.name
        with self._lock:
            if self.is_running():
                raise JobBusy(f"A training job is already running (run {self._snap.run_name!r}, "
                              f"{self._snap.state}): stop it or wait for it to finish.")
            if resume:
                if sentences is None and name in self._corpora:
                    sentences, data = self._corpora[name]
                    config = dataclasses.replace(config, data=config.data or data)
                if not (out_dir / "last").is_dir():
                    raise ValueError(f"Nothing to resume: run {name!r} has no checkpoint yet (start it first).")
                config = dataclasses.replace(config, resume=str(out_dir / "last"))
            if not sentences:
                raise ValueError("No sentences to train on: upload a corpus and check its report first.")
            if not resume:  # under the lock: of two simultaneous starts, only the one that runs claims the run
                claim(out_dir, owner)
            self._corpora[name] = (list(sentences), config.data)
            self._stop.clear()
            steps, evals = (self._previous_points(name, out_dir) if resume else ([], []))
            self._snap = JobSnapshot(state=RUNNING, run_name=name, preset=config.model.preset, out_dir=str(out_dir),
                                     started=time.time(), resumed=resume, steps=steps, evals=evals,
                                     message="resuming…" if resume else "starting…", version=self._snap.version + 1)
            self._thread = threading.Thread(target=self._run, name=f"tall-train-{name}",
                                            args=(config, list(sentences)), daemon=True)
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

    def _run(self, config: TrainConfig, sentences: list[str]) -> None:
        recorder, out_dir = _Recorder(self), Path(config.out)
        try:
            summary = self.runner(config, sentences, recorder)
            with self._lock:
                self._snap.summary.update(summary or {})
                stopped = bool(self._snap.summary.get("stopped", self._stop.is_set()))
                self._snap.state = STOPPED if stopped else FINISHED
                limit = (f" (one run trains at most {self.max_seconds / 60:g} min at a time)"
                         if stopped and not self._stop.is_set() and self.time_is_up() else "")
                self._snap.message = (f"stopped at step {self._snap.step}{limit}; resume continues from "
                                      f"{out_dir.name}/last" if stopped else f"finished: {self._snap.step} steps, saved to "
                                      f"checkpoints/{out_dir.name}")
        except Exception as err:  # shown in the UI; the traceback goes to the server log
            traceback.print_exc()
            with self._lock:
                self._snap.state = FAILED
                text = str(err) if isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {err}"
                self._snap.error = public_message(text, self.root)
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

    def stop(self, owner: str | None = None) -> JobSnapshot:
        """Ask the running job to stop at its next step (it keeps a resumable checkpoint); only its owner may
        (owners.NotYourRun otherwise; None: a trusted local call)."""
        with self._lock:
            if self.is_running():
                check_owner(Path(self._snap.out_dir), owner, "stop")
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

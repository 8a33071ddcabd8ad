"""A full disk while training saves: a real, small tmpfs when this runs as root and mounting works, else an injected
ENOSPC halfway through writing the weights. Either way the previous `last/` checkpoint stays intact and loadable,
the CLI and the app's Train tab say what happened (no server path in the browser), no half-written copy is left
taking space, and once space is back the run resumes to its end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import subprocess
from pathlib import Path

import pytest

from tall_app.jobs import FAILED, TrainingJobs
from tall_model import load, preset_config
from tall_model.checkpoint import CheckpointWriteError
from training import train as train_module
from training import train_state
from training.train import Callbacks, TrainConfig, train
from training.train_state import read_trainer_state

FILL_AT_STEP = 3  # the disk fills after step 3 was trained: step 2's checkpoint is the last complete one


@contextlib.contextmanager
def small_disk(path: Path):
    """A 32 MiB tmpfs at `path` (True), or just a folder (False) where mounting is not allowed."""
    path.mkdir(parents=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(path)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Write a filler file until the file system has only about `leave` bytes free."""
    filler = disk / "filler.bin"
    with filler.open("wb") as fh:
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        fh.write(b"\0" * max(free - leave, 0))
    return filler


class FillDisk(Callbacks):
    """Fills the disk (or arms the injected failure) right after step FILL_AT_STEP was trained."""

    def __init__(self, disk: Path, mounted: bool, armed: dict) -> None:
        self.disk, self.mounted, self.armed, self.filler = disk, mounted, armed, None

    def on_step(self, step, loss, lr):
        if step == FILL_AT_STEP:
            if self.mounted:  # room for the history row, not for a checkpoint
                self.filler = fill(self.disk, leave=48 * 1024)
            self.armed["on"] = True


@pytest.fixture
def failing_writes(monkeypatch):
    """Without a tmpfs: once armed, writing a safetensors file writes half of it and fails with ENOSPC."""
    armed = {"on": False}
    real_save_file = train_state.save_file

    def save_file(tensors, filename, metadata=None):
        if armed["on"]:
            Path(filename).write_bytes(b"\0" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real_save_file(tensors, filename, metadata=metadata)

    import tall_model.checkpoint as checkpoint_module  # the weights are written there
    monkeypatch.setattr(checkpoint_module, "save_file", save_file)
    monkeypatch.setattr(train_state, "save_file", save_file)
    return armed


def config(out: Path, cache: Path, **changes) -> TrainConfig:
    base = TrainConfig(model=preset_config("tiny").changed({"decoding": {"translation_max_new_tokens": 8}}),
                       out=str(out), translation_cache=str(cache), threads=1, batch_size=4, lr=1e-3,
                       dev_fraction=0.25, log_every=1, eval_every=1, max_steps=6, seed=0)
    return dataclasses.replace(base, **changes)


def test_full_disk_keeps_the_last_checkpoint_and_resumes(tmp_path, verses, backbones, failing_writes):
    disk = tmp_path / "disk"
    with small_disk(disk) as mounted:
        if mounted:
            failing_writes["on"] = False  # the real file system fails by itself
        run = disk / "run"
        filler = FillDisk(disk, mounted, failing_writes if not mounted else {})
        with pytest.raises(CheckpointWriteError) as caught:
            train(config(run, tmp_path / "translations.sqlite"), filler, sentences=verses, backbones=backbones)
        message = str(caught.value)
        assert caught.value.errno == errno.ENOSPC
        assert "No space left on device" in message and f"Training stopped at step {FILL_AT_STEP}" in message
        assert f"{run / 'last'} (step {FILL_AT_STEP - 1}), is intact" in message
        assert f"python -m training.train --resume {run / 'last'}" in message
        # the previous checkpoint is whole: it resumes and loads; no half-written copy is left taking space
        assert read_trainer_state(run / "last")["progress"]["step"] == FILL_AT_STEP - 1
        load(run / "last", backbones=backbones)
        assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
        # space is back: the run resumes to its end
        failing_writes["on"] = False
        if filler.filler is not None:
            filler.filler.unlink()
        resumed = train(config(run, tmp_path / "translations.sqlite", resume=str(run / "last")),
                        sentences=verses, backbones=backbones)
        assert resumed.step == 6 and not resumed.stopped
        print(f"full disk case: {'real 32 MiB tmpfs' if mounted else 'injected ENOSPC'}; {message}")


def test_cli_says_what_failed(tmp_path, verses, failing_writes, monkeypatch, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(verses) + "\n", encoding="utf-8")
    real_save_last = train_module._Run.save_last

    def save_last(self):  # the disk fills after the first checkpoint
        real_save_last(self)
        failing_writes["on"] = True

    monkeypatch.setattr(train_module._Run, "save_last", save_last)
    out = tmp_path / "run"
    code = train_module.main(["--preset", "tiny", "--data", str(corpus), "--out", str(out), "--threads", "1",
                              "--max-steps", "4", "--eval-every", "1", "--batch-size", "4", "--dev-fraction", "0.25",
                              "--translation-cache", str(tmp_path / "t.sqlite"),
                              "--model", '{"decoding": {"translation_max_new_tokens": 8}}'])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: Training stopped at step 2: could not write the checkpoint" in err
    assert "No space left on device" in err and f"--resume {out / 'last'}" in err
    assert read_trainer_state(out / "last")["progress"]["step"] == 1


def test_train_tab_shows_the_error_without_server_paths(tmp_path, verses, failing_writes, monkeypatch):
    from tall_app import jobs as jobs_module

    real_on_step = jobs_module._Recorder.on_step

    def on_step(self, step, loss, lr=None, *args, **kwargs):  # the disk fills once step 1's checkpoint is saved
        if step == 2:
            failing_writes["on"] = True
        return real_on_step(self, step, loss, lr, *args, **kwargs)

    monkeypatch.setattr(jobs_module._Recorder, "on_step", on_step)
    root = tmp_path / "checkpoints"
    jobs = TrainingJobs(jobs_module.default_runner, root)
    jobs.start(config(root / "mine", tmp_path / "t.sqlite", max_steps=4), verses)
    assert jobs.wait(timeout=300)
    snap = jobs.snapshot()
    assert snap.state == FAILED, snap
    assert "No space left on device" in snap.error and "checkpoints/mine/last (step 1), is intact" in snap.error
    assert str(tmp_path) not in snap.error and str(root.resolve()) not in snap.error

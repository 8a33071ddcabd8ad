"""The app's training side without a server: corpus checks, the Train form → TrainConfig, and the job manager
(with a fake trainer)."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from tall_app import formatting, jobs, paths
from tall_model import preset_config
from training.train_config import TrainConfig

from helpers import fake_checkpoint, tree_hashes

# --------------------------------------------------------------------------- corpus and hyper-parameters

GOOD = "ויהי דבר יהוה אל יונה בן אמתי לאמר\nקום לך אל נינוה העיר הגדולה\nhello world only\nקצר\n"


@pytest.mark.parametrize("name, content, match", [
    ("empty.txt", b"", "empty"), ("bin.txt", b"\x00\x01\x02binary\x00" * 10, "binary"),
    ("legacy.txt", "שלום עולם ומלואו".encode("cp1255"), "UTF-8"),
    ("english.txt", b"hello there my friend\n", "no usable"),
    ("corpus.pdf", b"%PDF", "unsupported file type"),
])
def test_bad_corpus_files_have_clear_messages(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        jobs.preview_corpus(path)


def test_oversize_and_missing_corpus(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text(GOOD * 50, encoding="utf-8")
    with pytest.raises(ValueError, match="over the cap"):
        jobs.preview_corpus(path, max_bytes=1000)
    with pytest.raises(ValueError, match="No corpus file"):
        jobs.preview_corpus(None)


def test_corpus_report_shows_kept_and_dropped(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(GOOD, encoding="utf-8")
    corpus = jobs.preview_corpus(path)
    text = formatting.report_markdown(corpus.report)
    assert corpus.report.kept == 2 and "**2 kept**" in text
    assert "no Hebrew letter: 1" in text and "fewer than 3 words: 1" in text


def test_train_config_from_form(tmp_path):
    name, config = jobs.train_config_from_form("my run", "tiny", 2, "1e-4", 4, 0, 0, 3, root=tmp_path)
    assert isinstance(config, TrainConfig) and name == "my-run"
    assert (config.epochs, config.lr, config.batch_size, config.max_sentences, config.eval_every, config.seed) == \
        (2, 1e-4, 4, None, 0, 3)
    assert config.model.preset == "tiny" and config.out == str(tmp_path / "my-run") and config.resume is None
    _, qwen = jobs.train_config_from_form("q", "tiny-qwen", max_sentences=50, root=tmp_path,
                                          options={"eval_limit": 7, "model": {"decoding": {"top_k": 3}}})
    assert qwen.model.preset == "tiny-qwen" and qwen.max_sentences == 50 and qwen.eval_limit == 7
    preset_decoding = preset_config("tiny-qwen").decoding
    assert qwen.model.decoding == preset_decoding.replace(top_k=3)  # a partial change on top of the preset
    for kwargs, match in [(dict(epochs=0), "Epochs"), (dict(lr=0), "Learning rate"), (dict(lr="x"), "Learning"),
                          (dict(batch_size=1.5), "Batch size"), (dict(max_sentences=-2), "Max sentences"),
                          (dict(epochs=float("inf")), "Epochs"), (dict(seed=-1), "Seed"),
                          (dict(eval_every="x"), "Evaluate every")]:
        with pytest.raises(ValueError, match=match):
            jobs.train_config_from_form("r", "tiny", root=tmp_path, **kwargs)
    with pytest.raises(paths.RunNameError, match="run name"):
        jobs.train_config_from_form("../..", "tiny", root=tmp_path)
    with pytest.raises(ValueError, match="Unknown preset"):
        jobs.train_config_from_form("r", "nope", root=tmp_path)
    with pytest.raises(TypeError):  # an option that is no TrainConfig field is a bug, not silently dropped
        jobs.train_config_from_form("r", "tiny", root=tmp_path, options={"no_such_field": 1})


def test_form_defaults_are_train_config_defaults(tmp_path):
    defaults, config = jobs.form_defaults(), TrainConfig()
    assert set(defaults) == set(jobs.FORM_FIELDS)
    assert defaults == {**{f: getattr(config, f) for f in jobs.FORM_FIELDS}, "max_sentences": 0}
    _, empty = jobs.train_config_from_form("r", "tiny", root=tmp_path)  # fields left empty
    _, filled = jobs.train_config_from_form("r", "tiny", *[defaults[f] for f in jobs.FORM_FIELDS], root=tmp_path)
    expected = dataclasses.replace(config, out=str(tmp_path / "r"))
    assert empty == filled == expected


# --------------------------------------------------------------------------- the job manager

class FakeTrainer:
    """Steps until told to stop (or `steps` are done); writes last/ like the real trainer."""

    def __init__(self, steps=1000, fail=False):
        self.steps, self.fail, self.calls, self.stopped_at = steps, fail, [], 0
        self.running = threading.Event()

    def __call__(self, config, sentences, cb):
        out_dir, resume = Path(config.out), config.resume is not None
        assert not resume or config.resume == str(out_dir / "last")
        self.calls.append((out_dir.name, len(sentences), resume))
        done = self.stopped_at if resume else 0
        cb.on_start(self.steps, done)
        self.running.set()
        if self.fail:
            raise ValueError("the corpus is too small for one batch")
        for step in range(done + 1, self.steps + 1):
            if cb.should_stop():
                break
            cb.on_step(step, 5.0 / step, 1e-4)
            done = step
            if step % 5 == 0:
                cb.on_eval(step, {"accuracy": 0.1, "note": "x"})
            time.sleep(0.002)
        (out_dir / "last").mkdir(parents=True, exist_ok=True)
        self.stopped_at = done
        cb.on_end({"steps": done})
        return {"steps": done}


def test_jobs_one_at_a_time_stop_and_resume(tmp_path):
    fake = FakeTrainer()
    manager = jobs.TrainingJobs(fake, tmp_path)
    _, params = jobs.train_config_from_form("run-1", "tiny", root=tmp_path)
    with pytest.raises(ValueError, match="Nothing to resume"):
        manager.start(params, ["א ב ג"], resume=True)
    with pytest.raises(ValueError, match="No sentences"):
        manager.start(params, [])
    snap = manager.start(params, ["א ב ג", "ד ה ו"])
    assert snap.state == jobs.RUNNING and snap.out_dir == str(tmp_path / "run-1")
    assert fake.running.wait(10)
    with pytest.raises(jobs.JobBusy, match="already running"):
        manager.start(jobs.train_config_from_form("run-2", "tiny", root=tmp_path)[1], ["א ב ג"])
    while manager.snapshot().step < 5:
        time.sleep(0.01)
    assert manager.stop().state == jobs.STOPPING
    assert manager.wait(10)
    snap = manager.snapshot()
    assert snap.state == jobs.STOPPED and 5 <= snap.step < 1000 and snap.total_steps == 1000
    assert snap.steps[0] == {"step": 1, "loss": 5.0} and snap.evals[0]["metrics"] == {"accuracy": 0.1}
    assert "resume" in snap.message and snap.summary["steps"] == snap.step
    html = jobs.progress_html(snap)
    assert 'data-state="stopped"' in html and "run-1" in html
    stopped_at = snap.step
    fake.steps = stopped_at + 4
    manager.start(params, None, resume=True)  # the run's corpus is remembered
    assert manager.wait(10)
    snap = manager.snapshot()
    assert snap.state == jobs.FINISHED and snap.fraction == 1.0 and snap.step == stopped_at + 4
    assert [p["step"] for p in snap.steps] == list(range(1, stopped_at + 5))  # the curve goes on
    assert fake.calls[-1] == ("run-1", 2, True)


def test_failed_job_reports_its_error(tmp_path):
    finished = []
    manager = jobs.TrainingJobs(FakeTrainer(fail=True), tmp_path)
    manager.on_finish.append(finished.append)
    manager.start(jobs.train_config_from_form("bad", "tiny", root=tmp_path)[1], ["א ב ג"])
    assert manager.wait(10)
    snap = manager.snapshot()
    assert snap.state == jobs.FAILED and "too small" in snap.error
    assert finished and finished[0].state == jobs.FAILED
    assert "too small" in jobs.progress_html(snap)


def test_default_runner_hands_the_form_config_to_the_trainer(tmp_path, monkeypatch):
    seen = []

    def fake_train(config, callbacks=None, sentences=None):
        seen.append((config, callbacks, sentences))
        return {"step": 3, "stopped": False, "history": [{"step": 1}], "best_metrics": {"dev_accuracy": 0.5}}

    _, config = jobs.train_config_from_form("x", "tiny", root=tmp_path)
    monkeypatch.setattr(jobs, "train", fake_train)
    assert jobs.default_runner(config, ["א ב ג"], "cb") == {"step": 3, "stopped": False,
                                                           "best_metrics": {"dev_accuracy": 0.5}}
    assert seen == [(config, "cb", ["א ב ג"])]  # the TrainConfig itself: no argv or dict round-trip


def test_jobs_refuse_to_write_into_a_shipped_or_outside_folder(tmp_path):
    root = tmp_path / "checkpoints"
    shipped = fake_checkpoint(root / "demo" / "tall")
    before = tree_hashes(root)
    fake = FakeTrainer(steps=3)
    manager = jobs.TrainingJobs(fake, root)
    _, config = jobs.train_config_from_form("run-x", "tiny", root=root)
    for out in (root / "demo", shipped, root / "DEMO", tmp_path / "elsewhere", root / "a" / "b"):
        with pytest.raises(paths.RunNameError):
            manager.start(dataclasses.replace(config, out=str(out)), ["א ב ג"])
        with pytest.raises(paths.RunNameError):
            manager.start(dataclasses.replace(config, out=str(out)), ["א ב ג"], resume=True)
    assert fake.calls == [] and tree_hashes(root) == before

"""training.train on the tiny preset: learning, exact resume, translate-once, stopping, checkpoints, two processes.

Every run uses one torch thread: on a shared 2-core machine, torch's default thread pool spins against the other
processes and makes a tiny step ~50x slower.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tall_data.examples import make_examples
from tall_model import load, preset_config
from training import train as train_module
from training.train import Callbacks, TrainConfig, TrainError, train

REPO = Path(__file__).resolve().parent.parent
VOLATILE = ("elapsed_s", "examples_per_s")  # wall-clock fields of history rows


def config(tmp: Path, name: str, **changes) -> TrainConfig:
    base = TrainConfig(model=preset_config("tiny").changed({"decoding": {"translation_max_new_tokens": 8}}),
                       out=str(tmp / name), translation_cache=str(tmp / "translations.sqlite"), threads=1,
                       batch_size=4, lr=1e-3,
                       dev_fraction=0.25, log_every=1, seed=0)
    return dataclasses.replace(base, **changes)


class StopAt(Callbacks):
    """What the app's Stop button does: should_stop() turns True after `step`."""

    def __init__(self, step: int) -> None:
        self.stop_step, self.step, self.events = step, 0, []

    def on_start(self, total_steps, first_step):
        self.events.append(("start", total_steps, first_step))

    def on_step(self, step, loss, lr):
        self.step = step

    def on_eval(self, step, metrics):
        self.events.append(("eval", step))

    def on_end(self, summary):
        self.events.append(("end", summary["step"]))

    def should_stop(self) -> bool:
        return self.step >= self.stop_step


def rows(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in history]


# --------------------------------------------------------------------------- shared runs

@pytest.fixture(scope="module")
def runs(tmp_path_factory, verses, backbones):
    """Three runs on 9 train / 3 dev verses (3 batches an epoch, 7 steps = 2⅓ epochs, eval every 2 steps):
    `full` trains 7 steps; `cut` is stopped by should_stop() after 4 (mid-epoch); `resumed` continues `cut`.
    `full` counts every text given to the translator; `again` reruns `full`'s data in a new run directory."""
    tmp = tmp_path_factory.mktemp("runs")
    sent: list[str] = []
    batch_sizes: set = set()
    real_translate = train_module.translate

    def counting_translate(model, texts, **options):
        sent.extend(texts)
        batch_sizes.add(options.get("batch_size"))
        return real_translate(model, texts, **options)

    common = dict(max_steps=7, eval_every=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "translate", counting_translate)
        full = train(config(tmp, "full", **common), sentences=verses, backbones=backbones)
        sent_by_full = list(sent)
        stopper = StopAt(4)
        cut = train(config(tmp, "cut", **common), stopper, sentences=verses, backbones=backbones)
        cut_state = json.loads((tmp / "cut" / "last" / "trainer_state.json").read_text())
        cut_files = sorted(p.name for p in (tmp / "cut" / "last").iterdir())
        resumed = train(config(tmp, "ignored", resume=str(tmp / "cut" / "last")), sentences=verses,
                        backbones=backbones)
        again = train(config(tmp, "again", max_steps=1), sentences=verses, backbones=backbones)
    return dict(tmp=tmp, full=full, cut=cut, resumed=resumed, again=again, stopper=stopper, sent=sent_by_full,
                sent_total=list(sent), cut_state=cut_state, cut_files=cut_files, batch_sizes=batch_sizes)


def test_should_stop_leaves_a_resumable_checkpoint(runs):
    cut = runs["cut"]
    assert cut.stopped and cut.step == 4 and cut.total_steps == 7
    assert cut.resume_command == f"python -m training.train --resume {runs['tmp'] / 'cut' / 'last'}"
    assert {"model.safetensors", "config.json", "optimizer.safetensors", "trainer_state.json",
            "rng-0.safetensors", "rng-0.json"} <= set(runs["cut_files"])
    state = runs["cut_state"]
    assert state["progress"]["step"] == 4 and state["progress"]["epoch"] == 1 and state["progress"]["position"] == 1
    assert runs["stopper"].events[0] == ("start", 7, 0) and runs["stopper"].events[-1] == ("end", 4)
    assert cut.final_metrics is None  # a stop saves at once, without a final evaluation


def test_resume_is_exact(runs):
    full, resumed = runs["full"], runs["resumed"]
    assert not resumed.stopped and resumed.step == full.step == 7
    assert resumed.run_dir == str(runs["tmp"] / "cut")  # a resume continues in the run's own directory
    for name in ("model.safetensors", "optimizer.safetensors"):
        a = load_file(str(Path(full.last_checkpoint) / name))
        b = load_file(str(Path(resumed.last_checkpoint) / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-6, atol=1e-7, msg=f"{name}: {key}")
    assert rows(resumed.history) == rows(full.history)
    assert [r["step"] for r in full.history] == list(range(1, 8))
    assert full.history[-1]["dev_accuracy"] is not None and full.history[-1]["dev_loss"] > 0
    on_disk = json.loads((Path(resumed.run_dir) / "history.json").read_text())
    assert rows(on_disk) == rows(full.history)
    assert set(on_disk[0]) == {"step", "epoch", "train_loss", "dev_loss", "dev_accuracy", "lr", "elapsed_s",
                               "examples_per_s"}


def test_each_distinct_prefix_is_translated_once(runs, verses):
    distinct = {ex.prefix for ex in make_examples(verses)}
    assert sorted(runs["sent"]) == sorted(distinct)  # two epochs + evaluations, yet each prefix exactly once
    assert runs["full"].translation_stats["sent"] == len(distinct)
    assert runs["sent_total"] == runs["sent"]  # the stopped, resumed and second runs translated nothing
    assert runs["again"].translation_stats == {"requested": len(distinct), "hits": len(distinct), "sent": 0,
                                               "calls": 0, "sent_by_process": [0]}
    # --translation-batch-size sets the rows per generate call (it used to be fixed at 16, slow on a GPU)
    assert runs["batch_sizes"] == {TrainConfig().translation_batch_size}


def test_best_and_last_load_with_the_one_loader(runs, backbones):
    full = runs["full"]
    assert full.best_checkpoint and full.best_metrics["step"] in (2, 4, 6, 7)
    for path in (full.best_checkpoint, full.last_checkpoint):
        model = load(path, backbones=backbones)
        saved = load_file(str(Path(path) / "model.safetensors"))
        for key, value in model.trainable_state_dict().items():
            assert torch.equal(value, saved[key])
        extra = json.loads((Path(path) / "config.json").read_text())["extra"]
        assert extra["train"]["lr"] == 1e-3 and extra["train_examples"] == 9
    assert json.loads((Path(full.best_checkpoint) / "config.json").read_text())["extra"]["dev_accuracy"] \
        == full.best_metrics["dev_accuracy"]


def test_a_run_writes_its_training_words_and_its_checkpoints_find_them(runs, backbones, verses):
    from tall_data.examples import normalize_word
    from tall_model.checkpoint import checkpoint_file
    from tall_model.word_list import TRAINING_WORDS, read_word_list
    from training.train_data import load_data

    full = runs["full"]
    words = read_word_list(Path(full.run_dir) / TRAINING_WORDS)
    data = load_data(config(runs["tmp"], "probe"), load("tiny", backbones=backbones), verses, lambda _: None)
    train_words = {normalize_word(w) for e in data.train for w in e.sentence.split()} - {""}
    assert set(words) == train_words and words == sorted(words)  # the dev verses' words are not listed
    for path in (full.best_checkpoint, full.last_checkpoint):
        assert checkpoint_file(load(path, backbones=backbones), TRAINING_WORDS) == Path(full.run_dir) / TRAINING_WORDS
    assert checkpoint_file(load("tiny", backbones=backbones), TRAINING_WORDS) is None  # fresh adapters: no folder


# --------------------------------------------------------------------------- separate runs

def test_loss_decreases_when_overfitting(tmp_path, verses, backbones):
    # The tiny preset's random en→he decoder barely listens to its cross-attention (projections initialised with
    # std 0.02), so whatever the bridges learn moves its loss by only ~0.004. Amplifying that path ×10 gives a
    # decoder that depends on the bridges' output, as a trained one does, and the learning becomes visible.
    decoder = copy.deepcopy(backbones.hr_lr)
    with torch.no_grad():
        for layer in decoder.model.decoder.layers:
            layer.encoder_attn.v_proj.weight.mul_(10)
            layer.encoder_attn.out_proj.weight.mul_(10)
    listening = dataclasses.replace(backbones, hr_lr=decoder)
    result = train(config(tmp_path, "overfit", batch_size=8, lr=3e-3, dev_fraction=0.0, epochs=30,
                          warmup_fraction=0.0, log_every=5), sentences=verses[:8], backbones=listening)
    losses = [row["train_loss"] for row in result.history]
    assert result.step == 30 and result.best_checkpoint is None  # no dev split: nothing to choose a best by
    assert losses[-1] < losses[0] - 0.1, losses


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path, verses, backbones):
    class CtrlC(Callbacks):
        messages: list[str] = []

        def on_step(self, step, loss, lr):
            if step == 2:
                signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C during step 2

        def on_log(self, message):
            self.messages.append(message)

    before = signal.getsignal(signal.SIGINT)
    result = train(config(tmp_path, "ctrl-c", max_steps=5, dev_fraction=0.0), CtrlC(), sentences=verses,
                   backbones=backbones)
    assert result.stopped and result.step == 2
    assert any("Ctrl-C" in m for m in CtrlC.messages)
    assert signal.getsignal(signal.SIGINT) is before  # the handler is removed again
    resumed = train(config(tmp_path, "x", resume=result.last_checkpoint), sentences=verses, backbones=backbones)
    assert resumed.step == 5 and not resumed.stopped


def test_train_runs_in_a_worker_thread(tmp_path, verses, backbones):
    # the app trains in a thread: no signal handler may be installed there (signal.signal would raise)
    import threading

    results = []
    worker = threading.Thread(target=lambda: results.append(train(
        config(tmp_path, "thread", max_steps=2, dev_fraction=0.0), sentences=verses, backbones=backbones)))
    worker.start()
    worker.join(timeout=60)
    assert results and results[0].step == 2 and not results[0].stopped


def test_refusals(tmp_path, verses, backbones, runs):
    with pytest.raises(TrainError, match="already holds a run"):
        train(config(runs["tmp"], "full"), sentences=verses, backbones=backbones)
    with pytest.raises(TrainError, match="finished run"):
        train(config(tmp_path, "x", resume=runs["full"].last_checkpoint), sentences=verses, backbones=backbones)
    with pytest.raises(TrainError, match="examples differ"):
        train(config(tmp_path, "x", resume=str(runs["tmp"] / "cut" / "last")), sentences=verses[:10],
              backbones=backbones)
    with pytest.raises(TrainError, match="cannot change: --lr"):
        train_module.config_from_args(train_module.parse_args(["--resume", "runs/x/last", "--lr", "1e-3"]))
    with pytest.raises(TrainError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"learning_rate": 1e-3})


def test_cli_resume_keeps_the_saved_settings(runs):
    from training.train_config import resume_config
    from training.train_state import read_trainer_state

    last = runs["tmp"] / "cut" / "last"
    typed = train_module.config_from_args(train_module.parse_args(["--resume", str(last), "--eval-every", "3"]))
    merged = resume_config(typed, read_trainer_state(last))
    saved = TrainConfig.from_dict(read_trainer_state(last)["config"])
    assert merged == dataclasses.replace(saved, resume=str(last), eval_every=3)


def test_experiment_files_parse():
    for path in sorted((REPO / "experiments").glob("*.json")):
        assert isinstance(TrainConfig.from_file(path), TrainConfig)
    paper = TrainConfig.from_file(REPO / "experiments" / "paper-bloomz-subword.json")
    assert (paper.model.preset, paper.model.framing, paper.model.loss) == ("paper-bloomz", "subword", "last")
    assert paper.model.llm == "bigscience/bloomz-560m" and paper.schedule == "epoch"


def test_the_model_config_is_embedded_not_duplicated(tmp_path):
    import dataclasses as dc

    fields = {f.name for f in dc.fields(TrainConfig)}
    assert not fields & {"framing", "loss", "preset"}  # they live in TrainConfig.model, once
    args = train_module.parse_args(["--config", str(REPO / "experiments" / "tiny-smoke.json"), "--framing",
                                    "subword", "--model", '{"dropout": 0.2}', "--epochs", "1"])
    config = train_module.config_from_args(args)
    assert (config.model.preset, config.model.framing, config.model.dropout) == ("tiny", "subword", 0.2)
    assert config.model.decoding.translation_max_new_tokens == 16 and config.epochs == 1  # the file's, kept
    assert TrainConfig.from_dict(config.to_dict()) == config  # what a checkpoint saves rebuilds the same run
    with pytest.raises(TrainError, match="invalid model config"):
        TrainConfig.from_dict({"model": {"preset": "tiny", "framing": "letters"}})


def test_two_processes_save_one_checkpoint(tmp_path, verses):
    # `accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (multi-CPU there means
    # mpirun); `--multi_gpu` launches through torchrun, and train() turns that into a gloo group on the CPU.
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(verses) + "\n", encoding="utf-8")
    out = tmp_path / "runs" / "two"
    with socket.socket() as s:  # a free port for the process group's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
           "-m", "training.train", "--preset", "tiny", "--data", str(corpus), "--out", str(out), "--threads", "1",
           "--max-steps", "2", "--batch-size", "2", "--dev-fraction", "0.2", "--eval-limit", "2",
           "--translation-batch-size", "2", "--model", '{"decoding": {"translation_max_new_tokens": 8}}']
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    log = f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, log
    # no staging/old leftovers
    assert sorted(p.name for p in out.iterdir()) == ["best", "history.json", "last", "training_words.txt"], log
    last = sorted(p.name for p in (out / "last").iterdir())
    assert {"rng-0.json", "rng-1.json", "trainer_state.json", "model.safetensors"} <= set(last), log  # both ranks
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    assert state["num_processes"] == 2 and state["progress"]["step"] == 2, log
    assert proc.stdout.count("Done: 2 steps") == 1, log  # only the main process reports
    # one run directory and the shared cache (SQLite may leave its -wal/-shm files while another process closes)
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert runs == ["translations.sqlite", "two"]
    # the translate-once fill was shared out: each process translated about half (batches of 2: 5 and 4 of 9)
    counts = json.loads(proc.stdout.split("translated now (by process: ")[1].split(")")[0])
    assert len(counts) == 2 and all(c > 0 for c in counts) and abs(counts[0] - counts[1]) <= 2, log
    # and the cache is exactly what one process fills
    one_process = [sys.executable, "-m", "training.train", "--preset", "tiny", "--data", str(corpus), "--out",
                   str(tmp_path / "one"), "--threads", "1", "--max-steps", "1", "--batch-size", "2",
                   "--dev-fraction", "0.2", "--eval-limit", "1", "--translation-batch-size", "2",
                   "--translation-cache", str(tmp_path / "single.sqlite"),
                   "--model", '{"decoding": {"translation_max_new_tokens": 8}}']
    single = subprocess.run(one_process, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert single.returncode == 0, single.stderr[-3000:]
    assert cache_rows(tmp_path / "runs" / "translations.sqlite") == cache_rows(tmp_path / "single.sqlite")


def cache_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT key, namespace, source, translation FROM translations"))


def test_dev_data_file_is_the_dev_set_and_every_sentence_trains(tmp_path, verses, backbones):
    """--dev-data (e.g. held-out books) replaces the random split: all training sentences train."""
    dev_file = tmp_path / "dev.jsonl"
    dev_file.write_text("".join(json.dumps({"text": v}, ensure_ascii=False) + "\n" for v in verses[8:11]),
                        encoding="utf-8")
    result = train(config(tmp_path, "devfile", dev_data=str(dev_file), epochs=1, max_steps=1, eval_limit=10),
                   sentences=verses[:8], backbones=backbones)
    assert result.final_metrics["dev_examples"] == 3
    # every prefix translated once: 8 training sentences (none split off) + the 3 dev-file sentences
    assert result.translation_stats["requested"] == 11


def test_max_target_pieces_keeps_the_one_piece_targets_in_train_and_every_target_in_dev(verses, backbones):
    """The one-piece-targets row's data: training examples whose target word is more pieces than allowed are
    dropped (the subword framing's pieces), the dev examples are not, and the flag parses as a number."""
    from types import SimpleNamespace

    from training.train_data import load_data

    model, tokenizer = SimpleNamespace(backbones=backbones), backbones.lr_hr_tokenizer
    every = load_data(config(Path("unused"), "x", positions="all"), model, verses, lambda _: None)
    pieces = {ex.target: len(tokenizer.tokenize(ex.target)) for ex in every.train}
    assert {1} < set(pieces.values())  # the corpus has words of one piece and of more: the filter has work to do
    assert any(len(tokenizer.tokenize(ex.target)) > 1 for ex in every.dev)  # and so has dev, which keeps them
    for most in (1, 2):
        short = load_data(config(Path("unused"), "x", positions="all", max_target_pieces=most), model, verses,
                          lambda _: None)
        assert short.train == [ex for ex in every.train if pieces[ex.target] <= most]
        assert short.dev == every.dev and short.fingerprint != every.fingerprint
    assert train_module.config_from_args(train_module.parse_args(["--max-target-pieces", "1"])).max_target_pieces == 1
    long_last = [v for v in verses if len(tokenizer.tokenize(v.split()[-1].strip(".,;:"))) > 1][:3]
    assert len(long_last) == 3 and load_data(config(Path("unused"), "x", dev_fraction=0), model, long_last,
                                             lambda _: None).train  # they train, unfiltered
    with pytest.raises(TrainError, match=r"at most 1 piece\(s\) \(max_target_pieces\)"):
        load_data(config(Path("unused"), "x", max_target_pieces=1, dev_fraction=0), model, long_last, lambda _: None)
    with pytest.raises(TrainError, match="max_target_pieces must be a positive number"):
        config(Path("unused"), "x", max_target_pieces=0).validate()
    subword = preset_config("tiny").changed({"framing": "subword", "loss": "last"})
    with pytest.raises(TrainError, match="a subword target is one piece already"):
        config(Path("unused"), "x", model=subword, max_target_pieces=1).validate()

"""Exact resume, proved with real processes: `python -m training.train` is SIGKILLed three times, at seeded random
moments (after a chosen step was saved, possibly in the middle of writing the next checkpoint), resumed each time
with --resume, and must end bitwise equal to the same run never interrupted: every trainable tensor, the optimizer
moments, the history (less wall-clock fields) and the dev exact match.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

from tall_model.tiny import bible_lines

REPO = Path(__file__).resolve().parent.parent
VOLATILE = ("elapsed_s", "examples_per_s")
KILL_SEED = 12  # which steps and delays the kills use
STEPS = 8


def _cmd(out: Path, corpus: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "training.train", "--preset", "tiny", "--data", str(corpus), "--out", str(out),
            "--translation-cache", str(cache), "--threads", "1", "--max-steps", str(STEPS), "--batch-size", "3",
            "--lr", "1e-3", "--dev-fraction", "0.25", "--eval-every", "1", "--log-every", "1", "--seed", "0",
            "--model", '{"decoding": {"translation_max_new_tokens": 8}}']


def _saved_step(last: Path) -> int:
    try:
        return json.loads((last / "trainer_state.json").read_text())["progress"]["step"]
    except (OSError, ValueError, KeyError):  # not written yet, or being swapped in right now
        return -1


def _run_and_kill(cmd: list[str], last: Path, at_step: int, delay: float, env: dict) -> int:
    """Start `cmd`, SIGKILL it `delay` seconds after `last/` holds step >= at_step; the step it had saved."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while _saved_step(last) < at_step:
        assert proc.poll() is None, f"finished before step {at_step}: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no progress in 180 s"
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the process ended before the kill"
    return _saved_step(last)


def _rows(run: Path) -> list[dict]:
    history = json.loads((run / "history.json").read_text())
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in history]


def test_sigkill_at_three_points_then_resume_is_bitwise_exact(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(bible_lines(60)[0][:16]) + "\n", encoding="utf-8")
    cache = tmp_path / "translations.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    full = tmp_path / "full"
    done = subprocess.run(_cmd(full, corpus, cache), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    killed, last = tmp_path / "killed", tmp_path / "killed" / "last"
    rng = random.Random(KILL_SEED)
    kill_steps = sorted(rng.sample(range(1, STEPS - 1), 3))
    cmd, saved_at_kill = _cmd(killed, corpus, cache), []
    for at_step in kill_steps:
        saved = _run_and_kill(cmd, last, at_step, rng.uniform(0.0, 0.3), env)
        assert saved >= at_step  # the checkpoint the kill left behind is whole and readable
        saved_at_kill.append(saved)
        cmd = [sys.executable, "-m", "training.train", "--resume", str(last)]
    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Done: 8 steps" in resumed.stdout
    print(f"killed after steps {kill_steps} were saved; the kills left checkpoints of steps {saved_at_kill}")

    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = load_file(str(full / "last" / name)), load_file(str(last / name))
        assert a.keys() == b.keys()
        different = [k for k in a if not a[k].equal(b[k])]
        assert not different, f"{name}: {different[:5]} differ after kills at steps {saved_at_kill}"
    assert _rows(killed) == _rows(full)
    final = [r for r in _rows(full) if "dev_accuracy" in r][-1]
    assert final["step"] == STEPS and final == [r for r in _rows(killed) if "dev_accuracy" in r][-1]

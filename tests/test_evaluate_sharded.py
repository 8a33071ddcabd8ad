"""Evaluation on two processes (torchrun, a gloo group on the CPU) gives exactly what one process gives: the
translate-once step and each approach's prediction passes are shared out batch by batch."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from tall_model import load
from tall_model.checkpoint import save_pretrained

REPO = Path(__file__).resolve().parent.parent


def _rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT key, namespace, source, translation FROM translations"))


def test_two_processes_evaluate_exactly_as_one(tmp_path, verses):
    data = tmp_path / "verses.txt"
    data.write_text("\n".join(verses[:5]) + "\n", encoding="utf-8")
    tall = save_pretrained(load("tiny", seed=3), tmp_path / "tall")
    with socket.socket() as s:  # a free port for the process group's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "TOKENIZERS_PARALLELISM": "false"}
    outputs = {}
    for nproc in (1, 2):
        launch = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
                  if nproc == 2 else [sys.executable])
        cmd = [*launch, "-m", "evaluation.evaluate", "--preset", "tiny", "--data", str(data), "--tall", str(tall),
               "--approaches", "tall,direct,naive", "--seeds", "2", "--limit", "5", "--batch-size", "2",
               "--max-new-tokens", "6", "--translation-max-new-tokens", "8", "--no-progress",
               "--translation-cache", str(tmp_path / f"tc{nproc}.sqlite"), "--out", str(tmp_path / f"out{nproc}")]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        outputs[nproc] = proc.stdout
    one, two = tmp_path / "out1", tmp_path / "out2"
    assert (one / "predictions.jsonl").read_text() == (two / "predictions.jsonl").read_text()
    metrics = [json.loads((out / "metrics.json").read_text()) for out in (one, two)]
    for payload in metrics:
        for row in payload["rows"]:
            row.pop("seconds")
        for key in ("started", "command"):
            payload.pop(key)
    assert metrics[0] == metrics[1]
    assert len(metrics[0]["rows"]) == 3 and metrics[0]["translation"]
    assert _rows(tmp_path / "tc1.sqlite") == _rows(tmp_path / "tc2.sqlite") != []
    assert outputs[2].count("Wrote ") == 1  # only process 0 writes
    # 5 prefixes in batches of 2: 3 batches, shared 2 + 1 (by batch), translated once (by the first approach)
    assert outputs[2].count("translated 5 prefixes on 2 processes (by process: [3, 2])") == 1, outputs[2]

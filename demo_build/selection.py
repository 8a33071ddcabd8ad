"""Which adapters the demo ships: the run's best or last checkpoint, whichever finds more words on every dev verse.

Training scores a seeded sample of 400 DEV-book verses every 250 steps and keeps the best of those evaluations
(`best/`) beside the last step (`last/`). On 400 verses the greedy exact match moves by a point or two between
neighbouring evaluations from noise alone (the session-13 run: 9.75 % at step 1,750, 7.5 % at 2,000, 9.0 % at
2,500, while the dev loss fell at every one), so the final choice between the two is made on every DEV-book verse
(1,127 in the demo): more greedy hits, then more top-5 hits; a tie keeps `best/`. Each checkpoint is scored by
evaluation.evaluate (as the build's test table scores TALL) into <run>/selection/<name>, reused on a rerun.
"""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.evaluate import evaluate
from evaluation.metrics import exact_match
from evaluation.significance import mcnemar_exact

CHECKPOINTS = ("best", "last")


def _step(folder: Path) -> int:
    return int(json.loads((folder / "config.json").read_text())["extra"]["step"])


def dev_hits(folder: Path, dev_all: Path, translation_cache: Path,
          backbone_dir: Path | None = None) -> tuple[list[bool], list[bool]]:
    """(greedy, top-5) hits of the checkpoint `folder` on every verse of `dev_all`, scored once."""
    out = folder.parent / "selection" / folder.name
    if not (out / "predictions.jsonl").exists():
        preset = json.loads((folder / "config.json").read_text())["config"]["preset"]
        on = f" --backbone-dir {backbone_dir}" if backbone_dir else ""
        evaluate([dev_all], preset=preset, tall=folder, approaches=("tall",), seeds=0,
                 translation_cache=translation_cache, out=out, progress=False, backbone_dir=backbone_dir,
                 command=f"python -m evaluation.evaluate --preset {preset}{on} --data {dev_all} --tall {folder} "
                         f"--approaches tall --seeds 0 --out {out}")
    records = [json.loads(line) for line in (out / "predictions.jsonl").open(encoding="utf-8")]
    greedy = [exact_match(r["greedy"], r["gold"]) for r in records]
    top5 = [any(exact_match(w, r["gold"]) for w in r["candidates"][:5]) for r in records]
    return greedy, top5


def choose_checkpoint(run: Path, dev_all: Path, translation_cache: Path, backbone_dir: Path | None = None) -> dict:
    """{"selected": "best" | "last", the steps, each one's hits on `dev_all` and their McNemar p}. `backbone_dir`:
    the build's own backbones, which the run was trained on (evaluate's)."""
    names = [n for n in CHECKPOINTS if (run / n / "config.json").exists()]
    if not names:
        raise RuntimeError(f"{run} has neither best/ nor last/: the adapters stage has not finished training")
    steps = {n: _step(run / n) for n in names}
    if len(names) == 1 or steps["best"] == steps["last"]:
        return {"selected": names[0], "steps": steps, "rule": "one checkpoint: nothing to choose",
                "examples": None, "hits": None, "mcnemar_p": None}
    scored = {n: dev_hits(run / n, dev_all, translation_cache, backbone_dir) for n in names}
    hits = {n: {"greedy": sum(g), "top5": sum(t)} for n, (g, t) in scored.items()}
    best, last = hits["best"], hits["last"]
    selected = "last" if (last["greedy"], last["top5"]) > (best["greedy"], best["top5"]) else "best"
    only_last, only_best, p = mcnemar_exact(scored["last"][0], scored["best"][0])
    return {"selected": selected, "steps": steps, "rule": "more greedy hits on every dev verse, then more top-5 hits; "
            "a tie keeps best", "data": dev_all.name, "examples": len(scored["best"][0]), "hits": hits,
            "only_last": only_last, "only_best": only_best, "mcnemar_p": round(p, 4)}

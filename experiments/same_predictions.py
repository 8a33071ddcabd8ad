"""How close two evaluations of the same examples are: a rebuild, or the same build on another CPU, against the
shipped one (issue 13: "a rebuild reproduces the same metrics.json up to floating-point noise; say how close").

    python -m experiments.same_predictions checkpoints/demo/eval build/eval-again [--out FILE]
    python -m experiments.same_predictions --weights SHIPPED.safetensors RETRAINED.safetensors
    python -m experiments.same_predictions --baseline checkpoints/demo/baselines/fine-tuned build/again/fine-tuned

Both folders are `evaluation.evaluate` outputs (predictions.jsonl, metrics.json). Per approach: the examples whose
greedy word, he→en translation, candidate list and sampled words are the same, and the largest difference of the
gold word's log-probability; per table row: the largest difference of any number in it. Examples pair by position
within a dataset and approach; the approaches only one folder scored are left out (a re-scored subset compares with
the whole table), and folders that scored different examples are refused. `--weights` compares two weight files
instead: the tensors that are the same once cast to the first file's dtype (the shipped fp16), and the largest
difference. `--baseline` compares two `baselines.train` runs: their logged losses step by step, and their weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from evaluation.report import PREDICTIONS, read_predictions

ROW_NUMBERS = ("accuracy", "sampled_accuracy", "top5_accuracy", "mean_log_prob", "empty_greedy")


def _by_approach(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        out.setdefault((r["dataset"], r["approach"]), []).append(r)
    return out


def _largest(pairs) -> float | None:
    gaps = [abs(a - b) for a, b in pairs if a is not None and b is not None]
    return max(gaps) if gaps else None


def same_predictions(ours: list[dict], theirs: list[dict]) -> dict[str, dict]:
    """Per "dataset/approach" that both scored: examples, and how many have the same greedy word, translation,
    candidates and sampled words."""
    mine, other = _by_approach(ours), _by_approach(theirs)
    if not set(mine) & set(other):
        raise ValueError(f"no approach in common: {sorted(mine)} against {sorted(other)}")
    out = {}
    for key, rs in mine.items():
        if key not in other:
            continue
        them = other[key]
        if [(r["prefix"], r["gold"]) for r in rs] != [(r["prefix"], r["gold"]) for r in them]:
            raise ValueError(f"{key[0]}/{key[1]}: the two evaluations scored different examples")
        pairs = list(zip(rs, them, strict=True))
        out[f"{key[0]}/{key[1]}"] = {
            "examples": len(pairs),
            "same_greedy": sum(a["greedy"] == b["greedy"] for a, b in pairs),
            "same_translation": sum(a.get("translation") == b.get("translation") for a, b in pairs),
            "same_candidates": sum(a.get("candidates") == b.get("candidates") for a, b in pairs),
            "same_sampled": (sum(a["sampled"] == b["sampled"] for a, b in pairs)  # None: one side did not sample
                             if all(a.get("sampled") and b.get("sampled") for a, b in pairs) else None),
            "log_prob_largest_difference": _largest((a.get("log_prob"), b.get("log_prob")) for a, b in pairs)}
    return out


def same_rows(ours: list[dict], theirs: list[dict]) -> dict[str, float | None]:
    """Per "dataset/approach" row of metrics.json: the largest difference of any of its numbers."""
    other = {(r["dataset"], r["approach"]): r for r in theirs}
    return {f"{r['dataset']}/{r['approach']}": _largest((r.get(k), other[(r["dataset"], r["approach"])].get(k))
                                                        for k in ROW_NUMBERS)
            for r in ours if (r["dataset"], r["approach"]) in other}


def same_weights(theirs: Path, ours: Path) -> dict:
    """Two weight files of one model, tensor by tensor, ours cast to their dtype (the shipped fp16 against an fp32
    run). Files with different tensors are refused: not the same model."""
    mine, other = load_file(str(ours)), load_file(str(theirs))
    if set(mine) != set(other):
        raise ValueError(f"{ours} and {theirs} hold different tensors: not the same model")
    gaps = {k: (mine[k].to(v.dtype).float() - v.float()).abs().max().item() for k, v in other.items()}
    return {"tensors": len(gaps), "identical": sum(g == 0 for g in gaps.values()),
            "max_abs_difference": max(gaps.values()), "dtype": str(next(iter(other.values())).dtype)}


def same_losses(theirs: list[float], ours: list[float]) -> dict:
    """Two runs' logged losses, step by step: how many are the same, the first that is not, the largest gap."""
    if len(theirs) != len(ours):
        raise ValueError(f"the runs logged {len(theirs)} and {len(ours)} steps: not the same budget")
    gaps = [abs(a - b) for a, b in zip(theirs, ours, strict=True)]
    return {"steps": len(gaps), "same": sum(g == 0 for g in gaps),
            "first_different_step": next((i + 1 for i, g in enumerate(gaps) if g), None),
            "largest_difference": max(gaps), "final": [theirs[-1], ours[-1]]}


def same_baseline(theirs: Path, ours: Path) -> dict:
    """Two `baselines.train` runs of one recipe (baseline.json, adapter_model.safetensors)."""
    logs = [json.loads((d / "baseline.json").read_text(encoding="utf-8")) for d in (theirs, ours)]
    return {"losses": same_losses(logs[0]["losses"], logs[1]["losses"]),
            "weights": same_weights(theirs / "adapter_model.safetensors", ours / "adapter_model.safetensors")}


def compare_folders(ours: Path, theirs: Path) -> dict:
    rows = [json.loads((d / "metrics.json").read_text(encoding="utf-8"))["rows"] for d in (ours, theirs)]
    return {"ours": str(ours), "theirs": str(theirs),
            "predictions": same_predictions(read_predictions(ours / PREDICTIONS),
                                            read_predictions(theirs / PREDICTIONS)),
            "rows_largest_difference": same_rows(*rows)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m experiments.same_predictions", description=__doc__.split("\n\n")[0])
    ap.add_argument("theirs", type=Path, help="the reference evaluation folder (e.g. checkpoints/demo/eval)")
    ap.add_argument("ours", type=Path, help="the evaluation to compare with it")
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument("--weights", action="store_true", help="the two paths are weight files (.safetensors)")
    kind.add_argument("--baseline", action="store_true", help="the two paths are baselines.train output folders")
    ap.add_argument("--out", type=Path, help="also write the comparison here (JSON)")
    args = ap.parse_args(argv)
    result = (same_weights(args.theirs, args.ours) if args.weights else same_baseline(args.theirs, args.ours)
              if args.baseline else compare_folders(args.ours, args.theirs))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return result


if __name__ == "__main__":
    main()

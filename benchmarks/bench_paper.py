"""The paper presets at full size on the stand-ins: load, predict one word, one training step (batch 8 × 32 words),
save, reload, same output; the time and peak RSS of each stage, each stage in a fresh process.

    python -m tall_model.standins --preset paper-bloomz --cache /work/standins     # once (≈1.7 GB)
    HF_HOME=/work/standins HF_HUB_OFFLINE=1 python -m benchmarks.bench_paper --preset paper-bloomz

Stages (`--stage`, each also run alone in its own process by the default `all`):
- app:       startup as the app does it (AppService + Blocks) with the preset loaded, then one Predict request
             (candidates and both attention maps): startup seconds from a warm cache, predict seconds, peak RSS.
- train:     one optimizer step through `training.train.train` (translate-once fill included) at batch 8 on
             33-word sentences (so prefixes of 32 words): seconds and peak RSS.
- roundtrip: load → predict → train one step → load its last/ → predict → save_pretrained → load afresh →
             predict: the last two predictions must be identical (exit 1 otherwise).
tests/test_standins.py runs `--stage roundtrip` on the tiny stand-ins (`--size tiny`): the same code path.
The translation is capped at 30 pieces (random translators never stop), as a user's realistic prefix would be.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import median_seconds

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PREFIX = "ויהי דבר יהוה אל יונה בן אמתי לאמר קום לך אל נינוה העיר"  # 12 words
TRANSLATION_PIECES = 30
SEED = 0


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB


def sentences(n: int, words: int) -> list[str]:
    """n Hebrew sentences of exactly `words` words, cut from consecutive Tanakh verses."""
    from tall_model.tiny import bible_lines

    stream = " ".join(bible_lines(2000)[0]).split()
    return [" ".join(stream[i * words:(i + 1) * words]) for i in range(n)]


def _decoding():
    from tall_model import Decoding

    return Decoding(translation_max_new_tokens=TRANSLATION_PIECES)


def _summary(result) -> dict:
    return {"word": result.word, "translation": result.translation,
            "pieces": [(p.piece, p.prob) for p in result.pieces],
            "candidates": [(c.word, c.prob) for c in result.candidates]}


def train_one_step(preset: str, out: Path, device: str, dtype: str | None, backbones=None, batch: int = 8,
                   words: int = 33, steps: int = 1, low_memory: bool = True):
    from tall_model.config import preset_config
    from training.train import train
    from training.train_config import TrainConfig

    model_config = preset_config(preset).changed({"decoding": {"translation_max_new_tokens": TRANSLATION_PIECES}})
    config = TrainConfig(model=model_config, max_steps=steps, low_memory=low_memory, batch_size=batch, eval_limit=1, dev_fraction=0.1,
                         out=str(out / "run"), translation_cache=str(out / "translations.sqlite"), device=device,
                         dtype=dtype, seed=SEED)
    return train(config, sentences=sentences(batch + 2, words), backbones=backbones)


def stage_roundtrip(preset: str, out: Path, device: str, dtype: str | None, batch: int = 8, words: int = 33) -> dict:
    import torch

    from tall_model import load
    from tall_model.checkpoint import save_pretrained
    from tall_model.predict import predict

    times = {}
    start = time.perf_counter()
    model = load(preset, device=device, dtype=dtype, decoding=_decoding(), seed=SEED)
    times["load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    untrained = predict(model, PREFIX)
    times["predict_s"] = time.perf_counter() - start
    start = time.perf_counter()
    result = train_one_step(preset, out, device, dtype, backbones=model.backbones, batch=batch, words=words)
    times["train_one_step_s"] = time.perf_counter() - start
    trained = load(result.last_checkpoint, backbones=model.backbones, device=device, decoding=_decoding())
    changed = any(not torch.equal(a, b) for a, b in zip(model.trainable_state_dict().values(),
                                                        trained.trainable_state_dict().values()))
    before = predict(trained, PREFIX, translations=untrained.translation)
    save_pretrained(trained, out / "saved")
    del model, trained
    start = time.perf_counter()
    reloaded = load(out / "saved", device=device, dtype=dtype, decoding=_decoding())  # backbones loaded afresh
    times["reload_s"] = time.perf_counter() - start
    after = predict(reloaded, PREFIX, translations=untrained.translation)
    return {**times, "trained_weights_changed": changed, "same_output": _summary(before) == _summary(after),
            "before": _summary(before), "after": _summary(after), "steps": result.step,
            "folders": {role: str(folder) for role, folder in reloaded.backbones.folders.items()}}


def stage_app(preset: str, out: Path, device: str, dtype: str | None, batch: int = 8, words: int = 33) -> dict:
    start = time.perf_counter()
    from tall_app.blocks import build_app

    demo = build_app(preset, device=device, dtype=dtype, **INFERENCE)
    service = demo.service
    model = service.cache.get(preset)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    service.predict(PREFIX, preset, None)
    first, first_peak = time.perf_counter() - start, peak_rss_gb()  # the target: loaded + one prediction
    again = median_seconds(lambda: service.predict(PREFIX, preset, None), 3, digits=3)  # its translation cached
    return {"startup_s": startup, "predict_s": first, "peak_rss_after_one_prediction_gb": round(first_peak, 3),
            "predict_again_median_s": again, "source": model.description, **INFERENCE}


def stage_train(preset: str, out: Path, device: str, dtype: str | None, batch: int = 8, words: int = 33) -> dict:
    """As `python -m training.train` runs it (which returns freed memory to the system with low_memory)."""
    from tall_model.memory import return_freed_memory

    if TRAIN["low_memory"]:
        return_freed_memory()
    start = time.perf_counter()
    result = train_one_step(preset, out, device, dtype, batch=batch, words=words, steps=TRAIN["steps"],
                            low_memory=TRAIN["low_memory"])
    seconds = [row["elapsed_s"] for row in result.history]
    return {"train_run_s": time.perf_counter() - start, "steps": result.step, "batch": batch,
            "prefix_words": words - 1, "low_memory": TRAIN["low_memory"],
            "examples_per_s": result.history[-1]["examples_per_s"] if result.history else None, "elapsed": seconds}


def stage_levers(preset: str, out: Path, device: str, dtype: str | None, batch: int = 8, words: int = 33) -> dict:
    """Where a next-word prediction's time goes, and what each inference lever buys, side by side in one process:
    the translation alone; the prediction on a given translation with candidates and attention maps, without
    them, with 1 thread; int8 dynamic quantisation of the frozen LLM body's and en→he decoder's linear layers (with the
    agreement of predicted words on 8 prefixes); the paper's recompute-everything way (one run)."""
    import torch

    from tall_model import load
    from tall_model.predict import predict, predict_uncached
    from tall_model.translate import translate

    model = load(preset, device=device, dtype=dtype, decoding=_decoding(), seed=SEED)
    english = translate(model, [PREFIX])[0]
    predict(model, PREFIX, translations=english)  # warm-up
    threads = torch.get_num_threads()

    def timed(fn) -> float:
        return median_seconds(fn, 3, digits=3)

    def full_predict():
        return predict(model, PREFIX, translations=english)

    out_values = {"threads": threads, "translate_s": timed(lambda: translate(model, [PREFIX])),
                  "predict_full_s": timed(full_predict),
                  "predict_no_candidates_no_maps_s": timed(lambda: predict(
                      model, PREFIX, translations=english, num_candidates=0, output_attentions=False))}
    torch.set_num_threads(1)
    out_values["predict_full_1_thread_s"] = timed(full_predict)
    torch.set_num_threads(threads)
    prefixes = [" ".join(s.split()[:12]) for s in sentences(8, 13)]
    englishes = translate(model, prefixes)
    fp32_words = [predict(model, p, translations=e, num_candidates=0, output_attentions=False).word
                  for p, e in zip(prefixes, englishes)]
    start = time.perf_counter()
    out_values["paper_way_s"] = round((predict_uncached(model, PREFIX), time.perf_counter() - start)[1], 3)
    for body in (model.llm.base_model, model.hr_lr.get_decoder()):  # the heads stay fp32 (predict reads their size)
        torch.ao.quantization.quantize_dynamic(body, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    out_values["predict_full_int8_s"] = timed(full_predict)
    int8_words = [predict(model, p, translations=e, num_candidates=0, output_attentions=False).word
                  for p, e in zip(prefixes, englishes)]
    out_values["int8_word_agreement"] = sum(a == b for a, b in zip(fp32_words, int8_words)) / len(prefixes)
    return out_values


def stage_threads(preset: str, out: Path, device: str, dtype: str | None, batch: int = 8, words: int = 33) -> dict:
    """A full Predict request (translation of the 12-word prefix capped at 30 pieces, then the word with 5
    candidates and both attention maps), and its two parts, at 1 and at 2 torch threads, medians of 3 each."""
    import torch

    from tall_model import load
    from tall_model.predict import predict
    from tall_model.translate import translate

    model = load(preset, device=device, dtype=dtype, decoding=_decoding(), seed=SEED)
    english = translate(model, [PREFIX])[0]
    predict(model, PREFIX, translations=english)  # warm-up
    values = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, fn in (("translate", lambda: translate(model, [PREFIX])),
                         ("predict_given_translation", lambda: predict(model, PREFIX, translations=english)),
                         ("predict_request", lambda: predict(model, PREFIX))):
            values.setdefault(f"{name}_{threads}_thread_s", []).append(median_seconds(fn, 3, digits=3))
    return {key: min(runs) for key, runs in values.items()} | {"runs": values}


def stage_evaluate(preset: str, out: Path, device: str, dtype: str | None, batch: int = 8, words: int = 33) -> dict:
    """The evaluate command's function with every approach that needs no trained adapters here (TALL with untrained
    adapters, direct, naive; soft-prompt and fine-tuned need adapters trained at full size: skipped, reason
    recorded) on 4 test prefixes, greedy + 1 sampled seed; then the Compare tab's plain function on one prefix."""
    from evaluation.evaluate import evaluate
    from tall_app.service import AppService

    model_start = time.perf_counter()
    service = AppService(preset, device=device, dtype=dtype)
    loaded = service.cache.get(preset, None)
    load_s = time.perf_counter() - model_start
    data = out / "prefixes.txt"
    data.write_text("\n".join(sentences(4, 13)) + "\n", encoding="utf-8")
    start = time.perf_counter()
    payload = evaluate([data], preset=preset, tall=loaded.model, seeds=1, limit=4, batch_size=4,
                       translation_max_new_tokens=TRANSLATION_PIECES, translation_cache=out / "tc.sqlite",
                       out=out / "eval", progress=False, backbones=loaded.model.backbones, device=device)
    evaluate_s = time.perf_counter() - start
    start = time.perf_counter()
    comparison = service.compare(PREFIX, preset, None)
    return {"load_s": round(load_s, 1), "evaluate_s": round(evaluate_s, 1),
            "rows": {r["approach"]: {"accuracy": r["accuracy"], "seconds": r["seconds"]} for r in payload["rows"]},
            "skipped": payload["skipped"], "compare_s": round(time.perf_counter() - start, 1),
            "compare_rows": [row[:2] + row[3:] for row in comparison.rows], "compare_unavailable":
            list(comparison.unavailable)}


TRAIN = {"steps": 1, "low_memory": True}  # the train stage's --steps and --low-memory
INFERENCE = {}  # the app stage's --translation-engine and --quantize
STAGES = {"roundtrip": stage_roundtrip, "app": stage_app, "train": stage_train, "levers": stage_levers,
          "threads": stage_threads, "evaluate": stage_evaluate}


def run_stage(stage: str, preset: str, device: str, dtype: str | None, batch: int = 8, words: int = 33) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-paper-") as tmp:
        values = STAGES[stage](preset, Path(tmp), device, dtype, batch, words)
    return {"stage": stage, "preset": preset, "device": device, "dtype": dtype or "fp32", **values,
            "peak_rss_gb": round(peak_rss_gb(), 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper-bloomz", choices=("paper-bloomz", "paper-qwen"))
    ap.add_argument("--stage", default="all", choices=("all", *STAGES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8, help="training batch (the stage `train` and `roundtrip`)")
    ap.add_argument("--words", type=int, default=33, help="words per training sentence (prefix: one fewer)")
    ap.add_argument("--steps", type=int, default=1, help="optimizer steps of the stage `train` (from the second "
                    "on, AdamW's moments are held through forward and backward: the steady state)")
    ap.add_argument("--low-memory", action=argparse.BooleanOptionalAction, default=True,
                    help="the stage `train` with TrainConfig.low_memory (default) or without")
    ap.add_argument("--translation-engine", default="transformers", help="the stage `app`: as app.py's")
    ap.add_argument("--quantize", default="none", help="the stage `app`: as app.py's")
    args = ap.parse_args(argv)
    TRAIN.update(steps=args.steps, low_memory=args.low_memory)
    INFERENCE.update(translation_engine=args.translation_engine, quantize=args.quantize)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.stage != "all":
        report = run_stage(args.stage, args.preset, args.device, args.dtype, args.batch, args.words)
        print(json.dumps(report, ensure_ascii=False))
        return 0 if report.get("same_output", True) and report.get("trained_weights_changed", True) else 1
    print(f"# load average: {os.getloadavg()}")
    status = 0
    for stage in ("app", "train", "roundtrip"):  # each in a fresh process: its peak RSS is its own
        cmd = [sys.executable, "-m", "benchmarks.bench_paper", "--preset", args.preset, "--stage", stage,
               "--device", args.device] + (["--dtype", args.dtype] if args.dtype else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-3000:])
        status |= proc.returncode
    print(f"# load average: {os.getloadavg()}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput and memory: translate-once cache vs the paper's loader, bf16 vs fp32, paper-size peak RSS.

1. Examples/second over two epochs, same model, one run:
   ours    - every distinct prefix translated once (batched, through TranslationCache) before epoch 1;
   paper's - the Dataset translates its prefix in __getitem__, one example at a time, every epoch (flaw 2).
   The random backbones never emit </s>, so every translation runs to --translation-tokens pieces; the default
   (32) is about the median English length of a Bible verse (34 pieces with an 8k SentencePiece).
2. Median step time with bf16 autocast vs fp32 (same model, same batches).
3. Peak RSS of one fp32 training step (forward, backward, AdamW) of the paper-bloomz preset at batch 8, sequence 32,
   in a fresh subprocess: backbones built from their exact configs with random weights (the real ones are not
   available offline), batch tensors made directly (no tokenizers).

    python -m benchmarks.bench_train                       # mid preset, all three parts
    python -m benchmarks.bench_train --preset tiny --skip-memory
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from tall_data.examples import make_examples  # noqa: E402
from tall_data.translation_cache import TranslationCache  # noqa: E402
from tall_model import TallModel, load, preset_config  # noqa: E402
from tall_model.tiny import bible_lines  # noqa: E402
from tall_model.translate import translate, translator_id  # noqa: E402


def train_step(model, optimizer, examples, translations, bf16=False) -> float:
    batch = model.make_batch([e.prefix for e in examples], translations, [e.target for e in examples],
                             [e.sentence for e in examples])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


class PaperDataset(torch.utils.data.Dataset):
    """The authors' loader: translation inside __getitem__, for every example, every epoch."""

    def __init__(self, model, examples):
        self.model, self.examples = model, examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        ex = self.examples[i]
        return ex, translate(self.model, [ex.prefix])[0]


def epochs_ours(model, examples, batch, cache_file) -> list[float]:
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=5e-5, weight_decay=0.01)
    seconds = []
    with TranslationCache(cache_file, translator_id=translator_id(model), settings={}) as cache:
        for epoch in range(2):
            start = time.perf_counter()
            # epoch 1 translates every distinct prefix (batched); epoch 2 finds them all in the cache
            prefixes = [e.prefix for e in examples]
            table = dict(zip(prefixes, cache.translate(prefixes, lambda texts: translate(model, texts), tqdm=False)))
            for i in range(0, len(examples), batch):
                chunk = examples[i:i + batch]
                train_step(model, optimizer, chunk, [table[e.prefix] for e in chunk])
            seconds.append(time.perf_counter() - start)
    return seconds


def epochs_paper(model, examples, batch) -> list[float]:
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=5e-5, weight_decay=0.01)
    loader = torch.utils.data.DataLoader(PaperDataset(model, examples), batch_size=batch, shuffle=False,
                                         collate_fn=lambda items: items)
    seconds = []
    for epoch in range(2):
        start = time.perf_counter()
        for items in loader:
            train_step(model, optimizer, [ex for ex, _ in items], [tr for _, tr in items])
        seconds.append(time.perf_counter() - start)
    return seconds


def bench_cache(args) -> dict:
    config = preset_config(args.preset).changed({"decoding": {"translation_max_new_tokens": args.translation_tokens}})
    model = load(config).train()
    initial = {k: v.clone() for k, v in model.trainable_state_dict().items()}

    def reset() -> None:  # same starting weights for both arms
        with torch.no_grad():
            for key, value in model.trainable_state_dict().items():
                value.copy_(initial[key])

    examples = make_examples(bible_lines(args.sentences + 40)[0][40:40 + args.sentences])
    prefixes = [e.prefix for e in examples]
    # warm-up (not timed): the first calls of every kernel are slower, and the first arm would pay for them
    warm = translate(model, prefixes[:args.batch])
    train_step(model, torch.optim.AdamW(model.trainable_parameters()), examples[:args.batch], warm)
    reset()
    # the pieces of one epoch, timed apart: translation (batched vs one by one) and the training steps
    start = time.perf_counter()
    english = translate(model, prefixes)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = [translate(model, [p])[0] for p in prefixes]
    single_s = time.perf_counter() - start
    tok = model.backbones.llm_tokenizer
    english_tokens = statistics.median(len(tok(t)["input_ids"]) for t in english)
    with tempfile.TemporaryDirectory() as tmp:
        ours = epochs_ours(model, examples, args.batch, Path(tmp) / "cache.sqlite")
    reset()
    paper = epochs_paper(model, examples, args.batch)
    n = len(examples)
    return {"examples": n, "ours_s": ours, "paper_s": paper, "same_translations": english == single,
            "ours_eps": [n / s for s in ours], "paper_eps": [n / s for s in paper],
            "translate_batched_s_per_ex": batched_s / n, "translate_single_s_per_ex": single_s / n,
            "english_llm_tokens_median": english_tokens,
            "ratio_epoch2": paper[1] / ours[1], "ratio_two_epochs": sum(paper) / sum(ours)}


def bench_bf16(args) -> dict:
    config = preset_config(args.preset).changed({"decoding": {"translation_max_new_tokens": args.translation_tokens}})
    model = load(config).train()
    examples = make_examples(bible_lines(args.batch + 40)[0][40:40 + args.batch])
    translations = translate(model, [e.prefix for e in examples])
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=5e-5)
    result = {}
    for name, bf16 in (("fp32", False), ("bf16", True), ("fp32 again", False)):
        train_step(model, optimizer, examples, translations, bf16)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            train_step(model, optimizer, examples, translations, bf16)
            times.append(time.perf_counter() - start)
        result[name] = statistics.median(times)
    return result


# --------------------------------------------------------------------------- paper-size memory (subprocess)

def current_rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB


def memory_child(preset: str, batch: int, seq: int, drop_translation_parts: bool) -> dict:
    from tall_model.backbones import build_meta_backbones
    from tall_model.batching import TallBatch

    out = {"after_imports_gb": current_rss_gb()}
    config = preset_config(preset)
    backbones = build_meta_backbones(config)
    model = TallModel(config, backbones)  # trainable parts are real (CPU) tensors; the backbones are on meta
    if drop_translation_parts:
        # What training does once every prefix is in the translation cache (training/train.py): stage 1 uses
        # only the he→en encoder and stage 7 only the en→he decoder, so the other halves' layers are released.
        model.release_translation_parts()
    with torch.no_grad():
        for module in (backbones.lr_hr, backbones.llm, backbones.hr_lr):
            module.to_empty(device="cpu")
            module.tie_weights()  # to_empty unties shared embeddings (one copy per module): tie them again
            for name, p in module.named_parameters():  # values only need to be finite and small
                p.uniform_(-0.03, 0.03) if p.dim() >= 2 else p.fill_(1.0 if name.endswith("weight") else 0.0)
            for b in module.buffers():
                b.zero_()
    count = lambda ps: sum(p.numel() for p in ps)  # noqa: E731
    out["frozen_params"] = count(p for m in (backbones.lr_hr, backbones.llm, backbones.hr_lr) for p in m.parameters())
    out["trainable_params"] = count(model.trainable_parameters())
    out["after_weights_gb"] = current_rss_gb()
    g = torch.Generator().manual_seed(0)
    ids = lambda high: torch.randint(4, high, (batch, seq), generator=g)  # noqa: E731
    mask = torch.ones(batch, seq, dtype=torch.long)
    loss_mask = torch.zeros(batch, seq, dtype=torch.long)
    loss_mask[:, -3:] = 1  # a two-piece word plus its end, as with --loss word
    vocab_in, vocab_llm = backbones.lr_hr.config.vocab_size, backbones.llm.config.vocab_size
    vocab_out = backbones.hr_lr.config.vocab_size
    batch_t = TallBatch(ids(vocab_in - 1), mask, ids(vocab_llm), mask.clone(), ids(vocab_out - 1),
                        ids(vocab_out - 1), loss_mask)
    model.train()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=5e-5, weight_decay=0.01)
    start = time.perf_counter()
    loss = model(batch_t).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    out.update(step_s=time.perf_counter() - start, loss=loss.item(), after_step_gb=current_rss_gb(),
               peak_gb=peak_rss_gb())
    return out


def bench_memory(args, drop: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_train", "--memory-child", "--memory-preset", args.memory_preset,
           "--threads", str(args.threads)] + (["--drop-translation-parts"] if drop else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"memory subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="mid", choices=["tiny", "mid"])
    ap.add_argument("--parts", default="cache,bf16,memory", help="comma list of cache, bf16, memory")
    ap.add_argument("--bf16-preset", default=None, help="preset of the bf16 comparison (default: --preset)")
    ap.add_argument("--sentences", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--translation-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the 2 cores here are shared)")
    ap.add_argument("--memory-preset", default="paper-bloomz")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--drop-translation-parts", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_preset, 8, 32, args.drop_translation_parts)))
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    parts = set(args.parts.split(","))
    say = lambda *a: print(*a, flush=True)  # noqa: E731
    say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} thread(s), CUDA: {torch.cuda.is_available()}, "
        f"oneDNN bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    if "cache" in parts:
        c = bench_cache(args)
        say(f"\n## translate-once cache vs the paper's loader ({args.preset}, {c['examples']} examples, batch "
            f"{args.batch}, translations of {args.translation_tokens} pieces = median "
            f"{c['english_llm_tokens_median']:.0f} LLM tokens)\n")
        say("| | epoch 1 ex/s | epoch 2 ex/s | two epochs (s) |\n|---|---|---|---|")
        for name, key in (("ours (cache)", "ours"), ("paper (translate in loader)", "paper")):
            eps, secs = c[f"{key}_eps"], c[f"{key}_s"]
            say(f"| {name} | {eps[0]:.2f} | {eps[1]:.2f} | {sum(secs):.1f} |")
        say(f"\nspeed-up: epoch 2 {c['ratio_epoch2']:.2f}x, two epochs together {c['ratio_two_epochs']:.2f}x")
        say(f"translation per example: {c['translate_single_s_per_ex']:.3f} s one by one, "
            f"{c['translate_batched_s_per_ex']:.3f} s batched (identical output: {c['same_translations']})")
    if "bf16" in parts:
        preset = args.bf16_preset or args.preset
        b = bench_bf16(argparse.Namespace(**{**vars(args), "preset": preset}))
        say(f"\n## step time, batch {args.batch} ({preset}, median of {args.repeats})\n")
        say("| precision | step (s) |\n|---|---|")
        for name, seconds in b.items():
            say(f"| {name} | {seconds:.3f} |")
        say(f"\nbf16/fp32: {b['bf16'] / statistics.mean([b['fp32'], b['fp32 again']]):.2f}")
    if "memory" in parts:
        say(f"\n## one fp32 training step of {args.memory_preset}, random weights, batch 8, sequence 32\n")
        say("| | as built | translation-only halves dropped |\n|---|---|---|")
        a, d = bench_memory(args, False), bench_memory(args, True)
        say(f"| frozen parameters | {a['frozen_params']:,} | {d['frozen_params']:,} |")
        say(f"| trainable parameters | {a['trainable_params']:,} | {d['trainable_params']:,} |")
        for key in ("after_imports_gb", "after_weights_gb", "after_step_gb", "peak_gb"):
            say(f"| RSS {key.replace('_gb', '').replace('_', ' ')} (GB) | {a[key]:.2f} | {d[key]:.2f} |")
        say(f"| step time (s) | {a['step_s']:.1f} | {d['step_s']:.1f} |")


if __name__ == "__main__":
    main()

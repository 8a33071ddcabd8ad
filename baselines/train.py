"""Train the two trainable baselines and save their PEFT adapters.

    python -m baselines.train soft-prompt --preset tiny --data FILE --out DIR [--steps N --lr LR --seed S]
    python -m baselines.train fine-tuned  --preset tiny --data FILE --out DIR [--steps N --lr LR --seed S]
        [--backbone-dir DIR]   # DIR's he-en/, lm/, en-he/ in place of the preset's

soft-prompt: prompt tuning (virtual tokens, frozen LLM) on English next-word pairs built from the Hebrew
  sentences by the frozen he→en translator (see training/soft_prompt_data.py for the construction).
fine-tuned: LoRA on the LLM with the causal-LM loss on the Hebrew sentences themselves.

Seeds: `--seed` seeds Python's `random` (batch order, example positions) and torch (adapter initialisation,
dropout). Only the adapter tensors are written (adapter_model.safetensors) with baseline.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from baselines.adapters import KINDS, llm_fingerprint, save_adapter, trainable_copy
from baselines.approach import BaselineModels
from baselines.soft_prompt_data import build_soft_prompt_data
from baselines.word_lm import prompt_ids
from tall_data.corpus import CorpusError, read_corpus
from tall_data.examples import short_target_sentences
from tall_data.translation_cache import DEFAULT_TRANSLATION_CACHE, open_prefix_cache, translate_prefixes
from tall_model import preset_config
from tall_model.backbones import BackboneNotFoundError, load_backbones
from tall_model.config import PRESETS, on_backbones

DEFAULT_LR = {"soft-prompt": 3e-2, "fine-tuned": 2e-4}


class TrainingDataError(ValueError):
    """The corpus gave no usable training rows."""


@dataclass
class BaselineConfig:
    """One trainable baseline's run: which one, its PEFT adapter's shape, and its optimisation."""

    kind: str
    steps: int = 200
    lr: float | None = None  # None: DEFAULT_LR[kind]
    seed: int = 0
    batch_size: int = 8
    max_length: int = 128  # tokens per training row (prompt + target, or one Hebrew sentence)
    warmup_fraction: float = 0.05
    positions: str | int = "last"  # soft-prompt pairs per sentence (make_examples positions)
    virtual_tokens: int = 20  # soft prompt length
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    progress: bool | None = True


def _rows_soft_prompt(models: BaselineModels, sentences, options: BaselineConfig, cache_path) -> tuple[list, dict]:
    """(prompt ids + target ids, labels only on the target) for each English next-word pair."""
    tok = models.backbones.llm_tokenizer
    with open_prefix_cache(models, cache_path) as cache:
        def translate(texts):
            return translate_prefixes(models, cache, texts, options.progress)

        data = build_soft_prompt_data(sentences, translate, options.positions, options.seed)
        translator = cache.translator_id
    if not data.pairs:
        raise TrainingDataError(f"no soft-prompt training pairs could be built ({data.as_dict()}): the translator "
                         "added no English word for any next Hebrew word; give more or longer sentences.")
    rows = []
    for pair in data.pairs:
        target = tok(" " + pair.target, add_special_tokens=False)["input_ids"][: options.max_length // 2]
        prompt = prompt_ids(tok, pair.context, options.max_length - len(target))  # as WordLM feeds it
        rows.append((prompt + target, [-100] * len(prompt) + target))
    return rows, {"translator_id": translator, "soft_prompt_data": data.as_dict()}


def _rows_fine_tuned(models: BaselineModels, sentences, options: BaselineConfig) -> tuple[list, dict]:
    """Every token of each Hebrew sentence (then </s>) is a causal-LM target."""
    tok = models.backbones.llm_tokenizer
    rows = []
    for sentence in sentences:
        ids = (tok(sentence)["input_ids"] + [tok.eos_token_id])[: options.max_length]
        if len(ids) > 1:
            rows.append((ids, list(ids)))
    if not rows:
        raise TrainingDataError("no Hebrew sentence gave a training row (each needs 2+ LLM tokens)")
    return rows, {}


def _batch(rows, pad_id: int, device) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, target) in enumerate(rows):  # right padding; padded positions carry no loss
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(row)] = torch.tensor(target)
        mask[i, : len(row)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def _batches(n_rows: int, batch_size: int, rng: random.Random):
    """Endless batches of row indices: each epoch a fresh shuffle."""
    while True:
        order = list(range(n_rows))
        rng.shuffle(order)
        for start in range(0, n_rows, batch_size):
            yield order[start:start + batch_size]


def train_baseline(models: BaselineModels, sentences: list[str], options: BaselineConfig, out_dir,
                   cache_path=DEFAULT_TRANSLATION_CACHE, extra: dict | None = None) -> Path:
    """Train one adapter and save it to out_dir; returns out_dir."""
    if options.kind not in KINDS:
        raise ValueError(f"baseline must be one of {', '.join(KINDS)}; got {options.kind!r}")
    if options.steps < 1 or options.batch_size < 1:
        raise ValueError("steps and batch_size must be >= 1")
    started = time.time()
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    if options.kind == "soft-prompt":
        rows, info = _rows_soft_prompt(models, sentences, options, cache_path)
    else:
        rows, info = _rows_fine_tuned(models, sentences, options)
    torch.manual_seed(options.seed)  # adapter initialisation does not depend on how long data building took
    model = trainable_copy(options.kind, models.llm, options)
    # The frozen LLM under a soft prompt stays in eval mode (no dropout in frozen parts); LoRA fine-tuning
    # trains in train mode like any fine-tuning (LoRA dropout).
    model.train(options.kind == "fine-tuned")
    params = [p for p in model.parameters() if p.requires_grad]
    lr = options.lr if options.lr is not None else DEFAULT_LR[options.kind]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, math.ceil(options.warmup_fraction * options.steps),
                                               options.steps)
    pad_id, device = models.backbones.llm_tokenizer.pad_token_id, models.device
    batches = _batches(len(rows), options.batch_size, rng)
    losses = []
    bar = tqdm(range(options.steps), desc=f"train {options.kind}", disable=not options.progress)
    for _ in bar:
        loss = model(**_batch([rows[i] for i in next(batches)], pad_id, device)).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {len(losses) + 1}; lower --lr")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 5))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    meta = {"preset": models.config.preset, **{k: v for k, v in dataclasses.asdict(options).items()
                                                 if k != "progress"}, "lr": lr, "training_rows": len(rows),
            "trainable_parameters": sum(p.numel() for p in params), "losses": losses,
            "final_loss": losses[-1], "seconds": round(time.time() - started, 1), **info, **(extra or {})}
    return save_adapter(model, out_dir, options.kind, models.config.llm, llm_fingerprint(models.llm), meta)


def with_short_targets(sentences: list[str], backbones, most: int | None) -> list[str]:
    """The sentences a TALL run with max_target_pieces = `most` trains on (all of them when unset), so that a
    baseline compared with it is given the same verses."""
    if most is None:
        return sentences
    if most < 1:
        raise TrainingDataError(f"--max-target-pieces must be a positive number, got {most}")
    kept = short_target_sentences(sentences, backbones.lr_hr_tokenizer, most)
    if not kept:
        raise TrainingDataError(f"none of the {len(sentences)} sentences ends in a word of at most {most} he→en "
                                "piece(s) (--max-target-pieces)")
    return kept


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m baselines.train", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--preset", default="tiny", choices=PRESETS)
    p.add_argument("--backbone-dir", default=None, help="a folder whose he-en/, lm/ and en-he/ replace the preset's "
                   "(those it holds; a demo build's --out)")
    p.add_argument("--data", required=True, help="Hebrew corpus (.txt/.csv/.tsv/.jsonl, see tall_data.corpus)")
    p.add_argument("--out", required=True, help="directory for the adapter")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=None, help="default: 3e-2 soft-prompt, 2e-4 fine-tuned")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-sentences", type=int, default=None)
    p.add_argument("--max-target-pieces", type=int, default=None,
                   help="train only on the sentences whose last word is at most N he→en pieces (as a TALL run with "
                        "max_target_pieces N, so both see the same verses)")
    p.add_argument("--positions", default="last", help="soft-prompt: 'last', 'all' or N pairs per sentence")
    p.add_argument("--virtual-tokens", type=int, default=20)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    p.add_argument("--translation-max-new-tokens", type=int, default=None,
                   help="soft-prompt: he→en length limit (default: the preset's; match your evaluation)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None, *, backbones=None) -> Path:
    """CLI entry. `backbones`: the preset's already-loaded backbones (tests, notebooks) to skip reloading."""
    args = parse_args(argv)
    positions = int(args.positions) if args.positions.isdigit() else args.positions
    options = BaselineConfig(args.kind, args.steps, args.lr, args.seed, args.batch_size, args.max_length,
                             positions=positions, progress=not args.no_progress, virtual_tokens=args.virtual_tokens,
                             lora_r=args.lora_r, lora_alpha=args.lora_alpha)
    config = preset_config(args.preset)
    if args.backbone_dir is not None:
        config = on_backbones(config, args.backbone_dir)
    if args.translation_max_new_tokens is not None:
        config = config.changed({"decoding": {"translation_max_new_tokens": args.translation_max_new_tokens}})
    if backbones is None:
        backbones = load_backbones(config)
    corpus = read_corpus(args.data, max_sentences=args.max_sentences)
    sentences = with_short_targets(corpus.sentences, backbones, args.max_target_pieces)
    command = shlex.join(["python", "-m", "baselines.train", *(sys.argv[1:] if argv is None else argv)])
    out = train_baseline(BaselineModels(config, backbones), sentences, options, args.out,
                         args.translation_cache, extra={"data": str(args.data), "sentences": len(sentences),
                                                        "max_target_pieces": args.max_target_pieces,
                                                        "command": command})
    print(f"Saved the {args.kind} adapter to {out}")
    return out


def cli() -> None:
    """`main` with the errors a user can fix shown as one line instead of a traceback."""
    try:
        main()
    except (BackboneNotFoundError, CorpusError, TrainingDataError) as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    cli()

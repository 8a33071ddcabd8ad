"""Data for training: examples, the dev split, the translate-once step and the seeded per-epoch batches."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from accelerate.utils import gather_object

from tall_data.corpus import read_corpus
from tall_data.examples import Example, distinct_words, make_examples, split_examples, target_pieces
from tall_data.translation_cache import fill_shared, open_prefix_cache
from tall_model.text import has_hebrew
from tall_model.word_list import TRAINING_WORDS


class TrainError(ValueError):
    """A bad option, bad data, a run directory in the way, or a resume that cannot be exact; the message says
    what to do."""


@dataclass
class TrainData:
    train: list[Example]
    dev: list[Example]
    sentences: int
    fingerprint: str  # of every example, so a resume can prove it sees the same data


def load_data(config, model, sentences: list[str] | None, log: Callable[[str], None]) -> TrainData:
    if sentences is None:
        if not config.data:
            raise TrainError("no training data: pass --data FILE (or give train() a list of sentences)")
        corpus = read_corpus(config.data, strip_marks=config.strip_marks, min_words=config.min_words,
                             max_sentences=config.max_sentences)
        log(corpus.report.summary())
        sentences = corpus.sentences
    elif config.max_sentences:
        sentences = sentences[:config.max_sentences]
    positions = int(config.positions) if str(config.positions).isdigit() else config.positions
    examples = make_examples(sentences, framing=config.model.framing, positions=positions, seed=config.seed,
                             piece_tokenizer=model.backbones.lr_hr_tokenizer)
    kept = _scorable(examples, log)
    if config.dev_data:
        # a fixed dev corpus (e.g. held-out books): every training sentence trains, nothing is split off
        dev_corpus = read_corpus(config.dev_data, strip_marks=config.strip_marks, min_words=config.min_words)
        dev = _scorable(make_examples(dev_corpus.sentences, framing=config.model.framing, positions=positions,
                                      seed=config.seed, piece_tokenizer=model.backbones.lr_hr_tokenizer), log)
        train, how = kept, f"dev from {Path(config.dev_data).name}"
    else:
        train, dev = split_examples(kept, config.dev_fraction, config.seed)
        how = f"dev split by sentence, seed {config.seed}"
    if config.max_target_pieces:  # after the split: dev keeps every target, so it scores what the task asks
        train = _short_targets(train, model.backbones.lr_hr_tokenizer, config.max_target_pieces, log)
    if not train:
        short = (f", and a target word of at most {config.max_target_pieces} piece(s) (max_target_pieces)"
                 if config.max_target_pieces else "")
        raise TrainError(f"no training examples from {len(sentences)} sentences (framing={config.model.framing!r}, "
                         f"positions={config.positions!r}); every sentence needs at least two words{short}")
    log(f"{len(sentences)} sentences → {len(train)} training and {len(dev)} dev examples ({how})")
    digest = hashlib.sha256(json.dumps([[asdict(ex) for ex in train], [asdict(ex) for ex in dev]],
                                       ensure_ascii=False).encode("utf-8")).hexdigest()
    return TrainData(train, dev, len(sentences), digest)


def _scorable(examples: list[Example], log) -> list[Example]:
    # predict() refuses a prefix without a Hebrew letter, so such examples could never be scored
    kept = [ex for ex in examples if has_hebrew(ex.prefix)]
    if len(kept) < len(examples):
        log(f"dropped {len(examples) - len(kept)} examples whose prefix has no Hebrew letter")
    return kept


def _short_targets(examples: list[Example], tokenizer, most: int, log) -> list[Example]:
    kept = [ex for ex in examples if target_pieces(ex.target, tokenizer) <= most]
    log(f"kept {len(kept)} of {len(examples)} training examples whose target is at most {most} piece(s)")
    return kept


def cache_path(config) -> Path:
    """Default: one cache beside all runs (runs/translations.sqlite), shared by every run of the same translator."""
    if config.translation_cache:
        return Path(config.translation_cache)
    return Path(config.out).parent / "translations.sqlite"


def fill_prefix_cache(config, accelerator, model, data: TrainData, on_translate, log,
                       translate_fn) -> tuple[dict[str, str], dict]:
    """{prefix: English} for every distinct train and dev prefix, translated once, before the first epoch.

    With several processes the uncached prefixes are shared out: every process reads the same list of batches
    (those one process would send), translates batches rank, rank + P, ..., and after each round the main process,
    the one writer, stores what `gather_object` brought back; so the cache ends as a single-process fill would
    leave it. The cache entries are those of evaluation and the soft-prompt baseline (open_prefix_cache), so a
    prefix is translated once for all."""
    prefixes = list(dict.fromkeys(ex.prefix for ex in data.train + data.dev))
    path = cache_path(config)
    rank, nproc = accelerator.process_index, accelerator.num_processes
    with open_prefix_cache(model, path) as cache:
        total = sum(map(len, cache.missing_batches(prefixes, config.translation_batch_size)))
        calls = -(-total // config.translation_batch_size)
        log(f"translating {total} of {len(prefixes)} distinct prefixes on {nproc} process(es) (cache {path})")
        counts = fill_shared(cache, translate_fn, prefixes, config.translation_batch_size, rank=rank, nproc=nproc,
                             gather=gather_object, barrier=accelerator.wait_for_everyone, on_round=on_translate)
    stats = {"requested": len(prefixes), "hits": len(prefixes) - total, "sent": total,
             "calls": calls, "sent_by_process": counts}
    log(f"translations: {stats['hits']} cached, {total} translated now (by process: {counts})")
    with open_prefix_cache(model, path) as cache:
        found = cache.get_many(prefixes)
    missing = [p for p in prefixes if p not in found]
    if missing:
        raise RuntimeError(f"process {rank}: {len(missing)} prefixes are missing from the translation cache {path} "
                           f"after the fill (is {path} on a disk that all processes share?)")
    return found, stats


def epoch_batches(n: int, epoch: int, seed: int, batch_size: int, num_processes: int, rank: int) -> list[list[int]]:
    """This process's batches (example indices) for one epoch.

    The shuffle depends only on (seed, epoch), so a resumed run rebuilds it and skips the batches already done.
    The order is padded by wrapping around to a multiple of the process count, so every process gets the same
    number of batches and none is ever empty (the DistributedSampler recipe)."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    order += [order[i % n] for i in range((-n) % num_processes)]
    step = batch_size * num_processes
    return [order[start:start + step][rank::num_processes] for start in range(0, len(order), step)]


def write_training_words(run_dir: Path, examples: list[Example]) -> Path:
    """The training sentences' distinct words, one a line, into the run folder: the app's "training words only"
    then keeps this run's checkpoints to this run's Hebrew (tall_model.checkpoint.checkpoint_file)."""
    path = run_dir / TRAINING_WORDS
    path.write_text("\n".join(distinct_words({e.sentence for e in examples})) + "\n", encoding="utf-8")
    return path

"""Predict the next Hebrew word from the command line.

    python -m tall_model "בראשית ברא אלהים את"
    python -m tall_model --preset tiny --sample --seed 3 "ויאמר אלהים"
    python -m tall_model --preset paper-bloomz --params      # parameter table, no download needed
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from transformers.utils import logging as hf_logging

from .config import PRESETS, preset_config
from .decoding import CANDIDATE_SEARCHES, WORD_CHOICES, Decoding
from .load import default_threads, load
from .params import meta_model, parameter_report
from .predict import predict
from .quantize import QUANTIZE_MODES
from .translate import ENGINES


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tall_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prefix", nargs="*", help="Hebrew prefix(es); the next word is predicted")
    p.add_argument("--preset", default="demo", choices=PRESETS)
    p.add_argument("--checkpoint", help="adapter checkpoint directory (default: the preset's shipped one)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    defaults = Decoding()
    p.add_argument("--temperature", type=float, help=f"default {defaults.temperature}")
    p.add_argument("--top-k", type=int, help=f"default {defaults.top_k}")
    p.add_argument("--top-p", type=float, help=f"default {defaults.top_p}")
    p.add_argument("--seed", type=int, help=f"sampling seed, default {defaults.seed}")
    p.add_argument("--word-choice", choices=WORD_CHOICES, help="greedy word piece by piece (the paper's) or "
                   "best_candidate: the likeliest whole word among the candidates (default: the model's; the demo's "
                   "is best_candidate)")
    p.add_argument("--candidate-pool", type=int, help="first pieces completed into candidate words, ranked by "
                   f"whole-word probability (default: the model's, {defaults.candidate_pool} unless its config says)")
    p.add_argument("--candidate-search", choices=CANDIDATE_SEARCHES, help="first_pieces: each of the top first "
                   "pieces completed greedily; beam: a beam of --candidate-pool partial words, so words sharing a "
                   f"first piece can all be candidates (default: the model's, {defaults.candidate_search} unless its "
                   "config says)")
    p.add_argument("--word-list", help="predict only these words: a UTF-8 file, one word per line (the demo ships "
                   "checkpoints/demo/training_words.txt; a departure from the paper, which decodes freely)")
    p.add_argument("--prior", help="choose the greedy word's first piece with the model's prior divided out (a file "
                   "from python -m tall_model.prior; the demo ships checkpoints/demo/first_piece_prior.safetensors; "
                   "a departure from the paper)")
    p.add_argument("--prior-weight", type=float,
                   help="the prior's weight w (default: the one the prior file carries, else 0.5)")
    p.add_argument("--ngram", help="weigh the candidate words with a word n-gram's scores, adding its best next words "
                   "(shallow fusion with best_candidate; the demo ships checkpoints/demo/word_ngram.json; a departure "
                   "from the paper)")
    p.add_argument("--ngram-weight", type=float, help="λ: log P(word) + λ · log S_ngram(word) ranks the candidates "
                   "(default: the one the n-gram file carries, the demo's chosen on dev; 0: no fusion)")
    p.add_argument("--ngram-discount", type=float, help="μ: fusion also subtracts μ · log P_train(word), so words "
                   "frequent anywhere gain less from the n-gram (default: the one the n-gram file carries, else 0)")
    p.add_argument("--subword-word-start", action=argparse.BooleanOptionalAction, default=None,
                   help="a subword-framing checkpoint (the paper's): hold its predicted piece to pieces that start a "
                        "word, not one that would continue the prefix's last word (a departure from the paper); "
                        "--no-subword-word-start: the paper's free piece (default: the checkpoint's)")
    p.add_argument("--subword-skip-bare-start", action=argparse.BooleanOptionalAction, default=None,
                   help="a subword-framing checkpoint never predicts the word-start marker ▁ alone (the empty word; a "
                        "departure from the paper; default: the checkpoint's)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--dtype", default=None, help="of the frozen backbones: fp32 (default), bf16 or fp16")
    p.add_argument("--translation", help="use this English translation instead of translating the prefix")
    p.add_argument("--translation-engine", default="transformers", choices=ENGINES,
                   help="what writes the he→en text: transformers (default) or ctranslate2 (opt-in; converts the "
                        "translator into .cache/ctranslate2 on first use; not bitwise the same text)")
    p.add_argument("--quantize", default="none", choices=QUANTIZE_MODES,
                   help="int8: the frozen backbones' linear layers (and CTranslate2) in int8 on the CPU; faster, "
                        "not exact, inference only (benchmarks/RESULTS.md has the agreement with fp32)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: 1 on a machine with at most 2 cores, else torch's default)")
    p.add_argument("--params", action="store_true", help="print the trainable-parameter report")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.params and not args.prefix and not args.checkpoint:
        print(parameter_report(meta_model(preset_config(args.preset))))
        return 0
    if not args.prefix:
        print("error: give a Hebrew prefix, e.g. python -m tall_model \"בראשית ברא אלהים את\"", file=sys.stderr)
        return 2
    hf_logging.disable_progress_bar()
    torch.set_num_threads(default_threads(args.threads))

    try:
        model = load(args.checkpoint or args.preset, device=args.device, dtype=args.dtype,
                     translation_engine=args.translation_engine, quantize=args.quantize)
    except (OSError, ValueError) as err:  # a missing backbone, a bad checkpoint, no CUDA: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"# {model.source}", file=sys.stderr)
    changes = {k: v for k, v in (("temperature", args.temperature), ("top_k", args.top_k), ("top_p", args.top_p),
                                 ("seed", args.seed), ("word_choice", args.word_choice),
                                 ("candidate_pool", args.candidate_pool),
                                 ("candidate_search", args.candidate_search),
                                 ("word_list", args.word_list), ("prior", args.prior),
                                 ("prior_weight", args.prior_weight), ("ngram", args.ngram),
                                 ("ngram_weight", args.ngram_weight),
                                 ("ngram_discount", args.ngram_discount),
                                 ("subword_word_start", args.subword_word_start),
                                 ("subword_skip_bare_start", args.subword_skip_bare_start)) if v is not None}
    try:
        decoding = model.config.decoding.replace(sample=args.sample, **changes)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.params:
        print(parameter_report(model), file=sys.stderr)
    for prefix in args.prefix:
        try:
            r = predict(model, prefix, decoding=decoding, translations=args.translation, output_attentions=False)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps({"prefix": r.prefix_used, "truncated": r.truncated, "translation": r.translation,
                              "word": r.word, "pieces": [(p.piece, p.prob) for p in r.pieces],
                              "candidates": [(c.word, c.prob) for c in r.candidates],
                              "llm_next": r.llm_next, "notes": r.notes}, ensure_ascii=False))
            continue
        print(f"{r.prefix_used} ⟶ {r.word}")
        print(f"  English: {r.translation}")
        print("  LLM next: " + ", ".join(f"{t!r} {p:.2f}" for t, p in r.llm_next[:3]))
        print("  candidates: " + ", ".join(f"{c.word} {c.prob:.3f}" for c in r.candidates))
        for note in r.notes:
            print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

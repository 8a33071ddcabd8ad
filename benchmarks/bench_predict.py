"""Next-word latency: our KV-cached path against the paper's way, same models, one run.

Ours: translate once, stages 1–6 once, then step the final decoder with its KV cache.
Paper's: for every generated piece, translate the prefix again and re-run all seven stages without a cache.
Both are forced to produce a word of exactly `--pieces` pieces and then evaluate the decoder once more, as
deciding that a word has ended takes (the word-end test is switched off and the cap set to pieces + 1, so
both paths do pieces + 1 decoder evaluations).

    python -m benchmarks.bench_predict                 # tiny and mid presets
    python -m benchmarks.bench_predict --presets mid --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import tall_model.predict as P  # noqa: E402
from tall_model import load, preset_config  # noqa: E402

PREFIX = "ויאמר אלהים יהי אור ויהי אור וירא אלהים את האור כי טוב ויבדל אלהים בין האור ובין"


def forced_masks(real):
    """Like the real masks, but no piece ends a word: every prediction runs to max_word_pieces."""
    def masks(tokenizer, vocab_size, device):
        word_start, end_of_word, never = real(tokenizer, vocab_size, device)
        return word_start, torch.zeros_like(end_of_word), never
    return masks


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run(preset: str, pieces: int, repeats: int, max_new_tokens: int) -> dict:
    torch.manual_seed(0)
    config = preset_config(preset).changed({"decoding": {"max_word_pieces": pieces + 1,
                                                         "translation_max_new_tokens": max_new_tokens}})
    model = load(config)
    ours, r1 = timed(lambda: P.predict(model, PREFIX, num_candidates=0, output_attentions=False), repeats)
    with_extras, _ = timed(lambda: P.predict(model, PREFIX), repeats)
    paper, r2 = timed(lambda: P.predict_uncached(model, PREFIX), repeats)
    assert [p.token_id for p in r1.pieces] == [p.token_id for p in r2.pieces], "paths disagree"
    assert len(r1.pieces) == pieces + 1
    return dict(preset=preset, pieces=pieces, ours=ours, with_extras=with_extras, paper=paper,
                ratio=paper / ours, trainable=sum(p.numel() for p in model.trainable_parameters()),
                total=sum(p.numel() for p in model.parameters()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny,mid")
    ap.add_argument("--pieces", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=40,
                    help="translation length cap (random translators never stop early; 40 ≈ a verse)")
    args = ap.parse_args()
    hf_logging.disable_progress_bar()
    P.piece_masks = forced_masks(P.piece_masks)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'preset':<8}{'params':>12}{'pieces':>8}{'cached s':>10}{'+cands/attn s':>15}{'paper s':>10}"
          f"{'speed-up':>10}")
    for preset in args.presets.split(","):
        r = run(preset, args.pieces, args.repeats, args.max_new_tokens)
        print(f"{r['preset']:<8}{r['total']:>12,}{r['pieces']:>8}{r['ours']:>10.3f}{r['with_extras']:>15.3f}"
              f"{r['paper']:>10.3f}{r['ratio']:>9.1f}×")


if __name__ == "__main__":
    main()

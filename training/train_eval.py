"""Dev evaluation with the real task metric: does greedy `predict` produce the missing word?

The loss alone can mislead (the paper's code trained on one subword and scored whole words), so the best
checkpoint is chosen by exact match of the predicted word, `word_core` on both sides, with the dev loss as the
tie-breaker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from tall_data.examples import Example, word_core
from tall_model.predict import predict


def metric_key(metrics: Mapping) -> tuple[float, float]:
    """Ordering for best/: higher accuracy first, then lower loss."""
    return (metrics["dev_accuracy"], -metrics["dev_loss"])


@torch.no_grad()
def evaluate(model, examples: Sequence[Example], translations: Mapping[str, str], *, batch_size: int = 8,
             bf16: bool = False, samples: int = 5) -> dict:
    """Dev loss (mean over supervised positions) and exact-match accuracy of greedy predictions.

    Runs with the model in eval mode and restores train mode. The RNG is forked so that evaluating (or not)
    never changes the random stream of training: a run that evaluates at step N continues exactly like one
    that does not, which the exact-resume guarantee relies on."""
    was_training = model.training
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        model.eval()
        loss_sum, positions, correct, shown = 0.0, 0, 0, []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            prefixes = [ex.prefix for ex in chunk]
            english = [translations[p] for p in prefixes]
            batch = model.make_batch(prefixes, english, [ex.target for ex in chunk], [ex.sentence for ex in chunk])
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(batch)
            loss_sum += float(out.loss) * len(out.labels)
            positions += len(out.labels)
            # greedy, fp32, no attention maps, no candidate list: only the word is needed (best_candidate still
            # searches its candidate_pool to choose it)
            predictions = predict(model, prefixes, decoding=model.config.decoding.greedy(), translations=english,
                                  num_candidates=0, output_attentions=False)
            for ex, pred in zip(chunk, predictions):
                hit = word_core(pred.word) == word_core(ex.target)
                correct += hit
                if len(shown) < samples:
                    shown.append({"prefix": ex.prefix, "target": ex.target, "predicted": pred.word, "correct": hit})
    model.train(was_training)
    n = len(examples)
    return {"dev_loss": loss_sum / max(positions, 1), "dev_accuracy": correct / n if n else 0.0,
            "dev_examples": n, "samples": shown}

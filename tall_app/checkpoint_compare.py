"""Two checkpoints on the same prefix: their words, candidates, attributions and bridge-in heatmaps side by side, and
the per-word attribution difference. Both must sit on the same backbones (same content fingerprints); otherwise
their Hebrew tokens and maps are not comparable and the comparison is refused."""

from __future__ import annotations

from dataclasses import dataclass

from tall_model import Decoding

from .analysis import DEFAULT_STEPS, attribution_figure, run_attribution
from .figures import candidate_figure, empty_figure
from .models import backbone_key
from .predicting import render_attention, run_prediction

DIFF_HEADERS = ["word", "A", "B", "B − A"]


@dataclass
class CheckpointComparison:
    summary: str  # markdown
    figures_a: list  # candidates, attribution, bridge-in heatmap
    figures_b: list
    diff_rows: list[list]


def _own_greedy(loaded) -> Decoding:
    """Each side decodes greedily as its own config says (the demo's adapters: best whole word; the paper's presets:
    piece by piece), so a side shows the word its own evaluation scores."""
    return loaded.model.config.decoding.greedy()


def _side(loaded, prefix: str, steps: int):
    pred = run_prediction(loaded, prefix, _own_greedy(loaded))
    attribution = run_attribution(loaded.model, pred, None, "integrated_gradients", "hebrew", steps) if pred.word \
        else None
    figures = [candidate_figure([(c.word or "∅", c.prob) for c in pred.candidates]),
               attribution_figure(attribution) if attribution else empty_figure("No word to explain."),
               render_attention(pred, "bridge", 1, 1, True)[0]]
    return pred, attribution, figures


def compare_checkpoints(loaded_a, loaded_b, prefix: str, steps: int = DEFAULT_STEPS) -> CheckpointComparison:
    """Greedy prediction (as each model's config decodes) and integrated-gradient attribution (to the Hebrew prefix)
    of each model's own word."""
    if backbone_key(loaded_a.model.config) != backbone_key(loaded_b.model.config):
        raise ValueError(f"{loaded_a.description} and {loaded_b.description} use different backbones: their tokens, "
                         "attributions and attention maps cannot be compared side by side. Choose two checkpoints of "
                         "the same preset.")
    pred_a, attr_a, figures_a = _side(loaded_a, prefix, steps)
    pred_b, attr_b, figures_b = _side(loaded_b, prefix, steps)
    rows = []
    if attr_a and attr_b:
        for (word, a), (_, b) in zip(attr_a.words, attr_b.words):  # same prefix, same tokenizer: same words
            rows.append([word, round(a, 4), round(b, 4), round(b - a, 4)])
    summary = (f"**A** ({loaded_a.description}; {_own_greedy(loaded_a).describe()}): **{pred_a.word or '∅'}** · "
               f"**B** ({loaded_b.description}; {_own_greedy(loaded_b).describe()}): **{pred_b.word or '∅'}**\n\n"
               f"English (shared): {pred_a.translation}")
    return CheckpointComparison(summary, figures_a, figures_b, rows)

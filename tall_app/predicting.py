"""One prediction for the Predict tab, and everything the tab shows from a stored prediction.

`run_prediction` runs the model; `render_prediction` and `render_attention` only read the stored `Prediction`,
so moving the layer or head selectors never re-runs the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tall_model.predict import Prediction, fit_prefix, predict
from tall_model.text import validate_prefix

from .figures import attention_figure, candidate_figure, empty_figure
from .formatting import pieces_rows, pipeline_html, word_html

GREEDY, SAMPLE = "greedy", "sample"
MAX_PREFIX_CHARS = 2000  # longer text is refused before it reaches the tokenizers


@dataclass(frozen=True)
class DecodingChoice:
    sample: bool = False
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    seed: int = 0

    def kwargs(self) -> dict:
        if not self.sample:
            return {"sample": False}
        return {"sample": True, "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p,
                "seed": self.seed}

    def describe(self) -> str:
        if not self.sample:
            return "greedy"
        return (f"sampling: temperature {self.temperature:g}, top-k {self.top_k}, top-p {self.top_p:g}, "
                f"seed {self.seed}")


def parse_decoding(mode, temperature=0.7, top_k=50, top_p=0.95, seed=0) -> DecodingChoice:
    """Validated decoding settings from the UI's controls; ValueError with a message for the user."""
    mode = str(mode or GREEDY).lower()
    if mode.startswith("greedy"):
        return DecodingChoice(False)
    if not mode.startswith("sampl"):
        raise ValueError(f"Decoding must be greedy or sampling, got {mode!r}.")

    def number(value, name, kind):
        try:
            out = kind(float(value))
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}.") from None
        if isinstance(out, float) and not math.isfinite(out):
            raise ValueError(f"{name} must be a finite number.")
        return out

    temperature = number(temperature, "Temperature", float)
    top_k = number(top_k, "Top-k", int)
    top_p = number(top_p, "Top-p", float)
    seed = number(seed if seed not in (None, "") else 0, "Seed", int)
    if temperature <= 0:
        raise ValueError(f"Temperature must be greater than 0, got {temperature:g}.")
    if top_k < 0:
        raise ValueError(f"Top-k must be 0 (off) or more, got {top_k}.")
    if not 0 < top_p <= 1:
        raise ValueError(f"Top-p must be in (0, 1], got {top_p:g}.")
    if not 0 <= seed < 2**63:
        raise ValueError(f"Seed must be a non-negative integer, got {seed}.")
    return DecodingChoice(True, temperature, top_k, top_p, seed)


def check_prefix(text) -> str:
    """The prefix, or ValueError with a clear message (empty, no Hebrew, too long to be a prefix)."""
    if isinstance(text, str) and len(text) > MAX_PREFIX_CHARS:
        raise ValueError(f"The text is {len(text):,} characters long; the app accepts at most "
                         f"{MAX_PREFIX_CHARS:,} (the model reads only the last few dozen words anyway).")
    return validate_prefix(text)


def run_prediction(loaded, prefix, decoding: DecodingChoice, num_candidates: int = 5) -> Prediction:
    """Predict the next word of `prefix` with a `models.LoadedModel` (translations cached per model)."""
    text = check_prefix(prefix)
    model = loaded.model
    used, _ = fit_prefix(model, text)
    translation = loaded.translation(used)
    return predict(model, text, translations=[translation], num_candidates=num_candidates,
                   output_attentions=True, **decoding.kwargs())


# --------------------------------------------------------------------------- rendering a stored prediction

@dataclass
class PredictionView:
    word_html: str
    pipeline_html: str
    candidates: object  # plotly Figure
    pieces: list[list]
    notes: str


def render_prediction(pred: Prediction, description: str = "", decoding: str = "") -> PredictionView:
    notes = list(pred.notes)
    if pred.truncated:
        notes.append(f"The model read only: “{pred.prefix_used}”.")
    if not pred.word:
        notes.append("The model produced no word (it chose to end the sentence).")
    meta = " · ".join(x for x in (description, decoding) if x)
    text = "\n".join(f"- {n}" for n in notes)
    if meta:
        text = (text + "\n\n" if text else "") + f"*{meta}*"
    candidates = ([(c.word or "∅", c.prob) for c in pred.candidates])
    fig = candidate_figure(candidates) if candidates else empty_figure("No candidates.")
    return PredictionView(word_html(pred.word, pred.word_prob if pred.pieces else None), pipeline_html(pred),
                          fig, pieces_rows(pred.pieces), text)


def attention_shape(pred: Prediction | None, which: str) -> tuple[int, int]:
    """(layers, heads) of a stored attention map, (0, 0) if there is none."""
    amap = _map(pred, which)
    if amap is None:
        return 0, 0
    return int(amap.weights.shape[0]), int(amap.weights.shape[1])


def _map(pred, which):
    if pred is None:
        return None
    if which == "bridge":
        return pred.bridge_in_attention
    if which == "decoder":
        return pred.decoder_attention
    raise ValueError(f"unknown attention map {which!r}")


def render_attention(pred: Prediction | None, which: str, layer, head, mean_over_heads: bool):
    """(figure, note) for the bridge-in ("bridge") or decoder ("decoder") map; layer and head are 1-based and
    clamped to what exists."""
    amap = _map(pred, which)
    if amap is None:
        return empty_figure("Predict a word to see the attention." if pred is None
                            else "No attention weights for this prediction."), ""
    layers, heads = amap.weights.shape[:2]
    layer = min(max(int(layer or 1), 1), layers) - 1
    head_index = None if mean_over_heads else min(max(int(head or 1), 1), heads) - 1
    if which == "bridge":
        return attention_figure(amap, layer, head_index, title="Bridge-in cross-attention",
                                query_name="English token (LLM input)", key_name="Hebrew token (he→en encoder)",
                                keys_rtl=True)
    return attention_figure(amap, layer, head_index, title="Final decoder cross-attention",
                            query_name="predicted Hebrew piece", key_name="English position (LLM output)")

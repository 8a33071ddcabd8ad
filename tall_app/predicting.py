"""One prediction for the Predict tab, and everything the tab shows from a stored prediction.

`run_prediction` runs the model; `render_prediction` and `render_attention` only read the stored `Prediction`,
so moving the layer or head selectors never re-runs the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tall_model import Decoding
from tall_model.checkpoint import checkpoint_file
from tall_model.config import demo_dir
from tall_model.predict import Prediction, fit_prefix, predict
from tall_model.prior import PRIOR_FILE, demo_prior
from tall_model.text import validate_prefix
from tall_model.word_list import TRAINING_WORDS, demo_word_list
from tall_model.word_ngram import NGRAM_FILE

from .figures import attention_figure, candidate_figure, empty_figure
from .formatting import pieces_rows, pipeline_html, word_html

# the Decoding radio's choices (tall_model.decoding explains piece-by-piece vs best whole word; the training-words
# mode restricts the word to the demo's training Hebrew, tall_model.word_list; the prior-corrected mode divides the
# demo adapters' prior out of the first piece, tall_model.prior; the n-gram mode weighs the candidates with the
# demo's word n-gram, tall_model.word_ngram). Those build on the best whole word, as the demo's table scores them
# (its `demo` preset chooses words that way); "greedy" alone is the paper's piece by piece.
GREEDY_MODE, BEST_WORD_MODE, SAMPLING_MODE = "greedy", "greedy, best whole word", "sampling"
TRAINING_WORDS_MODE, PRIOR_MODE = "greedy, training words only", "greedy, prior-corrected"
NGRAM_MODE = "greedy, with the word n-gram"  # shallow fusion with the demo's n-gram at its dev-chosen λ, μ
MAX_PREFIX_CHARS = 2000  # longer text is refused before it reaches the tokenizers
UI_FIELDS = ("sample", "temperature", "top_k", "top_p", "seed", "word_choice", "word_list", "prior",
             "prior_weight", "ngram", "ngram_weight", "ngram_discount")  # what the controls choose
DEFAULT_DECODING = Decoding()  # the controls start from tall_model's defaults (written once, in Decoding)


def greedy_mode(word_choice: str) -> str:
    """The radio's greedy choice that decodes as `word_choice` does (a model config's `decoding.word_choice`)."""
    return BEST_WORD_MODE if word_choice == "best_candidate" else GREEDY_MODE


def _number(value, name: str, kind):
    try:
        out = kind(float(value))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if isinstance(out, float) and not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number.")
    return out


def parse_decoding(mode, temperature=None, top_k=None, top_p=None, seed=None, *,
                   base: Decoding | None = None) -> Decoding:
    """A validated Decoding from the UI's controls, on top of `base` (default `Decoding()`); a control left empty
    (None) keeps the base's value. ValueError with a message naming the control otherwise."""
    base = base or DEFAULT_DECODING
    mode = str(mode or GREEDY_MODE).lower()
    if mode == BEST_WORD_MODE:
        return base.greedy().replace(word_choice="best_candidate")
    if mode == TRAINING_WORDS_MODE:
        words = demo_word_list()
        if not words.is_file():
            raise ValueError(f"The training word list {words} is missing (the demo build writes it: "
                             "python -m demo_build --stages word-list).")
        return base.greedy().replace(word_choice="best_candidate", word_list=str(words))
    if mode == PRIOR_MODE:
        prior = demo_prior()
        if not prior.is_file():
            raise ValueError(f"The demo's prior {prior} is missing (the demo build writes it: "
                             "python -m demo_build --stages prior).")
        return base.greedy().replace(word_choice="best_candidate", prior=str(prior),
                                     prior_weight=None)  # the weight the file carries
    if mode == NGRAM_MODE:
        ngram = demo_dir() / NGRAM_FILE
        if not ngram.is_file():
            raise ValueError(f"The demo's word n-gram {ngram} is missing (the demo build writes it: "
                             "python -m demo_build --stages ngram,fusion).")
        return base.greedy().replace(word_choice="best_candidate", ngram=str(ngram), ngram_weight=None,
                                     ngram_discount=None)  # the λ and μ the file carries
    if mode.startswith("greedy"):
        return base.greedy()
    if not mode.startswith("sampl"):
        raise ValueError(f"Decoding must be greedy or sampling, got {mode!r}.")

    def given(value, default):
        return default if value is None or value == "" else value

    temperature = _number(given(temperature, base.temperature), "Temperature", float)
    top_k = _number(given(top_k, base.top_k), "Top-k", int)
    top_p = _number(given(top_p, base.top_p), "Top-p", float)
    seed = _number(given(seed, base.seed), "Seed", int)
    if temperature <= 0:
        raise ValueError(f"Temperature must be greater than 0, got {temperature:g}.")
    if top_k < 0:
        raise ValueError(f"Top-k must be 0 (off) or more, got {top_k}.")
    if not 0 < top_p <= 1:
        raise ValueError(f"Top-p must be in (0, 1], got {top_p:g}.")
    if not 0 <= seed < 2**63:
        raise ValueError(f"Seed must be a non-negative integer, got {seed}.")
    return base.replace(sample=True, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)


def for_model(choice: Decoding, model) -> Decoding:
    """The model's own decoding (its translation settings and word length) with what the UI chose (greedy or
    sampling, the word choice, the word list, the prior). A word list or a prior that the checkpoint has of its own
    (tall_model.checkpoint.checkpoint_file: a training run writes its words) replaces the demo's."""
    settings = model.config.decoding.replace(**{name: getattr(choice, name) for name in UI_FIELDS})
    own = {field: checkpoint_file(model, name) for field, name in (("word_list", TRAINING_WORDS), ("prior", PRIOR_FILE))}
    return settings.replace(**{field: str(file) for field, file in own.items()
                               if getattr(settings, field) and file})


def check_prefix(text) -> str:
    """The prefix, or ValueError with a clear message (empty, no Hebrew, too long to be a prefix)."""
    if isinstance(text, str) and len(text) > MAX_PREFIX_CHARS:
        raise ValueError(f"The text is {len(text):,} characters long; the app accepts at most "
                         f"{MAX_PREFIX_CHARS:,} (the model reads only the last few dozen words anyway).")
    return validate_prefix(text)


def run_prediction(loaded, prefix, decoding: Decoding, num_candidates: int = 5) -> Prediction:
    """Predict the next word of `prefix` with a `models.LoadedModel` (translations cached per model). `decoding`
    chooses greedy or sampling; the translation settings stay the model's (`for_model`)."""
    text = check_prefix(prefix)
    model = loaded.model
    used, _ = fit_prefix(model, text)
    translation = loaded.translation(used)
    return predict(model, text, decoding=for_model(decoding, model), translations=[translation],
                   num_candidates=num_candidates, output_attentions=True, with_logit_lens=True)


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

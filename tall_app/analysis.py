"""The linguist's views of a stored prediction: why this word (attribution), the logit lens, and their export.

Plain functions (no Gradio): `run_attribution` calls tall_model.attribution (captum) on a stored prediction;
everything else renders or exports what is already computed.
"""

from __future__ import annotations

import csv
import html
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from tall_model.attribution import COMPLETENESS_TOLERANCE, DEFAULT_STEPS, MAX_ADAPTIVE_STEPS, Attribution, attribute

from .figures import _STYLE, _axis, axis_labels, empty_figure, isolate, plotly_text

METHOD_CHOICES = [("integrated gradients", "integrated_gradients"), ("input × gradient", "input_x_gradient")]
TARGET_CHOICES = [("Hebrew prefix (he→en encoder outputs)", "hebrew"),
                  ("English translation (LLM input embeddings)", "english")]
LENS_HEADERS = ["layer", "1st", "2nd", "3rd", "4th", "5th"]


@dataclass
class AnalysisState:
    """What the Predict tab keeps between events: the prediction, the model that made it, the last attribution."""

    prediction: object
    preset: str
    checkpoint: str | None
    attribution: Attribution | None = None


def word_choices(pred) -> list[str]:
    """The words attribution is offered for: the predicted word, then the candidates."""
    words = [pred.word] if pred.word else []
    return words + [c.word for c in pred.candidates if c.word and c.word not in words]


def run_attribution(model, pred, word=None, method="integrated_gradients", target="hebrew",
                    steps=DEFAULT_STEPS, until_complete: bool = True) -> Attribution:
    """The app's attribution: integrated gradients add steps until complete unless told not to (`until_complete`)."""
    return attribute(model, pred, word or None, method=str(method), target=str(target), steps=int(steps or 1),
                     until_complete=bool(until_complete))


def steps_note(a: Attribution) -> str:
    """How many steps integrated gradients took, and whether that made them complete."""
    note = f"{a.steps} steps"
    if a.tried_steps and len(a.tried_steps) > 1:
        note += f", doubled from {a.tried_steps[0]}" + (" until complete" if a.complete else "")
    if a.complete is False:
        most = " (the most the app tries)" if a.steps >= MAX_ADAPTIVE_STEPS else ""
        note += (f"{most}; ⚠ the error is above {COMPLETENESS_TOLERANCE:.0%} of the change: the scores do not yet "
                 "add up to it, use more steps")
    return note


# --------------------------------------------------------------------------- rendering

def _shade(score: float, peak: float) -> str:
    """Green for a word that raised the log-probability, red for one that lowered it; alpha ∝ |score|."""
    alpha = 0.0 if peak <= 0 else min(abs(score) / peak, 1.0) * 0.85
    rgb = "34,160,90" if score >= 0 else "220,60,60"
    return f"rgba({rgb},{alpha:.3f})"


def attribution_html(a: Attribution) -> str:
    """The attributed text, each word shaded by its score; Hebrew reads right to left (dir=rtl)."""
    peak = max((abs(s) for _, s in a.words), default=0.0)
    direction = "rtl" if a.target == "hebrew" else "ltr"
    spans = " ".join(
        f'<span class="tall-attr-word" data-score="{s:.6g}" title="{s:+.4f}" style="background:{_shade(s, peak)};'
        f'padding:2px 4px;border-radius:4px">{html.escape(w)}</span>' for w, s in a.words)
    summary = f"log P({html.escape(a.word)}) = {a.log_prob:.3f}"
    if a.delta is not None:
        summary += (f" · baseline {a.baseline_log_prob:.3f} · Σ attributions {sum(a.scores):+.3f} · completeness error "
                    f"{a.delta:+.2e} ({steps_note(a)})")
    return (f'<div id="attr-words" dir="{direction}" style="font-size:1.3rem;line-height:2">{spans}</div>'
            f'<div class="tall-attr-summary" style="font-size:0.85rem;opacity:0.8">{summary}</div>')


def attribution_figure(a: Attribution) -> go.Figure:
    """One bar per word in text order; a Hebrew axis runs right to left like the text."""
    labels = axis_labels([w for w, _ in a.words])
    scores = [s for _, s in a.words]
    colors = ["#22a05a" if s >= 0 else "#dc3c3c" for s in scores]
    bar = {"type": "bar", "x": labels, "y": scores, "marker": {"color": colors},
           "hovertemplate": "%{x}<br>%{y:+.4f}<extra></extra>"}
    name = "integrated gradients" if a.method == "integrated_gradients" else "input × gradient"
    layout = {**_STYLE, "title": {"text": f"Why {isolate(plotly_text(a.word))}: {name}"}, "height": 320,
              "margin": {"l": 10, "r": 10, "t": 40, "b": 40},
              "xaxis": _axis(type="category", categoryorder="array", categoryarray=labels,
                             autorange="reversed" if a.target == "hebrew" else True),
              "yaxis": _axis(title={"text": "attribution to log P(word)"})}
    return go.Figure(data=[bar], layout=layout)


def lens_rows(lens) -> list[list]:
    if lens is None:
        return []
    return [[layer] + [f"{token} ({p:.1%})" for token, p in row] for layer, row in zip(lens.layers, lens.top)]


def lens_figure(lens) -> go.Figure:
    """log10 rank of each of the final layer's top tokens, layer by layer (darker: ranked higher)."""
    if lens is None:
        return empty_figure("No logit lens for this prediction.")
    z = np.log10(np.asarray(lens.final_ranks, dtype=float))
    columns = axis_labels(lens.final_tokens)
    heat = {"type": "heatmap", "z": z.tolist(), "x": columns, "y": [str(layer) for layer in lens.layers],
            "text": [[str(r) for r in row] for row in lens.final_ranks], "texttemplate": "%{text}",
            "colorscale": "Blues", "reversescale": True, "colorbar": {"title": {"text": "log10 rank"}},
            "hovertemplate": "layer %{y}<br>%{x}<br>rank %{text}<extra></extra>"}
    layout = {**_STYLE, "title": {"text": "Logit lens: rank of the LLM's final top tokens after each layer"},
              "height": 140 + 28 * len(lens.layers), "margin": {"l": 10, "r": 10, "t": 40, "b": 40},
              "xaxis": _axis(type="category", title={"text": "final top-5 token"}),
              "yaxis": _axis(type="category", title={"text": "layer (0 = bridged input)"})}
    return go.Figure(data=[heat], layout=layout)


# --------------------------------------------------------------------------- export

def _csv(rows: list[list], header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def analysis_bundle(state: AnalysisState, details: dict, out_dir: Path) -> Path:
    """One zip: the prediction (JSON), the attention tensors (JSON), the attribution and the logit lens (JSON and
    CSV). Written next to nothing the user named: `out_dir` is the app's own temporary folder."""
    pred = state.prediction
    files = {"prediction.json": json.dumps(details, ensure_ascii=False, indent=1)}
    for name, amap in (("bridge_in_attention", pred.bridge_in_attention), ("decoder_attention", pred.decoder_attention)):
        if amap is not None:
            files[f"{name}.json"] = json.dumps({"weights": amap.weights.tolist(), "queries": amap.query_tokens,
                                                "keys": amap.key_tokens, "axes": ["layer", "head", "query", "key"]},
                                               ensure_ascii=False)
    if state.attribution is not None:
        a = state.attribution
        files["attribution.json"] = json.dumps(a.as_dict(), ensure_ascii=False, indent=1)
        files["attribution_tokens.csv"] = _csv([[t, s] for t, s in zip(a.tokens, a.scores)], ["token", "score"])
        files["attribution_words.csv"] = _csv([[w, s] for w, s in a.words], ["word", "score"])
    if pred.logit_lens is not None:
        files["logit_lens.json"] = json.dumps(pred.logit_lens.as_dict(), ensure_ascii=False, indent=1)
        files["logit_lens.csv"] = _csv(lens_rows(pred.logit_lens), LENS_HEADERS)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "tall-analysis.zip"
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    tmp.replace(path)  # never a half-written bundle
    return path

"""Plotly figures for the app: candidate words, attention heatmaps and training curves.

Hebrew labels are wrapped in Unicode isolates (RLI … PDI) so that the bidi algorithm neither reorders them
against their neighbours nor scrambles a label that mixes Hebrew with digits or punctuation; every label carries
its position, so a token that occurs twice stays two categories (Plotly merges equal category labels). Axes of
Hebrew tokens run right to left, like the text they come from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

RLI, LRI, PDI = "\u2067", "\u2066", "\u2069"
MAX_AXIS_TOKENS = 40  # longer axes are capped for display (the figure says so)
MAX_CANDIDATES = 10
_HEBREW = range(0x0590, 0x0600)
_INVISIBLE = {"\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", RLI, LRI, "\u2068", PDI}


def is_hebrew(text: str) -> bool:
    return any(ord(ch) in _HEBREW or 0xFB1D <= ord(ch) <= 0xFB4F for ch in text)


def clean_token(token: str) -> str:
    """A token as a visible label: bidi controls removed, spaces shown as a middle dot, empty as ∅."""
    text = "".join(ch for ch in str(token) if ch not in _INVISIBLE and (ch == " " or ch.isprintable()))
    text = text.replace(" ", "·")
    return text or "∅"


def isolate(text: str) -> str:
    """Wrap text in a directional isolate: RLI…PDI for Hebrew, LRI…PDI otherwise."""
    return f"{RLI if is_hebrew(text) else LRI}{text}{PDI}"


def plotly_text(text: str) -> str:
    """Escape what Plotly would read as markup: a "</s>" token must show, not end a strikethrough."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def axis_labels(tokens: Sequence[str], start: int = 1) -> list[str]:
    """Unique, isolated labels: the token, then its position ("⁧בר⁩ 3"). Positions make labels unique."""
    return [f"{isolate(plotly_text(clean_token(t)))} {i}" for i, t in enumerate(tokens, start)]


def strip_isolates(label: str) -> str:
    return "".join(ch for ch in label if ch not in (RLI, LRI, PDI))


# --------------------------------------------------------------------------- candidates
# Figures are built in one go.Figure(data, layout) call from plain dicts, without a named template: resolving
# a template (and each update_* call) costs tens of milliseconds per figure, more than the model's decoder steps.

_GRID = "#e6e9f0"
_STYLE = {"paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": "#1f2733"}}


def _axis(**extra) -> dict:
    return {"gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": _GRID, "automargin": True, **extra}


def candidate_figure(candidates: Sequence[tuple[str, float]], title: str = "Top candidate words") -> go.Figure:
    """Horizontal probability bars, most probable on top. `candidates`: (word, probability)."""
    items = list(candidates)[:MAX_CANDIDATES]
    labels = axis_labels([w for w, _ in items])
    probs = [float(p) for _, p in items]
    bar = {"type": "bar", "x": probs, "y": labels, "orientation": "h", "marker": {"color": "#4f6bed"},
           "text": [f"{p:.1%}" if p >= 0.001 else f"{p:.2e}" for p in probs], "textposition": "auto",
           "hovertemplate": "%{y}<br>p = %{x:.4f}<extra></extra>"}
    layout = {**_STYLE, "title": {"text": title}, "height": 90 + 34 * max(len(items), 1),
              "margin": {"l": 10, "r": 10, "t": 40, "b": 40},
              "xaxis": _axis(title={"text": "probability"}),
              "yaxis": _axis(type="category", autorange="reversed", categoryorder="array", categoryarray=labels)}
    return go.Figure(data=[bar], layout=layout)


# --------------------------------------------------------------------------- attention

def attention_matrix(weights, layer: int, head: int | None) -> np.ndarray:
    """[queries, keys] of one layer (0-based): one head, or the mean over heads when `head` is None."""
    w = np.asarray(weights.float().numpy() if hasattr(weights, "numpy") else weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"attention weights must be [layers, heads, queries, keys], got shape {w.shape}")
    layers, heads = w.shape[:2]
    if not 0 <= layer < layers:
        raise ValueError(f"layer {layer + 1} does not exist: this map has {layers} layer(s)")
    if head is None:
        return w[layer].mean(axis=0)
    if not 0 <= head < heads:
        raise ValueError(f"head {head + 1} does not exist: this map has {heads} head(s)")
    return w[layer, head]


def cap_attention(matrix: np.ndarray, queries: Sequence[str], keys: Sequence[str],
                  max_queries: int = MAX_AXIS_TOKENS, max_keys: int = MAX_AXIS_TOKENS):
    """Cap a long map for display: keep the last `max_queries` rows, and the last `max_keys - 1` keys with the
    earlier ones summed into one "…" column (so every row still sums to 1). Returns
    (matrix, query labels, key labels, note or "")."""
    notes = []
    q_start = 0
    if matrix.shape[0] > max_queries:
        q_start = matrix.shape[0] - max_queries
        matrix = matrix[q_start:]
        notes.append(f"showing the last {max_queries} of {len(queries)} query tokens")
    q_labels = axis_labels(list(queries)[q_start:], q_start + 1)
    if matrix.shape[1] > max_keys:
        cut = matrix.shape[1] - (max_keys - 1)
        matrix = np.concatenate([matrix[:, :cut].sum(axis=1, keepdims=True), matrix[:, cut:]], axis=1)
        k_labels = [f"{isolate(f'…{cut} earlier')} 1-{cut}"] + axis_labels(list(keys)[cut:], cut + 1)
        notes.append(f"the first {cut} of {len(keys)} key tokens are summed into one column")
    else:
        k_labels = axis_labels(keys)
    return matrix, q_labels, k_labels, "; ".join(notes)


def attention_figure(amap, layer: int, head: int | None, *, title: str, query_name: str, key_name: str,
                     keys_rtl: bool = False, max_tokens: int = MAX_AXIS_TOKENS) -> tuple[go.Figure, str]:
    """A heatmap of one layer/head (or the mean over heads) of an AttentionMap; (figure, display note)."""
    matrix = attention_matrix(amap.weights, layer, head)
    matrix, q_labels, k_labels, note = cap_attention(matrix, amap.query_tokens, amap.key_tokens,
                                                     max_tokens, max_tokens)
    which = "mean over heads" if head is None else f"head {head + 1}"
    heat = {"type": "heatmap", "z": matrix.round(6).tolist(), "x": k_labels, "y": q_labels,
            "colorscale": "Viridis", "zmin": 0.0, "zmax": float(max(matrix.max(), 1e-9)),
            "colorbar": {"title": {"text": "weight"}},
            "hovertemplate": f"{query_name}: %{{y}}<br>{key_name}: %{{x}}<br>weight: %{{z:.3f}}<extra></extra>"}
    layout = {**_STYLE,
              "title": {"text": f"{title} — layer {layer + 1}, {which}" + (f"<br><sup>{note}</sup>" if note else "")},
              "height": max(320, 140 + 22 * len(q_labels)),
              "margin": {"l": 10, "r": 10, "t": 70 if note else 50, "b": 10},
              "xaxis": _axis(type="category", tickangle=-60, autorange="reversed" if keys_rtl else True,
                             title={"text": key_name + (" (read right to left)" if keys_rtl else "")}),
              "yaxis": _axis(type="category", autorange="reversed", title={"text": query_name})}
    return go.Figure(data=[heat], layout=layout), note


def empty_figure(message: str) -> go.Figure:
    return go.Figure(layout={**_STYLE, "height": 220, "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
                             "xaxis": {"visible": False}, "yaxis": {"visible": False},
                             "annotations": [{"text": message, "showarrow": False, "x": 0.5, "y": 0.5,
                                              "xref": "paper", "yref": "paper",
                                              "font": {"size": 14, "color": "#666"}}]})


# --------------------------------------------------------------------------- training curves

def training_figure(steps: Sequence[dict], evals: Sequence[dict], title: str = "Training") -> go.Figure:
    """Loss per step (left axis) and held-out accuracy per evaluation (right axis, %).

    `steps`: [{"step", "loss"}]; `evals`: [{"step", "metrics": {...}}] (an "accuracy"-like metric is plotted)."""
    data = []
    if steps:
        data.append({"type": "scatter", "x": [s["step"] for s in steps], "y": [s["loss"] for s in steps],
                     "mode": "lines+markers", "name": "training loss", "marker": {"size": 4},
                     "line": {"color": "#4f6bed"}})
    points = [(e["step"], accuracy_of(e.get("metrics", {}))) for e in evals]
    points = [(s, a) for s, a in points if a is not None]
    if points:
        data.append({"type": "scatter", "x": [s for s, _ in points], "y": [100 * a for _, a in points],
                     "mode": "lines+markers", "name": "held-out accuracy (%)", "yaxis": "y2",
                     "line": {"color": "#e4572e"}})
    if not data:
        return empty_figure("No training steps yet.")
    layout = {**_STYLE, "title": {"text": title}, "height": 360, "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
              "xaxis": _axis(title={"text": "step"}), "yaxis": _axis(title={"text": "loss"}),
              "yaxis2": _axis(title={"text": "accuracy (%)"}, overlaying="y", side="right", rangemode="tozero",
                              showgrid=False),
              "legend": {"orientation": "h", "y": -0.25}}
    return go.Figure(data=data, layout=layout)


def accuracy_of(metrics: dict) -> float | None:
    """The held-out accuracy in an evaluation's metrics (a fraction), whatever the trainer calls it: an exact
    name first, else the first key that mentions accuracy or exact match. Percent keys are divided by 100."""
    def fraction(key: str, value: float) -> float:
        percent = "pct" in key or "percent" in key or value > 1
        return float(value) / 100 if percent else float(value)

    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key in ("accuracy", "exact_match", "word_accuracy", "held_out_accuracy", "dev_accuracy", "val_accuracy"):
        if key in numeric:
            return fraction(key, numeric[key])
    for key, value in numeric.items():
        if ("acc" in key or "exact" in key) and "top" not in key:
            return fraction(key, value)
    return None

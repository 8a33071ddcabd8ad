"""The pooled ablation table as a forest plot: each row's difference to TALL with its 95 % interval, per split and
measure, so which rows sit on zero and which one does not is seen at a glance.

    python -m experiments.pooled_table --plot docs/pooled_ablations.svg

Why SVG with text kept as text: it is small, diff-able and searchable, and with a fixed hash salt and no date it is
the same bytes every time it is drawn from the same pooled results (a test redraws it and compares).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: drawn to a file only
import matplotlib.pyplot as plt  # noqa: E402

from demo_build.results import SIGNIFICANCE_LEVEL  # noqa: E402

SPLITS = {"test": "test books", "dev": "dev books"}
MEASURES = {"greedy": ("o", "#1f77b4"), "top-5": ("s", "#d62728")}
OFFSET = 0.15  # greedy just above a row's line, top-5 just below (the y axis is inverted)


def forest(results: dict, level: float = SIGNIFICANCE_LEVEL):
    """A figure with one panel per split; y: the rows, x: row − TALL in points with the 95 % interval. A filled
    marker is a comparison whose Holm-adjusted p is under `level`; an open one is not."""
    rows = list(results)
    fig, axes = plt.subplots(1, len(SPLITS), figsize=(10, 1.2 + 0.55 * len(rows)), sharex=True, sharey=True)
    for ax, (split, title) in zip(axes, SPLITS.items(), strict=True):
        for k, (measure, (marker, colour)) in enumerate(MEASURES.items()):
            for y, row in enumerate(rows):
                c = results[row][split][measure]
                x, low, high = (100 * c[key] for key in ("difference", "ci_low", "ci_high"))
                significant = results[row]["holm"][split][measure] < level
                ax.errorbar(x, y - OFFSET * (1 - 2 * k), xerr=[[x - low], [high - x]], fmt=marker, color=colour,
                            markerfacecolor=colour if significant else "white", capsize=3,
                            label=measure if y == 0 else None)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_title(f"{title}: row − TALL, points (95 % CI)", fontsize=10)
        ax.set_yticks(range(len(rows)), [f"{r} ({len(results[r]['seeds'])} seeds)" for r in rows])
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the table's first row on top (the axes share y)
    axes[-1].legend(loc="upper left", fontsize=8, title=f"filled: Holm p < {level}", title_fontsize=8)
    fig.tight_layout()
    return fig


def write_forest(results: dict, path: Path, level: float = SIGNIFICANCE_LEVEL) -> None:
    if path.suffix != ".svg":
        raise ValueError(f"{path}: the forest plot is written as SVG; name it *.svg")
    fig = forest(results, level)
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tall"}):
        fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)

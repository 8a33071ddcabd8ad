"""PNG and SVG export of the app's Plotly figures with kaleido, which drives a headless chromium (Debian's, the
one CI installs and the browser tests use)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import plotly.io as pio

FORMATS = ("png", "svg")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_path() -> str | None:
    """The browser kaleido should drive: $BROWSER_PATH, else Debian's chromium."""
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


def safe_name(name: str) -> str:
    """A file name from a figure's name: letters, digits and dashes only."""
    return re.sub(r"[^A-Za-z0-9]+", "-", str(name)).strip("-").lower()[:60] or "figure"


def export_figure(fig, fmt: str, out_dir: Path, name: str) -> Path:
    """Write `fig` as PNG or SVG into `out_dir`; ValueError with a message when the format is unknown or no
    chromium is installed."""
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ValueError(f"Figures export as {' or '.join(FORMATS)}, not {fmt!r}.")
    browser = chromium_path()
    if browser is None:
        raise ValueError("PNG/SVG export needs chromium, which kaleido drives: apt-get install chromium.")
    os.environ.setdefault("BROWSER_PATH", browser)
    data = pio.to_image(fig, format=fmt, scale=2 if fmt == "png" else 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{safe_name(name)}.{fmt}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path

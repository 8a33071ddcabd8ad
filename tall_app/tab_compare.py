"""The Compare tab: one prefix through TALL and every baseline available, with the model and decoding chosen in
the Predict tab, and the last evaluation results of the selected checkpoint.

API names: compare, evaluation_results, compare_checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .checkpoint_compare import DIFF_HEADERS
from .compare import COMPARE_HEADERS, RESULT_HEADERS
from .service import AppService
from .ui import USER_ERRORS, ModelControls, user_error, user_message, visitor


@dataclass
class CompareTab:
    prefix: gr.Textbox
    button: gr.Button
    notes: gr.Markdown
    table: gr.Dataframe
    results_note: gr.Markdown
    results_table: gr.Dataframe


def build_compare_tab(svc: AppService, controls: ModelControls) -> CompareTab:
    """The tab's components and events (inside the app's Blocks and Tabs); `controls` are the Predict tab's."""
    with gr.Tab("Compare", id="compare"):
        gr.Markdown("One prefix through TALL and every baseline available (direct, naive translate-test, "
                    "soft prompt, fine-tuned), with the model and decoding chosen in the Predict tab.")
        prefix = gr.Textbox(label="Hebrew prefix", rtl=True, lines=2, elem_id="compare-prefix",
                            value=svc.examples[0] if svc.examples else "")
        button = gr.Button("Compare", variant="primary", elem_id="compare-btn")
        notes = gr.Markdown()
        table = gr.Dataframe(headers=COMPARE_HEADERS, interactive=False, label="Side by side",
                             elem_id="compare-table")
        gr.Markdown("### Last evaluation of the selected checkpoint")
        results_note = gr.Markdown()
        results_table = gr.Dataframe(headers=RESULT_HEADERS, interactive=False, label="Evaluation results")
        _checkpoint_section(svc, controls, prefix)
    tab = CompareTab(prefix, button, notes, table, results_note, results_table)
    _wire(tab, svc, controls)
    return tab


def _checkpoint_section(svc: AppService, controls: ModelControls, prefix: gr.Textbox) -> None:
    """A: the Predict tab's checkpoint; B: chosen here. Same prefix, greedy, same backbones required."""
    gr.Markdown("### Two checkpoints on this prefix\nA is the checkpoint chosen in the Predict tab; B is chosen here. "
                "Both must use the same backbones.")
    with gr.Row():
        preset_b = gr.Dropdown(svc.presets(), value=svc.preset, label="B: preset", elem_id="preset-b")
        checkpoint_b = gr.Dropdown(svc.checkpoint_choices(), value=svc.default_checkpoint(), label="B: checkpoint",
                                   elem_id="checkpoint-b")
        button = gr.Button("Compare the two checkpoints", elem_id="compare-ckpt-btn")
    summary = gr.Markdown(elem_id="ckpt-summary")
    plots = []
    with gr.Row():
        for side in ("a", "b"):
            with gr.Column():
                plots.append([gr.Plot(label=f"{side.upper()}: {what}", elem_id=f"ckpt-{side}-{what}")
                              for what in ("candidates", "attribution", "bridge")])
    diff = gr.Dataframe(headers=DIFF_HEADERS, interactive=False, label="Attribution per word (B − A)",
                        elem_id="ckpt-diff")

    def on_compare(text, preset_a, ckpt_a, preset_b_value, ckpt_b, request: gr.Request,
                   profile: gr.OAuthProfile | None):
        try:
            out = svc.compare_checkpoints(text, preset_a, ckpt_a, preset_b_value, ckpt_b,
                                          owner=visitor(request, profile))
        except USER_ERRORS as err:
            raise user_error(err, svc) from None
        return out.summary, *out.figures_a, *out.figures_b, out.diff_rows

    button.click(on_compare, [prefix, controls.preset, controls.checkpoint, preset_b, checkpoint_b],
                 [summary, *plots[0], *plots[1], diff], api_name="compare_checkpoints")


def _wire(tab: CompareTab, svc: AppService, controls: ModelControls) -> None:
    def on_compare(text, preset, ckpt, mode, temp, k, p, seed, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = visitor(request, profile)
        try:
            result = svc.compare(text, preset, ckpt, mode, temp, k, p, seed, owner=owner)
            rows, note = svc.results(ckpt, owner)
        except USER_ERRORS as err:
            raise user_error(err, svc) from None
        return result.notes_markdown(), result.rows, note, rows

    tab.button.click(on_compare, [tab.prefix, *controls.model_and_decoding()],
                     [tab.notes, tab.table, tab.results_note, tab.results_table], api_name="compare")

    def on_results(ckpt, request: gr.Request, profile: gr.OAuthProfile | None):
        try:
            rows, note = svc.results(ckpt, visitor(request, profile))
        except USER_ERRORS as err:
            return user_message(err, svc), []
        return note, rows

    controls.checkpoint.change(on_results, controls.checkpoint, [tab.results_note, tab.results_table],
                               api_name="evaluation_results", show_progress="hidden")

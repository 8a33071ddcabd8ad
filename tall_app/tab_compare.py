"""The Compare tab: one prefix through TALL and every baseline available, with the model and decoding chosen in
the Predict tab, and the last evaluation results of the selected checkpoint.

API names: compare, evaluation_results.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .compare import COMPARE_HEADERS, RESULT_HEADERS
from .service import AppService
from .ui import USER_ERRORS, ModelControls, user_error, user_message


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
    tab = CompareTab(prefix, button, notes, table, results_note, results_table)
    _wire(tab, svc, controls)
    return tab


def _wire(tab: CompareTab, svc: AppService, controls: ModelControls) -> None:
    def on_compare(text, preset, ckpt, mode, temp, k, p, seed):
        try:
            result = svc.compare(text, preset, ckpt, mode, temp, k, p, seed)
            rows, note = svc.results(ckpt)
        except USER_ERRORS as err:
            raise user_error(err, svc) from None
        return result.notes_markdown(), result.rows, note, rows

    tab.button.click(on_compare, [tab.prefix, *controls.model_and_decoding()],
                     [tab.notes, tab.table, tab.results_note, tab.results_table], api_name="compare")

    def on_results(ckpt):
        try:
            rows, note = svc.results(ckpt)
        except USER_ERRORS as err:
            return user_message(err, svc), []
        return note, rows

    controls.checkpoint.change(on_results, controls.checkpoint, [tab.results_note, tab.results_table],
                               api_name="evaluation_results", show_progress="hidden")

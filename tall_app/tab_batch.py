"""The Batch tab: a file of Hebrew sentences (the Train tab's formats and ingestion report), the last word of each
predicted with a progress bar, accuracy, the most frequent predictions and most missed words, a sortable and
filterable table of every row, and the CSV.

API name: batch_predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from evaluation.batch import CSV_HEADERS, MAX_APP_SENTENCES

from .service import AppService
from .ui import USER_ERRORS, ModelControls, user_error, visitor


@dataclass
class BatchTab:
    file: gr.File
    run: gr.Button
    report: gr.Markdown
    summary: gr.Markdown
    table: gr.Dataframe
    csv: gr.File


def build_batch_tab(svc: AppService, controls: ModelControls) -> BatchTab:
    """`controls`: the Predict tab's preset and checkpoint choose the model."""
    with gr.Tab("Batch", id="batch"):
        gr.Markdown(f"Predict the last word of every sentence of a file (.txt, .csv/.tsv with a `text` column, .jsonl "
                    f"with a `text` field; UTF-8; at most {MAX_APP_SENTENCES:,} sentences here, any number with "
                    "`python -m evaluation.batch`), with the model chosen in the Predict tab, greedy.")
        with gr.Row():
            file = gr.File(label="Sentences", file_types=[".txt", ".csv", ".tsv", ".jsonl"], type="filepath",
                           elem_id="batch-file")
            run = gr.Button("Predict every last word", variant="primary", elem_id="batch-run")
        report = gr.Markdown(elem_id="batch-report")
        summary = gr.Markdown(elem_id="batch-summary")
        table = gr.Dataframe(headers=CSV_HEADERS, interactive=False, show_search="filter", label="Every sentence",
                             elem_id="batch-table")
        csv_file = gr.File(label="CSV", elem_id="batch-csv")
    tab = BatchTab(file, run, report, summary, table, csv_file)

    def on_run(path, preset, checkpoint, request: gr.Request, profile: gr.OAuthProfile | None,
               progress=gr.Progress()):
        progress(0, desc="Reading the file")
        try:
            out = svc.batch(path, preset, checkpoint, owner=visitor(request, profile),
                            on_progress=lambda done, total: progress((done, total), desc="Predicting", unit="sentences"))
        except USER_ERRORS as err:
            raise user_error(err, svc) from None
        return out.report, out.summary, out.rows, str(out.csv_path)

    run.click(on_run, [file, controls.preset, controls.checkpoint], [report, summary, table, csv_file],
              api_name="batch_predict", concurrency_limit=1)
    return tab

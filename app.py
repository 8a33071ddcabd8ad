"""TALL in the browser: predict the next Hebrew word, compare approaches, train adapters on your corpus.

    python app.py [--host 127.0.0.1] [--port 7860] [--preset demo]

`demo` (module level) is the Gradio app, ready for a Hugging Face Space (`app_file: app.py`). Callbacks stay
thin: they call `tall_app.service.AppService`, whose plain functions are unit-tested on their own. The `demo`
preset falls back to `tiny` (and says so) while checkpoints/demo/ is not built.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the app never reaches a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr  # noqa: E402

from tall_app.figures import empty_figure, training_figure  # noqa: E402
from tall_app.formatting import PIECE_HEADERS, status_html  # noqa: E402
from tall_app.jobs import FAILED, FINISHED, STOPPED, progress_html  # noqa: E402
from tall_app.models import APP_PRESETS  # noqa: E402
from tall_app.service import AppService  # noqa: E402

TITLE = "TALL — next Hebrew word"
CSS = """
#prefix textarea, #compare-prefix textarea { font-size: 1.35rem; line-height: 1.6; }
.tall-word bdi { font-family: 'Noto Sans Hebrew', 'DejaVu Sans', sans-serif; }
"""
ATTENTION_HELP = ("Rows are queries, columns are keys; every row sums to 1. Hebrew axes read right to left. "
                  "Moving a selector redraws the stored prediction without running the model again.")
USER_ERRORS = (ValueError, RuntimeError, OSError)


def _error(err: Exception) -> gr.Error:
    return gr.Error(str(err) or type(err).__name__, duration=20)


def build_app(preset: str | None = None, *, service: AppService | None = None) -> gr.Blocks:
    """The Gradio Blocks of the app around one AppService (tests pass their own, on the tiny preset)."""
    requested = preset or os.environ.get("TALL_APP_PRESET", "demo")
    svc = service or AppService(requested)

    with gr.Blocks(title=TITLE) as blocks:
        gr.Markdown(f"# {TITLE}\nTALL (arXiv 2506.05057) reads a Hebrew prefix with a frozen he→en translator, "
                    "passes it through an English LLM between two trainable bridges, and writes the next word "
                    "with a frozen en→he decoder.")
        if svc.notice:
            gr.Markdown(f"⚠️ {svc.notice}", elem_id="preset-notice")
        last_pred = gr.State(None)

        with gr.Tabs():
            # ============================================================ Predict
            with gr.Tab("Predict", id="predict"):
                with gr.Row():
                    with gr.Column(scale=3):
                        prefix = gr.Textbox(label="Hebrew prefix (the beginning of a sentence)", rtl=True, lines=2,
                                            max_lines=6, placeholder="ויהי דבר יהוה אל יונה בן אמתי",
                                            elem_id="prefix")
                        predict_btn = gr.Button("Predict the next word", variant="primary", elem_id="predict-btn")
                        gr.Examples(svc.examples, inputs=[prefix], label=f"Examples: {svc.examples_source}",
                                    api_name="load_example")
                    with gr.Column(scale=2):
                        with gr.Row():
                            preset = gr.Dropdown(svc.presets(), value=svc.preset, label="Preset (backbones)",
                                                 elem_id="preset")
                            checkpoint = gr.Dropdown(svc.checkpoint_choices(), value=svc.default_checkpoint(),
                                                     label="Checkpoint (trained adapters)", elem_id="checkpoint")
                        refresh_btn = gr.Button("Refresh checkpoints", size="sm")
                        mode = gr.Radio(["greedy", "sampling"], value="greedy", label="Decoding")
                        with gr.Group(visible=False) as sampling_box:
                            temperature = gr.Slider(0.05, 2.0, value=0.7, step=0.05, label="Temperature")
                            top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0: off)")
                            top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.01, label="Top-p")
                            seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                word = gr.HTML(label="Predicted word", elem_id="word")
                pipeline = gr.HTML(label="Pipeline", elem_id="pipeline")
                notes = gr.Markdown(label="Notes", elem_id="notes")
                with gr.Row():
                    candidates_plot = gr.Plot(label="Top candidate words", elem_id="candidates")
                    pieces = gr.Dataframe(headers=PIECE_HEADERS, label="Pieces of the predicted word",
                                          interactive=False, elem_id="pieces")
                gr.Markdown(f"### Bridge-in cross-attention (English tokens × Hebrew tokens)\n{ATTENTION_HELP}")
                with gr.Row():
                    b_layer = gr.Slider(1, 2, value=1, step=1, label="Layer")
                    b_head = gr.Slider(1, 4, value=1, step=1, label="Head")
                    b_mean = gr.Checkbox(True, label="Mean over heads", elem_id="bridge-mean")
                bridge_plot = gr.Plot(label="Bridge-in attention", elem_id="bridge-heatmap")
                gr.Markdown("### Final decoder cross-attention (predicted Hebrew pieces × English positions)")
                with gr.Row():
                    d_layer = gr.Slider(1, 2, value=1, step=1, label="Layer")
                    d_head = gr.Slider(1, 4, value=1, step=1, label="Head")
                    d_mean = gr.Checkbox(True, label="Mean over heads")
                decoder_plot = gr.Plot(label="Decoder attention", elem_id="decoder-heatmap")
                with gr.Accordion("Details (JSON)", open=False):
                    details = gr.JSON(label="Prediction")

            # ============================================================ Compare
            with gr.Tab("Compare", id="compare"):
                gr.Markdown("One prefix through TALL and every baseline available (direct, naive translate-test, "
                            "soft prompt, fine-tuned), with the model and decoding chosen in the Predict tab.")
                compare_prefix = gr.Textbox(label="Hebrew prefix", rtl=True, lines=2, elem_id="compare-prefix",
                                            value=svc.examples[0] if svc.examples else "")
                compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
                compare_notes = gr.Markdown()
                compare_table = gr.Dataframe(headers=["approach", "predicted word", "top candidates", "seconds"],
                                             interactive=False, label="Side by side", elem_id="compare-table")
                gr.Markdown("### Last evaluation of the selected checkpoint")
                results_note = gr.Markdown()
                results_table = gr.Dataframe(headers=["dataset", "approach", "examples", "greedy %",
                                                      "sampled % (± 95% CI)", "top-5 %", "mean log p", "empty %"],
                                             interactive=False, label="Evaluation results")

            # ============================================================ Train
            with gr.Tab("Train", id="train"):
                gr.Markdown("Train TALL's adapters on your own Hebrew corpus (.txt: one text per line; .csv/.tsv: "
                            "a `text` column; .jsonl: a `text` field; UTF-8). The report below shows what is "
                            "kept before anything trains. Predictions keep working while a job runs.")
                with gr.Row():
                    with gr.Column(scale=2):
                        corpus_file = gr.File(label="Corpus", file_types=[".txt", ".csv", ".tsv", ".jsonl"],
                                              type="filepath", elem_id="corpus-file")
                        report = gr.Markdown("Upload a corpus to see its ingestion report.", elem_id="corpus-report")
                    with gr.Column(scale=3):
                        with gr.Row():
                            run_name = gr.Textbox("my-run", label="Run name (letters, digits, - and _)",
                                                  elem_id="run-name")
                            train_preset = gr.Dropdown(svc.presets(), value=svc.preset, label="Preset")
                        with gr.Row():
                            epochs = gr.Number(1, precision=0, minimum=1, label="Epochs")
                            lr = gr.Number(5e-4, minimum=0, label="Learning rate")
                            batch_size = gr.Number(8, precision=0, minimum=1, label="Batch size")
                        with gr.Row():
                            max_sentences = gr.Number(200, precision=0, minimum=0,
                                                      label="Max sentences (0: all)", elem_id="max-sentences")
                            eval_every = gr.Number(0, precision=0, minimum=0, label="Evaluate every (steps, 0: auto)")
                            train_seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                        with gr.Row():
                            start_btn = gr.Button("Start", variant="primary", elem_id="train-start")
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="train-stop")
                            resume_btn = gr.Button("Resume", elem_id="train-resume")
                train_status = gr.HTML(elem_id="train-status")
                progress = gr.HTML(progress_html(svc.train_snapshot()), elem_id="train-progress")
                loss_plot = gr.Plot(label="Loss and held-out accuracy", elem_id="loss-plot")
                with gr.Row():
                    zip_btn = gr.Button("Zip the run for download", size="sm")
                    run_zip = gr.File(label="Run archive (.zip)", interactive=False, elem_id="run-zip")
                seen_version = gr.State(-1)
                timer = gr.Timer(1.0, active=False)

        # ================================================================ Predict events
        prediction_outputs = [word, pipeline, notes, candidates_plot, pieces, bridge_plot, decoder_plot, details,
                              last_pred, b_layer, b_head, d_layer, d_head]

        def on_predict(text, preset_name, ckpt, mode_name, temp, k, p, seed_value, bl, bh, bm, dl, dh, dm):
            try:
                out = svc.predict(text, preset_name, ckpt, mode_name, temp, k, p, seed_value)
            except USER_ERRORS as err:
                raise _error(err) from None
            view, pred = out.view, out.prediction
            bridge_fig, _ = svc.attention(pred, "bridge", bl, bh, bm)
            decoder_fig, _ = svc.attention(pred, "decoder", dl, dh, dm)
            (bl_max, bh_max), (dl_max, dh_max) = out.bridge_shape, out.decoder_shape

            def slider(value, maximum):
                maximum = max(maximum, 1)
                return gr.Slider(minimum=1, maximum=maximum, value=min(int(value or 1), maximum))

            return (view.word_html, view.pipeline_html, view.notes, view.candidates, view.pieces, bridge_fig,
                    decoder_fig, out.details, pred, slider(bl, bl_max), slider(bh, bh_max), slider(dl, dl_max),
                    slider(dh, dh_max))

        predict_inputs = [prefix, preset, checkpoint, mode, temperature, top_k, top_p, seed,
                          b_layer, b_head, b_mean, d_layer, d_head, d_mean]
        gr.on([predict_btn.click, prefix.submit], on_predict, predict_inputs, prediction_outputs,
              api_name="predict", concurrency_limit=2)

        def redraw(which):
            def fn(pred, layer, head, mean):
                return svc.attention(pred, which, layer, head, mean)[0]
            return fn

        # user input only (a prediction updating the sliders' range must not redraw twice); the last value wins
        gr.on([b_layer.input, b_head.input, b_mean.input], redraw("bridge"), [last_pred, b_layer, b_head, b_mean],
              bridge_plot, api_name="bridge_attention", show_progress="hidden", trigger_mode="always_last")
        gr.on([d_layer.input, d_head.input, d_mean.input], redraw("decoder"), [last_pred, d_layer, d_head, d_mean],
              decoder_plot, api_name="decoder_attention", show_progress="hidden", trigger_mode="always_last")
        mode.change(lambda m: gr.Group(visible=m == "sampling"), mode, sampling_box, api_name="decoding_mode",
                    show_progress="hidden")

        def on_checkpoint(ckpt, current):
            try:
                return svc.preset_of(ckpt, current)
            except USER_ERRORS as err:
                raise _error(err) from None

        checkpoint.input(on_checkpoint, [checkpoint, preset], preset, api_name="select_checkpoint")

        def on_refresh(ckpt):
            choices = svc.checkpoint_choices()
            values = [v for _, v in choices]
            return gr.Dropdown(choices=choices, value=ckpt if ckpt in values else values[0])

        refresh_btn.click(on_refresh, checkpoint, checkpoint, api_name="refresh_checkpoints")

        # ================================================================ Compare events
        def on_compare(text, preset_name, ckpt, mode_name, temp, k, p, seed_value):
            try:
                result = svc.compare(text, preset_name, ckpt, mode_name, temp, k, p, seed_value)
                rows, note = svc.results(ckpt)
            except USER_ERRORS as err:
                raise _error(err) from None
            return result.notes_markdown(), result.rows, note, rows

        compare_btn.click(on_compare, [compare_prefix, preset, checkpoint, mode, temperature, top_k, top_p, seed],
                          [compare_notes, compare_table, results_note, results_table], api_name="compare")

        def on_results(ckpt):
            try:
                note_rows = svc.results(ckpt)
            except USER_ERRORS as err:
                return str(err), []
            return note_rows[1], note_rows[0]

        checkpoint.change(on_results, checkpoint, [results_note, results_table], api_name="evaluation_results",
                          show_progress="hidden")

        # ================================================================ Train events
        def on_upload(path, cap):
            if not path:
                return "Upload a corpus to see its ingestion report."
            try:
                corpus, text = svc.check_corpus(path, cap)
            except USER_ERRORS as err:
                gr.Warning(str(err))
                return f"**Cannot use this file:** {err}"
            return text

        corpus_file.change(on_upload, [corpus_file, max_sentences], report, api_name="check_corpus")

        train_inputs = [corpus_file, run_name, train_preset, epochs, lr, batch_size, max_sentences, eval_every,
                        train_seed]

        def starter(resume):
            def fn(path, name, preset_name, n_epochs, rate, batch, cap, every, seed_value):
                try:
                    snap = svc.train_start(path, name, preset_name, n_epochs, rate, batch, cap, every, seed_value,
                                           resume=resume)
                except USER_ERRORS as err:
                    gr.Warning(str(err))
                    return status_html(str(err), "error"), gr.skip(), gr.skip(), gr.skip()
                verb = "Resumed" if resume else "Started"
                return (status_html(f"{verb} run {snap.run_name}: saving to checkpoints/{snap.run_name}/", "ok"),
                        progress_html(snap), gr.Timer(active=True), snap.run_name)
            return fn

        start_btn.click(starter(False), train_inputs, [train_status, progress, timer, run_name],
                        api_name="train_start")
        resume_btn.click(starter(True), train_inputs, [train_status, progress, timer, run_name],
                         api_name="train_resume")

        def on_stop():
            snap = svc.train_stop()
            if not snap.active:
                return status_html("No training job is running.", "warn"), progress_html(snap)
            return status_html("Stopping after the current step; the run keeps a resumable checkpoint.", "warn"), \
                progress_html(snap)

        stop_btn.click(on_stop, None, [train_status, progress], api_name="train_stop")

        def on_poll(seen, ckpt):
            snap = svc.train_snapshot()
            if snap.version == seen:
                return (gr.skip(),) * 5 + (gr.Timer(active=snap.active), seen)
            fig = training_figure(snap.steps, snap.evals, title=f"Run {snap.run_name}")
            dropdown, archive, status = gr.skip(), gr.skip(), gr.skip()
            if snap.state in (FINISHED, STOPPED):
                dropdown = on_refresh(ckpt)
                try:
                    archive = str(svc.run_zip(snap.run_name))
                except USER_ERRORS:
                    archive = None
                kind = "ok" if snap.state == FINISHED else "warn"
                status = status_html(f"{snap.message}. The checkpoints appear in the Predict tab's selector.", kind)
            elif snap.state == FAILED:
                status = status_html(f"Training failed: {snap.error}", "error")
            return progress_html(snap), fig, status, dropdown, archive, gr.Timer(active=snap.active), snap.version

        timer.tick(on_poll, [seen_version, checkpoint],
                   [progress, loss_plot, train_status, checkpoint, run_zip, timer, seen_version],
                   api_name="train_poll", show_progress="hidden")

        def on_zip(name):
            try:
                return str(svc.run_zip(name))
            except USER_ERRORS as err:
                raise _error(err) from None

        zip_btn.click(on_zip, run_name, run_zip, api_name="train_download")

        def on_load(ckpt):
            snap = svc.train_snapshot()
            rows_note = svc.results(ckpt) if ckpt else ([], "")
            return (on_refresh(ckpt), gr.Timer(active=snap.active), progress_html(snap), rows_note[1], rows_note[0],
                    empty_figure("Predict a word to see the attention."),
                    empty_figure("Predict a word to see the attention."))

        blocks.load(on_load, checkpoint, [checkpoint, timer, progress, results_note, results_table, bridge_plot,
                                          decoder_plot], api_name="on_load", show_progress="hidden")
    blocks.service = svc  # for tests and benchmarks
    blocks.requested_preset = svc.preset if service is not None else requested
    return blocks


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, **kwargs):
    """Launch with the app's queue settings and CSS (Gradio 6 takes css at launch)."""
    blocks.queue(default_concurrency_limit=1, max_size=64)
    return blocks.launch(server_name=host, server_port=port, css=CSS, max_file_size="25mb", **kwargs)


demo = build_app()


def main(argv=None) -> None:
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--preset", default=os.environ.get("TALL_APP_PRESET", "demo"), choices=APP_PRESETS,
                        help="demo (falls back to tiny while checkpoints/demo/ is not built), tiny, tiny-qwen, mid")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.preset != demo.requested_preset:
        demo = build_app(args.preset)
    launch(demo, args.host, args.port)


if __name__ == "__main__":
    main()

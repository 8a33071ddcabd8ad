"""The Predict tab: a Hebrew prefix, the model and decoding controls, the predicted word with its pipeline,
candidates and pieces, and the two attention heatmaps with their layer and head selectors.

API names: predict, load_example, bridge_attention, decoder_attention, decoding_mode, select_checkpoint,
refresh_checkpoints; its analysis section (tab_analysis): attribution, attribute_word, export_figure,
download_analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .formatting import PIECE_HEADERS
from .predicting import (
    BEST_WORD_MODE,
    DEFAULT_DECODING,
    GREEDY_MODE,
    NGRAM_MODE,
    PRIOR_MODE,
    SAMPLING_MODE,
    TRAINING_WORDS_MODE,
)
from .service import AppService
from .tab_analysis import AnalysisSection, build_analysis_section, wire_analysis
from .ui import USER_ERRORS, ModelControls, checkpoint_dropdown, user_error, visitor

ATTENTION_HELP = ("Rows are queries, columns are keys; every row sums to 1. Hebrew axes read right to left. "
                  "Moving a selector redraws the stored prediction without running the model again.")


@dataclass
class AttentionControls:
    layer: gr.Slider
    head: gr.Slider
    mean: gr.Checkbox
    plot: gr.Plot

    def selectors(self) -> list:
        return [self.layer, self.head, self.mean]


@dataclass
class PredictTab:
    controls: ModelControls
    prefix: gr.Textbox
    button: gr.Button
    refresh: gr.Button
    sampling_box: gr.Group
    results: list  # word, pipeline, notes, candidates plot, pieces (what render_prediction fills)
    bridge: AttentionControls
    decoder: AttentionControls
    details: gr.JSON
    last_prediction: gr.State
    analysis: AnalysisSection


def build_predict_tab(svc: AppService) -> PredictTab:
    """The tab's components and events (inside the app's Blocks and Tabs)."""
    with gr.Tab("Predict", id="predict"):
        with gr.Row():
            with gr.Column(scale=3):
                prefix = gr.Textbox(label="Hebrew prefix (the beginning of a sentence)", rtl=True, lines=2,
                                    max_lines=6, placeholder="ויהי דבר יהוה אל יונה בן אמתי", elem_id="prefix")
                button = gr.Button("Predict the next word", variant="primary", elem_id="predict-btn")
                gr.Examples(svc.examples, inputs=[prefix], label=f"Examples: {svc.examples_source}",
                            api_name="load_example")
            with gr.Column(scale=2):
                controls, refresh, sampling_box = _model_controls(svc)
        results = _result_components()
        gr.Markdown(f"### Bridge-in cross-attention (English tokens × Hebrew tokens)\n{ATTENTION_HELP}")
        bridge = _attention_controls("Bridge-in attention", "bridge-heatmap", mean_id="bridge-mean")
        gr.Markdown("### Final decoder cross-attention (predicted Hebrew pieces × English positions)")
        decoder = _attention_controls("Decoder attention", "decoder-heatmap")
        analysis = build_analysis_section()
        with gr.Accordion("Details (JSON)", open=False):
            details = gr.JSON(label="Prediction")
        last_prediction = gr.State(None)  # the stored Prediction the selectors redraw from
    tab = PredictTab(controls, prefix, button, refresh, sampling_box, results, bridge, decoder, details,
                     last_prediction, analysis)
    predicted = _wire_predict(tab, svc)
    wire_analysis(analysis, svc, predicted, last_prediction, controls.preset, controls.checkpoint,
                  bridge.selectors(), decoder.selectors())
    _wire_selectors(tab, svc)
    return tab


def _model_controls(svc: AppService) -> tuple[ModelControls, gr.Button, gr.Group]:
    with gr.Row():
        preset = gr.Dropdown(svc.presets(), value=svc.preset, label="Preset (backbones)", elem_id="preset")
        checkpoint = gr.Dropdown(svc.checkpoint_choices(), value=svc.default_checkpoint(),
                                 label="Checkpoint (trained adapters)", elem_id="checkpoint")
    refresh = gr.Button("Refresh checkpoints", size="sm")
    missing = svc.missing_presets_markdown()
    if missing:
        with gr.Accordion("Presets not available here", open=False):
            gr.Markdown(missing, elem_id="missing-presets")
    mode = gr.Radio([GREEDY_MODE, BEST_WORD_MODE, TRAINING_WORDS_MODE, PRIOR_MODE, NGRAM_MODE, SAMPLING_MODE],
                    value=svc.greedy_mode(svc.default_checkpoint(), svc.preset), label="Decoding",
                    info="starts on the chosen model's own greedy choice. greedy: piece by piece (the paper's way); "
                    "best whole word: the likeliest of the candidates (the demo table's TALL); training words only: "
                    "the best whole word among the demo's training Hebrew; prior-corrected: the best whole word, "
                    "the demo adapters' favourite words counting less (the demo's adapters only); with the word "
                    "n-gram: the candidates also weighed by how often each followed the last words in the training "
                    "Hebrew, and its likeliest words added (TALL and the n-gram together; not the paper's)")
    with gr.Group(visible=False) as sampling_box:
        temperature = gr.Slider(0.05, 2.0, value=DEFAULT_DECODING.temperature, step=0.05, label="Temperature")
        top_k = gr.Slider(0, 200, value=DEFAULT_DECODING.top_k, step=1, label="Top-k (0: off)")
        top_p = gr.Slider(0.05, 1.0, value=DEFAULT_DECODING.top_p, step=0.01, label="Top-p")
        seed = gr.Number(DEFAULT_DECODING.seed, precision=0, minimum=0, label="Seed")
    return ModelControls(preset, checkpoint, mode, temperature, top_k, top_p, seed), refresh, sampling_box


def _result_components() -> list:
    word = gr.HTML(label="Predicted word", elem_id="word")
    pipeline = gr.HTML(label="Pipeline", elem_id="pipeline")
    notes = gr.Markdown(label="Notes", elem_id="notes")
    with gr.Row():
        candidates = gr.Plot(label="Top candidate words", elem_id="candidates")
        pieces = gr.Dataframe(headers=PIECE_HEADERS, label="Pieces of the predicted word", interactive=False,
                              elem_id="pieces")
    return [word, pipeline, notes, candidates, pieces]


def _attention_controls(label: str, plot_id: str, mean_id: str | None = None) -> AttentionControls:
    with gr.Row():
        layer = gr.Slider(1, 2, value=1, step=1, label="Layer")
        head = gr.Slider(1, 4, value=1, step=1, label="Head")
        mean = gr.Checkbox(True, label="Mean over heads", elem_id=mean_id)
    return AttentionControls(layer, head, mean, gr.Plot(label=label, elem_id=plot_id))


def _slider(value, maximum: int) -> gr.Slider:
    """A layer or head selector with the range of the new prediction's map, its value kept inside it. A map with
    one layer (the demo's depth-1 bridges) gets a slider fixed at 1: Gradio refuses a range of a single value."""
    if maximum <= 1:
        return gr.Slider(minimum=1, maximum=2, value=1, interactive=False)
    return gr.Slider(minimum=1, maximum=maximum, value=min(int(value or 1), maximum), interactive=True)


def _wire_predict(tab: PredictTab, svc: AppService):
    bridge, decoder = tab.bridge, tab.decoder

    def on_predict(text, preset, ckpt, mode, temp, k, p, seed, bl, bh, bm, dl, dh, dm, request: gr.Request,
                   profile: gr.OAuthProfile | None):
        try:
            out = svc.predict(text, preset, ckpt, mode, temp, k, p, seed, owner=visitor(request, profile))
        except USER_ERRORS as err:
            raise user_error(err, svc) from None
        view, pred = out.view, out.prediction
        bridge_fig, _ = svc.attention(pred, "bridge", bl, bh, bm)
        decoder_fig, _ = svc.attention(pred, "decoder", dl, dh, dm)
        (bl_max, bh_max), (dl_max, dh_max) = out.bridge_shape, out.decoder_shape
        return (view.word_html, view.pipeline_html, view.notes, view.candidates, view.pieces, bridge_fig,
                decoder_fig, out.details, pred, _slider(bl, bl_max), _slider(bh, bh_max), _slider(dl, dl_max),
                _slider(dh, dh_max))

    inputs = [tab.prefix, *tab.controls.model_and_decoding(), *bridge.selectors(), *decoder.selectors()]
    outputs = [*tab.results, bridge.plot, decoder.plot, tab.details, tab.last_prediction, bridge.layer, bridge.head,
               decoder.layer, decoder.head]
    return gr.on([tab.button.click, tab.prefix.submit], on_predict, inputs, outputs, api_name="predict",
                 concurrency_limit=2)


def _wire_selectors(tab: PredictTab, svc: AppService) -> None:
    controls = tab.controls

    def redraw(which):
        def fn(pred, layer, head, mean):
            return svc.attention(pred, which, layer, head, mean)[0]
        return fn

    # user input only (a prediction updating the sliders' range must not redraw twice); the last value wins
    for which, att in (("bridge", tab.bridge), ("decoder", tab.decoder)):
        gr.on([att.layer.input, att.head.input, att.mean.input], redraw(which), [tab.last_prediction,
              *att.selectors()], att.plot, api_name=f"{which}_attention", show_progress="hidden",
              trigger_mode="always_last")
    controls.mode.change(lambda m: gr.Group(visible=m == SAMPLING_MODE), controls.mode, tab.sampling_box,
                         api_name="decoding_mode", show_progress="hidden")

    def on_checkpoint(ckpt, current, mode, request: gr.Request, profile: gr.OAuthProfile | None):
        try:
            owner = visitor(request, profile)
            return svc.after_checkpoint(ckpt, current, mode, owner)
        except USER_ERRORS as err:
            raise user_error(err, svc) from None

    controls.checkpoint.input(on_checkpoint, [controls.checkpoint, controls.preset, controls.mode],
                              [controls.preset, controls.mode], api_name="select_checkpoint")
    def on_refresh(ckpt, request: gr.Request, profile: gr.OAuthProfile | None):
        return checkpoint_dropdown(svc, ckpt, visitor(request, profile))

    tab.refresh.click(on_refresh, controls.checkpoint, controls.checkpoint, api_name="refresh_checkpoints")

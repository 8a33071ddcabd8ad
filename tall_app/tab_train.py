"""The Train tab: upload a corpus and read its ingestion report, fill in the run (its fields are TrainConfig's, with
TrainConfig's defaults), Start / Stop / Resume, a progress bar and a live loss and accuracy plot polled by a timer,
and the finished run as a zip.

API names: check_corpus, train_start, train_resume, train_stop, train_poll, train_download, train_private, and
train_push (only when a Hugging Face token is configured).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .figures import training_figure
from .formatting import status_html
from .jobs import FAILED, FINISHED, STOPPED, form_defaults, progress_html
from .service import AppService
from .ui import USER_ERRORS, ModelControls, checkpoint_dropdown, user_error, user_message, visitor

NO_CORPUS = "Upload a corpus to see its ingestion report."
SIGN_IN_NOTE = ("Training on this app needs a Hugging Face sign-in (the button at the top of the page): your runs are "
                "then yours, whichever browser you use.")


@dataclass
class TrainTab:
    corpus: gr.File
    report: gr.Markdown
    form: list  # run name, preset, epochs, lr, batch size, max sentences, evaluate every, seed
    start: gr.Button
    stop: gr.Button
    resume: gr.Button
    status: gr.HTML
    progress: gr.HTML
    loss_plot: gr.Plot
    zip_button: gr.Button
    archive: gr.File
    seen_version: gr.State
    timer: gr.Timer
    private: gr.Checkbox

    @property
    def run_name(self) -> gr.Textbox:
        return self.form[0]

    @property
    def max_sentences(self) -> gr.Number:
        return self.form[5]


def build_train_tab(svc: AppService, controls: ModelControls) -> TrainTab:
    """The tab's components and events (inside the app's Blocks and Tabs); `controls` are the Predict tab's (a
    finished run refreshes its checkpoint selector)."""
    with gr.Tab("Train", id="train"):
        gr.Markdown("Train TALL's adapters on your own Hebrew corpus (.txt: one text per line; .csv/.tsv: a `text` "
                    "column; .jsonl: a `text` field; UTF-8). The report below shows what is kept before anything "
                    "trains. Predictions keep working while a job runs.")
        if svc.auth_mode == "oauth":
            gr.Markdown(f"🔒 {SIGN_IN_NOTE}", elem_id="sign-in-note")
        with gr.Row():
            with gr.Column(scale=2):
                corpus = gr.File(label="Corpus", file_types=[".txt", ".csv", ".tsv", ".jsonl"], type="filepath",
                                 elem_id="corpus-file")
                report = gr.Markdown(NO_CORPUS, elem_id="corpus-report")
            with gr.Column(scale=3):
                form = _form(svc)
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="train-start")
                    stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
                    resume = gr.Button("Resume", elem_id="train-resume")
                private = gr.Checkbox(False, label="Private run: only I can predict with it, compare or evaluate it "
                                      "(the run named above, once started)", elem_id="run-private")
        status = gr.HTML(elem_id="train-status")
        progress = gr.HTML(progress_html(svc.train_snapshot()), elem_id="train-progress")
        loss_plot = gr.Plot(label="Loss and held-out accuracy", elem_id="loss-plot")
        with gr.Row():
            zip_button = gr.Button("Zip the run for download", size="sm")
            archive = gr.File(label="Run archive (.zip)", interactive=False, elem_id="run-zip")
        if svc.hub_push_available():
            _hub_push_row(tab_run_name=form[0], svc=svc)
        seen_version = gr.State(-1)
        timer = gr.Timer(1.0, active=False)
    tab = TrainTab(corpus, report, form, start, stop, resume, status, progress, loss_plot, zip_button, archive,
                   seen_version, timer, private)
    _wire_form(tab, svc)
    _wire_progress(tab, svc, controls)
    return tab


def _hub_push_row(tab_run_name: gr.Textbox, svc: AppService) -> None:
    with gr.Row():
        repo = gr.Textbox(label="Hub repo id (owner/name)", placeholder="you/tall-adapters", elem_id="hub-repo")
        push = gr.Button("Push to the Hub", size="sm", elem_id="hub-push")
    pushed = gr.Markdown(elem_id="hub-pushed")

    def on_push(name, repo_id, request: gr.Request, profile: gr.OAuthProfile | None):
        try:
            return svc.push_run(name, repo_id, visitor(request, profile))
        except USER_ERRORS as err:
            raise user_error(err, svc) from None

    push.click(on_push, [tab_run_name, repo], pushed, api_name="train_push")


def _form(svc: AppService) -> list:
    """The run's fields; numbers start at TrainConfig's defaults (form_defaults)."""
    defaults = form_defaults()
    with gr.Row():
        run_name = gr.Textbox("my-run", label="Run name (letters, digits, - and _)", elem_id="run-name")
        preset = gr.Dropdown(svc.presets(), value=svc.preset, label="Preset", elem_id="train-preset")
    with gr.Row():
        epochs = gr.Number(defaults["epochs"], precision=0, minimum=1, label="Epochs")
        lr = gr.Number(defaults["lr"], minimum=0, label="Learning rate")
        batch_size = gr.Number(defaults["batch_size"], precision=0, minimum=1, label="Batch size")
    with gr.Row():
        max_sentences = gr.Number(defaults["max_sentences"], precision=0, minimum=0, label="Max sentences (0: all)",
                                  elem_id="max-sentences")
        eval_every = gr.Number(defaults["eval_every"], precision=0, minimum=0,
                               label="Evaluate every (0: each epoch)")
        seed = gr.Number(defaults["seed"], precision=0, minimum=0, label="Seed")
    return [run_name, preset, epochs, lr, batch_size, max_sentences, eval_every, seed]


def _wire_form(tab: TrainTab, svc: AppService) -> None:
    def on_upload(path, cap):
        if not path:
            return NO_CORPUS
        try:
            _, text = svc.check_corpus(path, cap)
        except USER_ERRORS as err:
            gr.Warning(user_message(err, svc))
            return f"**Cannot use this file:** {user_message(err, svc)}"
        return text

    tab.corpus.change(on_upload, [tab.corpus, tab.max_sentences], tab.report, api_name="check_corpus")

    def starter(resume: bool):
        def fn(path, name, preset, epochs, lr, batch_size, max_sentences, eval_every, seed, request: gr.Request,
               profile: gr.OAuthProfile | None):
            try:
                snap = svc.train_start(path, name, preset, epochs, lr, batch_size, max_sentences, eval_every, seed,
                                       resume=resume, owner=visitor(request, profile))
            except USER_ERRORS as err:
                gr.Warning(user_message(err, svc))
                return status_html(user_message(err, svc), "error"), gr.skip(), gr.skip(), gr.skip()
            verb = "Resumed" if resume else "Started"
            return (status_html(f"{verb} run {snap.run_name}: saving to checkpoints/{snap.run_name}/", "ok"),
                    progress_html(snap), gr.Timer(active=True), snap.run_name)
        return fn

    outputs = [tab.status, tab.progress, tab.timer, tab.run_name]
    tab.start.click(starter(False), [tab.corpus, *tab.form], outputs, api_name="train_start")
    tab.resume.click(starter(True), [tab.corpus, *tab.form], outputs, api_name="train_resume")

    def on_stop(request: gr.Request, profile: gr.OAuthProfile | None):
        try:
            snap = svc.train_stop(visitor(request, profile))
        except USER_ERRORS as err:
            return status_html(user_message(err, svc), "error"), gr.skip()
        if not snap.active:
            return status_html("No training job is running.", "warn"), progress_html(snap)
        return (status_html("Stopping after the current step; the run keeps a resumable checkpoint.", "warn"),
                progress_html(snap))

    tab.stop.click(on_stop, None, [tab.status, tab.progress], api_name="train_stop")

    def on_private(name, private, request: gr.Request, profile: gr.OAuthProfile | None):
        try:
            return status_html(svc.set_run_private(name, private, visitor(request, profile)), "ok")
        except USER_ERRORS as err:
            return status_html(user_message(err, svc), "error")

    tab.private.input(on_private, [tab.run_name, tab.private], tab.status, api_name="train_private")


def _wire_progress(tab: TrainTab, svc: AppService, controls: ModelControls) -> None:
    def on_poll(seen, ckpt, request: gr.Request, profile: gr.OAuthProfile | None):
        snap = svc.train_snapshot()
        owner = visitor(request, profile)
        if snap.version == seen:
            return (gr.skip(),) * 5 + (gr.Timer(active=snap.active), seen)
        fig = training_figure(snap.steps, snap.evals, title=f"Run {snap.run_name}")
        dropdown, archive, status = gr.skip(), gr.skip(), gr.skip()
        if snap.state in (FINISHED, STOPPED):
            dropdown = checkpoint_dropdown(svc, ckpt, owner)
            try:
                archive = str(svc.run_zip(snap.run_name, owner))  # only the owner gets the zip
            except USER_ERRORS:
                archive = None
            kind = "ok" if snap.state == FINISHED else "warn"
            status = status_html(f"{snap.message}. The checkpoints appear in the Predict tab's selector.", kind)
        elif snap.state == FAILED:
            status = status_html(f"Training failed: {snap.error}", "error")
        return progress_html(snap), fig, status, dropdown, archive, gr.Timer(active=snap.active), snap.version

    tab.timer.tick(on_poll, [tab.seen_version, controls.checkpoint],
                   [tab.progress, tab.loss_plot, tab.status, controls.checkpoint, tab.archive, tab.timer,
                    tab.seen_version], api_name="train_poll", show_progress="hidden")

    def on_zip(name, request: gr.Request, profile: gr.OAuthProfile | None):
        try:
            return str(svc.run_zip(name, visitor(request, profile)))
        except USER_ERRORS as err:
            raise user_error(err, svc) from None

    tab.zip_button.click(on_zip, tab.run_name, tab.archive, api_name="train_download")

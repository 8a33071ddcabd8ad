"""Everything the app's callbacks do, as plain methods (no Gradio): one `AppService` per app.

The tab modules (tall_app/tab_*.py) only map these methods onto components and turn a ValueError into a message
box; the methods are unit-tested on their own and the benchmark calls `AppService.predict` directly to measure the
server's overhead. The Train form and its API call share one method, `train_start`, which refuses a run name
reserved by a shipped checkpoint.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.errors import HfHubHTTPError

from tall_model.config import REPO_ROOT, preset_config
from tall_model.hub import hub_token_configured, looks_like_repo_id, push_to_hub
from tall_model.memory import Trimmer

from .analysis import (
    DEFAULT_STEPS,
    AnalysisState,
    analysis_bundle,
    attribution_figure,
    attribution_html,
    lens_figure,
    run_attribution,
)
from .batching import BatchOutcome, run_batch
from .checkpoint_compare import CheckpointComparison, compare_checkpoints
from .compare import Comparison, compare, results_table
from .examples import example_prefixes
from .export import export_figure
from .formatting import report_markdown
from .jobs import MAX_UPLOAD_BYTES, TrainingJobs, parse_max_sentences, preview_corpus, train_config_from_form
from .models import NO_CHECKPOINT, ModelCache, available_presets, choose_preset, missing_presets
from .owners import (
    SignInRequired,
    check_owner,
    check_readable,
    is_owner,
    is_private,
    make_room,
    set_private,
    signed_in,
)
from .paths import CHECKPOINTS_ROOT, list_checkpoints, resolve_checkpoint, run_directory, zip_checkpoint
from .predicting import (
    BEST_WORD_MODE,
    GREEDY_MODE,
    attention_shape,
    greedy_mode,
    parse_decoding,
    render_attention,
    render_prediction,
    run_prediction,
)

FIGURES = ("bridge-in attention", "decoder attention", "candidates", "attribution", "logit lens")
# Bounds for a shared, public app (a Space): all runs together, and one run.
DEFAULT_QUOTA_BYTES = 2_000_000_000
DEFAULT_MAX_RUN_SECONDS = 3600.0
DEFAULT_MAX_RUN_STEPS = 20_000
# Who may use the Train tab: "session" (anyone; a run is owned by the signed-in user, else the browser session) or
# "oauth" (only users signed in with Hugging Face on a Space; see app.py --auth-mode).
AUTH_MODES = ("session", "oauth")


@dataclass
class PredictOutcome:
    prediction: object  # tall_model.predict.Prediction (kept in gr.State)
    view: object  # predicting.PredictionView
    details: dict  # JSON-ready summary (the API's plain answer)
    bridge_shape: tuple[int, int]
    decoder_shape: tuple[int, int]


def prediction_details(pred) -> dict:
    def att(amap):
        if amap is None:
            return None
        return {"shape": list(amap.weights.shape), "queries": list(amap.query_tokens), "keys": list(amap.key_tokens)}

    return {"prefix": pred.prefix, "prefix_used": pred.prefix_used, "truncated": pred.truncated,
            "translation": pred.translation, "word": pred.word,
            "pieces": [{"piece": p.piece, "token_id": p.token_id, "prob": p.prob} for p in pred.pieces],
            "candidates": [{"word": c.word, "prob": c.prob} for c in pred.candidates],
            "llm_next": [{"token": t, "prob": p} for t, p in pred.llm_next], "sampled": pred.sampled,
            "seed": pred.seed, "notes": list(pred.notes),
            "bridge_in_attention": att(pred.bridge_in_attention), "decoder_attention": att(pred.decoder_attention),
            "logit_lens": pred.logit_lens.as_dict() if pred.logit_lens is not None else None}


@dataclass
class AttributionOutcome:
    state: AnalysisState  # with the new attribution
    html: str
    figure: object
    details: dict


class AppService:
    def __init__(self, preset: str = "demo", *, root: Path | None = None, overrides: dict | None = None,
                 runner=None, max_upload_bytes: int = MAX_UPLOAD_BYTES, demo_directory: Path | None = None,
                 train_options: dict | None = None, device: str | None = None, dtype: str | None = None,
                 quota_bytes: int = DEFAULT_QUOTA_BYTES, max_run_seconds: float | None = DEFAULT_MAX_RUN_SECONDS,
                 max_run_steps: int = DEFAULT_MAX_RUN_STEPS, auth_mode: str = "session",
                 translation_engine: str = "transformers", quantize: str | None = None):
        """`overrides`: Decoding fields for every loaded model; `train_options`: more TrainConfig fields for runs
        started from the app ("model": a partial dict of TallConfig changes; default: the shared translation cache
        in .cache/); `runner`: what runs a TrainConfig (default training.train.train); `device`, `dtype`: of the
        models the app loads (auto: CUDA when present; fp32 backbones unless told), and of runs started here;
        `translation_engine`, `quantize`: as tall_model.load's, for the models the app predicts with (runs train
        on their own unquantised backbones);
        `auth_mode`: one of AUTH_MODES ("oauth": Start, Resume, Stop, Download, Push and Private need a signed-in
        user)."""
        if auth_mode not in AUTH_MODES:
            raise ValueError(f"Unknown auth mode {auth_mode!r}; choose one of {', '.join(AUTH_MODES)}.")
        self.auth_mode = auth_mode
        self.root = Path(root or CHECKPOINTS_ROOT)
        self.preset, self.notice = choose_preset(preset, demo_directory)
        self.cache = ModelCache(self.root, overrides, device=device, dtype=dtype,
                                translation_engine=translation_engine, quantize=quantize)
        self.demo_directory = demo_directory
        self.train_options = {"translation_cache": str(REPO_ROOT / ".cache" / "translations.sqlite"),
                              "device": device or "auto", "dtype": dtype, **(train_options or {})}
        self.jobs = TrainingJobs(runner, self.root, max_seconds=max_run_seconds)
        self.quota_bytes, self.max_run_steps = quota_bytes, max_run_steps
        self.max_upload_bytes = max_upload_bytes
        self.examples, self.examples_source = example_prefixes(demo_directory)
        self.hub_api = None  # huggingface_hub's HfApi (with its configured token) unless a test records the upload
        self.export_dir = Path(tempfile.mkdtemp(prefix="tall-export-"))  # the app's own; never a user-named path
        self.trim = Trimmer()  # after a heavy request: free heap pages back to the system (tall_model/memory.py)

    # ------------------------------------------------------------------ model selection

    def presets(self) -> list[str]:
        presets = available_presets(self.demo_directory)
        return presets if self.preset in presets else [self.preset, *presets]

    def missing_presets_markdown(self) -> str:
        """Which presets are not listed, and why (shown under the preset selector)."""
        missing = missing_presets(self.demo_directory)
        return "\n".join(f"- **{preset}** is not listed: {reason}" for preset, reason in missing.items())

    def checkpoint_choices(self, owner: str | None = None) -> list[tuple[str, str]]:
        """The checkpoint selector's (label, name) pairs for `owner` (owners.owner_key): private runs only for their
        owner (never for None: the page as built, before anyone asks)."""
        def listed(name: str) -> bool:
            run = self._run_of(name)
            return not is_private(run) or (owner is not None and is_owner(run, owner))

        return [(NO_CHECKPOINT, NO_CHECKPOINT)] + [(c.label + (" · private" if is_private(self._run_of(c.name)) else ""),
                                                    c.name) for c in list_checkpoints(self.root) if listed(c.name)]

    def _run_of(self, checkpoint_name: str) -> Path:
        return self.root / checkpoint_name.split("/")[0]

    def check_readable(self, checkpoint: str | None, owner: str | None) -> None:
        """PrivateRun when `checkpoint` belongs to a run marked private by someone other than `owner` (None: a
        trusted local call)."""
        if checkpoint and checkpoint != NO_CHECKPOINT:
            check_readable(self._run_of(resolve_checkpoint(checkpoint, self.root).name), owner)

    def default_checkpoint(self) -> str:
        if self.preset == "demo":
            for c in list_checkpoints(self.root):
                if c.name == "demo/tall" and not c.problem:
                    return c.name
        return NO_CHECKPOINT

    def after_checkpoint(self, checkpoint: str | None, current: str, mode: str,
                         owner: str | None = None) -> tuple[str, str]:
        """The preset selector and the Decoding radio once `checkpoint` is chosen, from one lookup of it: the preset
        it was trained on (else `current`), and a plain greedy choice switched to the model's own (the paper presets
        piece by piece, the demo's adapters best whole word); any other choice stays. PrivateRun for someone else's
        private run."""
        if not checkpoint or checkpoint == NO_CHECKPOINT:
            preset, own = current, preset_config(current).decoding.word_choice
        else:
            info = resolve_checkpoint(checkpoint, self.root)
            check_readable(self._run_of(info.name), owner)
            preset, own = (info.preset if info.preset in self.presets() else current), info.word_choice
        return preset, (greedy_mode(own) if mode in (GREEDY_MODE, BEST_WORD_MODE) else mode)

    def greedy_mode(self, checkpoint: str | None, preset: str) -> str:
        """The Decoding radio's greedy choice that is the model's own: the checkpoint's config (the demo's
        adapters: best whole word), else the preset's (the paper presets: piece by piece)."""
        if checkpoint and checkpoint != NO_CHECKPOINT:
            return greedy_mode(resolve_checkpoint(checkpoint, self.root).word_choice)
        return greedy_mode(preset_config(preset).decoding.word_choice)

    def checkpoint_path(self, checkpoint: str | None) -> Path | None:
        if not checkpoint or checkpoint == NO_CHECKPOINT:
            return None
        return resolve_checkpoint(checkpoint, self.root).path

    # ------------------------------------------------------------------ predict

    def predict(self, prefix, preset, checkpoint, mode="greedy", temperature=None, top_k=None, top_p=None,
                seed=None, *, owner: str | None = None) -> PredictOutcome:
        """One prediction; a decoding control left as None keeps tall_model's default (`Decoding()`). `owner`: who
        asks (a private run is refused to anyone else; None: a trusted local call)."""
        decoding = parse_decoding(mode, temperature, top_k, top_p, seed)
        self.check_readable(checkpoint, owner)
        loaded = self.cache.get(preset, checkpoint)
        pred = run_prediction(loaded, prefix, decoding)
        view = render_prediction(pred, loaded.description, decoding.describe())
        self.trim()
        return PredictOutcome(pred, view, prediction_details(pred), attention_shape(pred, "bridge"),
                              attention_shape(pred, "decoder"))

    @staticmethod
    def attention(pred, which: str, layer, head, mean_over_heads: bool):
        return render_attention(pred, which, layer, head, mean_over_heads)

    # ------------------------------------------------------------------ analysis: attribution, export

    def attribution(self, state: AnalysisState | None, word=None, method="integrated_gradients", target="hebrew",
                    steps=DEFAULT_STEPS, until_complete=True) -> AttributionOutcome:
        """Why `word` (default: the predicted word; else one of the candidates), with the model that predicted it."""
        if state is None:
            raise ValueError("Predict a word first: attribution explains a stored prediction.")
        loaded = self.cache.get(state.preset, state.checkpoint)
        a = run_attribution(loaded.model, state.prediction, word, method, target, steps, until_complete)
        self.trim()
        new = dataclasses.replace(state, attribution=a)
        return AttributionOutcome(new, attribution_html(a), attribution_figure(a), a.as_dict())

    def figure(self, state: AnalysisState | None, which: str, bridge=(1, 1, True), decoder=(1, 1, True)):
        """The named figure of the stored analysis (as the tab shows it, with the attention selectors given)."""
        if state is None:
            raise ValueError("Predict a word first: there is no figure to export yet.")
        pred = state.prediction
        if which == "bridge-in attention":
            return render_attention(pred, "bridge", *bridge)[0]
        if which == "decoder attention":
            return render_attention(pred, "decoder", *decoder)[0]
        if which == "candidates":
            return render_prediction(pred).candidates
        if which == "attribution":
            if state.attribution is None:
                raise ValueError("No attribution yet: choose a word under “Why this word”.")
            return attribution_figure(state.attribution)
        if which == "logit lens":
            return lens_figure(pred.logit_lens)
        raise ValueError(f"Unknown figure {which!r}; choose one of {', '.join(FIGURES)}.")

    def export_figure(self, state, which: str, fmt: str, bridge=(1, 1, True), decoder=(1, 1, True)) -> Path:
        return export_figure(self.figure(state, which, bridge, decoder), fmt, self.export_dir, f"tall-{which}")

    def analysis_bundle(self, state: AnalysisState | None) -> Path:
        if state is None:
            raise ValueError("Predict a word first: there is no analysis to download yet.")
        return analysis_bundle(state, prediction_details(state.prediction), self.export_dir)

    # ------------------------------------------------------------------ batch

    def batch(self, path, preset, checkpoint, on_progress=None, *, owner: str | None = None) -> BatchOutcome:
        """The last word of every sentence of an uploaded file (the Train tab's ingestion and bad-file messages;
        at most evaluation.batch.MAX_APP_SENTENCES sentences)."""
        self.check_readable(checkpoint, owner)
        corpus, report = self.check_corpus(path)
        loaded = self.cache.get(preset, checkpoint)
        try:
            return run_batch(loaded.model, corpus.sentences, report, self.export_dir, on_progress)
        finally:
            self.trim()

    # ------------------------------------------------------------------ compare

    def compare(self, prefix, preset, checkpoint, mode="greedy", temperature=None, top_k=None, top_p=None,
                seed=None, *, owner: str | None = None) -> Comparison:
        decoding = parse_decoding(mode, temperature, top_k, top_p, seed)
        self.check_readable(checkpoint, owner)
        try:
            return compare(self.cache.get(preset, checkpoint), prefix, decoding, root=self.root)
        finally:
            self.trim()

    def compare_checkpoints(self, prefix, preset_a, checkpoint_a, preset_b, checkpoint_b,
                            steps=DEFAULT_STEPS, *, owner: str | None = None) -> CheckpointComparison:
        """Two checkpoints on one prefix (greedy): words, candidates, attributions, heatmaps, attribution difference."""
        self.check_readable(checkpoint_a, owner)
        self.check_readable(checkpoint_b, owner)
        return compare_checkpoints(self.cache.get(preset_a, checkpoint_a), self.cache.get(preset_b, checkpoint_b),
                                   prefix, int(steps or DEFAULT_STEPS))

    def results(self, checkpoint, owner: str | None = None):
        self.check_readable(checkpoint, owner)
        return results_table(self.checkpoint_path(checkpoint))

    # ------------------------------------------------------------------ train

    def check_corpus(self, path, max_sentences=None):
        """(corpus, report markdown); CorpusError / ValueError for a bad file."""
        corpus = preview_corpus(path, max_sentences=parse_max_sentences(max_sentences),
                                max_bytes=self.max_upload_bytes)
        return corpus, report_markdown(corpus.report)

    def train_config(self, run_name, preset, epochs=None, lr=None, batch_size=None, max_sentences=None,
                     eval_every=None, seed=None):
        """(run name, TrainConfig) of the Train form, for a preset this app offers; ValueError otherwise (a run
        name reserved by a shipped checkpoint included)."""
        if str(preset) not in self.presets():
            raise ValueError(f"Preset {preset!r} is not available here; choose one of {', '.join(self.presets())}.")
        return train_config_from_form(run_name, preset, epochs, lr, batch_size, max_sentences, eval_every, seed,
                                      root=self.root, options=self.train_options)

    def check_signed_in(self, owner: str | None, action: str) -> None:
        """SignInRequired when the app is in OAuth-only mode and `owner` is only a browser session (None: a trusted
        local call)."""
        if self.auth_mode == "oauth" and owner is not None and not signed_in(owner):
            raise SignInRequired(f"Sign in with Hugging Face (the button at the top of the page) to {action}: on this "
                                 "app only signed-in users can start, resume, stop, download, push or mark runs "
                                 "private. Predict, Compare and Batch work without signing in.")

    def train_start(self, path, run_name, preset, epochs=None, lr=None, batch_size=None, max_sentences=None,
                    eval_every=None, seed=None, *, resume: bool = False, owner: str | None = None):
        """Start (or resume) a run from the Train form: the one plain function behind the form and the API.
        `owner` (owners.owner_key) is the visitor: a resume must be theirs, a new run becomes theirs."""
        self.check_signed_in(owner, "resume a run" if resume else "start a run")
        name, config = self.train_config(run_name, preset, epochs, lr, batch_size, max_sentences, eval_every, seed)
        config = dataclasses.replace(config, max_steps=min(config.max_steps or self.max_run_steps, self.max_run_steps))
        if self.jobs.is_running():  # say so before reading the corpus again
            return self.jobs.start(config, None, resume=resume)
        out_dir = Path(config.out)
        if resume and out_dir.is_dir():
            check_owner(out_dir, owner, "resume")
        if not resume and (out_dir / "last").exists():
            raise ValueError(f"Run {name!r} already exists (checkpoints/{name}): press Resume to continue it, or "
                             "choose another run name.")
        sentences = None
        if path:
            corpus, _ = self.check_corpus(path, config.max_sentences)
            sentences, config = corpus.sentences, dataclasses.replace(config, data=str(path))
        elif not resume:
            raise ValueError("No corpus file: upload a .txt, .csv, .tsv or .jsonl file of Hebrew sentences.")
        if not resume:
            make_room(self.root, self.quota_bytes, keep={name})
            if out_dir.is_dir() and not (out_dir / "last").exists():  # a run that never saved: someone else's?
                check_owner(out_dir, owner, "reuse the name of")
        return self.jobs.start(config, sentences, resume=resume, owner=owner)

    def train_stop(self, owner: str | None = None):
        self.check_signed_in(owner, "stop a run")
        return self.jobs.stop(owner)

    def train_snapshot(self):
        return self.jobs.snapshot()

    @staticmethod
    def hub_push_available() -> bool:
        """The Train tab offers "Push to the Hub" only when huggingface_hub has a token (HF_TOKEN or a login)."""
        return hub_token_configured()

    def push_run(self, run_name: str, repo_id: str, owner: str | None = None) -> str:
        """Upload a run's best checkpoint (else its last) to a Hub repo; a Markdown line saying where it went.
        Only the run's owner may push it (as with Stop, Resume and Download)."""
        self.check_signed_in(owner, "push a run to the Hub")
        directory = run_directory(run_name, self.root)
        if directory.is_dir():
            check_owner(directory, owner, "push")
        checkpoint = next((directory / sub for sub in ("best", "last") if (directory / sub / "config.json").is_file()),
                          None)
        if checkpoint is None:
            raise ValueError(f"Run {directory.name!r} has no saved checkpoint yet.")
        repo_id = (repo_id or "").strip()
        if not looks_like_repo_id(repo_id):
            raise ValueError(f"{repo_id!r} is not a Hub repo id; write it as owner/name, e.g. you/tall-adapters.")
        try:
            url = push_to_hub(checkpoint, repo_id, api=self.hub_api)
        except HfHubHTTPError as err:
            raise ValueError(f"The upload to {repo_id} failed: {err}. The run is kept; try again.") from err
        return f"Pushed `{directory.name}/{checkpoint.name}` to [{repo_id}](https://huggingface.co/{repo_id}) ({url})."

    def set_run_private(self, run_name: str, private: bool, owner: str | None = None) -> str:
        """Mark the named run private (only its owner may predict with it, compare or evaluate it) or public again;
        a Markdown line saying so. Only the run's owner may."""
        self.check_signed_in(owner, "mark a run private or public")
        directory = run_directory(run_name, self.root)
        set_private(directory, owner, bool(private))
        if private:
            return f"Run {directory.name} is private: only you can predict with it, compare or evaluate it."
        return f"Run {directory.name} is public: everybody can predict with its checkpoints."

    def run_zip(self, run_name: str, owner: str | None = None) -> Path:
        self.check_signed_in(owner, "download a run")
        directory = run_directory(run_name, self.root)
        if not directory.is_dir():
            raise ValueError(f"Run {directory.name!r} has no saved checkpoint yet.")
        check_owner(directory, owner, "download")
        return zip_checkpoint(directory, root=self.root)

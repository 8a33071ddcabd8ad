"""The Gradio app (`app.py` holds its module-level `demo`) and the plain, testable functions behind it.

Plain functions (no Gradio):
    paths       checkpoint discovery by sanitized name, run names (shipped checkpoint folders are reserved), zip export
    models      the model cache (tall_model.load; backbones shared by content fingerprint) and the default preset
    predicting  decoding choice (a tall_model Decoding), one prediction, rendering a stored prediction for the UI
    figures     Plotly figures: candidate bars, attention heatmaps (bidi-safe labels), training curves
    formatting  HTML for the predicted word and the pipeline strip, tables
    examples    example prefixes (the demo's test verses, else built-in verses)
    compare     one prefix through every available approach (baselines.registry); a checkpoint's last evaluation
    jobs        the Train form as a TrainConfig; one background training job at a time: start, stop, resume, progress
    owners      who owns a run (session, --auth or Hugging Face user), private runs, the runs' disk quota
    service     AppService: every callback's work, as plain methods

The page (Gradio):
    ui           what the tabs share: title, CSS, error boxes, the model and decoding controls
    tab_predict  the Predict tab · tab_compare  the Compare tab · tab_train  the Train tab
    blocks       build_app (the tabs around one AppService), launch, serving (for tests and scripts)
    sessions     dropping the sessions Gradio keeps after their visitors are gone
    screenshots  `python -m tall_app.screenshots`: the README's screenshots, taken in chromium
"""

"""Plain, testable functions behind the Gradio app (`app.py`): no Gradio import here except in `app.py`.

    paths       checkpoint discovery by sanitized name, run-name sanitizing, zip export
    models      the model cache (backbones shared per preset, one model per checkpoint) and the default preset
    predicting  decoding settings, one prediction, rendering a stored prediction for the UI
    figures     Plotly figures: candidate bars, attention heatmaps (bidi-safe labels), training curves
    formatting  HTML for the predicted word and the pipeline strip, tables
    examples    example prefixes (the demo's test verses, else built-in verses)
    compare     one prefix through every available approach; the last evaluation results of a checkpoint
    jobs        one background training job at a time: start, stop, resume, progress
"""

"""The he→en translation *text* through CTranslate2, an opt-in engine (`load(..., translation_engine="ctranslate2")`,
`--translation-engine ctranslate2`). Stage 1 still reads the transformers encoder's states; only the English that
stage 3 reads comes from here.

The model is converted once with ctranslate2's own converter into a folder named by the translator's content
fingerprint (tall_model.fingerprint), so a changed translator is converted again. CTranslate2's stock Marian
conversion assumes OPUS-MT's zero `<pad>` embedding (it starts the decoder from a zero vector and drops `<pad>` from
the vocabulary); translators trained here (the demo's) have a non-zero one, so the conversion keeps `<pad>` as the
decoder's start token, as transformers does, and `<pad>` is suppressed instead (generation_config.bad_words_ids).
It is not bitwise the same computation as transformers' generate (other kernels, float sums in another order), so
a translation can differ where two pieces are nearly tied: the engine stays opt-in (benchmarks/RESULTS.md has the
agreement measured on the demo's 731 test prefixes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import ctranslate2
import ctranslate2.converters.transformers as ct2_transformers
import torch
from ctranslate2.converters import TransformersConverter

from .batching import source_ids
from .config import REPO_ROOT
from .translate import LENGTH_RATIO, LENGTH_SLACK

DEFAULT_CT2_CACHE = REPO_ROOT / ".cache" / "ctranslate2"
_CONVERTING = threading.Lock()


class _MarianKeepingPad(ct2_transformers.MarianMTLoader):
    """The Marian conversion without the zero-`<pad>`-embedding assumption (see the module docstring)."""

    def get_model_spec(self, model):
        model.config.normalize_before = False
        model.config.normalize_embedding = False
        return ct2_transformers.BartLoader.get_model_spec(self, model)

    def set_config(self, config, model, tokenizer):
        config.eos_token = tokenizer.eos_token
        config.unk_token = tokenizer.unk_token
        config.decoder_start_token = tokenizer.pad_token

    def set_decoder(self, spec, decoder):
        ct2_transformers.BartLoader.set_decoder(self, spec, decoder)

    def get_vocabulary(self, model, tokenizer):
        return ct2_transformers.BartLoader.get_vocabulary(self, model, tokenizer)


def converted(folder: str | Path, fingerprint: str, cache: str | Path = DEFAULT_CT2_CACHE,
              quantization: str | None = None) -> Path:
    """The CTranslate2 copy of the Marian model in `folder`, converted on first use (a few seconds; atomically:
    a crash leaves no half-written folder). `quantization="int8"` stores int8 weights (a quarter of the file to
    read at startup)."""
    key = f"{fingerprint}|ct2-{ctranslate2.__version__}" + (f"|{quantization}" if quantization else "")
    target = Path(cache) / hashlib.sha256(key.encode()).hexdigest()[:24]
    with _CONVERTING:
        if (target / "model.bin").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
        loaders = ct2_transformers._MODEL_LOADERS  # the converter's registry; restored right after
        stock = loaders["MarianConfig"]
        loaders["MarianConfig"] = _MarianKeepingPad()
        try:
            TransformersConverter(str(folder)).convert(str(staging / "model"), quantization=quantization, force=True)
            os.replace(staging / "model", target)
        finally:
            loaders["MarianConfig"] = stock
            shutil.rmtree(staging, ignore_errors=True)
        return target


class Ct2Translator:
    """One converted translator, with the generation settings transformers' generate would use."""

    def __init__(self, model, cache: str | Path = DEFAULT_CT2_CACHE) -> None:
        folder = model.backbones.folders["lr_hr_translator"]
        # int8 when the backbones are quantised (tall_model.quantize): the same choice for every frozen part
        compute_type = "int8" if getattr(model.backbones, "quantized", None) == "int8" else "float32"
        path = converted(folder, model.backbones.fingerprints()["lr_hr_translator"], cache,
                         "int8" if compute_type == "int8" else None)
        self.translator = ctranslate2.Translator(str(path), device="cpu", compute_type=compute_type,
                                                 intra_threads=torch.get_num_threads())
        self.tokenizer = model.backbones.lr_hr_tokenizer
        generation = model.lr_hr.generation_config
        self.options = {"no_repeat_ngram_size": generation.no_repeat_ngram_size or 0,
                        "repetition_penalty": generation.repetition_penalty or 1.0,
                        "suppress_sequences": [self.tokenizer.convert_ids_to_tokens(ids)
                                               for ids in generation.bad_words_ids or []] or None}

    def translate(self, model, texts: list[str], decoding, batch_size: int = 16) -> list[str]:
        """As tall_model.translate.translate: the same source pieces, beams and per-row length caps."""
        rows = [source_ids(model, t)[0] for t in texts]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out: list[str] = [""] * len(rows)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            caps = [min(decoding.translation_max_new_tokens, int(LENGTH_RATIO * len(rows[i])) + LENGTH_SLACK)
                    for i in chunk]
            results = self.translator.translate_batch(
                [self.tokenizer.convert_ids_to_tokens(rows[i]) for i in chunk], beam_size=decoding.translation_beams,
                max_decoding_length=max(caps), **self.options)
            for i, cap, result in zip(chunk, caps, results):
                ids = self.tokenizer.convert_tokens_to_ids(result.hypotheses[0][:cap])
                out[i] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return out

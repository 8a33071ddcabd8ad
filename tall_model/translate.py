"""The frozen LR→HR translation of a prefix (stage 3's queries are the LLM embeddings of this English)."""

from __future__ import annotations

import torch

from .batching import pad, source_ids

# A translation longer than LENGTH_RATIO × its source + LENGTH_SLACK pieces is a repetition loop, not a
# translation (Hebrew→English runs ~1.3-1.7 pieces per source piece); with length-sorted batches, the cap keeps one
# looping row from running its whole batch to the absolute limit.
LENGTH_RATIO, LENGTH_SLACK = 2.5, 8


@torch.no_grad()
def generate_sorted(model, rows: list[list[int]], pad_id: int, *, batch_size: int, num_beams: int,
                    max_new_tokens: int) -> list[torch.Tensor]:
    """Generated ids of every source row, in input order. Rows are batched by length (little padding); each row's
    new tokens are capped at min(max_new_tokens, LENGTH_RATIO × its length + LENGTH_SLACK), the same whatever
    its batch (a batch runs to its longest row's cap, then each row is cut to its own)."""
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out: list[torch.Tensor | None] = [None] * len(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, mask = pad([rows[i] for i in chunk], pad_id)
        caps = [min(max_new_tokens, int(LENGTH_RATIO * len(rows[i])) + LENGTH_SLACK) for i in chunk]
        generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), num_beams=num_beams,
                                   max_new_tokens=max(caps))
        for i, cap, row in zip(chunk, caps, generated):
            out[i] = row[:1 + cap]  # the decoder start token, then at most `cap` new tokens
    return out


def translate(model, texts: list[str], batch_size: int = 16, decoding=None) -> list[str]:
    """Translate Hebrew texts to English with the full he→en model: beams and length from `decoding`
    (default: model.config.decoding)."""
    if getattr(model, "translation_released", False):
        raise RuntimeError("this model's translation layers were released to save memory (training on cached "
                           "translations); pass translations=… or load the model again to translate")
    decoding, tok = decoding or model.config.decoding, model.backbones.lr_hr_tokenizer
    if engine_of(model) == "ctranslate2":
        return ctranslate2_translator(model).translate(model, texts, decoding, batch_size)
    rows = [source_ids(model, t)[0] for t in texts]
    generated = generate_sorted(model.lr_hr, rows, model.lr_hr.config.pad_token_id, batch_size=batch_size,
                                num_beams=decoding.translation_beams,
                                max_new_tokens=decoding.translation_max_new_tokens)
    return [tok.decode(g, skip_special_tokens=True).strip() for g in generated]


ENGINES = ("transformers", "ctranslate2")


def check_engine(name: str) -> str:
    """`name` if it is one of ENGINES, else a ValueError naming them."""
    if name not in ENGINES:
        raise ValueError(f"translation_engine must be one of {', '.join(ENGINES)}; got {name!r}")
    return name


def engine_of(model) -> str:
    """Which engine writes the he→en text: transformers (default), or the opt-in ctranslate2."""
    return getattr(model, "translation_engine", "transformers")


def ctranslate2_translator(model):
    """The model's CTranslate2 translator, converted and loaded on first use."""
    if getattr(model, "_ct2_translator", None) is None:
        from .translate_ct2 import Ct2Translator  # noqa: PLC0415 -- the opt-in engine loads only when chosen

        model._ct2_translator = Ct2Translator(model)
    return model._ct2_translator


def translator_id(model) -> str:
    """Key for translation caches: which he→en translator (by content, see tall_model.fingerprint), with which
    decoding settings, through which engine, quantised or not (fp32 transformers' keys are unchanged)."""
    key = decoding_id(model.backbones.fingerprints()["lr_hr_translator"], model.config.decoding)
    if engine_of(model) != "transformers":
        key += f"|engine={engine_of(model)}"
    quantized = getattr(model.backbones, "quantized", None)
    return f"{key}|quantized={quantized}" if quantized else key


def decoding_id(fingerprint: str, decoding) -> str:
    """A translator's fingerprint with the decoding settings of generate_sorted: the cache key of either
    direction's translations."""
    return (f"{fingerprint}|beams={decoding.translation_beams}|max_new={decoding.translation_max_new_tokens}"
            f"|cap={LENGTH_RATIO}x+{LENGTH_SLACK}")

"""The frozen LR→HR translation of a prefix (stage 3's queries are the LLM embeddings of this English)."""

from __future__ import annotations

import torch

from .batching import source_ids, pad


@torch.no_grad()
def translate(model, texts: list[str], batch_size: int = 16) -> list[str]:
    """Translate Hebrew texts to English with the full he→en model (greedy or beam, per the config)."""
    if getattr(model, "translation_released", False):
        raise RuntimeError("this model's translation layers were released to save memory (training on cached "
                           "translations); pass translations=… or load the model again to translate")
    cfg, tok = model.config, model.tokenizers.lr_hr_tokenizer
    out: list[str] = []
    for start in range(0, len(texts), batch_size):
        rows = [source_ids(model, t)[0] for t in texts[start:start + batch_size]]
        ids, mask = pad(rows, model.lr_hr.config.pad_token_id)
        generated = model.lr_hr.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                         num_beams=cfg.translation_beams,
                                         max_new_tokens=cfg.translation_max_new_tokens)
        out.extend(t.strip() for t in tok.batch_decode(generated, skip_special_tokens=True))
    return out


def translator_id(model) -> str:
    """Key for translation caches: which translator, with which decoding settings."""
    cfg = model.config
    return f"{cfg.lr_hr_translator}|beams={cfg.translation_beams}|max_new={cfg.translation_max_new_tokens}"

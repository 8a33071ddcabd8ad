"""The shipped form of a demo translator: fp16 weights, its tokenizer and a generation config, in
save_pretrained format (checkpoints/demo/{he-en,en-he})."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from transformers import MarianMTModel

from demo_build.marian_tokenizer import load_marian_tokenizer
from demo_build.scoring import UNGUARDED


def export_fp16(src_dir: Path, out_dir: Path, eager: bool = False, gen_overrides: dict | None = None) -> None:
    """save_pretrained in fp16 (+ tokenizer) into out_dir, replacing everything there but its README.md."""
    model = MarianMTModel.from_pretrained(str(src_dir), dtype=torch.float32).half()
    if eager:
        model.config._attn_implementation = "eager"
        model.config.attn_implementation = "eager"
    gc = model.generation_config
    gc.max_length = 256
    for key, value in UNGUARDED.items():  # plain greedy, whatever the source carried (a warm start's chosen beam)
        setattr(gc, key, value)
    gc.bad_words_ids = [[model.config.pad_token_id]]
    for key, value in (gen_overrides or {}).items():
        setattr(gc, key, value)
    if out_dir.exists():
        for f in out_dir.iterdir():
            if f.name != "README.md":
                f.unlink() if f.is_file() else shutil.rmtree(f)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    load_marian_tokenizer(src_dir).save_pretrained(str(out_dir))
    if eager:  # make sure the saved config says eager, whatever the transformers version does on save
        cfg_path = out_dir / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["attn_implementation"] = "eager"
        cfg["_attn_implementation"] = "eager"
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")

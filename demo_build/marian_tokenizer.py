"""The demo translators' tokenizer: one joint Hebrew+English unigram SentencePiece model shared by both directions,
saved as a MarianTokenizer directory (source.spm == target.spm, vocab.json).

6,000 entries (incl. </s>, <unk>, <pad>); unigram (not BPE) because it segments Hebrew prefixes (ו/ה/ב/ל...) more
consistently, and 6k instead of 8k keeps each Hebrew piece frequent (en->he is the slow direction) and saves 0.5 MB
per model."""

from __future__ import annotations

import random
from pathlib import Path

import sentencepiece as spm
from transformers import MarianTokenizer

from demo_build.data import VersePair
from tall_model.tiny import write_marian_tokenizer

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
VOCAB_SIZE = 6000


def train_marian_tokenizer(train: list[VersePair], workdir: Path, out_dir: Path, seed: int,
                           vocab_size: int = VOCAB_SIZE) -> Path:
    """Joint he+en unigram SentencePiece -> MarianTokenizer directory (source.spm == target.spm, vocab.json)."""
    spm.set_random_generator_seed(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    text = workdir / "spm_train.txt"
    lines = [p.he for p in train] + [p.en for p in train]
    random.Random(seed).shuffle(lines)
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prefix = workdir / "joint"
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), vocab_size=vocab_size - 2, model_type="unigram",
        character_coverage=1.0, normalization_rule_name="identity", unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
        unk_piece=UNK, input_sentence_size=0, shuffle_input_sentence=False, seed_sentencepiece_size=200000,
        num_threads=2, minloglevel=2,
    )
    vocab = write_marian_tokenizer(Path(f"{prefix}.model"), out_dir, "he", "en", 256)
    assert len(vocab) == vocab_size, len(vocab)
    return out_dir


def load_marian_tokenizer(path) -> MarianTokenizer:
    return MarianTokenizer.from_pretrained(str(path))


def word_start_fraction(tok, texts: list[str]) -> float:
    """Pieces starting with '▁' per whitespace-separated word (1.0 when every word starts a new piece)."""
    words = starts = 0
    for text in texts:
        words += len(text.split())
        starts += sum(1 for piece in tok.tokenize(text) if piece.startswith("▁"))
    return starts / max(1, words)

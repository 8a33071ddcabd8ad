"""A backbone identified by its content, not by the path that reached it.

The same folder reached as `checkpoints/demo/he-en`, as an absolute path, or after a move gets the same
fingerprint; so does a hub snapshot in any cache. It keys the translation cache and checks that a checkpoint's
adapters meet the backbones they were trained on.

What is hashed: config.json (parsed, without the fields that only say who wrote it), every tokenizer file, and for
each weight file its size, its first MiB (a safetensors header: every tensor's name, dtype, shape and offset) and
32 evenly spaced 4 KiB samples of the rest, so retrained weights of the same shapes differ too while a 1 GB model
costs a few milliseconds, not a full read.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "source.spm",
                   "target.spm", "spiece.model", "tokenizer.model", "special_tokens_map.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
_IGNORED_CONFIG_KEYS = ("transformers_version", "_name_or_path", "dtype", "torch_dtype")
HEAD_BYTES, SAMPLE_BYTES, SAMPLES = 1 << 20, 4096, 32


def fingerprint(directory: str | Path) -> str:
    """`sha256:` and 16 hex digits for a model folder in save_pretrained format (a hub snapshot included)."""
    directory = Path(directory).resolve()
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir()) if p.is_file())
    return _fingerprint(str(directory), stamp)


@lru_cache(maxsize=64)
def _fingerprint(directory: str, stamp: tuple) -> str:  # `stamp` re-hashes a folder whose files changed
    folder = Path(directory)
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.is_file():
        values = json.loads(config.read_text(encoding="utf-8"))
        for key in _IGNORED_CONFIG_KEYS:
            values.pop(key, None)
        digest.update(b"config\0" + json.dumps(values, sort_keys=True).encode("utf-8"))
    for name in TOKENIZER_FILES:
        path = folder / name
        if path.is_file():
            digest.update(f"{name}\0".encode() + path.read_bytes())
    for path in sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()):
        digest.update(f"{path.name}\0".encode() + _weight_sample(path))
    return "sha256:" + digest.hexdigest()[:16]


def _weight_sample(path: Path) -> bytes:
    size = path.stat().st_size
    parts = [size.to_bytes(8, "little")]
    with path.open("rb") as fh:
        parts.append(fh.read(HEAD_BYTES))
        for i in range(SAMPLES):
            offset = HEAD_BYTES + (size - HEAD_BYTES - SAMPLE_BYTES) * i // max(SAMPLES - 1, 1)
            if offset < HEAD_BYTES or offset >= size:
                continue
            fh.seek(offset)
            parts.append(fh.read(SAMPLE_BYTES))
    return b"".join(parts)

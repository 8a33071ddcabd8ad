"""An optional correction of the greedy word's first piece by the model's own prior (`Decoding.prior`): a departure
from the paper.

A small TALL leans on a few words whatever the prefix (the demo's greedy word was במה for 4.5 % of the test verses).
Its prior, the first-piece distribution averaged over training prefixes P̄(piece), says which. With a prior the
first piece is chosen by log P(piece | prefix) − w · log P̄(piece) (w = `Decoding.prior_weight`; domain-conditional
PMI, Holtzman et al. 2021, "Surface Form Competition"); the next pieces, the probabilities shown and the candidate
list stay the model's own. w = 0, or no prior, is the paper's greedy. A prior file may carry the w chosen for it on
dev data (the demo build's does); without one, and unless the decoding names a w, w = DEFAULT_WEIGHT.

A prior belongs to one set of adapters on one en→he decoder: its file records both (a signature of the adapters'
tensors and the decoder's fingerprint) and loading refuses another model.

    python -m tall_model.prior CHECKPOINT --data corpus.txt --out prior.safetensors [--limit 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import demo_dir, repo_file
from .fingerprint import fingerprint
from .load import load
from .text import has_hebrew
from .translate import translate

FORMAT = "tall-first-piece-prior"
KEY = "first_piece_prior"
PRIOR_FILE = "first_piece_prior.safetensors"  # a checkpoint's prior, in its folder (the demo's: beside tall/)
DEFAULT_WEIGHT = 0.5


class PriorError(ValueError):
    """The prior file cannot be used (missing, corrupt, or estimated for another model)."""


def adapter_signature(model) -> str:
    """Identifies the trainable tensors cheaply: each one's name, shape and first and last values (the bytes as
    stored, so the same on every machine; retrained adapters differ in them)."""
    digest = hashlib.sha256()
    for name, value in sorted(model.trainable_state_dict().items()):
        flat = value.detach().reshape(-1)
        digest.update(f"{name}{tuple(value.shape)}".encode())
        digest.update(torch.cat([flat[:16], flat[-16:]]).float().cpu().numpy().tobytes())  # 32 values, not the tensor
    return digest.hexdigest()[:16]


@torch.no_grad()
def estimate_prior(model, prefixes: list[str], translations: list[str], batch_size: int = 16) -> torch.Tensor:
    """The mean first-piece distribution (full vocabulary, temperature 1) over `prefixes` and their English."""
    from .predict import first_piece_logits  # noqa: PLC0415 -- predict imports this module

    total = None
    for i in range(0, len(prefixes), batch_size):
        probs = first_piece_logits(model, prefixes[i:i + batch_size], translations[i:i + batch_size]).softmax(-1)
        total = probs.sum(0) if total is None else total + probs.sum(0)
    if total is None:
        raise PriorError("a prior needs at least one prefix")
    return (total / len(prefixes)).cpu()


def save_prior(model, prior: torch.Tensor, path: str | Path, prefixes: int, source: str,
               weight: float | None = None) -> Path:
    """Write the prior of `model` (and, if chosen on dev data, its weight w) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "adapters": adapter_signature(model), "decoder": _decoder_print(model),
            "prefixes": str(prefixes), "source": source, **({"weight": repr(float(weight))} if weight else {})}
    save_file({KEY: prior.float().contiguous()}, str(path), metadata=meta)
    return path


def log_prior(model, path: str | Path) -> tuple[torch.Tensor, float]:
    """log P̄ over the en→he vocabulary, on the model's device, and the file's w (DEFAULT_WEIGHT if it has none);
    PriorError if the file is not this model's."""
    file = resolve_prior(path).resolve()
    prior, meta, weight = _read(str(file), file.stat().st_mtime_ns)
    if meta.get("decoder") != _decoder_print(model) or meta.get("adapters") != adapter_signature(model):
        raise PriorError(f"prior {file} was estimated for other adapters or another en→he decoder; estimate one "
                         f"for this model: python -m tall_model.prior CHECKPOINT --data CORPUS --out "
                         f"CHECKPOINT/{PRIOR_FILE} (the app then uses it for that checkpoint)")
    vocab = model.hr_lr.lm_head.weight.shape[0]
    if prior.shape != (vocab,):
        raise PriorError(f"prior {file} covers {tuple(prior.shape)} pieces, but this en→he decoder has {vocab}")
    return prior.clamp_min(1e-12).log().to(model.device), weight


def demo_prior() -> Path:
    """The shipped demo adapters' prior (written by `python -m demo_build --stages prior`)."""
    return demo_dir() / PRIOR_FILE


def resolve_prior(path: str | Path) -> Path:
    file = repo_file(path)
    if file is None:
        raise PriorError(f"prior {path} not found (written by python -m tall_model.prior)")
    return file


@lru_cache(maxsize=4)
def _read(file: str, mtime_ns: int) -> tuple[torch.Tensor, dict, float]:
    try:
        with safe_open(file, "pt") as handle:
            meta = handle.metadata() or {}
            prior = handle.get_tensor(KEY) if KEY in handle.keys() else None
    except (SafetensorError, OSError) as err:
        raise PriorError(f"prior {file} is not a readable safetensors file: {err}") from err
    if meta.get("format") != FORMAT or prior is None:
        raise PriorError(f"{file} is not a TALL first-piece prior (format {FORMAT!r} expected)")
    if prior.dim() != 1 or not bool(torch.isfinite(prior).all()) or bool((prior < 0).any()):
        raise PriorError(f"prior {file} is not a probability vector (negative, NaN or infinite values)")
    try:
        weight = float(meta.get("weight", DEFAULT_WEIGHT))
    except ValueError:
        weight = math.nan
    if not 0 <= weight <= 4:
        raise PriorError(f"prior {file} carries an unusable weight {meta.get('weight')!r} (0 to 4 expected)")
    return prior, meta, weight


def _decoder_print(model) -> str:
    return fingerprint(model.backbones.folders["hr_lr_translator"])  # only the en→he decoder's, on every predict


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tall_model.prior", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="adapter checkpoint directory or preset")
    ap.add_argument("--data", required=True, help="training Hebrew, one sentence a line (UTF-8)")
    ap.add_argument("--out", required=True, help="the prior file to write (.safetensors)")
    ap.add_argument("--limit", type=int, default=2000, help="sentences drawn (seeded) from --data; default 2000")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        lines = Path(args.data).read_text(encoding="utf-8").splitlines()
        model = load(args.checkpoint)
    except UnicodeDecodeError as err:
        raise SystemExit(f"error: {args.data} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except (OSError, ValueError) as err:  # a missing file or checkpoint, a mismatched one: one line, no traceback
        raise SystemExit(f"error: {err}") from None
    prefixes = [" ".join(line.split()[:-1]) for line in lines if len(line.split()) > 1]
    prefixes = [p for p in prefixes if has_hebrew(p)]
    if not prefixes:
        raise SystemExit(f"error: {args.data}: no sentence of two or more words with Hebrew in it")
    random.Random(args.seed).shuffle(prefixes)
    prefixes = prefixes[:args.limit]
    prior = estimate_prior(model, prefixes, translate(model, prefixes))
    out = save_prior(model, prior, args.out, len(prefixes), f"{Path(args.data).name}, seed {args.seed}")
    print(f"wrote {out}: the mean first-piece distribution over {len(prefixes)} prefixes")


if __name__ == "__main__":
    main()

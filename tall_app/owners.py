"""Who may act on a run, and how much disk runs may take, when strangers share one app (a public Space).

A run started from the app records its owner in `checkpoints/<run>/.owner.json` (hidden, so never in the zip): the
signed-in user (`--auth`, or Hugging Face OAuth) or else the browser session, stored as a salted hash. Stop, Resume
and Download act only on your own runs. Everybody may still *predict* with any listed checkpoint: shared checkpoints
are the point of a demo.

Runs share a disk quota: before a new run starts, runs with no owner (made outside the app, or left from older
versions), oldest first and never the running one nor a shipped checkpoint, are removed until the runs fit; if
owned runs alone exceed the quota, the start is refused with a message that says so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tall_data.files import write_json

from .paths import SHIPPED_CHECKPOINTS

OWNER_FILE = ".owner.json"
_SALT = b"tall-app-owner-v1"


class NotYourRun(ValueError):
    """Stop / Resume / Download of a run that belongs to someone else."""


class QuotaError(ValueError):
    """The runs' disk quota is full with runs that have owners."""


def owner_key(username: str | None, session: str | None) -> str | None:
    """The owner of a request: the signed-in user if any, else the browser session; None for neither (a local call
    from Python, which is trusted)."""
    if username:
        return f"user:{username}"
    return f"session:{session}" if session else None


def _digest(owner: str) -> str:
    return hashlib.sha256(_SALT + owner.encode("utf-8")).hexdigest()


def claim(run_dir: Path, owner: str | None) -> None:
    """Record `owner` as the owner of `run_dir` (created if needed); a local call (None) leaves it unowned."""
    if owner is None:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / OWNER_FILE, {"owner": _digest(owner), "created": time.time()})


def recorded_owner(run_dir: Path) -> str | None:
    try:
        data = json.loads((run_dir / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("owner") if isinstance(data, dict) and isinstance(data.get("owner"), str) else None


def is_owner(run_dir: Path, owner: str | None) -> bool:
    """A local call (owner None) may do anything; a visitor only what they own."""
    return owner is None or recorded_owner(run_dir) == _digest(owner)


def check_owner(run_dir: Path, owner: str | None, action: str) -> None:
    if not is_owner(run_dir, owner):
        raise NotYourRun(f"Run {run_dir.name!r} was started by someone else: you can {action} only your own runs. "
                         "Its checkpoints stay available for prediction in the Predict tab.")


@dataclass(frozen=True)
class RunUsage:
    path: Path
    size: int
    mtime: float
    owned: bool


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # vanished while we looked (a save swapping folders)
            continue
    return total


def run_usage(root: Path) -> list[RunUsage]:
    """Every run folder under `root` (shipped checkpoints excluded), oldest first."""
    if not root.is_dir():
        return []
    runs = [RunUsage(p, _size(p), p.stat().st_mtime, recorded_owner(p) is not None)
            for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
            and p.name not in SHIPPED_CHECKPOINTS]
    return sorted(runs, key=lambda r: r.mtime)


def make_room(root: Path, quota_bytes: int, keep: set[str]) -> list[str]:
    """Remove unowned runs (oldest first, never those named in `keep`) until the runs fit in `quota_bytes`; the
    names removed. QuotaError when owned runs alone are over the quota."""
    runs = run_usage(root)
    used = sum(r.size for r in runs)
    removed = []
    for run in runs:
        if used <= quota_bytes:
            break
        if run.owned or run.path.name in keep:
            continue
        shutil.rmtree(run.path, ignore_errors=True)
        used -= run.size
        removed.append(run.path.name)
    if used > quota_bytes:
        raise QuotaError(f"The disk space for training runs is full ({used / 1e6:,.1f} MB used, the quota is "
                         f"{quota_bytes / 1e6:,.1f} MB) and every remaining run belongs to someone. Download what "
                         "you need and try again later, or ask the Space's owner to raise the quota.")
    return removed

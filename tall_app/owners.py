"""Who may act on a run, and how much disk runs may take, when strangers share one app (a public Space).

A run started from the app records its owner in `checkpoints/<run>/.owner.json` (hidden, so never in the zip): the
signed-in user (`--auth`, or Hugging Face OAuth) or else the browser session, stored as a salted hash. Stop, Resume,
Download and Push act only on your own runs. Everybody may still *predict* with any listed checkpoint (shared
checkpoints are the point of a demo) unless its owner marked the run private (`set_private`): a private run is then
listed and usable only for its owner, and naming it anyway is refused with `PrivateRun`. Shipped checkpoints and runs
with no owner are always public.

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


class SignInRequired(ValueError):
    """A Train action without signing in, when the app runs in OAuth-only mode."""


class PrivateRun(ValueError):
    """A prediction, comparison or evaluation with a run whose owner marked it private."""


class QuotaError(ValueError):
    """The runs' disk quota is full with runs that have owners."""


def owner_key(username: str | None, session: str | None, hf_user: str | None = None) -> str | None:
    """The owner of a request: the Hugging Face user signed in with the Space's login button (OAuth), else the
    `--auth` user, else the browser session; None for none of them (a local call from Python, which is trusted)."""
    if hf_user:
        return f"hf:{hf_user}"
    if username:
        return f"user:{username}"
    return f"session:{session}" if session else None


def signed_in(owner: str | None) -> bool:
    """Whether the owner is a signed-in person (OAuth or --auth), not only a browser session."""
    return owner is not None and not owner.startswith("session:")


def _digest(owner: str) -> str:
    return hashlib.sha256(_SALT + owner.encode("utf-8")).hexdigest()


def claim(run_dir: Path, owner: str | None) -> None:
    """Record `owner` as the owner of `run_dir` (created if needed); a local call (None) leaves it unowned."""
    if owner is None:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / OWNER_FILE, {"owner": _digest(owner), "created": time.time()})


def _record(run_dir: Path) -> dict:
    try:
        data = json.loads((run_dir / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("owner"), str) else {}


def recorded_owner(run_dir: Path) -> str | None:
    return _record(run_dir).get("owner")


def is_private(run_dir: Path) -> bool:
    return _record(run_dir).get("private") is True


def set_private(run_dir: Path, owner: str | None, private: bool) -> None:
    """Mark (or unmark) the run `run_dir` private; only its owner may, and only a run the app started (a run with no
    owner, or a shipped checkpoint, stays public)."""
    name = run_dir.name
    if name in SHIPPED_CHECKPOINTS:
        raise ValueError(f"{name!r} is a shipped checkpoint: it is public for everyone.")
    if not run_dir.is_dir():
        raise ValueError(f"Run {name!r} does not exist yet: start it first, then mark it private.")
    record = _record(run_dir)
    if not record:
        raise ValueError(f"Run {name!r} was not started from this app (it has no owner), so it stays public.")
    check_owner(run_dir, owner, "mark private or public")
    write_json(run_dir / OWNER_FILE, {**record, "private": bool(private)})


def may_read(run_dir: Path, owner: str | None) -> bool:
    """Whether `owner` may predict with, compare or evaluate the run: public runs for everybody, a private one for
    its owner (and a trusted local call, None)."""
    return not is_private(run_dir) or is_owner(run_dir, owner)


def check_readable(run_dir: Path, owner: str | None) -> None:
    if not may_read(run_dir, owner):
        raise PrivateRun(f"Run {run_dir.name!r} is private: only the person who started it can use it. Choose "
                         "another checkpoint (the shipped ones and other people's public runs are open to everyone).")


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

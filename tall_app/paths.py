"""Checkpoints the app may load, found under one root and addressed only by sanitized names.

A user never gives a path: the Predict selector lists what `list_checkpoints` found, and `resolve_checkpoint`
maps a listed name back to its directory (refusing anything else, `..` included). Run names for training are
sanitized to letters, digits, `-` and `_`, and may not name a shipped checkpoint folder (SHIPPED_CHECKPOINTS): the
app never writes inside one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tall_model.config import REPO_ROOT

CHECKPOINTS_ROOT = REPO_ROOT / "checkpoints"
RESULTS_ROOTS = (REPO_ROOT / "runs", REPO_ROOT / "results")
_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_DEPTH = 3
ADAPTER_FORMAT = "tall-adapters"
BASELINE_FORMAT = "tall-baseline-adapter"
# Top-level folders of checkpoints/ that the repository ships (git tracks them; a test keeps this list complete).
# A run may not be called like one of them, so training can never write into a shipped model.
SHIPPED_CHECKPOINTS = ("demo",)


class RunNameError(ValueError):
    """A run or checkpoint name that is not allowed."""


def sanitize_run_name(raw: str | None, *, default: str = "") -> str:
    """A safe run name: letters, digits, `-` and `_`, at most 64 characters, starting with a letter or digit.

    Other characters (spaces, dots, slashes, Hebrew …) become `-`; runs of separators collapse; `..` and path
    separators can therefore never survive. Raises RunNameError if nothing usable is left and there is no default.
    A shipped checkpoint's name passes here: `check_run_name` refuses it."""
    text = str(raw or "").strip()
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", text)
    text = re.sub(r"-{2,}", "-", text).strip("-_")[:64].strip("-_")
    if not text:
        if default:
            return default
        raise RunNameError("The run name is empty: use letters, digits, '-' or '_' (e.g. my-run-1).")
    if not _RUN_NAME.match(text):  # cannot happen after the substitutions; kept as a guard
        raise RunNameError(f"The run name {raw!r} is not allowed.")
    return text


def is_safe_name(name: str) -> bool:
    """A relative, '/'-separated name of 1..MAX_DEPTH safe components (no '.', '..', hidden or empty parts)."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    parts = name.split("/")
    return len(parts) <= MAX_DEPTH and all(_COMPONENT.match(p) and p not in (".", "..") for p in parts)


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/])(?:/[^\s/'\"():,;]+)+/?")


def public_message(text: str, root: Path | None = None) -> str:
    """`text` (an error for the browser) without server paths: a path under `root` becomes `checkpoints/...`
    (the name a user knows), any other absolute path its last component."""
    root = Path(root or CHECKPOINTS_ROOT)
    text = str(text)
    for base in sorted({str(root), str(root.resolve())}, key=len, reverse=True):  # longest first: /a/b before /a
        text = re.sub(rf"(?<![\w./:]){re.escape(base.rstrip('/'))}(?=/|[^\w.-]|$)", "checkpoints", text)
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", text)


def _within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class CheckpointInfo:
    name: str  # relative to the root, '/'-separated
    path: Path
    preset: str
    mtime: float
    problem: str = ""  # why it cannot be used (corrupt or truncated files); "" for a usable one
    word_choice: str = "pieces"  # how its config chooses a greedy word (tall_model.decoding.WORD_CHOICES)

    @property
    def label(self) -> str:
        return f"{self.name}  (unusable: {self.problem})" if self.problem else f"{self.name}  ({self.preset})"


def safetensors_problem(path: Path) -> str:
    """Why `path` is not a whole safetensors file ("" if it looks whole): read from its header alone (8-byte
    length, JSON header, the tensors' byte ranges against the file's size), so listing stays cheap."""
    name = path.name
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length < 2 or 8 + length > size:
                return f"{name} is truncated or not a safetensors file ({size:,} bytes)"
            header = json.loads(fh.read(length).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, MemoryError):
        return f"{name} is not a readable safetensors file (its header is damaged)"
    if not isinstance(header, dict):
        return f"{name} is not a readable safetensors file (its header is not a table of tensors)"
    try:
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        return f"{name} is not a readable safetensors file (its header is damaged)"
    if 8 + length + end > size:
        return f"{name} is truncated: {size:,} bytes, its header needs {8 + length + end:,}"
    return ""


def _walk(root: Path, depth: int = 0):
    if depth > MAX_DEPTH:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return
    for child in children:
        if not _COMPONENT.match(child.name) or not _within(child, root if depth == 0 else child.parent):
            continue
        yield child
        yield from _walk(child, depth + 1)


def list_checkpoints(root: Path | None = None) -> list[CheckpointInfo]:
    """TALL adapter checkpoints under `root` (directories with a TALL config.json and model.safetensors),
    sorted by name. Unsafe names, links out of the root and unreadable configs are skipped."""
    root = Path(root or CHECKPOINTS_ROOT)
    if not root.is_dir():
        return []
    found = []
    for directory in _walk(root):
        config, weights = directory / "config.json", directory / "model.safetensors"
        if not (config.is_file() and weights.is_file()) or not _within(directory, root):
            continue
        meta = _read_json(config)
        name = directory.relative_to(root).as_posix()
        if not is_safe_name(name) or (meta is not None and meta.get("format") != ADAPTER_FORMAT):
            continue  # a backbone or something else with a config.json: not ours to list
        if meta is None:  # weights beside a damaged config.json: a broken checkpoint, listed as such
            found.append(CheckpointInfo(name, directory, "?", config.stat().st_mtime,
                                        "config.json is damaged (not a JSON object)"))
            continue
        model_config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        preset = str(model_config.get("preset", "custom"))
        decoding = model_config.get("decoding") if isinstance(model_config.get("decoding"), dict) else {}
        found.append(CheckpointInfo(name, directory, preset, config.stat().st_mtime, safetensors_problem(weights),
                                    str(decoding.get("word_choice", "pieces"))))
    return sorted(found, key=lambda c: c.name)


def resolve_checkpoint(name: str, root: Path | None = None) -> CheckpointInfo:
    """The listed checkpoint called `name`; ValueError for anything that is not listed (never a raw path)."""
    if not is_safe_name(name):
        raise RunNameError(f"{str(name)[:80]!r} is not a checkpoint name (choose one from the list).")
    for info in list_checkpoints(root):
        if info.name == name:
            return info
    raise RunNameError(f"No checkpoint named {name!r} under {Path(root or CHECKPOINTS_ROOT).name}/ "
                     "(it may have been removed; refresh the list).")


def list_baseline_adapters(root: Path | None = None) -> dict[str, list[Path]]:
    """PEFT baseline adapters (baseline.json of format tall-baseline-adapter) by kind, under `root`."""
    root = Path(root or CHECKPOINTS_ROOT)
    out: dict[str, list[Path]] = {}
    if not root.is_dir():
        return out
    for directory in _walk(root):
        meta = _read_json(directory / "baseline.json") if (directory / "baseline.json").is_file() else None
        if meta and meta.get("format") == BASELINE_FORMAT and isinstance(meta.get("baseline"), str):
            out.setdefault(meta["baseline"], []).append(directory)
    return out


def shipped_folder(name: str) -> str | None:
    """The shipped checkpoint folder `name` is (or, on a case-insensitive file system, would be), else None."""
    return next((s for s in SHIPPED_CHECKPOINTS if s.lower() == str(name).strip().lower()), None)


def is_shipped(name: str) -> bool:
    return shipped_folder(name) is not None


def check_run_name(raw: str | None) -> str:
    """The sanitized run name; RunNameError for an empty name or one reserved by a shipped checkpoint."""
    safe = sanitize_run_name(raw)
    shipped = shipped_folder(safe)
    if shipped:
        raise RunNameError(f"The run name {safe!r} is reserved: checkpoints/{shipped}/ holds a model shipped with "
                           "the app, which training never overwrites. Choose another run name (e.g. my-run-1).")
    return safe


def run_directory(name: str, root: Path | None = None) -> Path:
    """Where a training run called `name` (sanitized) writes: root/name, guaranteed inside root and never a shipped
    checkpoint folder (RunNameError)."""
    safe = check_run_name(name)
    root = Path(root or CHECKPOINTS_ROOT)
    path = root / safe
    if not _within(path, root):
        raise RunNameError(f"The run name {name!r} would leave {root.name}/.")
    return path


def zip_checkpoint(directory: Path, out_dir: Path | None = None, root: Path | None = None) -> Path:
    """A zip of a run or checkpoint directory (inside `root`), for download; written to a temporary folder.
    Hidden staging folders (.name.tmp-…) and symbolic links (which could point anywhere on the server) are left
    out."""
    directory = Path(directory)
    root = Path(root or CHECKPOINTS_ROOT)
    if not directory.is_dir() or not _within(directory, root):
        raise RunNameError(f"Nothing to download at {directory.name!r}.")
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="tall-zip-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="tall-zip-src-"))

    def skipped(folder: str, names: list[str]) -> set[str]:  # hidden staging folders, and every link: a link
        return {n for n in names if n.startswith(".") or os.path.islink(os.path.join(folder, n))}  # may lead out

    try:
        target = staging / directory.name
        shutil.copytree(directory, target, ignore=skipped, symlinks=True)
        archive = shutil.make_archive(str(out_dir / directory.name), "zip", root_dir=staging,
                                      base_dir=directory.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Path(archive)


def find_results(checkpoint: Path, roots=RESULTS_ROOTS) -> tuple[Path, dict] | None:
    """The newest evaluation results JSON (evaluation.evaluate's metrics.json: it has "rows") of a checkpoint:
    one inside the checkpoint or its run directory, else one under runs/ or results/ whose TALL model names
    this checkpoint. None if there is none."""
    checkpoint = Path(checkpoint).resolve()
    candidates: list[Path] = []
    for base in (checkpoint, checkpoint.parent):
        for rel in ("metrics.json", "results.json", "eval/metrics.json", "results/metrics.json"):
            if (base / rel).is_file():
                candidates.append(base / rel)
    for root in roots:
        root = Path(root)
        if root.is_dir():
            candidates += sorted(root.glob("*/metrics.json")) + sorted(root.glob("*/*/metrics.json"))
    best: tuple[str, Path, dict] | None = None
    for path in candidates:
        data = _read_json(path)
        if not data or not isinstance(data.get("rows"), list):
            continue
        near = path.resolve().is_relative_to(checkpoint.parent)
        source = ((data.get("models") or {}).get("tall") or {}).get("checkpoint")
        if not near:
            if not source:
                continue
            source_path = Path(source)
            if not source_path.is_absolute():
                source_path = REPO_ROOT / source_path
            if source_path.resolve() != checkpoint:
                continue
        key = str(data.get("started", "")) + f"{path.stat().st_mtime:020.6f}"
        if best is None or key > best[0]:
            best = (key, path, data)
    return None if best is None else (best[1], best[2])

"""One-off migration of the shipped demo's metadata (checkpoints/demo/) to what the current code writes.

    python -m demo_build.migrate_portable [--out checkpoints/demo]

The build stages that would rewrite these files retrain (adapters, baselines), so only their metadata is
rewritten here, and every tensor and tokenizer file is checked to stay byte-identical (sha256 before and after):

  tall/              config.json in checkpoint format 2 (decoding as one object, `backbone_fingerprints`) and its
                     model card: loaded and saved again in fp16 when that reproduces model.safetensors byte for
                     byte, else config.json and the card are rewritten without touching the tensors
  baselines/<kind>/  adapter_config.json and PEFT's README.md: the LLM as a repository-relative path;
                     baseline.json: `llm` relative, `translator_id` keyed by the translator's content fingerprint
                     (as translation caches are now), `command` as `python -m ...`

Running it again changes nothing. checkpoints/demo/eval/metrics.json is rewritten by re-running the evaluate stage
(`python -m demo_build --stages data,hebrew,evaluate,cards --force evaluate cards`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import torch

from demo_build.context import REPO
from tall_model import load
from tall_model.backbones import config_fingerprints
from tall_model.checkpoint import FORMAT_VERSION, model_card, save_pretrained
from tall_model.config import TallConfig, portable
from tall_model.fingerprint import fingerprint
from tall_model.params import parameter_report

TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".csv", ".txt")
_INTERPRETER = re.compile(r"^\S*python[\d.]*\s+-m\s+")  # "/root/.pyenv/.../bin/python -m x" -> "python -m x"


def sha256_tensor_files(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` that is not a text metadata file (weights, SentencePiece models, ...)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix not in TEXT_SUFFIXES}


def portable_path(name: str) -> str:
    """A shipped backbone path relative to the repository, also when it was written in another clone."""
    if Path(name).is_absolute() and "/checkpoints/" in name:
        return name[name.index("/checkpoints/") + 1:]
    return portable(name)


def portable_command(command: str) -> str:
    return _INTERPRETER.sub("python -m ", command)


def portable_translator_id(key: str) -> str:
    """"<translator path>|beams=…" (the old cache key) → "<its content fingerprint>|beams=…"."""
    name, sep, settings = key.partition("|")
    if name.startswith("sha256:") or not sep:
        return key
    return f"{fingerprint(REPO / portable_path(name))}|{settings}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migrate_tall(directory: Path) -> str:
    meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if meta.get("format_version") == FORMAT_VERSION and meta.get("backbone_fingerprints"):
        return "already format 2"
    model = load(directory, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        staged = save_pretrained(model, Path(tmp) / directory.name, dtype=torch.float16, extra=meta.get("extra"))
        if _sha(staged / "model.safetensors") == _sha(directory / "model.safetensors"):
            for name in ("config.json", "README.md"):
                shutil.copyfile(staged / name, directory / name)
            return "re-saved (model.safetensors reproduced byte for byte)"
    return _rewrite_tall_config(directory, meta, model)


def _rewrite_tall_config(directory: Path, meta: dict, model) -> str:
    """The format-2 config.json and card written beside the untouched tensors."""
    config = TallConfig.from_dict(meta["config"])
    values = config.to_dict()
    for role in ("lr_hr_translator", "llm", "hr_lr_translator"):
        values[role] = portable_path(values[role])
    new = {"format": meta["format"], "format_version": FORMAT_VERSION, "config": values,
           "backbone_fingerprints": config_fingerprints(config),
           **{k: v for k, v in meta.items() if k not in ("format", "format_version", "config")}}
    (directory / "config.json").write_text(json.dumps(new, indent=2, ensure_ascii=False), encoding="utf-8")
    (directory / "README.md").write_text(model_card(new, parameter_report(model)), encoding="utf-8")
    return "config.json and README.md rewritten (tensors untouched)"


def migrate_baseline(directory: Path) -> list[str]:
    changed = []
    adapter_config = directory / "adapter_config.json"
    llm = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
    if llm and portable_path(llm) != llm:
        for path in (adapter_config, directory / "README.md"):  # PEFT's files: only the path string changes
            if path.is_file():
                path.write_text(path.read_text(encoding="utf-8").replace(llm, portable_path(llm)), encoding="utf-8")
                changed.append(path.name)
    meta_path = directory / "baseline.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    new = dict(meta)
    if meta.get("llm"):
        new["llm"] = portable_path(meta["llm"])
    if meta.get("translator_id"):
        new["translator_id"] = portable_translator_id(meta["translator_id"])
    if meta.get("command"):
        new["command"] = portable_command(meta["command"])
    if new != meta:
        meta_path.write_text(json.dumps(new, indent=2, ensure_ascii=False), encoding="utf-8")
        changed.append(meta_path.name)
    return changed


def migrate(out: Path) -> dict:
    before = sha256_tensor_files(out)
    report = {"tall": migrate_tall(out / "tall")} if (out / "tall" / "config.json").is_file() else {}
    for directory in sorted(p.parent for p in (out / "baselines").glob("*/baseline.json")):
        report[f"baselines/{directory.name}"] = migrate_baseline(directory) or "unchanged"
    after = sha256_tensor_files(out)
    if after != before:
        raise RuntimeError(f"tensor files changed: {sorted(k for k in before if before[k] != after.get(k))}")
    report["tensor_files_unchanged"] = {name: digest[:16] for name, digest in after.items()}
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m demo_build.migrate_portable",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "checkpoints" / "demo"))
    report = migrate(Path(parser.parse_args(argv).out))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

"""Helpers for the app's server and browser tests: the app on the tiny preset, launched in this process on a free
port, with its checkpoints and translation cache in a temporary folder; and a small public-domain Hebrew corpus.

Every file the tests write goes under the temporary folder they pass in (pytest's tmp_path), never into the
repository."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tall_app.blocks import serving
from tall_app.screenshots import write_corpus
from tall_app.service import AppService

__all__ = ["FAST", "HE", "fake_checkpoint", "running_app", "tiny_service", "tree_hashes", "write_corpus"]

HE = "ויהי דבר יהוה אל יונה בן אמתי"
FAST = {"translation_max_new_tokens": 6}  # Decoding fields: random tiny translators never stop early, keep them short


def tiny_service(tmp: Path, root: Path | None = None, runner=None) -> AppService:
    """The app's service on the tiny preset: checkpoints under `root` (default tmp/checkpoints), the translation
    cache in `tmp`, short translations for prediction and training; `runner` replaces the trainer."""
    return AppService("tiny", root=root or tmp / "checkpoints", overrides=FAST, demo_directory=tmp / "no-demo",
                      runner=runner, train_options={"translation_cache": str(tmp / "translations.sqlite"),
                                                    "model": {"decoding": FAST}})


@contextmanager
def running_app(tmp: Path, service: AppService | None = None) -> Iterator[tuple[str, object, AppService]]:
    """(url, blocks, service) of a launched app (default: `tiny_service(tmp)`); closed on exit."""
    service = service or tiny_service(tmp)
    with serving(service) as (url, blocks):
        yield url, blocks, service


def fake_checkpoint(directory: Path, preset="tiny") -> Path:
    """A folder that lists as a checkpoint (config + weights file) without being a loadable one."""
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"format": "tall-adapters", "config": {"preset": preset}}))
    (directory / "model.safetensors").write_bytes(b"not really")
    return directory


def tree_hashes(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}

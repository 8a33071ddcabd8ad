"""Adapter checkpoints through the Hugging Face Hub, the PEFT way: `load("user/tall-adapters")` and
`push_to_hub(checkpoint, "user/tall-adapters")`.

A repo id resolves through huggingface_hub: from the local cache when HF_HUB_OFFLINE=1 (or the repo is already
there), else downloaded. A push uploads exactly the checkpoint's files (model.safetensors, config.json and the model
card README.md, whose load snippet names the repo) with `upload_folder`; the token is huggingface_hub's (HF_TOKEN or
`hf auth login`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, get_token, snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
from huggingface_hub.utils import validate_repo_id

from .backbones import is_offline
from .checkpoint import CARD, CONFIG, WEIGHTS, CheckpointError, read_checkpoint_config

CHECKPOINT_FILES = (WEIGHTS, CONFIG, CARD)
LOAD_PLACEHOLDER = "load('PATH')"


def looks_like_repo_id(source: str) -> bool:
    """`owner/name` that huggingface_hub accepts and that is not an existing local path."""
    if Path(source).exists() or source.count("/") != 1 or source.startswith((".", "/", "~")):
        return False
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def resolve_checkpoint_repo(repo_id: str, revision: str | None = None) -> Path:
    """The local folder of an adapter checkpoint on the Hub (the cached snapshot; downloaded unless offline)."""
    offline = is_offline()
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=list(CHECKPOINT_FILES),
                                   local_files_only=offline)
    except LocalEntryNotFoundError as err:
        where = "HF_HUB_OFFLINE=1 is set and it is not in the local Hugging Face cache" if offline else \
            "it could not be downloaded and is not in the local Hugging Face cache"
        raise CheckpointError(f"The adapter repo {repo_id!r} is not available: {where}. Download it on a machine "
                              f"with network access (`hf download {repo_id}`) and copy the cache here, or give a "
                              "checkpoint folder.") from err
    except (OSError, ValueError) as err:  # repository not found, gated, revision unknown...
        raise CheckpointError(f"The adapter repo {repo_id!r} could not be resolved: {err}") from err
    read_checkpoint_config(folder)  # a repo that is not a TALL checkpoint fails here, naming the file
    return Path(folder)


def card_for_repo(card: str, repo_id: str) -> str:
    return card.replace(LOAD_PLACEHOLDER, f"load({repo_id!r})")


def push_to_hub(checkpoint: str | Path, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str | None = None, api: HfApi | None = None) -> str:
    """Upload a checkpoint folder to `repo_id` (created if needed); returns the commit URL.

    Only the checkpoint's own files go up (never optimizer or RNG state from a resumable last/)."""
    validate_repo_id(repo_id)
    checkpoint = Path(checkpoint)
    meta = read_checkpoint_config(checkpoint)
    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="tall-push-") as tmp:
        staging = Path(tmp)
        for name in (WEIGHTS, CONFIG):
            shutil.copy2(checkpoint / name, staging / name)
        card = (checkpoint / CARD).read_text(encoding="utf-8") if (checkpoint / CARD).is_file() else ""
        (staging / CARD).write_text(card_for_repo(card, repo_id), encoding="utf-8")
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(staging), allow_patterns=list(CHECKPOINT_FILES),
                                 commit_message=commit_message or f"TALL adapters ({meta['config']['preset']})")
    return str(getattr(info, "commit_url", info))


def hub_token_configured() -> bool:
    """Whether huggingface_hub has a token (HF_TOKEN or a saved login): the app shows its push button only then."""
    return bool(get_token())

"""Loading the frozen backbones (he→en Marian, the LLM, en→he Marian) from a hub id or a local directory.

A missing model fails at once with a message that names it and says how to provide it: with
``HF_HUB_OFFLINE=1`` we never touch the network, and we look in the local cache before any download.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import try_to_load_from_cache
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, MarianMTModel, PreTrainedModel

from .config import REPO_ROOT, TallConfig
from .fingerprint import fingerprint
from .known_configs import KNOWN_CONFIGS
from .quantize import check_mode as quantize_mode
from .quantize import quantize_model

ROLES = {
    "lr_hr_translator": "the LR→HR (Hebrew→English) translator",
    "llm": "the LLM",
    "hr_lr_translator": "the HR→LR (English→Hebrew) translator",
}
FLAGS = {"lr_hr_translator": "--lr-hr", "llm": "--llm", "hr_lr_translator": "--hr-lr"}


class BackboneNotFoundError(OSError):
    """A backbone is neither a local directory nor available from the Hugging Face cache or hub."""


@dataclass
class Backbones:
    """The three frozen models and their tokenizers (tokenizers are None for `meta` builds)."""

    lr_hr: MarianMTModel
    llm: PreTrainedModel
    hr_lr: MarianMTModel
    lr_hr_tokenizer: Any = None
    llm_tokenizer: Any = None
    hr_lr_tokenizer: Any = None
    folders: dict[str, Path] = field(default_factory=dict)  # role → the folder each was loaded from
    quantized: str | None = None  # "int8" after tall_model.quantize (inference only)
    fixed_dims: dict | None = None  # dims() taken before quantising (packed int8 weights are not parameters)

    def fingerprints(self) -> dict[str, str]:
        """role → content fingerprint (tall_model.fingerprint): what the translation cache and checkpoints key on."""
        return {role: fingerprint(folder) for role, folder in self.folders.items()}

    def revisions(self) -> dict[str, str | None]:
        """role → the hub revision (commit) each was loaded at, when it came from a Hugging Face cache snapshot."""
        return {role: folder.name if folder.parent.name == "snapshots" else None
                for role, folder in self.folders.items()}

    def dims(self) -> dict:
        """What a checkpoint's trainable tensors were fitted to; compared on load. Sizes and parameter
        counts fingerprint the backbones, so a checkpoint for another LLM of the same width is refused too.
        Only the halves TALL uses are counted (training may release the others)."""
        if self.fixed_dims is not None:
            return dict(self.fixed_dims)

        def count(module) -> int:
            return sum(p.numel() for p in module.parameters())

        return {
            "lr_hr_d_model": int(self.lr_hr.config.d_model),
            "lr_hr_encoder_parameters": count(self.lr_hr.get_encoder()),
            "llm_model_type": str(self.llm.config.model_type),
            "llm_hidden_size": int(self.llm.config.hidden_size),
            "llm_vocab_size": int(self.llm.get_input_embeddings().weight.shape[0]),
            "llm_parameters": count(self.llm),
            "hr_lr_d_model": int(self.hr_lr.config.d_model),
            "hr_lr_vocab_size": int(self.hr_lr.lm_head.weight.shape[0]),
            "hr_lr_decoder_parameters": count(self.hr_lr.get_decoder()),
        }


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_local(name: str) -> Path | None:
    """A local directory for `name` if it names one (absolute, relative to the cwd, or to the repo)."""
    for candidate in (Path(name).expanduser(), REPO_ROOT / name):
        if candidate.is_dir():
            return candidate
    return None


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _missing(role: str, name: str, detail: str) -> BackboneNotFoundError:
    what = ROLES[role]
    return BackboneNotFoundError(
        f"{what} '{name}' is not available: {detail}. Provide it as a local directory (save_pretrained "
        f"format: config.json, weights, tokenizer files) with {FLAGS[role]} PATH or `{role}` in the config, "
        f"or download it on a machine with network access (`hf download {name}`) and copy the Hugging Face "
        f"cache (~/.cache/huggingface) here. Offline, use the shipped demo (--preset demo) or --preset tiny."
    )


def resolve_source(role: str, name: str) -> tuple[str, bool]:
    """Where to load `name` from: (path or hub id, local_files_only). Raises at once if it cannot exist."""
    local = resolve_local(name)
    if local is not None:
        if not (local / "config.json").is_file():
            raise _missing(role, name, f"the directory {local} has no config.json")
        return str(local), True
    if _looks_like_path(name):
        raise _missing(role, name, "no such local directory")
    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):
        return name, True
    if is_offline():
        raise _missing(role, name, "it is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 is set")
    return name, False


def _load(role: str, name: str, loader, **kwargs):
    source, local_only = resolve_source(role, name)
    try:
        return loader(source, local_files_only=local_only, **kwargs)
    except (OSError, TypeError, ValueError) as err:  # what transformers raises for missing/partial files
        raise _missing(role, name, f"loading failed ({type(err).__name__}: {err})") from err


def model_folder(role: str, name: str) -> Path:
    """The folder a backbone's files are in: the local directory, or its snapshot in the Hugging Face cache."""
    local = resolve_local(name)
    if local is not None:
        return local.resolve()
    cached = try_to_load_from_cache(name, "config.json")
    if not isinstance(cached, str):
        raise _missing(role, name, "it is not in the local Hugging Face cache")
    return Path(cached).parent


def config_fingerprints(config: TallConfig) -> dict[str, str]:
    """role → content fingerprint of the backbones a config names, without loading them."""
    return {role: fingerprint(model_folder(role, getattr(config, role))) for role in ROLES}


def freeze(module: nn.Module) -> nn.Module:
    """Frozen means no gradients *and* eval mode (the authors left dropout on in the frozen Marian models)."""
    module.requires_grad_(False)
    module.eval()
    return module


# transformers' from_pretrained patches process-wide state while it builds a model (weight-init and tied-weight
# context managers), so two threads loading at once (the app's predictions while its training job starts) can build
# a wrong model: one observed with its LM head untied, 2,548,480 parameters instead of 1,893,120. One load at a time.
_LOADING = threading.Lock()


def load_backbones(config: TallConfig, dtype: torch.dtype | None = None, quantize: str | None = None) -> Backbones:
    """Load the three backbones and their tokenizers, frozen (one load at a time per process). The HR→LR model uses
    eager attention because the app shows its cross-attention (SDPA returns no weights). `quantize="int8"`:
    each model is quantised as soon as it is loaded (tall_model.quantize; inference only)."""
    with _LOADING:
        return _load_backbones(config, dtype, quantize)


def _load_backbones(config: TallConfig, dtype: torch.dtype | None, quantize: str | None = None) -> Backbones:
    # Always an explicit dtype: transformers 5 loads a checkpoint in its stored dtype by default, and fp16 weights
    # (bloomz-560m's, the demo's) would then meet the adapters' fp32 activations.
    kw = {"dtype": dtype or torch.get_default_dtype()}
    for role in ROLES:  # a missing backbone fails here, in pipeline order, before gigabytes of the others load
        resolve_source(role, getattr(config, role))
    fixed = build_meta_backbones(config).dims() if quantize_mode(quantize) else None  # the fp32 counts, no weights
    # the LLM, the largest, first: its loading transient (≈ its fp16 file on top of its fp32 weights) then meets
    # the smallest resident set, which lowers the process's peak
    llm = quantize_model("llm", freeze(_load("llm", config.llm, AutoModelForCausalLM.from_pretrained, **kw)), quantize)
    lr_hr = quantize_model("lr_hr_translator", freeze(_load("lr_hr_translator", config.lr_hr_translator,
                                                            MarianMTModel.from_pretrained, **kw)), quantize)
    hr_lr = quantize_model("hr_lr_translator", freeze(_load("hr_lr_translator", config.hr_lr_translator,
                                                            MarianMTModel.from_pretrained, attn_implementation="eager",
                                                            **kw)), quantize)
    backbones = Backbones(
        lr_hr=lr_hr, llm=llm, hr_lr=hr_lr, quantized=quantize_mode(quantize), fixed_dims=fixed,
        lr_hr_tokenizer=_load("lr_hr_translator", config.lr_hr_translator, AutoTokenizer.from_pretrained),
        llm_tokenizer=_load("llm", config.llm, AutoTokenizer.from_pretrained),
        hr_lr_tokenizer=_load("hr_lr_translator", config.hr_lr_translator, AutoTokenizer.from_pretrained),
        folders={role: model_folder(role, getattr(config, role)) for role in ROLES},
    )
    for translator in (backbones.lr_hr, backbones.hr_lr):
        # every generate() call here passes max_new_tokens; a stored max_length would only add a warning per call
        translator.generation_config.max_length = None
    if backbones.llm_tokenizer.pad_token is None:  # batching English needs a pad id; it is always masked
        backbones.llm_tokenizer.pad_token = backbones.llm_tokenizer.eos_token
    return backbones


def _config_for(role: str, name: str):
    if name in KNOWN_CONFIGS:
        values = dict(KNOWN_CONFIGS[name])
        return AutoConfig.for_model(values.pop("model_type"), **values)
    source, local_only = resolve_source(role, name)
    return AutoConfig.from_pretrained(source, local_files_only=local_only)


def build_meta_backbones(config: TallConfig) -> Backbones:
    """The backbones with their exact shapes but no weights (on the `meta` device): for parameter counts."""
    with torch.device("meta"):
        lr_hr = MarianMTModel(_config_for("lr_hr_translator", config.lr_hr_translator))
        llm = AutoModelForCausalLM.from_config(_config_for("llm", config.llm))
        hr_lr = MarianMTModel(_config_for("hr_lr_translator", config.hr_lr_translator))
    return Backbones(lr_hr=freeze(lr_hr), llm=freeze(llm), hr_lr=freeze(hr_lr))

"""PEFT adapters for the two trainable baselines: a soft prompt (prompt tuning) and LoRA (fine-tuning).

Only adapter tensors are saved (PEFT `save_pretrained`, safetensors), next to `baseline.json`, which says
which baseline and which LLM they belong to; loading refuses an adapter made for another LLM or the other
baseline with a message naming both sides. The shared frozen LLM is never modified: adapters are attached
to a deep copy (LoRA injects layers into the model it is given).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from peft import LoraConfig, PeftModel, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

from tall_model.config import portable

KINDS = ("soft-prompt", "fine-tuned")
META_FILE = "baseline.json"
FORMAT = "tall-baseline-adapter"


class AdapterError(ValueError):
    """An adapter directory that is missing, of the wrong kind, or made for another LLM."""


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"baseline must be one of {', '.join(KINDS)}; got {kind!r}")


def peft_config(kind: str, settings):
    """`settings`: a baselines.train.BaselineConfig (virtual_tokens, lora_r, lora_alpha, lora_dropout)."""
    _check_kind(kind)
    if kind == "soft-prompt":
        # SAMPLE_VOCAB starts the virtual tokens at real token embeddings (the right scale); seeded by torch.
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=settings.virtual_tokens,
                                  prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB)
    # target_modules left to PEFT's per-architecture defaults (BLOOM query_key_value, Qwen2 q_proj/v_proj)
    return LoraConfig(task_type=TaskType.CAUSAL_LM, r=settings.lora_r, lora_alpha=settings.lora_alpha,
                      lora_dropout=settings.lora_dropout)


def llm_fingerprint(llm) -> dict:
    """What an adapter was fitted to; compared on load."""
    return {"llm_model_type": str(llm.config.model_type), "llm_hidden_size": int(llm.config.hidden_size),
            "llm_parameters": sum(p.numel() for p in llm.parameters())}


def trainable_copy(kind: str, llm, settings):
    """A PEFT model around a copy of the frozen LLM; only the adapter's parameters require gradients."""
    return get_peft_model(copy.deepcopy(llm), peft_config(kind, settings))


def save_adapter(model, directory, kind: str, llm_id: str, fingerprint: dict, extra: dict) -> Path:
    """Adapter tensors (adapter_model.safetensors), adapter_config.json, and baseline.json."""
    _check_kind(kind)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for config in model.peft_config.values():  # PEFT would record the LLM's absolute path
        config.base_model_name_or_path = portable(llm_id)
    model.save_pretrained(str(directory), safe_serialization=True)
    meta = {"format": FORMAT, "baseline": kind, "llm": portable(llm_id), "fingerprint": fingerprint, **extra}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return directory


def read_adapter_meta(directory, kind: str) -> dict:
    _check_kind(kind)
    directory = Path(directory)
    if not directory.is_dir():
        raise AdapterError(f"No {kind} adapter directory at {directory}.")
    for name in (META_FILE, "adapter_config.json", "adapter_model.safetensors"):
        if not (directory / name).is_file():
            raise AdapterError(f"{directory} is not a {kind} adapter: {name} is missing "
                               f"(make one with `python -m baselines.train {kind} ...`).")
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AdapterError(f"{directory / META_FILE} is not valid JSON: {err}") from err
    if meta.get("format") != FORMAT:
        raise AdapterError(f"{directory / META_FILE} is not a baseline adapter description.")
    if meta.get("baseline") != kind:
        raise AdapterError(f"{directory} holds a {meta.get('baseline')!r} adapter, not a {kind!r} one.")
    return meta


def load_adapter(kind: str, directory, llm):
    """The adapted LLM for evaluation, frozen and in eval mode: LoRA merged into a copy (a plain model,
    as fast as the original); the soft prompt as a PEFT wrapper around a copy."""
    meta = read_adapter_meta(directory, kind)
    actual = llm_fingerprint(llm)
    problems = [f"{key} is {value} for the adapter but {actual.get(key)} for the loaded LLM"
                for key, value in meta.get("fingerprint", {}).items() if actual.get(key) != value]
    if problems:
        raise AdapterError(f"{directory} was trained for the LLM {meta.get('llm')!r}: " + "; ".join(problems) + ".")
    model = PeftModel.from_pretrained(copy.deepcopy(llm), str(directory), is_trainable=False)
    if kind == "fine-tuned":
        model = model.merge_and_unload()
    model.requires_grad_(False)
    return model.eval()

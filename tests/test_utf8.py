"""Generation by a byte-level LLM stays valid UTF-8 (baselines.utf8): the fine-tuned demo baseline's empty words."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import AutoTokenizer

from baselines.utf8 import ValidUtf8, token_bytes
from baselines.word_lm import WordLM
from tall_model import preset_config
from tall_model.backbones import model_folder
from tall_model.config import demo_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEMO = preset_config("demo")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(model_folder("llm", DEMO.llm))


@pytest.fixture(scope="module")
def guard(tokenizer):
    return ValidUtf8(token_bytes(tokenizer), len(tokenizer))


def _token(tokenizer, data: bytes) -> int:
    pieces = token_bytes(tokenizer)
    return pieces.index(data)


def test_after_a_lead_byte_only_continuation_bytes_may_follow(tokenizer, guard):
    lead, cont = _token(tokenizer, b"\xd7"), _token(tokenizer, b"\xa5")  # "ץ" = D7 A5
    space = _token(tokenizer, b" ")
    scores = torch.zeros(1, len(tokenizer))
    after_lead = guard(torch.tensor([[space, lead]]), scores)
    assert after_lead[0, lead] == float("-inf") and after_lead[0, space] == float("-inf")
    assert after_lead[0, cont] == 0
    after_letter = guard(torch.tensor([[space, lead, cont]]), scores)
    assert after_letter[0, cont] == float("-inf")  # a continuation byte with nothing to continue
    assert after_letter[0, lead] == 0 and after_letter[0, space] == 0


def test_special_tokens_stay_allowed(tokenizer, guard):
    lead = _token(tokenizer, b"\xd7")
    out = guard(torch.tensor([[lead]]), torch.zeros(1, len(tokenizer)))
    assert out[0, tokenizer.eos_token_id] == 0


def test_no_guard_for_a_tokenizer_that_is_not_byte_level():
    marian = AutoTokenizer.from_pretrained(model_folder("lr_hr_translator", DEMO.lr_hr_translator))
    assert token_bytes(marian) is None


def test_shipped_fine_tuned_baseline_writes_valid_text(tokenizer):
    """Without the guard this LoRA-tuned LM repeats the lead byte 0xD7 forever (decoded: only U+FFFD)."""
    from baselines.adapters import load_adapter
    from tall_model.backbones import load_backbones

    torch.set_num_threads(1)
    lm = load_adapter("fine-tuned", demo_dir() / "baselines" / "fine-tuned", load_backbones(DEMO).llm)
    words = WordLM(lm, tokenizer, max_new_tokens=12)
    ids, mask = words._prompts(["ויאמר אלהים יהי"])
    unguarded = lm.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                            pad_token_id=tokenizer.pad_token_id)
    guarded = lm.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                          pad_token_id=tokenizer.pad_token_id, logits_processor=words._processors())
    assert "\ufffd" in tokenizer.decode(unguarded[0, ids.shape[1]:])  # the failure this guards against
    text = tokenizer.decode(guarded[0, ids.shape[1]:])
    # the max_new_tokens cut may fall between a letter's two bytes: one incomplete last character, nothing else
    text = text[:-1] if text.endswith("\ufffd") else text
    assert "\ufffd" not in text and any("\u05d0" <= c <= "\u05ff" for c in text), text

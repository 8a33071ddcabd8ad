"""Backbones are identified by content: the same folder by any path, or moved, has one fingerprint and one
translation-cache key; other weights have another."""

import os
import shutil
from pathlib import Path

import pytest

from tall_model.backbones import config_fingerprints, load_backbones
from tall_model.fingerprint import fingerprint
from tall_model.translate import translator_id


@pytest.fixture(scope="module")
def he_en(tiny_config) -> Path:
    return Path(tiny_config.lr_hr_translator).resolve()


def test_relative_absolute_and_moved_folders_have_one_fingerprint(he_en, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere" / "he-en"
    shutil.copytree(he_en, moved)
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(he_en, tmp_path)
    assert fingerprint(he_en) == fingerprint(relative) == fingerprint(moved) == fingerprint(Path("elsewhere/he-en"))


def test_other_weights_or_tokenizer_change_the_fingerprint(he_en, tmp_path):
    copy = tmp_path / "he-en"
    shutil.copytree(he_en, copy)
    before = fingerprint(copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one byte of the last tensor
    weights.write_bytes(bytes(data))
    assert fingerprint(copy) != before
    shutil.copy(he_en / "model.safetensors", weights)
    assert fingerprint(copy) == before
    (copy / "vocab.json").write_text((he_en / "vocab.json").read_text().replace('"', '"', 1) + " ")
    assert fingerprint(copy) != before


def test_translation_cache_key_is_the_same_for_a_relative_and_an_absolute_path(tiny_config, tiny_model, tmp_path,
                                                                              monkeypatch):
    absolute = tiny_config.replace(lr_hr_translator=str(Path(tiny_config.lr_hr_translator).resolve()))
    monkeypatch.chdir(tmp_path)
    relative = tiny_config.replace(lr_hr_translator=os.path.relpath(absolute.lr_hr_translator, tmp_path))
    assert config_fingerprints(absolute) == config_fingerprints(relative)

    class Model:  # what translator_id reads: the backbones' folders and the decoding settings
        def __init__(self, config):
            self.config, self.backbones = config, load_backbones(config)

    key = translator_id(Model(relative))
    assert key == translator_id(Model(absolute)) == translator_id(tiny_model)
    assert key.startswith("sha256:") and str(tmp_path) not in key and "/" not in key.split("|")[0]

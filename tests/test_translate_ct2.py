"""The opt-in CTranslate2 engine for the he→en text (tall_model/translate_ct2.py) on the tiny preset: converted once
per translator content, its own translation-cache key, predictions through it, and agreement with transformers."""

from __future__ import annotations

import pytest

from tall_model import load
from tall_model.predict import predict
from tall_model.translate import translate, translator_id
from tall_model.translate_ct2 import Ct2Translator, converted

PREFIXES = ["בראשית ברא אלהים את השמים ואת", "ויאמר אלהים יהי", "ויהי דבר יהוה אל יונה בן אמתי לאמר",
            "קום לך אל נינוה העיר הגדולה", "וירא אלהים את האור כי טוב"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model):
    cache = tmp_path_factory.mktemp("ct2")
    engine = load(tiny_model.config, backbones=tiny_model.backbones, translation_engine="ctranslate2")
    engine._ct2_translator = Ct2Translator(engine, cache)  # converted into tmp, not the repository's .cache
    return tiny_model, engine, cache


def test_conversion_is_cached_by_the_translator_fingerprint(models):
    plain, _, cache = models
    folder = plain.backbones.folders["lr_hr_translator"]
    fingerprint = plain.backbones.fingerprints()["lr_hr_translator"]
    first = converted(folder, fingerprint, cache)
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert converted(folder, fingerprint, cache) == first and (first / "model.bin").stat().st_mtime_ns == stamp
    assert converted(folder, "sha256:another", cache) != first  # another translator: another folder
    assert not [p for p in cache.iterdir() if p.name.startswith(".converting-")]


def test_engine_translations_agree_with_transformers_and_have_their_own_cache_key(models):
    plain, engine, _ = models
    ours, theirs = translate(plain, PREFIXES), translate(engine, PREFIXES)
    assert all(isinstance(t, str) for t in theirs) and len(theirs) == len(PREFIXES)
    assert ours == theirs  # identical here; the demo translator: 725 of 731 (RESULTS.md)
    assert translator_id(engine) == translator_id(plain) + "|engine=ctranslate2"


def test_predict_through_the_engine_uses_its_translation(models):
    plain, engine, _ = models
    english = translate(engine, [PREFIXES[2]])[0]
    result = predict(engine, PREFIXES[2])
    assert result.translation == english
    given = predict(plain, PREFIXES[2], translations=english)
    assert (result.word, [c.prob for c in result.candidates]) == (given.word, [c.prob for c in given.candidates])


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="translation_engine must be one of transformers, ctranslate2"):
        load("tiny", translation_engine="marian-cpp")

"""The translation cache: each distinct prefix reaches the translator once, across epochs and runs."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from tall_data.translation_cache import TranslationCache, TranslationError

SETTINGS = {"num_beams": 4, "max_new_tokens": 64}


class CountingTranslator:
    """Fake he→en model: records every text it is asked to translate."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.batches: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[str]:
        self.seen += texts
        self.batches.append(list(texts))
        return [f"EN({t})" for t in texts]


def open_cache(path: Path, translator_id: str = "opus-mt-tc-big-he-en", settings: dict = SETTINGS) -> TranslationCache:
    return TranslationCache(path, translator_id=translator_id, settings=settings)


def test_each_distinct_prefix_is_translated_once_across_epochs_and_runs(tmp_path: Path) -> None:
    db = tmp_path / "cache" / "translations.sqlite"
    prefixes = ["הילד הלך", "מזג האוויר", "הילד הלך", "שלום", "מזג האוויר"]
    fake = CountingTranslator()
    with open_cache(db) as cache:
        for _epoch in range(2):
            assert cache.translate(prefixes, fake, batch_size=2) == [f"EN({p})" for p in prefixes]
        assert sorted(fake.seen) == sorted(set(prefixes))
        assert cache.stats.sent == 3 and cache.stats.calls == 2 and cache.stats.requested == 10
        assert cache.stats.hits == 3 and len(cache) == 3
    with open_cache(db) as second_run:  # a new process would open the file the same way
        assert second_run.translate(prefixes + ["חדש"], fake) == [f"EN({p})" for p in prefixes + ["חדש"]]
        assert second_run.stats.sent == 1
    assert sorted(fake.seen) == sorted(set(prefixes) | {"חדש"})


def test_batches_are_sorted_by_length(tmp_path: Path) -> None:
    fake = CountingTranslator()
    with open_cache(tmp_path / "c.sqlite") as cache:
        cache.translate(["אאאא", "א", "אאא", "אא"], fake, batch_size=2)
    assert fake.batches == [["א", "אא"], ["אאא", "אאאא"]]


def test_other_settings_or_translator_miss_the_cache(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    fake = CountingTranslator()
    with open_cache(db) as cache:
        cache.translate(["שלום"], fake)
    with open_cache(db, settings={"max_new_tokens": 64, "num_beams": 4}) as same:  # key order is irrelevant
        assert same.get_many(["שלום"]) == {"שלום": "EN(שלום)"}
    for other in (open_cache(db, settings={"num_beams": 1}), open_cache(db, translator_id="other-model")):
        with other:
            assert other.get_many(["שלום"]) == {} and len(other) == 0
            other.translate(["שלום"], fake)
    assert fake.seen == ["שלום"] * 3


def test_get_put_and_order_with_duplicates(tmp_path: Path) -> None:
    with open_cache(tmp_path / "c.sqlite") as cache:
        cache.put_many({"ב": "b", "א": "a"})
        assert cache.get_many(["א", "ג", "ב"]) == {"א": "a", "ב": "b"}
        fake = CountingTranslator()
        assert cache.translate(["ג", "א", "ג", "ב", "א"], fake) == ["EN(ג)", "a", "EN(ג)", "b", "a"]
        assert fake.seen == ["ג"]
        assert cache.translate([], fake) == []
        with pytest.raises(TypeError, match="str → str"):
            cache.put_many({"א": None})  # type: ignore[dict-item]


def test_progress_callback(tmp_path: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    with open_cache(tmp_path / "c.sqlite") as cache:
        cache.translate([str(i) for i in range(5)], CountingTranslator(), batch_size=2,
                        progress=lambda done, total, desc: calls.append((done, total, desc)))
    assert calls == [(2, 5, "translating"), (4, 5, "translating"), (5, 5, "translating")]


def test_bad_translator_output_raises_and_errors_propagate(tmp_path: Path) -> None:
    with open_cache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(TranslationError, match="returned 1 translations for 2 texts"):
            cache.translate(["א", "ב"], lambda texts: texts[:1])
        with pytest.raises(TranslationError, match="must return a list of str, got str"):
            cache.translate(["א"], lambda texts: "a")
        with pytest.raises(TranslationError, match="output 0 is NoneType"):
            cache.translate(["א"], lambda texts: [None])

        def broken(texts: list[str]) -> list[str]:
            raise RuntimeError("CUDA out of memory")

        with pytest.raises(RuntimeError, match="CUDA out of memory"):
            cache.translate(["א"], broken)
        assert len(cache) == 0


def test_finished_batches_survive_a_failure(tmp_path: Path) -> None:
    fake = CountingTranslator()

    def fails_on_second_batch(texts: list[str]) -> list[str]:
        if fake.batches:
            raise KeyboardInterrupt
        return fake(texts)

    with open_cache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(KeyboardInterrupt):
            cache.translate(["א", "בב", "גגג"], fails_on_second_batch, batch_size=2)
        assert len(cache) == 2


def test_bad_constructor_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON-serialisable"):
        TranslationCache(tmp_path / "c.sqlite", translator_id="m", settings={"device": object()})
    with pytest.raises(ValueError, match="translator_id"):
        TranslationCache(tmp_path / "c.sqlite", translator_id="", settings={})


def test_two_open_caches_share_one_file_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    with open_cache(db) as a, open_cache(db) as b:
        assert a._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        a.put_many({"א": "a"})
        b.put_many({"ב": "b"})
        assert a.get_many(["א", "ב"]) == b.get_many(["א", "ב"]) == {"א": "a", "ב": "b"}
        fake = CountingTranslator()
        a.translate(["ג"], fake, tqdm=True)  # the bar path must work too
        assert b.translate(["ג", "א"], fake) == ["EN(ג)", "a"] and fake.seen == ["ג"]


def _open_after(barrier, path: str) -> str | None:
    barrier.wait()  # both processes open the new file at the same moment, as the ranks of a training run do
    try:
        with TranslationCache(path, translator_id="m", settings={}) as cache:
            cache.put_many({"א": "a"})
        return None
    except sqlite3.OperationalError as err:  # what a rank died of in CI ("database is locked")
        return repr(err)


def test_processes_opening_a_new_cache_at_once_all_get_in(tmp_path: Path) -> None:
    # Without the retry around the journal-mode change, 12-60 % of these races failed on a 2-core machine.
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Manager().Barrier(2)
    with ctx.Pool(2) as pool:
        for trial in range(30):
            path = str(tmp_path / f"c{trial}.sqlite")
            errors = pool.starmap(_open_after, [(barrier, path)] * 2)
            assert errors == [None, None], f"trial {trial}: {errors}"
            with sqlite3.connect(path) as db:
                assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

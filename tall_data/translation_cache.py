"""Translate every distinct Hebrew prefix once, ever.

The frozen he→en translation of a prefix depends on nothing that trains, yet the
authors' data loader re-translated it for every sample in every epoch (≈6.4 h/epoch,
flaw 2). This SQLite cache is keyed by (translator id, generation settings, text), so it
is shared by epochs, runs, evaluation and the app, and by several processes at once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm as make_bar

from tall_model import translate as tall_translate
from tall_model.config import REPO_ROOT

TranslateFn = Callable[[list[str]], Sequence[str]]
ProgressFn = Callable[[int, int, str], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    key TEXT PRIMARY KEY,      -- sha256 of (translator_id, settings, source)
    namespace TEXT NOT NULL,   -- sha256 of (translator_id, settings)
    source TEXT NOT NULL,
    translation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS translations_namespace ON translations (namespace);
"""
_CHUNK = 500  # keeps each IN (...) under SQLite's bound-variable limit


class TranslationError(RuntimeError):
    """translate_fn broke its contract (wrong count or non-string output)."""


@dataclass
class CacheStats:
    """Cumulative counts for this cache object; tests use ``sent`` to prove translate-once."""

    requested: int = 0  # texts passed to translate(), duplicates included
    hits: int = 0  # distinct texts found in the cache
    sent: int = 0  # distinct texts actually given to translate_fn
    calls: int = 0  # batches, i.e. translate_fn calls


def _sha(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def _enable_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to write-ahead logging, waiting out other processes doing the same.

    When two processes open a new file at once (the ranks of a training run), SQLite answers the loser's
    journal-mode change "database is locked" at once, without the busy timeout; so retry until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class TranslationCache:
    """A persistent {text: translation} map for one translator and one set of settings.

    ``settings`` (beam size, max length, ...) are part of the key because they change
    the output; they must be JSON-serialisable and are compared in canonical form
    (sorted keys), so {"a": 1, "b": 2} and {"b": 2, "a": 1} share entries.
    """

    def __init__(self, path: str | Path, *, translator_id: str, settings: Mapping, timeout: float = 60.0) -> None:
        if not translator_id:
            raise ValueError("translator_id must be a non-empty string (e.g. the model name and revision)")
        try:
            self.settings_json = json.dumps(dict(settings), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except TypeError as err:
            raise ValueError(f"settings must be JSON-serialisable: {err}") from None
        self.path = str(path)
        self.translator_id = translator_id
        self.namespace = _sha([translator_id, self.settings_json])
        self.stats = CacheStats()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # one connection shared by threads (the app serves requests on worker threads)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
        with self._lock, self._db:
            _enable_wal(self._db, timeout)  # readers never block the writer
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def _key(self, text: str) -> str:
        return _sha([self.translator_id, self.settings_json, text])

    def get_many(self, texts: Iterable[str]) -> dict[str, str]:
        """Cached translations of those texts that have one (missing texts are absent)."""
        keys = {self._key(t): t for t in dict.fromkeys(texts)}
        found: dict[str, str] = {}
        key_list = list(keys)
        with self._lock:
            for i in range(0, len(key_list), _CHUNK):
                chunk = key_list[i : i + _CHUNK]
                rows = self._db.execute(
                    f"SELECT key, translation FROM translations WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
                found.update((keys[k], tr) for k, tr in rows)
        return found

    def put_many(self, translations: Mapping[str, str]) -> None:
        """Store (or overwrite) translations in one transaction."""
        rows = []
        for source, translation in translations.items():
            if not isinstance(source, str) or not isinstance(translation, str):
                raise TypeError(
                    f"put_many needs str → str, got {type(source).__name__} → {type(translation).__name__}"
                )
            rows.append((self._key(source), self.namespace, source, translation))
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        """Entries for this translator and settings (other namespaces in the file are not counted)."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM translations WHERE namespace = ?", (self.namespace,)
            ).fetchone()
        return count

    def translate(
        self,
        texts: Sequence[str],
        translate_fn: TranslateFn,
        *,
        batch_size: int = 32,
        progress: ProgressFn | None = None,
        tqdm: bool | None = None,
        desc: str = "translating",
    ) -> list[str]:
        """Translations of ``texts`` in input order; only distinct uncached texts reach translate_fn.

        Missing texts are sent in batches of ``batch_size``, shortest first (less padding),
        and each batch is stored as soon as it returns, so an interrupted run keeps its
        work. ``progress(done, total, desc)`` is called after each batch. ``tqdm``: None
        shows a bar only when ``progress`` is None and stderr is a terminal; True/False
        force it on/off. translate_fn's own exceptions propagate unchanged.
        """
        distinct = list(dict.fromkeys(texts))
        result = self.get_many(distinct)
        missing = [t for batch in self.batches([t for t in distinct if t not in result], batch_size) for t in batch]
        self.stats.requested += len(texts)
        self.stats.hits += len(result)
        bar = None
        if tqdm or (tqdm is None and progress is None and missing and sys.stderr.isatty()):
            bar = make_bar(total=len(missing), desc=desc, unit="text")
        try:
            for start in range(0, len(missing), batch_size):
                batch = missing[start : start + batch_size]
                translated = self._call(translate_fn, batch)
                self.put_many(translated)
                result.update(translated)
                self.stats.sent += len(batch)
                self.stats.calls += 1
                if bar is not None:
                    bar.update(len(batch))
                if progress is not None:
                    progress(start + len(batch), len(missing), desc)
        finally:
            if bar is not None:
                bar.close()
        return [result[t] for t in texts]

    def missing_batches(self, texts: Sequence[str], batch_size: int) -> list[list[str]]:
        """The batches translate() would send for these texts now (uncached, distinct, shortest first): several
        processes can share them out and get exactly what one process would."""
        distinct = list(dict.fromkeys(texts))
        found = self.get_many(distinct)
        return self.batches([t for t in distinct if t not in found], batch_size)

    @staticmethod
    def batches(missing: Sequence[str], batch_size: int) -> list[list[str]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ordered = sorted(missing, key=len)  # less padding
        return [ordered[start:start + batch_size] for start in range(0, len(ordered), batch_size)]

    def translate_batch(self, translate_fn: TranslateFn, batch: list[str]) -> dict[str, str]:
        """One batch through translate_fn, checked (not stored: see put_many)."""
        return self._call(translate_fn, batch)

    @staticmethod
    def _call(translate_fn: TranslateFn, batch: list[str]) -> dict[str, str]:
        out = translate_fn(list(batch))
        if isinstance(out, (str, bytes)) or not isinstance(out, Sequence):
            raise TranslationError(f"translate_fn must return a list of str, got {type(out).__name__}")
        if len(out) != len(batch):
            raise TranslationError(f"translate_fn returned {len(out)} translations for {len(batch)} texts")
        for i, item in enumerate(out):
            if not isinstance(item, str):
                raise TranslationError(f"translate_fn output {i} is {type(item).__name__}, not str")
        return dict(zip(batch, out))

    def close(self) -> None:
        """Close the SQLite connection (further use raises sqlite3.ProgrammingError)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> TranslationCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- the he→en prefix cache

DEFAULT_TRANSLATION_CACHE = REPO_ROOT / ".cache" / "translations.sqlite"


def open_prefix_cache(translator, path=DEFAULT_TRANSLATION_CACHE) -> TranslationCache:
    """The he→en cache of one translator (by content fingerprint) with its decoding settings; training,
    evaluation and the soft-prompt baseline share it, so a prefix is translated once for all of them."""
    decoding = translator.config.decoding
    return TranslationCache(path, translator_id=tall_translate.translator_id(translator),
                            settings={"beams": decoding.translation_beams,
                                      "max_new_tokens": decoding.translation_max_new_tokens})


def translate_prefixes(translator, cache: TranslationCache, texts: Sequence[str], progress: bool | None = None,
                       batch_size: int = 16) -> list[str]:
    """Translations of Hebrew prefixes; only distinct, uncached ones reach the translator."""
    return cache.translate(list(texts), lambda batch: tall_translate.translate(translator, batch),
                           batch_size=batch_size, tqdm=progress, desc="he→en")


def fill_shared(cache: TranslationCache, translate_fn: TranslateFn, texts: Sequence[str], batch_size: int, *,
                rank: int = 0, nproc: int = 1, gather: Callable[[list], list] | None = None,
                barrier: Callable[[], None] = lambda: None,
                on_round: Callable[[int, int], None] | None = None) -> list[int]:
    """Put every uncached text of `texts` into the cache, the work shared out between `nproc` processes.

    Every process reads the same list of batches (those `translate` would send from one process), translates
    batches rank, rank + P, ..., and after each round process 0, the one writer, stores what `gather` (accelerate's
    gather_object) brought back: the cache ends as a one-process fill leaves it. `on_round(done, total)` runs on
    process 0 after each round. Returns how many texts each process translated."""
    batches = cache.missing_batches(texts, batch_size)
    barrier()  # all have read the same list before the writer adds to it
    total, done, mine = sum(map(len, batches)), 0, 0
    for start in range(0, len(batches), nproc):
        batch = batches[start + rank] if start + rank < len(batches) else []
        translated = cache.translate_batch(translate_fn, batch) if batch else {}
        mine += len(batch)
        parts = gather([translated]) if nproc > 1 else [translated]
        if rank == 0:
            for part in parts:
                cache.put_many(part)
                done += len(part)
            if on_round is not None:
                on_round(done, total)
    counts = gather([mine]) if nproc > 1 else [mine]
    barrier()  # every translation is stored before anyone reads
    return counts

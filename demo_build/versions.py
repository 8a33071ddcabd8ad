"""More English for the demo: the `pythonbible-*` versions, aligned to the Hebrew verse numbering and verified.

The versions are stored under KJV verse ids (pythonbible validates ids against the KJV's verse counts), but a version
need not follow the KJV's numbering (BBE's text drifts across verse boundaries; Leeser puts a psalm's title into
verse 1), so no verse is trusted without reading it.  For each Hebrew chapter of the TRAIN and DEV books:

1. candidate maps from a Hebrew verse to a version verse: the same number when the Hebrew and KJV verse counts are
   equal; the documented chapter-boundary differences (BOUNDARY_MAPS, written out below); a psalm whose Hebrew
   count exceeds the KJV's by 1 or 2 (its title numbered as verse 1-2 in Hebrew only) shifted by that many;
2. each mapped pair is kept only if the word-set Jaccard similarity of the version's verse to the JPS-1917 English
   of the same Hebrew verse is >= SIMILARITY_FLOOR and higher than each neighbour's (the version's verses before
   and after, and the JPS verses before and after): a shifted map fails on nearly every verse;
3. the chapter keeps the candidate with the most kept pairs; it is dropped when fewer than CHAPTER_MIN_SHARE of its
   mapped verses pass, or when no candidate applies (counts differ and no documented map covers it).

A version whose kept share of all checked verses is below VERSION_MIN_SHARE is left out entirely.  Everything
dropped is listed in the report (demo_build.backbone_stages writes it to build/demo/data/versions_report.json and
build_log.json).

Calibration of the similarity (measured on Gen, Exod, 1 Sam, Ps, Isa, Prov, chapters of equal counts; word-set
Jaccard against JPS): true pairs median 0.84 (KJV) / 0.73 (Darby) / 0.67 (WEB) / 0.50 (YLT), 5th percentile
0.50 / 0.46 / 0.33 / 0.27; the next verse's text: median 0.11-0.13, 95th percentile 0.25-0.30.  The floor alone
does not separate them; the floor plus "above every neighbour" does: the KJV keeps 22,295 of the 22,413 checked
TRAIN/DEV verses (99.5 %), the same KJV with every verse id moved by one keeps 2 (+1) or 5 (-1).

TEST books (demo_build.data.TEST_BOOKS) are never read: PythonBibleReader refuses them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from demo_build.data import _PB_NAMES, TEST_BOOKS, VersePair, split_of

# short name (used in file names and flags) -> pythonbible.Version member; pip package pythonbible-<short name>
VERSIONS = {
    "akjv": "AMERICAN_KING_JAMES", "asv": "AMERICAN_STANDARD", "bbe": "BIBLE_IN_BASIC_ENGLISH", "dar": "DARBY",
    "kjv": "KING_JAMES", "leeser": "LEESER", "nheb": "NEW_HEART", "rwebster": "REVISED_WEBSTER", "wbs": "WEBSTER",
    "web": "WORLD_ENGLISH", "ylt": "YOUNGS",
}
SIMILARITY_FLOOR = 0.2
CHAPTER_MIN_SHARE = 0.5
VERSION_MIN_SHARE = 0.7

# Hebrew chapter:verses = the KJV-numbered chapter:first verse they start at.  From the standard tables of
# Hebrew/English versification differences (see ../shared/notes/versification.md); every pair is still verified.
BOUNDARY_MAPS_TEXT = """
Gen 31:1-54 = 31:1 | Gen 32:1-1 = 31:55 | Gen 32:2-33 = 32:1
Exod 7:1-25 = 7:1 | Exod 7:26-29 = 8:1 | Exod 8:1-28 = 8:5 | Exod 21:1-36 = 21:1 | Exod 21:37-37 = 22:1
Exod 22:1-30 = 22:2
Lev 5:1-19 = 5:1 | Lev 5:20-26 = 6:1 | Lev 6:1-23 = 6:8
Num 16:1-35 = 16:1 | Num 17:1-15 = 16:36 | Num 17:16-28 = 17:1 | Num 25:1-18 = 25:1 | Num 25:19-19 = 26:1
Num 29:1-39 = 29:1 | Num 30:1-1 = 29:40 | Num 30:2-17 = 30:1
Deut 12:1-31 = 12:1 | Deut 13:1-1 = 12:32 | Deut 13:2-19 = 13:1 | Deut 22:1-29 = 22:1 | Deut 23:1-1 = 22:30
Deut 23:2-26 = 23:1 | Deut 28:1-68 = 28:1 | Deut 28:69-69 = 29:1 | Deut 29:1-28 = 29:2
1Sam 21:1-1 = 20:42 | 1Sam 21:2-16 = 21:1 | 1Sam 23:1-28 = 23:1 | 1Sam 24:1-1 = 23:29 | 1Sam 24:2-23 = 24:1
2Sam 18:1-32 = 18:1 | 2Sam 19:1-1 = 18:33 | 2Sam 19:2-44 = 19:1
1Kgs 4:1-20 = 4:1 | 1Kgs 5:1-14 = 4:21 | 1Kgs 5:15-32 = 5:1 | 1Kgs 22:1-43 = 22:1 | 1Kgs 22:45-54 = 22:44
2Kgs 11:1-20 = 11:1 | 2Kgs 12:1-1 = 11:21 | 2Kgs 12:2-22 = 12:1
1Chr 5:1-26 = 5:1 | 1Chr 5:27-41 = 6:1 | 1Chr 6:1-66 = 6:16 | 1Chr 12:1-3 = 12:1 | 1Chr 12:6-41 = 12:5
2Chr 1:1-17 = 1:1 | 2Chr 1:18-18 = 2:1 | 2Chr 2:1-17 = 2:2 | 2Chr 13:1-22 = 13:1 | 2Chr 13:23-23 = 14:1
2Chr 14:1-14 = 14:2
Neh 3:1-32 = 3:1 | Neh 3:33-38 = 4:1 | Neh 4:1-17 = 4:7 | Neh 7:1-67 = 7:1 | Neh 7:68-72 = 7:69
Neh 9:1-37 = 9:1 | Neh 10:1-1 = 9:38 | Neh 10:2-40 = 10:1
Job 40:1-24 = 40:1 | Job 40:25-32 = 41:1 | Job 41:1-26 = 41:9
Eccl 4:1-16 = 4:1 | Eccl 4:17-17 = 5:1 | Eccl 5:1-19 = 5:2
Isa 8:1-22 = 8:1 | Isa 8:23-23 = 9:1 | Isa 9:1-20 = 9:2 | Isa 64:1-11 = 64:2
Jer 8:1-22 = 8:1 | Jer 8:23-23 = 9:1 | Jer 9:1-25 = 9:2
Ezek 20:1-44 = 20:1 | Ezek 21:1-5 = 20:45 | Ezek 21:6-37 = 21:1
Dan 3:1-30 = 3:1 | Dan 3:31-33 = 4:1 | Dan 4:1-34 = 4:4 | Dan 5:1-30 = 5:1 | Dan 6:1-1 = 5:31 | Dan 6:2-29 = 6:1
Hos 1:1-9 = 1:1 | Hos 2:1-2 = 1:10 | Hos 2:3-25 = 2:1 | Hos 11:1-11 = 11:1 | Hos 12:1-1 = 11:12
Hos 12:2-15 = 12:1 | Hos 13:1-15 = 13:1 | Hos 14:1-1 = 13:16 | Hos 14:2-10 = 14:1
Joel 2:1-27 = 2:1 | Joel 3:1-5 = 2:28 | Joel 4:1-21 = 3:1
Nah 1:1-14 = 1:1 | Nah 2:1-1 = 1:15 | Nah 2:2-14 = 2:1
Zech 1:1-17 = 1:1 | Zech 2:1-4 = 1:18 | Zech 2:5-17 = 2:1
Mal 3:1-18 = 3:1 | Mal 3:19-24 = 4:1
"""
_MAP_ITEM = re.compile(r"^(\w+) (\d+):(\d+)-(\d+) = (\d+):(\d+)$")
_WORD = re.compile(r"[a-z]+")


def parse_boundary_maps(text: str = BOUNDARY_MAPS_TEXT) -> dict[tuple[str, int], dict[int, tuple[int, int]]]:
    """-> {(book, Hebrew chapter): {Hebrew verse: (KJV chapter, KJV verse)}}."""
    maps: dict = defaultdict(dict)
    for item in (s.strip() for s in text.replace("\n", "|").split("|")):
        if not item:
            continue
        m = _MAP_ITEM.match(item)
        if not m:
            raise ValueError(f"bad boundary map item {item!r}")
        book, ch, first, last, kch, kv = m.group(1), *map(int, m.groups()[1:])
        for i, v in enumerate(range(first, last + 1)):
            maps[(book, ch)][v] = (kch, kv + i)
    return dict(maps)


BOUNDARY_MAPS = parse_boundary_maps()


def clean_version_text(text: str) -> str:
    """pythonbible text -> plain English: cp1252 punctuation stored as C1 controls (Leeser), italics brackets
    (KJV family), Darby's title braces, BBE's inline verse marks, sentences glued without a space (WEB, NHEB)."""
    text = re.sub(r"[\x80-\x9f]", lambda m: bytes([ord(m.group())]).decode("cp1252", "replace"), text)
    text = re.sub(r"\\\d+:\d+\\", " ", text)
    text = re.sub(r"[\[\]{}]", "", text)
    text = re.sub(r"([a-z][.;:!?])([A-Z])", r"\1 \2", text)
    return re.sub(r"\s+", " ", text).strip()


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def similarity(a: frozenset, b: frozenset) -> float:
    """Word-set Jaccard."""
    return len(a & b) / len(a | b) if a or b else 0.0


class PythonBibleReader:
    """One version's verses by (book code, KJV chapter, KJV verse), cleaned; refuses the test books."""

    def __init__(self, short_name: str):
        import pythonbible as pb  # noqa: PLC0415 -- optional (demo-build extra): only the data stage reads versions

        self.pb, self.name = pb, short_name
        self.version = getattr(pb.Version, VERSIONS[short_name])

    def _book(self, code: str):
        if code in TEST_BOOKS:
            raise ValueError(f"test book {code} must never be read into training data")
        return getattr(self.pb.Book, _PB_NAMES[code])

    def count(self, code: str, chapter: int) -> int:
        """KJV verse count of the chapter (0 when the KJV has no such chapter, e.g. Joel 4)."""
        book = self._book(code)
        try:
            return self.pb.get_number_of_verses(book, chapter)
        except self.pb.InvalidChapterError:
            return 0

    def text(self, code: str, chapter: int, verse: int) -> str:
        book = self._book(code)
        try:
            return clean_version_text(self.pb.get_verse_text(book.value * 1_000_000 + chapter * 1000 + verse,
                                                              version=self.version))
        except (self.pb.VersionMissingVerseError, self.pb.InvalidVerseError):
            return ""

    def new_testament(self) -> list[str]:
        """The version's New Testament, one string per chapter ([] when it has none, e.g. Leeser)."""
        out = []
        for book in (b for b in self.pb.Book if 40 <= b.value <= 66):
            for ch in range(1, self.pb.get_number_of_chapters(book) + 1):
                verses = []
                for v in range(1, self.pb.get_number_of_verses(book, ch) + 1):
                    try:
                        verses.append(self.pb.get_verse_text(book.value * 1_000_000 + ch * 1000 + v,
                                                             version=self.version))
                    except (self.pb.VersionMissingVerseError, self.pb.InvalidVerseError):
                        continue
                text = clean_version_text(" ".join(verses))
                if text:
                    out.append(text)
        return out


@dataclass
class VersionReport:
    version: str
    checked: int = 0  # Hebrew verses with JPS English in the checked chapters
    kept: int = 0
    chapters_kept: int = 0
    chapters_dropped: list[dict] = field(default_factory=list)  # {"chapter": "Gen 32", "reason": ...}
    maps_used: dict = field(default_factory=dict)  # candidate name -> chapters
    included: bool = False

    @property
    def share(self) -> float:
        return self.kept / self.checked if self.checked else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "share": round(self.share, 4)}


def chapter_candidates(book: str, chapter: int, hebrew_count: int, kjv_count: int) -> list[tuple[str, dict]]:
    """(name, {Hebrew verse: (KJV chapter, KJV verse)}) for every map that may apply, documented ones only."""
    out = []
    if hebrew_count == kjv_count:
        out.append(("same", {v: (chapter, v) for v in range(1, hebrew_count + 1)}))
    if (book, chapter) in BOUNDARY_MAPS:
        out.append(("boundary", BOUNDARY_MAPS[(book, chapter)]))
    shift = hebrew_count - kjv_count
    if book == "Ps" and shift in (1, 2) and kjv_count:
        out.append((f"psalm-title-{shift}", {v: (chapter, v - shift) for v in range(shift + 1, hebrew_count + 1)}))
    return out


def verify_map(jps: dict[int, str], mapping: dict, read) -> list[tuple[int, tuple[int, int], str]]:
    """Pairs of `mapping` (Hebrew verse -> KJV ref) whose version text passes: similarity to the JPS verse above the
    floor and above each neighbour's.  read(ch, v) -> cleaned text ("" when absent)."""
    jw = {v: words(t) for v, t in jps.items()}
    kept = []
    for v, (kch, kv) in sorted(mapping.items()):
        if v not in jw:
            continue
        text = read(kch, kv)
        if not text:
            continue
        tw = words(text)
        s = similarity(jw[v], tw)
        rivals = [similarity(jw[v], words(read(kch, kv + d))) for d in (-1, 1) if kv + d >= 1]
        rivals += [similarity(jw[v + d], tw) for d in (-1, 1) if v + d in jw]
        if s >= SIMILARITY_FLOOR and all(s > r for r in rivals):
            kept.append((v, (kch, kv), text))
    return kept


def verify_version(reader, jps_pairs: list[VersePair], hebrew_counts: dict | None = None,
                   ) -> tuple[VersionReport, list[dict]]:
    """Verify one version against the JPS pairs (Hebrew numbering; TRAIN/DEV books only).  hebrew_counts:
    {(book, chapter): Hebrew verse count} (default: the highest verse number in jps_pairs).  Returns the report and
    the kept pairs as dicts (VersePair fields + version)."""
    by_chapter: dict = defaultdict(dict)
    for p in jps_pairs:
        if p.en and split_of(p.book) != "test":
            by_chapter[(p.book, p.chapter)][p.verse] = p
    counts = hebrew_counts or {k: max(v) for k, v in by_chapter.items()}
    report, pairs = VersionReport(reader.name), []
    cache: dict = {}

    for (book, ch), verses in by_chapter.items():
        def read(kch, kv, book=book):
            key = (book, kch, kv)
            if key not in cache:
                cache[key] = reader.text(book, kch, kv) if 1 <= kv <= reader.count(book, kch) else ""
            return cache[key]

        jps = {v: p.en for v, p in verses.items()}
        report.checked += len(jps)
        candidates = chapter_candidates(book, ch, counts[(book, ch)], reader.count(book, ch))
        if not candidates:
            report.chapters_dropped.append({"chapter": f"{book} {ch}", "reason": (
                f"verse counts differ (Hebrew {counts[(book, ch)]}, KJV {reader.count(book, ch)}), "
                "no documented map")})
            continue
        tried = [(name, mapping, verify_map(jps, mapping, read)) for name, mapping in candidates]
        name, mapping, kept = max(tried, key=lambda t: len(t[2]))  # first (the plainest map) on ties
        mapped = sum(1 for v in mapping if v in jps)
        if len(kept) < CHAPTER_MIN_SHARE * mapped:
            report.chapters_dropped.append({"chapter": f"{book} {ch}", "reason": (
                f"most pairs fail: {len(kept)}/{mapped} verified under the best map ({name})")})
            continue
        report.chapters_kept += 1
        report.kept += len(kept)
        report.maps_used[name] = report.maps_used.get(name, 0) + 1
        for v, _, text in kept:
            p = verses[v]
            pairs.append({"id": p.id, "book": book, "chapter": ch, "verse": v, "he": p.he, "en": text,
                          "version": reader.name})
    report.included = report.share >= VERSION_MIN_SHARE
    return report, pairs


def verify_versions(jps_pairs: list[VersePair], names=None, hebrew_counts: dict | None = None,
                    reader_factory=PythonBibleReader, log=print):
    """-> (report dict for the JSON file, {version: kept pairs}) for the versions that pass VERSION_MIN_SHARE."""
    reports, kept = {}, {}
    for name in names or VERSIONS:
        rep, pairs = verify_version(reader_factory(name), jps_pairs, hebrew_counts)
        reports[name] = rep.as_dict()
        log(f"[versions] {name}: {rep.kept}/{rep.checked} verses ({rep.share:.1%}), "
            f"{rep.chapters_kept} chapters kept, {len(rep.chapters_dropped)} dropped"
            + ("" if rep.included else f" -> LEFT OUT (below {VERSION_MIN_SHARE:.0%})"))
        if rep.included:
            kept[name] = pairs
    report = {"similarity": "word-set Jaccard vs JPS 1917 of the same Hebrew verse",
              "similarity_floor": SIMILARITY_FLOOR, "chapter_min_share": CHAPTER_MIN_SHARE,
              "version_min_share": VERSION_MIN_SHARE, "included": sorted(kept),
              "left_out": sorted(set(reports) - set(kept)), "versions": reports}
    return report, kept

"""Many sentences at once: the Batch tab's service (Train-tab ingestion and bad files, the cap, the table, the CSV)
and the `python -m evaluation.batch` command."""

from __future__ import annotations

import csv
import io

import pytest

from evaluation import batch as batch_cli
from tall_app.batching import run_batch
from tall_app.models import NO_CHECKPOINT
from tests.helpers import tiny_service

SENTENCES = ["ויהי דבר יהוה אל יונה בן אמתי לאמר", "קום לך אל נינוה העיר הגדולה", "ויקם יונה לברח תרשישה מלפני יהוה",
             "וירד יפו וימצא אניה באה תרשיש", "ויהוה הטיל רוח גדולה אל הים"]


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    return tiny_service(tmp_path_factory.mktemp("batch"))


def test_batch_predicts_every_last_word_with_progress(svc, tmp_path):
    path = tmp_path / "jonah.txt"
    path.write_text("\n\n".join(SENTENCES) + "\n\nhello english only\n", encoding="utf-8")  # one blank line: a text
    progress = []
    out = svc.batch(str(path), "tiny", NO_CHECKPOINT, on_progress=lambda done, total: progress.append((done, total)))
    assert "**5 kept**, 1 dropped" in out.report  # the ingestion report comes first (the English text dropped)
    assert [r[1] for r in out.rows] == [s.split()[-1] for s in SENTENCES]  # gold = each sentence's last word
    assert [r[0] for r in out.rows] == [" ".join(s.split()[:-1]) for s in SENTENCES]
    assert progress[-1] == (5, 5) and all(a <= b for (a, _), (b, _) in zip(progress, progress[1:]))
    assert "exact match" in out.summary and "Most frequent predictions" in out.summary
    with out.csv_path.open(encoding="utf-8") as fh:
        written = list(csv.reader(fh))
    assert written[0] == batch_cli.CSV_HEADERS and len(written) == 6
    assert all(len(r[5].split(" | ")) == 5 for r in written[1:])  # the top-5 column


@pytest.mark.parametrize("name, content, match", [
    ("empty.txt", b"", "empty"), ("bin.txt", b"\x00\x01\x02binary\x00" * 10, "binary"),
    ("utf16.txt", "שלום עולם ומלואו".encode("utf-16"), "UTF-16|UTF-8|binary"),
    ("legacy.txt", "שלום עולם ומלואו".encode("cp1255"), "UTF-8"),
    ("english.txt", b"hello there my friend\n", "no usable"),
    ("table.csv", "words\nשלום עולם ומלואו\n".encode(), "text"),
    ("corpus.pdf", b"%PDF", "unsupported file type"),
])
def test_bad_files_are_refused_with_the_train_tabs_messages(svc, tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    before = set(svc.export_dir.iterdir())
    with pytest.raises(ValueError, match=match):
        svc.batch(str(path), "tiny", NO_CHECKPOINT)
    assert set(svc.export_dir.iterdir()) == before  # nothing half-written


def test_oversize_and_over_the_cap(svc, tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("\n\n".join(SENTENCES * 400), encoding="utf-8")
    svc.max_upload_bytes, saved = 1000, svc.max_upload_bytes
    try:
        with pytest.raises(ValueError, match="over the cap"):
            svc.batch(str(path), "tiny", NO_CHECKPOINT)
    finally:
        svc.max_upload_bytes = saved
    with pytest.raises(ValueError, match="at most 3 at a time.*python -m evaluation.batch"):
        run_batch(None, SENTENCES, "", tmp_path, cap=3)  # refused before the model is touched


def test_command_line_streams_csv(tmp_path, capsys):
    path = tmp_path / "two.jsonl"
    path.write_text('{"text": "ויהי דבר יהוה אל יונה בן אמתי לאמר"}\n{"text": "קום לך אל נינוה העיר הגדולה"}\n',
                    encoding="utf-8")
    out = tmp_path / "out.csv"
    assert batch_cli.main(["--checkpoint", "demo", "--data", str(path), "--out", str(out), "--no-progress"]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["gold"] for r in rows] == ["לאמר", "הגדולה"] and all(r["prediction"] for r in rows)
    assert not (tmp_path / "out.csv.part").exists()
    assert "2 sentences predicted" in capsys.readouterr().err

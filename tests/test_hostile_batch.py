"""`formscan extract` over bad input: every bad file or page gets a line with its own kind, every good page
its right record, the batch always finishes, and the exit status says whether anything could be read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hostile_inputs as hostile
from bench.accuracy import load_truth, score_page
from models import PageResult

TRUTH = load_truth(hostile.TRUTH)


def formscan(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    return subprocess.run(
        [sys.executable, "-m", "formscan", "extract", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def outcomes(out: Path) -> dict[tuple[str, int | None], dict]:
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        PageResult.model_validate(line)
    by_page = {(Path(l["source"]["file"]).name, l["source"]["page"]): l for l in lines}
    assert len(by_page) == len(lines), "a page was reported twice"
    return by_page


def build_hostile_batch(folder: Path) -> dict[tuple[str, int | None], str]:
    """Write every kind of bad input, mixed with good forms, into ``folder``.

    Returns the expected outcome per (file name, page): an error kind, or ``truth:<fixture>``
    for a page that must give that fixture's record exactly.
    """
    folder.mkdir()
    scans = hostile.SCANS
    work = folder.parent / "parts"
    work.mkdir()
    letter_pdf = hostile.save_pdf(work / "letter.pdf", [hostile.cover_letter()])
    blank_pdf = hostile.save_pdf(work / "blank.pdf", [hostile.blank_sheet(seed=1)])
    expected: dict[tuple[str, int | None], str] = {}

    (folder / "empty.pdf").write_bytes(b"")
    expected["empty.pdf", None] = "corrupt"
    hostile.truncated_pdf(folder / "truncated.pdf", letter_pdf)
    expected["truncated.pdf", None] = "corrupt"
    hostile.broken_xref_pdf(folder / "broken xref.pdf", letter_pdf)
    expected["broken xref.pdf", 1] = "no_table"  # rebuilt by poppler and read: it is the cover letter
    hostile.encrypted_pdf(folder / "locked.pdf", scans / "seed-1.pdf", user_password="secret")
    expected["locked.pdf", None] = "encrypted"
    hostile.encrypted_pdf(folder / "owner-only.pdf", blank_pdf, user_password="")
    expected["owner-only.pdf", 1] = "blank_page"  # opened without a password and read
    (folder / "notes.pdf").write_text("会议纪要：不是扫描件\n", encoding="utf-8")
    expected["notes.pdf", None] = "unsupported"
    hostile.cover_letter().save(folder / "photo.pdf", "PNG", dpi=(100, 100))  # a PNG named .pdf
    expected["photo.pdf", 1] = "no_table"
    hostile.huge_page_pdf(folder / "huge.pdf", side_px=20_000, dpi=100)
    expected["huge.pdf", 1] = "too_large"
    hostile.png_bomb(folder / "bomb.png", side_px=40_000)
    expected["bomb.png", None] = "too_large"
    sheets = [hostile.blank_sheet(seed=2), hostile.cover_letter(), hostile.drawing_without_table()]
    sheets[0].save(folder / "scans.tiff", save_all=True, append_images=sheets[1:], dpi=(100, 100))
    expected.update({("scans.tiff", 1): "blank_page", ("scans.tiff", 2): "no_table", ("scans.tiff", 3): "no_table"})
    hostile.save_pdf(folder / "contacts.pdf", [hostile.other_table()])
    expected["contacts.pdf", 1] = "not_a_form"
    hostile.text_only_pdf(folder / "cover letter.pdf", ["Dear colleagues,", "", "enclosed are our 2020",
                                                         "self-evaluation forms.", "", "Yours sincerely"])
    expected["cover letter.pdf", 1] = "no_table"

    # Good forms: seed-4 turned as the scanner delivered it, ...
    hostile.rotated_pdf(folder / "自评表 转90度.pdf", scans / "seed-4.pdf", 90)
    hostile.rotated_pdf(folder / "rotated 270.pdf", scans / "seed-4.pdf", 270)
    upright, dpi = hostile.fixture_page_image("seed-4.pdf")
    Image.fromarray(np.rot90(np.asarray(upright), 2)).save(folder / "自评表 倒置 180.png", dpi=(dpi, dpi))
    for name in ("自评表 转90度.pdf", "rotated 270.pdf", "自评表 倒置 180.png"):
        expected[name, 1] = "truth:seed-4.pdf"
    # ... two forms with a separator sheet between them, and the same file again under another name, ...
    hostile.combined_pdf(folder / "two forms.pdf", [scans / "seed-2.pdf", blank_pdf, scans / "seed-3.pdf"])
    expected.update({("two forms.pdf", 1): "truth:seed-2.pdf", ("two forms.pdf", 2): "blank_page",
                     ("two forms.pdf", 3): "truth:seed-3.pdf"})
    (folder / "两份表 副本.pdf").write_bytes((folder / "two forms.pdf").read_bytes())
    expected["两份表 副本.pdf", None] = "duplicate"
    # ... and a scan that OCR software already gave a (wrong) text layer: the image is what counts.
    hostile.with_text_layer(folder / "seed-1 with text layer.pdf", scans / "seed-1.pdf",
                            ["Project name: NOT THE REAL NAME", "Year 1999"])
    expected["seed-1 with text layer.pdf", 1] = "truth:seed-1.pdf"

    for name, kind in hostile.make_unreadable_entries(folder / "unreadable").items():
        expected[name, None] = kind
    return expected


def test_a_batch_of_every_bad_input_mixed_with_good_forms(tmp_path):
    expected = build_hostile_batch(tmp_path / "batch")
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    # One worker: under `pytest -n 2` this test then takes one core like the others.
    done = formscan(str(tmp_path / "batch"), "-o", str(out), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    got = outcomes(out)
    assert set(got) == set(expected), "pages lost or invented"
    wrong = []
    for key, want in sorted(expected.items(), key=str):
        line = got[key]
        if want.startswith("truth:"):
            truth = TRUTH[want.removeprefix("truth:"), 1]
            if "record" not in line:
                wrong.append((key, want, line["error"]))
            elif score := score_page(truth, line, key[0]).wrong:
                wrong.append((key, want, score))
        elif line.get("error", {}).get("kind") != want:
            wrong.append((key, want, line.get("error") or "a record"))
    assert wrong == []
    assert "NOT THE REAL NAME" not in json.dumps(got["seed-1 with text layer.pdf", 1], ensure_ascii=False)
    assert "two forms.pdf" in got["两份表 副本.pdf", None]["error"]["message"]
    print(f"hostile batch: {len(expected)} outcomes in {time.monotonic() - started:.1f} s")


def test_a_page_over_the_timeout_is_stopped_and_the_next_pages_are_read(tmp_path):
    # A real form needs several seconds of OCR: with a 1.5 s limit it is the stuck page.
    blank = [hostile.save_pdf(tmp_path / f"blank-{i}.pdf", [hostile.blank_sheet(seed=10 + i)]) for i in range(2)]
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    done = formscan(str(hostile.SCANS / "seed-4.pdf"), *map(str, blank), "-o", str(out),
                    "--workers", "1", "--page-timeout", "1.5")
    elapsed = time.monotonic() - started
    got = outcomes(out)
    assert got["seed-4.pdf", 1]["error"]["kind"] == "timeout"
    assert "1.5 s" in got["seed-4.pdf", 1]["error"]["message"]
    # The one worker was replaced: the pages after the stuck one were still read.
    assert got["blank-0.pdf", 1]["error"]["kind"] == got["blank-1.pdf", 1]["error"]["kind"] == "blank_page"
    assert done.returncode == 1, done.stderr  # nothing gave a record
    assert elapsed < 60


def test_limits_set_on_the_command_line(tmp_path):
    frames = [hostile.blank_sheet(seed=s) for s in range(3)]
    frames[0].save(tmp_path / "three pages.tiff", save_all=True, append_images=frames[1:], dpi=(100, 100))
    hostile.save_pdf(tmp_path / "one page.pdf", [hostile.cover_letter()])  # 827 x 1169 px at 100 dpi
    hostile.save_pdf(tmp_path / "blank.pdf", [hostile.blank_sheet(seed=7)])
    out = tmp_path / "out.jsonl"
    done = formscan(str(tmp_path / "three pages.tiff"), str(tmp_path / "one page.pdf"), str(tmp_path / "blank.pdf"),
                    "-o", str(out), "--max-pages-per-file", "2", "--max-pixels", "900000", "--workers", "1")
    got = outcomes(out)
    assert got["three pages.tiff", None]["error"]["kind"] == "too_many_pages"
    assert got["one page.pdf", 1]["error"]["kind"] == "too_large"
    assert "900000" in got["one page.pdf", 1]["error"]["message"]
    assert got["blank.pdf", 1]["error"]["kind"] == "too_large"
    assert len(got) == 3
    assert done.returncode == 1  # nothing could be read


@pytest.mark.parametrize(
    "option", [["--max-pixels", "0"], ["--page-timeout", "-1"], ["--max-pages-per-file", "-2"], ["--page-timeout", "x"]]
)
def test_bad_limits_are_bad_arguments(tmp_path, option):
    done = formscan(str(tmp_path), "-o", str(tmp_path / "out.jsonl"), *option)
    assert done.returncode == 2
    assert option[0] in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_only_bad_files_exit_non_zero_with_a_line_each(tmp_path):
    (tmp_path / "empty.pdf").write_bytes(b"")
    hostile.encrypted_pdf(tmp_path / "locked.pdf", hostile.save_pdf(tmp_path / "x.pdf", [hostile.a4(50)]), "pw")
    (tmp_path / "x.pdf").unlink()
    out = tmp_path / "out.jsonl"
    done = formscan(str(tmp_path), "-o", str(out))
    assert done.returncode == 1
    assert {k: v["error"]["kind"] for k, v in outcomes(out).items()} == {
        ("empty.pdf", None): "corrupt", ("locked.pdf", None): "encrypted"}

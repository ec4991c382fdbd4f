"""Each kind of bad input, one at a time, below the command line: the specific error or the right reading.

The whole batch (all of them mixed with good forms, through ``formscan extract``) is in
test_hostile_batch.py; the pages that need OCR to be judged are read only there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import hostile_inputs as hostile
from pipeline.blank import MAX_INK_FRACTION, ink_fraction, is_blank
from pipeline.errors import FormscanError
from pipeline.extract import error_result, extract_document, extract_page_full, plan_pages
from pipeline.ocr import CellText
from pipeline.read import Page, read_pages


def marked_page(dpi: int = 100) -> Image.Image:
    """A small page with one black bar at a known place, to check what was read."""
    page = hostile.a4(dpi)
    page.paste(0, (100, 100, 300, 140))
    return page


def kinds(failed) -> dict[str, str]:
    return {os.path.basename(r.source.file): r.error.kind for r in failed}


def read_error(path, **limits) -> FormscanError:
    with pytest.raises(FormscanError) as caught:
        list(read_pages(path, **limits))
    assert caught.value.file == str(path)
    return caught.value


class NoReader:
    """Stands in for the OCR engines where a page must be refused before any cell is read."""

    def read(self, *_):
        raise AssertionError("no cell should be read on this page")

    first_reading = second_opinion = second_opinions = read
    paddle = tesseract = property(read)


@pytest.fixture
def good_pdf(tmp_path):
    return hostile.save_pdf(tmp_path / "good.pdf", [marked_page()])


def test_empty_file_is_corrupt(tmp_path):
    (tmp_path / "empty.pdf").write_bytes(b"")
    assert read_error(tmp_path / "empty.pdf").kind == "corrupt"


def test_truncated_pdf_is_corrupt(tmp_path, good_pdf):
    path = hostile.truncated_pdf(tmp_path / "truncated.pdf", good_pdf)
    pages, failed = plan_pages([path])
    assert pages == [] and kinds(failed) == {"truncated.pdf": "corrupt"}


def test_pdf_with_a_broken_xref_is_rebuilt_and_read(tmp_path, good_pdf):
    path = hostile.broken_xref_pdf(tmp_path / "broken xref.pdf", good_pdf)
    assert b"startxref\n99999999" in path.read_bytes()
    (page,) = read_pages(path)  # poppler rebuilds the cross-reference table from the objects
    assert page.image[120, 200] < 60 and page.image[20, 20] > 200


def test_pdf_with_a_user_password_is_encrypted(tmp_path, good_pdf):
    path = hostile.encrypted_pdf(tmp_path / "locked.pdf", good_pdf, user_password="secret")
    pages, failed = plan_pages([path])
    assert pages == [] and kinds(failed) == {"locked.pdf": "encrypted"}
    assert read_error(path).kind == "encrypted"


def test_pdf_encrypted_with_only_an_owner_password_opens_and_is_read(tmp_path, good_pdf):
    path = hostile.encrypted_pdf(tmp_path / "owner-only.pdf", good_pdf, user_password="")
    assert b"/Encrypt" in path.read_bytes()
    (page,) = read_pages(path)
    assert page.image[120, 200] < 60


def test_text_file_named_pdf_is_unsupported(tmp_path):
    (tmp_path / "notes.pdf").write_text("会议纪要: not a scan at all\n", encoding="utf-8")
    assert read_error(tmp_path / "notes.pdf").kind == "unsupported"


def test_png_named_pdf_is_read_as_the_image_it_is(tmp_path):
    marked_page().save(tmp_path / "photo.pdf", "PNG", dpi=(100, 100))
    pages, failed = plan_pages([tmp_path / "photo.pdf"])
    assert failed == [] and pages == [(str(tmp_path / "photo.pdf"), 1)]
    (page,) = read_pages(tmp_path / "photo.pdf")
    assert page.dpi == 100 and page.image[120, 200] == 0


def _memory_used_reading(path) -> tuple[str, int]:
    """Count and read ``path`` in a fresh process: the error kinds, and how many MB the peak
    memory grew by while doing so (decoding a 40000² image would take 1600 MB)."""
    code = (
        "import resource, sys\n"
        "from pipeline.errors import FormscanError\n"
        "from pipeline.read import count_pages, read_pages\n"
        "def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "before, kinds = peak(), []\n"
        "for step in (lambda: count_pages(sys.argv[1]), lambda: list(read_pages(sys.argv[1]))):\n"
        "    try:\n"
        "        step()\n"
        "        kinds.append('read')\n"
        "    except FormscanError as exc:\n"
        "        kinds.append(exc.kind)\n"
        "print('/'.join(kinds), peak() - before)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kind, megabytes = done.stdout.split()
    return kind, int(megabytes)


def test_a_20000_px_square_pdf_page_is_refused_before_rendering(tmp_path, monkeypatch):
    path = hostile.huge_page_pdf(tmp_path / "huge.pdf", side_px=20_000, dpi=100)
    assert path.stat().st_size < 200_000
    import pdf2image

    monkeypatch.setattr(pdf2image, "convert_from_path", lambda *a, **k: pytest.fail("the page was rendered"))
    error = read_error(path)
    assert error.kind == "too_large" and error.page == 1 and "20000x20000" in error.detail
    # The page is counted (no pixel is allocated for that), then refused at no cost in memory.
    kind, megabytes = _memory_used_reading(path)
    assert kind == "read/too_large" and megabytes < 100


def test_a_png_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = hostile.png_bomb(tmp_path / "bomb.png", side_px=40_000)  # 1.6 G pixels in ~300 KB
    assert path.stat().st_size < 1_000_000
    kind, megabytes = _memory_used_reading(path)
    assert kind == "too_large/too_large"
    assert megabytes < 100, f"{megabytes} MB more: the image was decoded"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_max_pixels_is_the_users_limit(tmp_path, good_pdf):
    marked_page().save(tmp_path / "page.png", dpi=(100, 100))  # 827 x 1169 px
    for path in (good_pdf, tmp_path / "page.png"):
        assert len(list(read_pages(path, max_pixels=1_000_000))) == 1
        error = read_error(path, max_pixels=900_000)
        assert error.kind == "too_large" and error.page == 1 and "900000" in error.detail


def test_multi_page_tiff_gives_one_page_each(tmp_path):
    frames = [marked_page(), hostile.blank_sheet(), hostile.a4(100, 0)]
    frames[0].save(tmp_path / "scans.tiff", save_all=True, append_images=frames[1:], dpi=(100, 100))
    pages, failed = plan_pages([tmp_path / "scans.tiff"])
    assert failed == [] and [n for _, n in pages] == [1, 2, 3]
    read = list(read_pages(tmp_path / "scans.tiff", [3]))
    assert [p.number for p in read] == [3] and read[0].image.max() == 0


def test_max_pages_per_file_refuses_longer_files_whole(tmp_path):
    frames = [marked_page(), marked_page(), marked_page()]
    frames[0].save(tmp_path / "three.tiff", save_all=True, append_images=frames[1:])
    pages, failed = plan_pages([tmp_path / "three.tiff"], max_pages_per_file=2)
    assert pages == [] and kinds(failed) == {"three.tiff": "too_many_pages"}
    assert "3 pages" in failed[0].error.message
    pages, failed = plan_pages([tmp_path / "three.tiff"], max_pages_per_file=3)
    assert len(pages) == 3 and failed == []


def test_a_blank_page_is_blank_page_before_any_reading():
    assert is_blank(np.asarray(hostile.blank_sheet(seed=3)))
    page = Page("sheet.pdf", 2, np.asarray(hostile.blank_sheet()), 100)
    result = extract_page_full(page, NoReader()).result
    assert result.error.kind == "blank_page" and result.source.page == 2


def test_pages_with_print_are_not_blank():
    for image in (hostile.cover_letter(), hostile.drawing_without_table(), hostile.other_table()):
        assert not is_blank(np.asarray(image))
    form, _ = hostile.fixture_page_image("seed-4.pdf")
    assert ink_fraction(np.asarray(form)) > 20 * MAX_INK_FRACTION  # far from the line


class LetterReader(NoReader):
    """Reads the band where a form's title would be as a letter's heading; no cell is read."""

    def __init__(self):
        self.header_reads = 0

    class _Engine:
        def __init__(self, owner):
            self.owner = owner

        def read(self, _image):
            self.owner.header_reads += 1
            return CellText("关于报送2020年度项目支出绩效自评材料的函", 0.9, "tesseract")

    @property
    def tesseract(self):
        return self._Engine(self)

    paddle = tesseract


@pytest.mark.parametrize("image", [hostile.cover_letter, hostile.drawing_without_table], ids=["letter", "drawing"])
def test_a_page_without_a_table_is_no_table(image):
    page = Page("letter.pdf", 1, np.asarray(image()), 100)
    reader = LetterReader()
    result = extract_page_full(page, reader).result
    assert result.error.kind == "no_table"
    # only the top of the page is read, for a form's title: a form whose table was lost is still a form
    assert reader.header_reads <= 2


def test_the_same_bytes_under_a_second_name_are_a_duplicate(tmp_path, good_pdf):
    copy = tmp_path / "副本 of good.pdf"
    copy.write_bytes(good_pdf.read_bytes())
    other = hostile.save_pdf(tmp_path / "other.pdf", [hostile.blank_sheet()])
    pages, failed = plan_pages([good_pdf, copy, other, good_pdf])
    assert pages == [(str(good_pdf), 1), (str(other), 1)]
    assert [(r.source.file, r.error.kind) for r in failed] == [(str(copy), "duplicate"), (str(good_pdf), "duplicate")]
    assert str(good_pdf) in failed[0].error.message


def test_names_with_spaces_and_chinese_are_kept_exactly(tmp_path):
    path = tmp_path / "二〇二〇年 项目 自评表 (扫描件).pdf"
    hostile.save_pdf(path, [hostile.blank_sheet()])
    pages, failed = plan_pages([tmp_path])
    assert pages == [(str(path), 1)] and failed == []
    (result,) = extract_document(path, NoReader(), [1])
    assert result.error.kind == "blank_page"
    assert json.loads(result.to_json_line())["source"]["file"] == str(path)
    assert "二〇二〇年 项目 自评表 (扫描件).pdf" in result.to_json_line()  # not \\u-escaped


def test_a_folder_of_unreadable_entries_gives_an_error_for_each(tmp_path):
    expected = hostile.make_unreadable_entries(tmp_path / "scans")
    hostile.save_pdf(tmp_path / "scans" / "fine.pdf", [marked_page()])
    pages, failed = plan_pages([tmp_path / "scans"])
    assert pages == [(str(tmp_path / "scans" / "fine.pdf"), 1)]
    assert kinds(failed) == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod-000 file anyway")
def test_a_file_without_read_permission_is_unreadable(tmp_path, good_pdf):
    good_pdf.chmod(0)
    pages, failed = plan_pages([good_pdf])
    assert kinds(failed) == {"good.pdf": "unreadable"}


def test_a_file_that_vanishes_after_planning_is_not_found(tmp_path, good_pdf):
    pages, failed = plan_pages([good_pdf])
    assert pages == [(str(good_pdf), 1)]
    good_pdf.unlink()  # another process moved it away mid-batch
    (result,) = extract_document(good_pdf, NoReader(), [1])
    assert result.error.kind == "not_found" and result.source.page == 1


def test_every_error_names_its_file_and_page(tmp_path):
    error = read_error(hostile.huge_page_pdf(tmp_path / "big.pdf", side_px=20_000))
    line = json.loads(error_result(error, str(tmp_path / "big.pdf")).to_json_line())
    assert line["source"] == {"file": str(tmp_path / "big.pdf"), "page": 1}
    assert line["error"]["kind"] == "too_large" and line["error"]["message"]

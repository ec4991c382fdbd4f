"""Each repair pinned on real cells cut from the committed fixture scans, against their truth."""

import json
from pathlib import Path

import pytest

from bench.ocr_on_true_grid import true_grid
from pipeline.cell_image import prepare_cell
from pipeline.deskew import rotate
from pipeline.ocr import CellReader
from pipeline.read import read_pages
from pipeline.repair import repair_text
from pipeline.seal import erase_seals

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="module")
def reader() -> CellReader:
    return CellReader()


def page_cells(doc: str):
    truth = json.loads((FIXTURES / "truth" / f"{doc}.json").read_text(encoding="utf-8"))["pages"][0]
    (page,) = read_pages(FIXTURES / "scans" / f"{doc}.pdf")
    image = rotate(page.image, -truth["scan"]["skew_deg"])
    grid = true_grid(truth, page.dpi)
    printed = {(c["row"], c["col"]): c["text"] for c in truth["grid"]["cells"]}
    return image, page, [(cell, printed[(cell.row, cell.col)]) for cell in grid.cells]


def cell_printed(cells, text):
    return next(cell for cell, printed in cells if printed == text)


@pytest.mark.parametrize(
    ("doc", "printed"),
    [
        ("seed-1", "全年预算\n数"),  # a header wrapped in a narrow column
        ("seed-4", "有效提\n高"),  # a target wrapped in a narrow column
        ("seed-3", "年\n度\n总\n体\n目\n标"),  # a vertical label, one character a line
        ("seed-1", "上海市宝山区行政服务中\n心"),  # a unit wrapped by one character
    ],
)
def test_wrapped_cells_read_whole(reader, doc, printed):
    image, page, cells = page_cells(doc)
    got = reader.read(prepare_cell(image, cell_printed(cells, printed).box, page.dpi))
    assert got.text == repair_text(printed) == printed.replace("\n", "")


def test_the_em_dash_cell_is_a_dash_and_empty_cells_are_blank(reader):
    image, page, cells = page_cells("seed-2")
    dash = reader.read(prepare_cell(image, cell_printed(cells, "—").box, page.dpi))
    blank = reader.read(prepare_cell(image, cell_printed(cells, "").box, page.dpi))
    assert (dash.source, dash.text) == ("dash", "—")
    assert blank.source == "blank"


def test_seal_ink_over_a_cell_is_erased_before_reading(reader):
    # seed-3 is a grey scan with the seal stamped over the 满意度 row and the 总分.
    image, page, cells = page_cells("seed-3")
    cell = max((c for c, printed in cells if printed == ">90%"), key=lambda c: c.col)  # 实际完成值
    stamped = reader.read(prepare_cell(image, cell.box, page.dpi))
    erased = reader.read(prepare_cell(erase_seals(image, page.dpi), cell.box, page.dpi))
    assert erased.text == ">90%"
    assert stamped.text != ">90%"  # the seal's arc text is read into the cell without the erasure


def test_print_under_a_grey_seal_keeps_its_thin_strokes(reader):
    # random-07: a grey scan in a serif font (AR PL UMing), the seal over the last rows' 分值 and
    # 得分. Cutting at the level between print and the seal's grey thinned the strokes there: 95.4
    # was agreed on as 95.1, and 25 read as 25d. The print's blurred edge now stays.
    image, page, cells = page_cells("random-07")
    truth = json.loads((FIXTURES / "truth" / "random-07.json").read_text(encoding="utf-8"))["pages"][0]
    erased = erase_seals(image, page.dpi, grids=[true_grid(truth, page.dpi)])
    for printed in ("95.4", "25"):
        cell = max((c for c, text in cells if text == printed), key=lambda c: c.row)  # the row under the seal
        assert reader.read(prepare_cell(erased, cell.box, page.dpi)).text == printed


def test_spaces_in_printed_text_do_not_survive(reader):
    image, page, cells = page_cells("seed-4")
    cell = cell_printed(cells, "24次")
    assert reader.read(prepare_cell(image, cell.box, page.dpi)).text == "24次"


class _CountingPaddle:
    def __init__(self, engine) -> None:
        self.engine, self.calls = engine, 0

    def read(self, cell):
        self.calls += 1
        return self.engine.read(cell)

    def read_many(self, cells):
        self.calls += len(cells)
        return self.engine.read_many(cells)


def test_a_label_tesseract_reads_exactly_skips_the_second_engine(reader):
    from pipeline.assemble import form_vocabulary

    image, page, cells = page_cells("seed-1")
    label = prepare_cell(image, cell_printed(cells, "项目名称").box, page.dpi)
    value = prepare_cell(image, cell_printed(cells, "222.85").box, page.dpi)
    counting = _CountingPaddle(reader.paddle)
    reader.paddle = counting
    try:
        vocabulary = form_vocabulary()
        got = reader.read(label, vocabulary)
        assert (got.text, got.source, counting.calls) == ("项目名称", "vocabulary", 0)
        got = reader.read(value, vocabulary)  # a number is no word of the form: both engines read it
        assert (got.text, counting.calls) == ("222.85", 1) and got.source in ("agreed", "agreed_on_retry")
    finally:
        reader.paddle = counting.engine


def test_numbers_the_arithmetic_vouches_for_are_not_read_twice(reader):
    # The 分值 column adds up to 总分 in Tesseract's own readings: those cells keep them,
    # and PP-OCR is asked only about the rest.
    from models import FormRecord
    from pipeline.extract import extract_page_full
    from pipeline.validate import confirmed_by_rules

    (page,) = read_pages(FIXTURES / "scans" / "seed-2.pdf")
    truth = FormRecord.model_validate(
        json.loads((FIXTURES / "truth" / "seed-2.json").read_text(encoding="utf-8"))["pages"][0]["record"]
    )
    counting = _CountingPaddle(reader.paddle)
    reader.paddle = counting
    try:
        extraction = extract_page_full(page, reader)
    finally:
        reader.paddle = counting.engine
    record = extraction.result.record
    settled = {path for path, ev in extraction.evidence.items() if ev.text.source == "tesseract"}
    assert settled and settled <= confirmed_by_rules(record)
    assert record == truth
    text_cells = sum(1 for text in extraction.cells.values() if text.source not in ("blank", "dash"))
    assert counting.calls <= text_cells - len(settled) + 1  # + the header, when Tesseract missed its year


def test_a_paragraph_tesseract_garbles_as_a_block_is_agreed_line_by_line(reader):
    # Over seed 4's seal Tesseract's block reading differs from PP-OCR's; read line by
    # line it agrees, and that agreement certifies the cell.
    from pipeline.ocr import comparable

    image, page, cells = page_cells("seed-4")
    printed = "及时全面宣传中心相关业务，提高信息传播速度及中心知\n名度。"
    cell = prepare_cell(erase_seals(image, page.dpi, ghost=page.was_colour), cell_printed(cells, printed).box, page.dpi)
    got = reader.read(cell)
    assert got.source == "agreed" and comparable(got.text) == comparable(repair_text(printed))
    assert comparable(got.readings["tesseract"]) != comparable(got.text)
    assert comparable(got.readings["tesseract_lines"]) == comparable(got.text)


def test_line_widths_padded_to_steps_read_as_the_line_itself(reader):
    # PP-OCR's recognition runs on OpenVINO with every line padded on the right to a multiple of
    # REC_WIDTH_STEP (few input shapes, flat memory). The padding must not change what is read:
    # every one-line text cell of a seed form reads the same through the bare session (a
    # full-width bracket may come out half-width, which comparison ignores).
    from rapidocr.ch_ppocr_rec.typings import TextRecInput

    from pipeline.ocr import REC_WIDTH_STEP, comparable, one_line_crop

    recogniser = reader.paddle._ocr._load_rec_model()
    padded = recogniser.session
    assert type(padded._session).__name__ == "OpenVINOInferSession"
    image, page, cells = page_cells("seed-1")
    lines = [line for cell, _ in cells if (line := one_line_crop(prepare_cell(image, cell.box, page.dpi))) is not None]
    widths = set()
    original_call = padded._session.__call__

    def bare(batch):
        widths.add(batch.shape[3])
        return original_call(batch)

    assert len(lines) >= 20
    with_steps = recogniser(TextRecInput(img=lines)).txts
    recogniser.session = bare
    try:
        without = recogniser(TextRecInput(img=lines)).txts
    finally:
        recogniser.session = padded
    assert any(width % REC_WIDTH_STEP for width in widths)  # the bare lines were of free widths
    assert [comparable(t) for t in with_steps] == [comparable(t) for t in without]


def test_a_number_the_grey_seal_erasure_cut_is_read_again_gently(reader):
    # random-07 is a grey scan with serif figures and the seal over the 总分 cell. Erased by level,
    # the 4 of 95.4 lost its thin strokes and read as 1 (the print's blurred edge now stays, see
    # test_print_under_a_grey_seal_keeps_its_thin_strokes). Such a cut reading, which the 得分
    # column does not add up to, is read again from the page erased gently, and the new reading
    # is let in because the column then adds up to it.
    from models import FormRecord
    from pipeline.assemble import assemble_record
    from pipeline.deskew import deskew, detect_orientation, rotate_upright
    from pipeline.extract import cells_changed, extract_page_full, reread_under_seal
    from pipeline.lexicon import Lexicon
    from pipeline.ocr import CellText
    from pipeline.seal import find_seals
    from pipeline.templates import get_template
    from pipeline.validate import confirmed_by_rules

    (page,) = read_pages(FIXTURES / "scans" / "random-07.pdf")
    truth = FormRecord.model_validate(
        json.loads((FIXTURES / "truth" / "random-07.json").read_text(encoding="utf-8"))["pages"][0]["record"]
    )
    extraction = extract_page_full(page, reader)
    assert extraction.result.record == truth
    stamped, _ = deskew(rotate_upright(page.image, detect_orientation(page.image)))
    grid, cell = extraction.grid, extraction.evidence["total_score"].cell
    texts = {**extraction.cells, cell: CellText("95.1", 0.9, "agreed_on_retry", {"paddle": "95.1"})}
    template, lexicon = get_template(), Lexicon.builtin()
    assembled = assemble_record(grid, texts, "", lexicon, template)
    assert "total_score" not in confirmed_by_rules(assembled.record)
    touched = cells_changed(stamped, extraction.image, grid)
    assert cell in touched
    again = reread_under_seal(
        stamped, touched, page.dpi, find_seals(stamped, page.dpi), grid, texts, "", reader, lexicon, template, assembled
    )
    assert again[cell].text == "95.4"


def test_a_number_tesseract_misreads_at_its_usual_scale_is_agreed_at_another(reader):
    # seed-1's 222.85 (200 dpi): with lines scaled to Tesseract's usual 32 px it reads a stray
    # glyph into it; at another scale it reads exactly PP-OCR's 222.85, which certifies the cell in an
    # evidence class of its own (agreed_on_retry), calibrated apart from a first agreement.
    from pipeline.ocr import comparable

    image, page, cells = page_cells("seed-1")
    cell = prepare_cell(erase_seals(image, page.dpi, ghost=page.was_colour), cell_printed(cells, "222.85").box, page.dpi)
    got = reader.read(cell)
    assert (got.source, got.text) == ("agreed_on_retry", "222.85")
    assert comparable(repair_text(got.readings["tesseract"])) != "222.85"
    assert any(comparable(repair_text(text)) == "222.85" for view, text in got.readings.items() if view != "tesseract")


def test_another_view_of_the_cell_vouches_for_the_figures_after_a_comparator(reader):
    # random-07's ≥85% (220 dpi, serif), as the engines once read it under the seal: PP-OCR ≥85%,
    # Tesseract 之859, which through its known misreadings is not 85%; at 40 px Tesseract read
    # 之859%, which is. The glyph shows the bar of ≥, so the cell is settled as comparator_glyph,
    # not left to PP-OCR alone.
    from pipeline.ocr import CellText, settle_comparator

    image, page, cells = page_cells("random-07")
    printed = max((c for c, text in cells if text == "≥85%"), key=lambda c: c.col)  # 实际完成值
    cell = prepare_cell(erase_seals(image, page.dpi, ghost=page.was_colour), printed.box, page.dpi)
    readings = {"paddle": "≥85%", "tesseract": "之859"}
    alone = CellText("≥85%", 0.9, "paddle", readings)
    assert settle_comparator(cell, alone, "之859").source == "paddle"
    views = CellText("≥85%", 0.9, "paddle", {**readings, "tesseract_40px": "之859%"})
    got = settle_comparator(cell, views, "之859")
    assert (got.source, got.text) == ("comparator_glyph", "≥85%")


def test_detection_sees_a_high_dpi_cell_scaled_down_and_recognition_reads_it_whole(reader):
    # seed-3 is a 300-dpi scan. PP-OCR's detection gets its multi-line cells at DETECTION_DPI; the
    # boxes come back in the cell's own pixels, and the lines cut there read as the form prints them.
    from pipeline import ocr

    image, page, cells = page_cells("seed-3")
    assert page.dpi == 300
    detector = reader.paddle._detector
    seen = []
    inner = detector._detector

    def spy(img):
        seen.append(img.shape[:2])
        return inner(img)

    paragraphs = [(prepare_cell(image, cell.box, page.dpi), printed) for cell, printed in cells
                  if printed.count("\n") >= 1 and len(printed.replace("\n", "")) > 6]
    assert len(paragraphs) >= 3
    detector._detector = spy
    try:
        for cell, printed in paragraphs:
            seen.clear()
            got = reader.paddle.read(cell)
            height, width = cell.image.shape
            assert seen and seen[0][1] <= round(width * ocr.DETECTION_DPI / 300) + 1  # scaled down
            assert ocr.comparable(repair_text(got.text)) == ocr.comparable(repair_text(printed))
    finally:
        detector._detector = inner

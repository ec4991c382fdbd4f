from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fixtures.generate import FONTS
from pipeline.cell_image import prepare_cell
from pipeline.grid import Box

DPI = 200
MM = DPI / 25.4


def cell(text: str, *, width_mm=30, height_mm=9, ink=30, rule=True) -> np.ndarray:
    w, h = int(width_mm * MM), int(height_mm * MM)
    img = Image.new("L", (w, h), 245)
    draw = ImageDraw.Draw(img)
    if rule:
        draw.rectangle([0, 0, w - 1, h - 1], outline=20, width=2)
    if text:
        path, index = FONTS["Noto Sans CJK SC"]["regular"]
        font = ImageFont.truetype(path, int(3.7 * MM), index=index)
        draw.multiline_text((w // 2, h // 2), text, font=font, fill=ink, anchor="mm", align="center")
    return np.asarray(img)


def prepared(image: np.ndarray):
    return prepare_cell(image, Box(0, 0, image.shape[1], image.shape[0]), DPI)


def test_an_empty_cell_with_rules_and_noise_is_blank():
    rng = np.random.default_rng(1)
    noisy = np.clip(cell("").astype(float) + rng.normal(0, 6, cell("").shape), 0, 255).astype(np.uint8)
    assert prepared(noisy).kind == "blank"


def test_an_em_dash_is_a_dash_not_text():
    assert prepared(cell("—")).kind == "dash"


def test_text_is_trimmed_and_its_lines_counted():
    one = prepared(cell("设备巡检完成率"))
    two = prepared(cell("年初预算\n数", height_mm=14))
    assert one.kind == two.kind == "text"
    assert len(one.line_spans) == 1 and len(two.line_spans) == 2
    assert one.image.shape[0] < cell("x").shape[0]  # trimmed to the ink plus a margin
    assert one.image.min() < 100 and one.image[0].min() == 255  # ink kept, rule remnants gone


def test_a_faint_thin_stroke_is_not_cut_off():
    # "一" at low resolution is a light 1-px line beside dark glyphs: it must stay in the crop.
    image = cell("一级指标").copy()
    dark = prepared(image)
    ys, xs = np.nonzero(image < 100)
    first_glyph = xs.min()
    faint = image.copy()
    faint[:, first_glyph : first_glyph + int(3.5 * MM)] = np.maximum(
        faint[:, first_glyph : first_glyph + int(3.5 * MM)], 165
    )
    assert prepared(faint).image.shape[1] >= dark.image.shape[1] - 2


def test_faded_print_lighter_than_the_ink_level_is_still_text():
    # A faded "0" at ~170 grey never reaches the fixed ink level (160), but it is a
    # glyph-sized shape far darker than the paper: it must be read, not called blank.
    faded = prepared(cell("0", ink=172, rule=False))
    assert faded.kind == "text" and len(faded.line_spans) == 1
    assert prepared(cell("≥90%", ink=172, rule=False)).kind == "text"  # not a dash either


def test_print_faded_to_a_light_grey_is_still_text():
    # Amounts faded nearer the paper still (~63 levels under it): darker than noise and seal
    # ghosts, and as tall as a line of digits.
    assert prepared(cell("403.85", ink=182, rule=False)).kind == "text"


def test_a_seal_ghost_in_an_empty_cell_stays_blank():
    # What seal erasure leaves in a colour scan: a ring arc and a letter stroke ~50 levels
    # under the paper, spread wider than a line of text.
    image = cell("", rule=False).copy()
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    ring = np.abs(np.hypot(xx - w * 0.1, yy - h * 1.8) - h * 1.6) < 0.6 * MM
    image[ring] = 198
    image[2 : int(1.6 * MM), int(0.4 * w) : int(0.4 * w) + 3] = 198
    assert prepared(image).kind == "blank"


def test_a_cell_crossed_only_by_a_rule_is_blank():
    # Cut from a generated 250 dpi page whose last row's cell box spans a column rule:
    # the rule is all the ink there is, and it once crashed the trim with no text left.
    crop = cv2.imread(str(Path(__file__).parents[1] / "fixtures/cells/rule_across_cell.png"), cv2.IMREAD_GRAYSCALE)
    page, box = in_ruled_page(crop)
    assert prepare_cell(page, box, 250).kind == "blank"


def in_ruled_page(crop: np.ndarray, margin: int = 40) -> tuple[np.ndarray, Box]:
    """The crop back on a page: paper around it, and every line it holds end to end, a rule's,
    going on past it, as rules do on a page."""
    h, w = crop.shape
    page = np.full((h + 2 * margin, w + 2 * margin), 255, np.uint8)
    page[margin : margin + h, margin : margin + w] = crop
    ink = crop < 230  # faint rules too
    for x in np.flatnonzero(ink.mean(axis=0) > 0.85):
        page[:, margin + x] = crop[:, x].min()
    for y in np.flatnonzero(ink.mean(axis=1) > 0.85):
        page[margin + y, :] = crop[y].min()
    return page, Box(margin, margin, margin + w, margin + h)


def test_a_row_of_glyph_strokes_filling_a_tight_cell_is_text_not_a_rule():
    # Labels in a cell just wide enough for them: a row of their horizontal strokes is inked
    # across the whole cell, but it stops at the rules around the cell, where a rule goes on.
    path, index = FONTS["Noto Sans CJK SC"]["regular"]
    font = ImageFont.truetype(path, int(4.2 * MM), index=index)
    text_w = int(font.getlength("王三王三"))
    page = Image.new("L", (text_w + int(40 * MM), int(20 * MM)), 255)
    draw = ImageDraw.Draw(page)
    x0, x1 = int(20 * MM), int(20 * MM) + text_w + 2
    y0, y1 = int(7 * MM), int(13 * MM)
    for x in (x0 - 2, x1):  # column rules, 2 px
        draw.rectangle((x, 0, x + 1, page.height), fill=0)
    for y in (y0 - 2, y1):  # row rules
        draw.rectangle((0, y, page.width, y + 1), fill=0)
    draw.text((x0 + 1, y0 + int(0.5 * MM)), "王三王三", font=font, fill=0)
    page = np.array(page)
    crop = page[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1]
    assert ((crop < 160).mean(axis=1) > 0.85).any()  # the strokes do fill the cell's width
    cell = prepare_cell(page, Box(x0, y0, x1, y1), DPI)
    assert cell.kind == "text"
    assert np.count_nonzero(cell.image < 160) >= 0.97 * np.count_nonzero(crop < 160)  # every stroke kept


def test_median_grey_is_numpys_median() -> None:
    from pipeline.cell_image import median_grey

    rng = np.random.default_rng(3)
    for size in (1, 2, 3, 10, 11, 999, 1000):
        crop = rng.integers(0, 256, size, dtype=np.uint8)
        assert median_grey(crop) == float(np.median(crop))
    assert median_grey(np.array([[10, 11], [200, 201]], np.uint8)) == 105.5


def set_tight(text: str, *, width_mm=60, spacing=0, bold=False) -> np.ndarray:
    """A cell of lines set with ``spacing`` px between them (0: no paper row between lines)."""
    path, index = FONTS["Noto Sans CJK SC"]["bold" if bold and "bold" in FONTS["Noto Sans CJK SC"] else "regular"]
    font = ImageFont.truetype(path, int(3.7 * MM), index=index)
    lines = text.split("\n")
    h = int(3 * MM) + len(lines) * int(3.7 * MM)
    img = Image.new("L", (int(width_mm * MM), h), 245)
    ImageDraw.Draw(img).multiline_text((int(2 * MM), int(1.5 * MM)), text, font=font, fill=30, spacing=spacing)
    return np.asarray(img)


def test_lines_set_without_paper_between_them_are_cut_apart():
    spans = prepared(set_tight("加强对社区卫生服务的日常\n维护和监督检查，及时发现\n并处置各类问题，保障安全", spacing=-6)).line_spans
    assert len(spans) == 3


def test_one_line_of_bold_text_stays_one_line():
    assert len(prepared(set_tight("年度指标值", width_mm=30, bold=True)).line_spans) == 1


def test_the_first_glyphs_of_lines_set_against_the_rule_are_kept():
    # Cut from a 150 dpi spreadsheet print with no padding: the left strokes of 项, 进, 按
    # touch the cell's left rule line after line and ink half the band along it. Only the
    # rule, which goes on above and below the cell, is erased; 按 must not read 安.
    page = cv2.imread(str(Path(__file__).parents[1] / "fixtures/cells/lines_against_rule.png"), cv2.IMREAD_GRAYSCALE)
    box = Box(25, 25, page.shape[1] - 25, page.shape[0] - 25)
    inset = max(1, round(150 * 0.008))
    crop = page[box.y0 + inset : box.y1 - inset, box.x0 + inset : box.x1 - inset]
    assert (crop[:, :2] < 204).mean() > 0.5  # the glyphs do ink the band along the rule
    cell = prepare_cell(page, box, 150)
    assert np.count_nonzero(cell.image < 160) >= 0.98 * np.count_nonzero(crop < 160)


def paragraph_with_lines(lines: list[str], pitch_mm: float = 5.0) -> np.ndarray:
    path, index = FONTS["Noto Sans CJK SC"]["regular"]
    font = ImageFont.truetype(path, int(3.7 * MM), index=index)
    img = Image.new("L", (int(60 * MM), int((len(lines) * pitch_mm + 4) * MM)), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((int(2 * MM), int((2 + i * pitch_mm) * MM)), line, font=font, fill=0)
    return np.array(img)


def test_a_mark_wrapped_alone_to_the_next_line_is_put_back_at_the_end_of_its_line():
    # A spreadsheet wraps 。 alone onto the next line; read there (or joined to the line
    # above, below its glyphs) both engines drop it. It goes back after the line's last glyph.
    page = paragraph_with_lines(["达到预期", "。", "受客观因素"])
    cell = prepare_cell(page, Box(0, 0, page.shape[1], page.shape[0]), DPI)
    assert len(cell.line_spans) == 2
    (a, b), _ = cell.line_spans
    first = cell.image[a:b] < 160
    alone = paragraph_with_lines(["达到预期"])
    alone_cell = prepare_cell(alone, Box(0, 0, alone.shape[1], alone.shape[0]), DPI)
    (c, d), = alone_cell.line_spans
    # the first line now reaches further right than the same line without its mark
    assert np.flatnonzero(first.any(axis=0)).max() > np.flatnonzero((alone_cell.image[c:d] < 160).any(axis=0)).max() + 2


def test_two_marks_wrapped_one_under_the_other_are_no_trouble():
    page = paragraph_with_lines(["达到预期", "。", "，", "受客观因素"])
    cell = prepare_cell(page, Box(0, 0, page.shape[1], page.shape[0]), DPI)
    assert cell.kind == "text" and len(cell.line_spans) >= 2


def line_with_mark_below(line: str, mark_at_mm: float, speck_mm: float | None = None) -> int:
    """How many lines a cell holds: ``line`` centred, and a 。 (or a square speck this wide)
    alone on the line below."""
    font_path, index = FONTS["Noto Sans CJK SC"]["regular"]
    font = ImageFont.truetype(font_path, int(3.7 * MM), index=index)
    img = Image.new("L", (int(60 * MM), int(14 * MM)), 255)
    draw = ImageDraw.Draw(img)
    draw.text((int(30 * MM), int(4 * MM)), line, font=font, fill=0, anchor="mm")
    x, y = int(mark_at_mm * MM), int(9 * MM)
    if speck_mm is None:
        draw.text((x, y), "。", font=font, fill=0, anchor="mm")
    else:
        draw.rectangle([x, y, x + int(speck_mm * MM), y + int(speck_mm * MM)], fill=0)
    page = np.array(img)
    return len(prepare_cell(page, Box(0, 0, page.shape[1], page.shape[0]), DPI).line_spans)


def test_a_mark_wrapped_alone_under_a_full_centred_line_is_put_back_on_it():
    # A centred paragraph: the first line wrapped full, and its 。 stands alone in the middle
    # of the next line, where both engines drop it.
    assert line_with_mark_below("各项指标基本达到预期", mark_at_mm=30) == 1


def test_a_dot_under_a_short_centred_line_stays_where_it_is():
    assert line_with_mark_below("及时", mark_at_mm=45) == 2


def test_a_speck_under_a_full_centred_line_stays_where_it_is():
    # the scan's noise left a speck of ~0.4 mm in the middle under 315.50: no 。 of 9-12 pt
    assert line_with_mark_below("各项指标基本达到预期", mark_at_mm=30, speck_mm=0.4) == 2



def test_the_sides_of_an_askew_rule_through_an_empty_cell_are_no_text():
    # Cut, with 40 px of the page around it, from a 290 dpi calc-style scan: a grey column
    # rule left a little askew by the deskew runs down inside the cell's right edge. Its core
    # is cleared as a rule; its blurred sides, which no column holds end to end, are all the
    # ink there is besides, and both engines read them as nothing.
    page = cv2.imread(str(Path(__file__).parents[1] / "fixtures/cells/askew_rule_in_empty_cell.png"), cv2.IMREAD_GRAYSCALE)
    box = Box(40, 40, page.shape[1] - 40, page.shape[0] - 40)
    crop = page[box.y0 : box.y1, box.x0 : box.x1]
    inked = (crop < 200).mean(axis=0)
    assert (inked > 0.85).any() and ((inked > 0.2) & (inked < 0.85)).any()  # a core and its sides
    assert prepare_cell(page, box, 290).kind == "blank"

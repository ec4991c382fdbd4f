"""detect_grid: exact fine-grid structure on synthetic pages and on every committed fixture page."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.deskew import deskew
from pipeline.errors import NoTableError
from pipeline.grid import CLUSTER_MM, Grid, _paper_beside, _segments, detect_grid

from synthetic_pages import synthetic_form

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REALDATA = Path("/work/shared/realdata")

# Pages whose exact structure is known to be missed, with why (kept strict so a fix shows up).
KNOWN_MISSES: dict[tuple[str, int], str] = {}


def _structure(grid: Grid) -> Counter:
    return Counter((c.row, c.col, c.row_span, c.col_span) for c in grid.cells)


def _assert_consistent(grid: Grid) -> None:
    covered = np.zeros((grid.n_rows, grid.n_cols), dtype=int)
    for c in grid.cells:
        covered[c.row : c.row + c.row_span, c.col : c.col + c.col_span] += 1
        assert c.box.width > 0 and c.box.height > 0
        # a side may lie on the cell's own piece of its column line, within a rule's cluster of the line
        reach = CLUSTER_MM * grid.px_per_mm
        assert grid.col_edges[c.col] - reach < c.box.x0 < c.box.x1 <= grid.col_edges[c.col + c.col_span] + reach + 1
        assert grid.row_edges[c.row] < c.box.y0 < c.box.y1 <= grid.row_edges[c.row + c.row_span] + 1
    assert (covered == 1).all(), "every fine cell is covered exactly once"
    boxes = [c.box for c in grid.cells]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert min(a.x1, b.x1) <= max(a.x0, b.x0) or min(a.y1, b.y1) <= max(a.y0, b.y0), "boxes overlap"
    assert list(grid.cells) == sorted(grid.cells, key=lambda c: (c.row, c.col)), "row-major"


SYNTHETIC_CASES = {
    "clean_200dpi": dict(dpi=200),
    "thin_1px_150dpi": dict(dpi=150, rule_px=1),
    "300dpi": dict(dpi=300),
    "grey_seal": dict(seal=True),
    "colour_seal": dict(seal=True, colour=True),
    "broken": dict(broken=True),
    "faded": dict(faded=True),
    "faded_broken_seal": dict(faded=True, broken=True, seal=True),
    "residual_skew": dict(skew_deg=0.1),
    "residual_skew_300dpi_seal_broken": dict(skew_deg=-0.1, dpi=300, seal=True, broken=True),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", list(SYNTHETIC_CASES))
def test_synthetic_structure_exact(case: str, seed: int) -> None:
    image, truth = synthetic_form(seed=seed, **SYNTHETIC_CASES[case])
    grid = detect_grid(image)
    assert (grid.n_rows, grid.n_cols) == (truth["n_rows"], truth["n_cols"])
    assert _structure(grid) == Counter(truth["cells"])
    _assert_consistent(grid)


def test_edges_at_rule_positions() -> None:
    image, _ = synthetic_form(dpi=200)
    grid = detect_grid(image)
    ppm = 200 / 25.4
    assert [round(x / ppm) for x in grid.col_edges] == [15, 27, 45, 75, 100, 125, 150, 170, 195]
    assert abs(grid.row_edges[0] / ppm - 40.0) < 0.3


def test_blank_page_raises() -> None:
    with pytest.raises(NoTableError):
        detect_grid(np.full((2339, 1654), 250, np.uint8))


def test_text_only_page_raises() -> None:
    page = np.full((1754, 1240), 250, np.uint8)
    for k in range(40):
        cv2.putText(page, "THE QUICK BROWN FOX 1234567", (100, 100 + 38 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 20, 2)
    with pytest.raises(NoTableError):
        detect_grid(page)


# --- failure modes found on harder generated scans --------------------------------------


def _ruled_page(
    dpi: int,
    h_rules: list[tuple[float, float, float]],
    v_rules: list[tuple[float, float, float]],
    rule_px: int | None = None,
) -> tuple[np.ndarray, float]:
    """Blank A4 page (float, 250 = paper) with rules (pos_mm, start_mm, end_mm) drawn in black."""
    ppm = dpi / 25.4
    page = np.full((int(round(297 * ppm)), int(round(210 * ppm))), 250.0, np.float32)
    t = rule_px or max(1, int(round(0.2 * ppm)))
    for y, a, b in h_rules:
        top = int(round(y * ppm)) - t // 2
        page[top : top + t, int(round(a * ppm)) - t // 2 : int(round(b * ppm)) + t // 2 + 1] = 30
    for x, a, b in v_rules:
        left = int(round(x * ppm)) - t // 2
        page[int(round(a * ppm)) - t // 2 : int(round(b * ppm)) + t // 2 + 1, left : left + t] = 30
    return page, ppm


def _scan(page: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = np.clip(page + rng.normal(0, 3.0, page.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.GaussianBlur(noisy, (3, 3), 0.5), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize("dpi", [150, 200])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_row_rule_with_gap_is_found(dpi: int, seed: int) -> None:
    # 主管部门 | 实施单位: a rule one row high, broken by a 2 mm gap into two 3.5 mm pieces,
    # each shorter than the line kernel that finds rules.
    ys = [40, 49, 58, 67, 76]
    h_rules = [(y, 20, 190) for y in ys]
    v_rules = [(20, 40, 76), (60, 40, 76), (190, 40, 76), (120, 49, 52.5), (120, 54.5, 58)]
    page, _ = _ruled_page(dpi, h_rules, v_rules, rule_px=1 if dpi < 200 else None)
    grid = detect_grid(_scan(page, seed))
    assert _structure(grid) == Counter(
        [(0, 0, 1, 1), (0, 1, 1, 2), (1, 0, 1, 1), (1, 1, 1, 1), (1, 2, 1, 1),
         (2, 0, 1, 1), (2, 1, 1, 2), (3, 0, 1, 1), (3, 1, 1, 2)]
    )
    _assert_consistent(grid)


@pytest.mark.parametrize("seed", [0, 1])
def test_stroke_between_lines_of_rules_that_stop_short_is_no_rule(seed: int) -> None:
    # Lined-up glyph strokes in a merged cell, running exactly between the *lines* of two
    # column rules that end in the row above: not a rule bounded by them.
    page, ppm = _ruled_page(200, [(40, 20, 190), (49, 20, 190), (70, 20, 190)],
                            [(20, 40, 70), (190, 40, 70), (60, 40, 49), (70, 40, 49)])
    stroke = int(round(0.3 * ppm))
    y = int(round(60 * ppm))
    page[y : y + stroke, int(round(60.5 * ppm)) : int(round(69.5 * ppm))] = 25
    grid = detect_grid(_scan(page, seed))
    assert _structure(grid) == Counter([(0, 0, 1, 1), (0, 1, 1, 1), (0, 2, 1, 1), (1, 0, 1, 3)])


@pytest.mark.parametrize("seed", [0, 1])
def test_glyph_stroke_in_tinted_merged_cell_is_no_rule(seed: int) -> None:
    # A grey-tinted merged row (a 代理人 / 经办人 row) with glyph strokes on the line of
    # a column rule: the tint is ink on both sides, not a seal ring hiding a rule.
    page, ppm = _ruled_page(200, [(y, 20, 190) for y in (40, 49, 58, 67)],
                            [(20, 40, 67), (190, 40, 67), (100, 40, 49), (100, 58, 67)])
    page[int(49 * ppm) + 2 : int(58 * ppm) - 1, int(20 * ppm) + 2 : int(190 * ppm) - 1] = 165
    stroke = int(round(0.3 * ppm))
    x = int(round(100 * ppm)) - stroke // 2
    for y0, y1 in ((50.5, 53.5), (54.5, 57.0)):
        page[int(y0 * ppm) : int(y1 * ppm), x : x + stroke] = 25
    grid = detect_grid(_scan(page, seed))
    assert _structure(grid) == Counter([(0, 0, 1, 1), (0, 1, 1, 1), (1, 0, 1, 2), (2, 0, 1, 1), (2, 1, 1, 1)])


# --- committed fixtures ---------------------------------------------------------------


def _fixture_pages() -> list[tuple[str, int]]:
    pages = []
    for path in sorted((FIXTURES / "truth").glob("*.json")):
        for page in json.loads(path.read_text(encoding="utf-8"))["pages"]:
            pages.append((path.stem, int(page["page"])))
    return pages


def _render(name: str, page: int) -> tuple[np.ndarray, dict]:
    from pdf2image import convert_from_path

    truth = json.loads((FIXTURES / "truth" / f"{name}.json").read_text(encoding="utf-8"))
    page_truth = next(p for p in truth["pages"] if int(p["page"]) == page)
    scan = page_truth["scan"]
    # Colour pages are read in colour, as the pipeline would: the red seal is dropped then.
    pil = convert_from_path(
        str(FIXTURES / "scans" / f"{name}.pdf"), dpi=scan["dpi"], first_page=page, last_page=page,
        grayscale=not scan["color"],
    )[0]
    array = np.asarray(pil)
    image = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    return image, page_truth


FIXTURE_PAGES = _fixture_pages()
needs_fixtures = pytest.mark.skipif(
    not FIXTURE_PAGES or shutil.which("pdftoppm") is None, reason="no committed fixtures or no poppler"
)


@needs_fixtures
@pytest.mark.parametrize(
    ("name", "page"),
    [
        pytest.param(n, p, marks=pytest.mark.xfail(reason=KNOWN_MISSES[(n, p)], strict=True))
        if (n, p) in KNOWN_MISSES
        else (n, p)
        for n, p in FIXTURE_PAGES
    ],
    ids=[f"{n}-p{p}" for n, p in FIXTURE_PAGES],
)
def test_fixture_page_structure_exact(name: str, page: int) -> None:
    image, truth = _render(name, page)
    straight, angle = deskew(image)
    # The generator skews with PIL.Image.rotate(skew_deg) (counter-clockwise positive);
    # deskew reports the counter-clockwise rotation it applied, so about -skew_deg.
    assert abs(angle + truth["scan"]["skew_deg"]) <= 0.1
    grid = detect_grid(straight)
    want = truth["grid"]
    assert (grid.n_rows, grid.n_cols) == (want["n_rows"], want["n_cols"])
    assert _structure(grid) == Counter((c["row"], c["col"], c["row_span"], c["col_span"]) for c in want["cells"])
    _assert_consistent(grid)


# --- real scans (read in place, never copied into the project) -------------------------

# Ruled tables of a size the page-scale guess handles; each must yield a real grid.
REAL_RULED = [
    "tsr_squeeze_error_settlement_form_scan.jpeg",
    "tsr_customs_declaration_form.jpg",
    "tsr_wired_big_box_standard_table.png",
    "tsr_table1_class_timetable.png",
    "tabledetect_teacher_eval_form.jpg",
    "tabledetect_thesis_list_form.jpg",
    "chineseocr_vat_goods_list_scan.jpeg",
    "xfund_zh_val_42_personal_info_form_scan.jpg",
    "zk_rainfall_table.png",
]


def _real_images() -> list[Path]:
    if not REALDATA.is_dir():
        return []
    return sorted(p for p in REALDATA.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


@pytest.mark.skipif(not REALDATA.is_dir(), reason="no /work/shared/realdata")
@pytest.mark.parametrize("path", _real_images(), ids=lambda p: p.name)
def test_real_scan_no_crash(path: Path) -> None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    straight, _ = deskew(image)
    try:
        grid = detect_grid(straight)
    except NoTableError:
        assert path.name not in REAL_RULED, "a ruled table must be found"
        return
    _assert_consistent(grid)
    if path.name in REAL_RULED:
        assert grid.n_rows >= 2 and grid.n_cols >= 2


HAIRLINE_PPM = 150 / 25.4
HAIRLINE_ROWS_MM = [40 + 9.3 * k for k in range(8)]
HAIRLINE_COLS_MM = [20.0, 48.3, 95.6, 140.2, 190.4]


def _hairline_table(level: float, faded: float | None = None, seed: int = 0) -> np.ndarray:
    """A 7 x 4 table at 150 dpi, rules 2 px at ``level``, each rule's centre between two
    pixel rows; with ``faded``, the rules around cell (2..4, 1..3) are at that level instead.
    Scanned with noise and JPEG."""
    ppm, rows, cols = HAIRLINE_PPM, HAIRLINE_ROWS_MM, HAIRLINE_COLS_MM
    page = np.full((int(round(297 * ppm)), int(round(210 * ppm))), 250.0, np.float32)

    def h_rule(y: float, x0: float, x1: float, value: float) -> None:
        top = int(y * ppm)
        page[top : top + 2, int(x0 * ppm) : int(x1 * ppm) + 2] = value

    def v_rule(x: float, y0: float, y1: float, value: float) -> None:
        left = int(x * ppm)
        page[int(y0 * ppm) : int(y1 * ppm) + 2, left : left + 2] = value

    for y in rows:
        h_rule(y, cols[0], cols[-1], level)
    for x in cols:
        v_rule(x, rows[0], rows[-1], level)
    if faded is not None:
        h_rule(rows[3], cols[1] + 0.6, cols[3] - 0.6, faded)
        v_rule(cols[2], rows[2] + 0.6, rows[4] - 0.6, faded)
    rng = np.random.default_rng(seed)
    noisy = np.clip(page + rng.normal(0, 6.0, page.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def _assert_plain_7x4(grid: Grid) -> None:
    assert (grid.n_rows, grid.n_cols) == (7, 4)
    assert all((c.row_span, c.col_span) == (1, 1) for c in grid.cells) and len(grid.cells) == 28
    assert [round(x / HAIRLINE_PPM) for x in grid.col_edges] == [round(c) for c in HAIRLINE_COLS_MM]


@pytest.mark.parametrize("seed", [0, 1])
def test_faded_hairline_rules_between_pixel_rows_are_found(seed: int) -> None:
    # A faded 1-px rule printed across two pixel rows leaves about half its darkness (13 of
    # 26 levels here) in each, level with the scan's noise: the normal pass sees no table,
    # the faint one does.
    scan = _hairline_table(250 - 26, seed=seed)
    with pytest.raises(NoTableError):
        detect_grid(scan, faint=False)
    _assert_plain_7x4(detect_grid(scan))


@pytest.mark.parametrize("seed", [0, 1])
def test_rules_faded_inside_the_table_are_found_again(seed: int) -> None:
    # Inside an otherwise clear table, the rules around one cell have faded to hairlines
    # (as under a seal): the normal pass merges a block across rows and columns, the
    # faint pass separates it again.
    scan = _hairline_table(120, faded=250 - 26, seed=seed)
    assert any(c.row_span > 1 and c.col_span > 1 for c in detect_grid(scan, faint=False).cells)
    _assert_plain_7x4(detect_grid(scan))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_glyph_stroke_on_a_faint_page_cuts_no_cell(seed: int) -> None:
    # Rules faded to hairlines, found by the faint pass only, and in one cell a glyph's
    # stroke far darker than they are: it runs most of the row's height but stops short of
    # the rules above and below, where a rule runs into them.
    scan = _hairline_table(250 - 26, seed=seed).copy()
    x = int(70 * HAIRLINE_PPM)
    top, bottom = HAIRLINE_ROWS_MM[1] + 0.8, HAIRLINE_ROWS_MM[2] - 0.8
    scan[int(top * HAIRLINE_PPM) : int(bottom * HAIRLINE_PPM), x : x + 2] = 40
    assert len(detect_grid(scan).cells) == 28


@pytest.mark.parametrize("horizontal", [True, False])
@pytest.mark.parametrize("d", [3, 4, 7])
def test_paper_beside_is_the_darker_of_the_lightest_pixels_either_side(horizontal: bool, d: int) -> None:
    rng = np.random.default_rng(d)
    for shape in [(40, 33), (5, 9), (9, 5), (2, 2)]:
        gray = rng.integers(0, 256, shape, dtype=np.uint8)
        lines = gray if horizontal else gray.T  # pixel p of a column (across a horizontal rule)
        expected = np.empty_like(lines)
        n, paper = lines.shape[0], np.full(lines.shape[1], 255)
        for p in range(n):
            # A window whose middle is off the page is all paper; one cut by the edge is what is left of it.
            before = lines[max(0, p - d) : p].max(axis=0) if p >= d - d // 2 else paper
            after = lines[p + 1 : p + 1 + d].max(axis=0) if p < n - (d // 2 + 1) else paper
            expected[p] = np.minimum(before, after)
        found = _paper_beside(gray, d, horizontal)
        assert np.array_equal(found if horizontal else found.T, expected), shape


def test_a_mask_of_more_pieces_than_16_bits_can_number_is_still_cut_into_segments() -> None:
    mask = np.zeros((600, 1200), np.uint8)
    mask[::2, ::3] = 1  # 120,000 one-pixel pieces: hatching or noise, no rule
    mask[301, 100:1100] = 1  # and one long rule across them
    segments = _segments(mask, True, 10.0)
    # Every piece but the rule's is a dot; the rule joins the 2 x 334 dots diagonally beside it.
    assert len(segments) == 300 * 400 - 2 * 334 + 1 > 2**16
    (rule,) = [s for s in segments if s.end - s.start > 100]
    assert (rule.start, rule.end, rule.pos) == (99, 1100, 301.0)


def stacked_blocks(dpi: int, *xs_mm: float) -> tuple[np.ndarray, list[int]]:
    """A table of blocks one over the other, each with one column line of its own (at ``xs_mm``,
    top block first) that ends at the rules above and below it: the page, and the lines' x."""
    mm = dpi / 25.4
    page = np.full((int((40 + 40 * len(xs_mm)) * mm), int(190 * mm)), 255, np.uint8)
    left, right = int(15 * mm), int(175 * mm)
    ys = [int((20 + 40 * i) * mm) for i in range(len(xs_mm) + 1)]
    for y in ys:
        cv2.line(page, (left, y), (right, y), 0, 2)
    for x in (left, right):
        cv2.line(page, (x, ys[0]), (x, ys[-1]), 0, 2)
    xs = [int(x * mm) for x in xs_mm]
    for x, top, bottom in zip(xs, ys, ys[1:]):
        cv2.line(page, (x, top), (x, bottom), 0, 2)
    return page, xs


def two_blocks(dpi: int, upper_x_mm: float, lower_x_mm: float) -> tuple[np.ndarray, int, int]:
    page, (upper_x, lower_x) = stacked_blocks(dpi, upper_x_mm, lower_x_mm)
    return page, upper_x, lower_x


def test_column_lines_of_two_blocks_a_little_apart_stay_two_rules() -> None:
    # Printed from a spreadsheet, the goal block's column line ends at the rule above it 2 mm
    # left of the funds block's line, which ends there too: each block keeps its own line, and
    # text set against the lower line stays whole in its cell.
    mm = 200 / 25.4
    page, upper_x, lower_x = two_blocks(200, 95, 93)
    grid = detect_grid(page, px_per_mm=mm)
    _assert_consistent(grid)
    assert len(grid.col_edges) == 4
    assert abs(grid.col_edges[1] - lower_x) <= 2 and abs(grid.col_edges[2] - upper_x) <= 2
    lower_right = next(c for c in grid.cells if c.row == 1 and c.box.x1 > upper_x)
    assert lower_right.box.x0 < (lower_x + upper_x) / 2


def test_a_column_line_apart_from_its_neighbour_s_pieces_above_and_below_stays_its_own() -> None:
    # The header and goal blocks draw their column line at nearly one place (one rule, in two
    # pieces); the funds block between them draws its own 2.3 mm to the left. Where the two rules
    # are printed they never run side by side, so the goal block keeps its line, and text set
    # against it is not cut by the funds block's line.
    mm = 180 / 25.4
    page, (head_x, funds_x, goal_x) = stacked_blocks(180, 94.0, 91.7, 94.1)
    grid = detect_grid(page, px_per_mm=mm)
    _assert_consistent(grid)
    assert len(grid.col_edges) == 4
    assert abs(grid.col_edges[1] - funds_x) <= 2 and abs(grid.col_edges[2] - goal_x) <= 2
    goal_left = next(c for c in grid.cells if c.row == 2 and c.col == 0)
    assert goal_left.box.x1 > goal_x - 0.6 * mm


def test_print_set_against_its_own_block_s_piece_of_a_column_line_stays_in_its_cell() -> None:
    # The goal block's column line ends 1.3 mm left of the indicator block's: close enough to be
    # one column line, but the goal cell's text, set against its own piece, must stay in its box.
    mm = 170 / 25.4
    page, upper_x, lower_x = two_blocks(170, 94.3, 95.6)
    text_x = upper_x + int(0.6 * mm)  # a glyph's stroke set against the goal block's piece
    page[int(25 * mm) : int(29 * mm), text_x : text_x + 3] = 0
    grid = detect_grid(page, px_per_mm=mm)
    _assert_consistent(grid)
    assert len(grid.col_edges) == 3
    upper = next(c for c in grid.cells if c.row == 0 and c.col == 1)
    lower = next(c for c in grid.cells if c.row == 1 and c.col == 1)
    assert upper_x < upper.box.x0 <= text_x
    assert lower.box.x0 >= grid.col_edges[1]  # with nothing printed against it, a cell keeps the line's position


def test_glyph_strokes_lined_up_in_tight_rows_make_no_column() -> None:
    # Labels set tight in their rows (9 pt at 150 dpi, the row barely taller than the glyphs),
    # centred in one column: the strokes of 指 and 标 line up from row to row and touch the
    # rules above and below, but text keeps clear of a rule on at least one side.
    from PIL import Image, ImageDraw
    from fixtures.generate import _font

    mm = 150 / 25.4
    labels = ["数量指标", "质量指标", "时效指标", "成本指标", "经济效益指标", "社会效益指标", "生态效益指标"]
    font = _font("Noto Sans CJK SC", int(round(3.2 * mm)))
    page = Image.new("L", (int(120 * mm), int(60 * mm)), 255)
    draw = ImageDraw.Draw(page)
    left, mid, right, top = int(10 * mm), int(40 * mm), int(110 * mm), int(10 * mm)
    row_h = int(round(4.0 * mm))
    bottom = top + row_h * len(labels)
    for i in range(len(labels) + 1):
        draw.line([(left, top + i * row_h), (right, top + i * row_h)], fill=40, width=1)
    for x in (left, mid, right):
        draw.line([(x, top), (x, bottom)], fill=40, width=1)
    for i, label in enumerate(labels):
        draw.text(((left + mid) / 2, top + i * row_h + row_h / 2), label, font=font, fill=20, anchor="mm")
        draw.text((mid + 3, top + i * row_h + row_h / 2), "100%", font=font, fill=20, anchor="lm")
    grid = detect_grid(cv2.GaussianBlur(np.asarray(page), (3, 3), 0.6), px_per_mm=mm)
    _assert_consistent(grid)
    assert (grid.n_rows, grid.n_cols) == (len(labels), 2), grid.col_edges


@pytest.mark.parametrize("text", ["有效节约", "8939人次", "有效提高"])
def test_strokes_along_a_text_line_make_no_rule_across_one_cell(text: str) -> None:
    # In a serif face at 150 dpi the flat strokes of a line of text run from one column
    # line to the next: a rule one cell long found from pieces needs paper on either side.
    from PIL import Image, ImageDraw
    from fixtures.generate import _font

    mm = 150 / 25.4
    font = _font("AR PL UMing CN", int(round(3.9 * mm)))
    page = Image.new("L", (int(100 * mm), int(60 * mm)), 255)
    draw = ImageDraw.Draw(page)
    width = int(font.getlength(text))
    cols = [int(10 * mm), int(30 * mm), int(30 * mm) + width + 2, int(90 * mm)]  # the text fills its cell
    rows = [int(v * mm) for v in (10, 20, 38, 48)]
    for y in rows:
        draw.line([(cols[0], y), (cols[-1], y)], fill=40, width=1)
    for x in cols:
        draw.line([(x, rows[0]), (x, rows[-1])], fill=40, width=1)
    draw.text((cols[1] + 1, (rows[1] + rows[2]) / 2), text, font=font, fill=20, anchor="lm")
    grid = detect_grid(cv2.GaussianBlur(np.asarray(page), (3, 3), 0.7), px_per_mm=mm)
    _assert_consistent(grid)
    assert (grid.n_rows, grid.n_cols) == (3, 3), grid.row_edges


def test_a_low_first_and_last_row_belong_to_the_table() -> None:
    # 项目名称 and 总分 set tight: rows lower than a column line must be to be found alone.
    # The rules above and below them, ruled across the whole table, still bound a row.
    mm = 300 / 25.4
    page = np.full((int(120 * mm), int(190 * mm)), 255, np.uint8)
    xs = [int(v * mm) for v in (15, 45, 100, 175)]
    ys = [int(v * mm) for v in (20, 24.5, 40, 55, 70, 74.5)]
    for y in ys:
        cv2.line(page, (xs[0], y), (xs[-1], y), 30, 2)
    for x in xs:
        cv2.line(page, (x, ys[0]), (x, ys[-1]), 30, 2)
    grid = detect_grid(page, px_per_mm=mm)
    _assert_consistent(grid)
    assert (grid.n_rows, grid.n_cols) == (5, 3), grid.row_edges


def test_a_dark_frame_with_faded_rules_inside_is_looked_at_again() -> None:
    # Rules faded all over but the frame: the normal pass sees a frame with nothing inside,
    # which no form is; the faint pass finds the rules.
    mm = 300 / 25.4
    page = np.full((int(120 * mm), int(190 * mm)), 254, np.uint8)
    xs = [int(v * mm) for v in (15, 45, 100, 140, 175)]
    ys = [int(v * mm) for v in (20, 32, 44, 56, 68, 80)]
    for y in ys[1:-1]:
        cv2.line(page, (xs[0], y), (xs[-1], y), 228, 2)
    for x in xs[1:-1]:
        cv2.line(page, (x, ys[0]), (x, ys[-1]), 228, 2)
    cv2.rectangle(page, (xs[0], ys[0]), (xs[-1], ys[-1]), 40, 3)
    page = cv2.GaussianBlur(page, (3, 3), 0.8)
    grid = detect_grid(page, px_per_mm=mm)
    _assert_consistent(grid)
    assert (grid.n_rows, grid.n_cols) == (5, 4)


def test_a_gap_in_a_broken_rule_over_a_narrow_column_does_not_merge_two_blocks() -> None:
    # The rule between two blocks is broken just where a column line of the lower block runs
    # 3 mm from one of the upper block's: the gap spans that narrow fine column alone.
    mm = 300 / 25.4
    page = np.full((int(120 * mm), int(190 * mm)), 255, np.uint8)
    left, right = int(15 * mm), int(175 * mm)
    top, middle, lower, bottom = (int(v * mm) for v in (20, 50, 65, 80))
    for y in (top, lower, bottom):
        cv2.line(page, (left, y), (right, y), 30, 2)
    cv2.line(page, (left, middle), (int(99 * mm), middle), 30, 2)
    cv2.line(page, (int(104 * mm), middle), (right, middle), 30, 2)
    for x in (left, right):
        cv2.line(page, (x, top), (x, bottom), 30, 2)
    cv2.line(page, (int(100 * mm), top), (int(100 * mm), middle), 30, 2)
    for x in (60, 103, 140):
        cv2.line(page, (int(x * mm), middle), (int(x * mm), bottom), 30, 2)
    grid = detect_grid(page, px_per_mm=mm)
    _assert_consistent(grid)
    spans = sorted((c.row, c.row_span, c.col_span) for c in grid.cells)
    assert len(grid.cells) == 2 + 4 + 4, spans


def test_of_two_doubtful_grids_the_one_that_saw_more_rules_is_kept() -> None:
    # Faded rules all through the lower half; both passes show a cell merged both ways (one is
    # printed so, away from the first column), but the faint pass sees the faded rules too.
    mm = 300 / 25.4
    page = np.full((int(140 * mm), int(190 * mm)), 254, np.uint8)
    xs = [int(v * mm) for v in (15, 45, 75, 105, 140, 175)]
    ys = [int(v * mm) for v in (20, 30, 40, 50, 60, 70, 80, 90, 100, 110)]
    for y in ys:
        cv2.line(page, (xs[0], y), (xs[-1], y), 40 if y <= ys[3] else 238, 2)
    for x in xs:
        cv2.line(page, (x, ys[0]), (x, ys[3]), 40, 2)
        cv2.line(page, (x, ys[3]), (x, ys[-1]), 40 if x in (xs[0], xs[-1]) else 238, 2)
    cv2.rectangle(page, (xs[1] + 3, ys[1] + 3), (xs[3] - 3, ys[3] - 3), 254, -1)  # a 2 x 2 cell printed merged
    page = cv2.GaussianBlur(page, (3, 3), 0.8)
    grid = detect_grid(page, px_per_mm=mm)
    _assert_consistent(grid)
    assert (grid.n_rows, grid.n_cols) == (9, 5)
    assert len(grid.cells) == 9 * 5 - 3

import cv2
import numpy as np

from pipeline.grid import Box, Cell, Grid
from pipeline.seal import erase_seals, find_seals

DPI = 200
MM = DPI / 25.4


ROWS_MM = tuple(range(20, 110, 9))
COLS_MM = (10, 50, 80, 140)


def table_grid() -> Grid:
    """The grid ``detect_grid`` finds on ``page_with_seal``'s table (before the erasure)."""
    rows, cols = tuple(int(y * MM) for y in ROWS_MM), tuple(int(x * MM) for x in COLS_MM)
    cells = tuple(
        Cell(r, c, 1, 1, Box(cols[c] + 3, rows[r] + 3, cols[c + 1] - 2, rows[r + 1] - 2))
        for r in range(len(rows) - 1) for c in range(len(cols) - 1)
    )
    return Grid(rows, cols, cells, px_per_mm=MM, rule_px=2)


def page_with_seal(seal_grey: int = 175, rule_grey: int = 150, star: bool = False):
    page = np.full((int(120 * MM), int(150 * MM)), 245, np.uint8)
    for y_mm in ROWS_MM:  # faded table rules
        cv2.line(page, (int(10 * MM), int(y_mm * MM)), (int(140 * MM), int(y_mm * MM)), rule_grey, 2)
    for x_mm in COLS_MM:
        cv2.line(page, (int(x_mm * MM), int(20 * MM)), (int(x_mm * MM), int(101 * MM)), rule_grey, 2)
    cv2.putText(page, "223.86", (int(55 * MM), int(62 * MM)), cv2.FONT_HERSHEY_SIMPLEX, 0.045 * MM, 30, 2)
    seal = np.zeros_like(page)
    centre, radius = (int(70 * MM), int(60 * MM)), int(20 * MM)
    cv2.circle(seal, centre, radius, 255, int(1.2 * MM))
    cv2.putText(seal, "SEAL", (int(58 * MM), int(52 * MM)), cv2.FONT_HERSHEY_SIMPLEX, 0.05 * MM, 255, 3)
    if star:
        # The upper point of the seal's star: a long, narrow spike, straight enough to pass for a rule.
        tip, base = (int(66 * MM), int(64.5 * MM)), int(74 * MM)
        spike = np.array([tip, (tip[0] - int(0.6 * MM), base), (tip[0] + int(0.6 * MM), base)], np.int32)
        cv2.fillPoly(seal, [spike], 255)
    stamped = np.where(seal > 0, (page.astype(int) * seal_grey // 255), page).astype(np.uint8)
    return stamped, page, seal > 0, centre, radius


def test_the_seal_is_found_where_it_was_stamped():
    stamped, _, _, centre, radius = page_with_seal()
    (seal,) = find_seals(stamped, DPI)
    assert abs(seal.x - centre[0]) < 3 * MM and abs(seal.y - centre[1]) < 3 * MM
    assert abs(seal.radius - radius) < 2 * MM


def test_seal_ink_goes_print_and_rules_stay():
    stamped, clean, seal_mask, _, _ = page_with_seal()
    erased = erase_seals(stamped, DPI)
    print_mask = clean < 100
    rule_mask = (clean > 100) & (clean < 200)
    only_seal = seal_mask & ~print_mask & ~rule_mask
    assert (erased[only_seal] > 230).mean() > 0.97
    assert (erased[print_mask] == stamped[print_mask]).all()
    # Where the ring runs tangent along a rule the two are one thick stroke; a little of such a
    # rule may go, everything else of the rules must stay.
    outside = rule_mask & ~seal_mask
    assert (erased[outside] == stamped[outside]).mean() > 0.99
    assert (erased[rule_mask] < 200).mean() > 0.95  # rules under the seal survive too


def test_a_page_without_a_seal_is_left_alone():
    _, clean, _, _, _ = page_with_seal()
    assert find_seals(clean, DPI) == []
    assert erase_seals(clean, DPI) is clean


def test_a_straight_stroke_of_the_seal_off_the_grid_goes_with_the_seal():
    # The spike crosses the row between the rules at 65 and 74 mm, mid-cell: read as a "1" if it stayed.
    stamped, clean, seal_mask, _, _ = page_with_seal(star=True)
    spike = seal_mask.copy()
    spike[: int(66 * MM)] = False  # clear of the rules' own band
    spike[int(73 * MM) :] = False
    spike[:, : int(64 * MM)] = False
    spike[:, int(68 * MM) :] = False
    assert spike.sum() > 50
    # Without the grid the spike passes for a rule and stays: that is why the grid is given.
    assert (erase_seals(stamped, DPI)[spike] < 200).mean() > 0.5
    erased = erase_seals(stamped, DPI, grids=[table_grid()])
    assert (erased[spike] > 230).mean() > 0.97
    rule_mask = (clean > 100) & (clean < 200)
    assert (erased[rule_mask] < 200).mean() > 0.95  # the table's own rules, on the grid, all stay


def test_the_blurred_edge_of_print_under_a_grey_seal_stays():
    # Print's soft edge is lighter than the cut between print and the seal's grey, but darker than
    # the seal: kept where it borders print's dark core, it is what gives a serif 5 its top stroke.
    stamped, _, seal_mask, _, _ = page_with_seal()
    stamped = stamped.copy()
    edge = np.zeros(stamped.shape, bool)
    for x_mm in (58, 62, 66, 70):  # strokes of print inside the seal's disc, in the row at 74-83 mm
        x, top, bottom = int(x_mm * MM), int(76 * MM), int(81 * MM)
        stamped[top:bottom, x - 2 : x + 4] = 125  # the blurred edge, a pixel wide either side...
        stamped[top:bottom, x - 1 : x + 3] = 30  # ...of the stroke's dark core
        edge[top:bottom, x - 2] = edge[top:bottom, x + 3] = True
    erased = erase_seals(stamped, DPI, grids=[table_grid()])
    assert (erased[edge] == 125).mean() > 0.95
    ring = seal_mask & (stamped > 150)
    assert (erased[ring] > 230).mean() > 0.95  # while the seal's own ink, lighter still, goes


def test_a_seal_whose_circle_was_found_off_centre_is_verified_about_its_true_centre():
    # The circle search works on a 60-dpi copy: a pixel off there is 0.4 mm; the ring band is +-0.6 mm.
    from pipeline.seal import _paper_level, _ring_at, _verify_ring

    stamped, clean, _, centre, radius = page_with_seal()
    x, y = centre[0] + 1.2 * MM, centre[1] - 0.9 * MM
    paper = _paper_level(stamped)
    alone, coverage = _ring_at(stamped, x, y, radius, DPI, paper)
    assert alone is None and coverage < 0.8  # about the centre as found, the ring is not inked all round
    seal = _verify_ring(stamped, x, y, radius, DPI, paper)
    assert seal is not None
    assert abs(seal.x - centre[0]) <= 1 * MM and abs(seal.y - centre[1]) <= 1 * MM  # the ring within its band
    assert _verify_ring(clean, x, y, radius, DPI, _paper_level(clean)) is None  # the table alone is no ring


def _scanned(name: str) -> np.ndarray:
    from pathlib import Path

    path = Path(__file__).parents[1] / "fixtures/cells" / f"{name}.png"
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def test_a_circle_through_a_close_set_paragraph_is_no_seal():
    # A 170-dpi colour scan with no seal: a circle of the seals' size drawn through its 预期目标
    # paragraph is inked 0.8 of the way round. Taken for a seal, its "ghost" erasure ate the text.
    from pipeline.seal import _ring_at, _verify_ring

    page = _scanned("paragraph_no_seal")
    x, y, radius, dpi = 132.24, 132.04, 99.1, 170
    paper = 252  # the whole page's (``_paper_level``)
    _, coverage = _ring_at(page, x, y, radius, dpi, paper)
    assert coverage >= 0.8  # as far round as a seal's ring
    assert _verify_ring(page, x, y, radius, dpi, paper) is None


def test_a_seal_stamped_over_a_crowded_table_is_still_a_seal():
    # A grey seal on a 220-dpi scan, over rules and text that ink a circle 3 mm outside it 0.6 of the way.
    from pipeline.seal import _paper_level, _verify_ring

    page = _scanned("seal_over_table")
    seal = _verify_ring(page, 200, 200, 157, 220, _paper_level(page))
    assert seal is not None and abs(seal.x - 200) < 10 and abs(seal.y - 200) < 10

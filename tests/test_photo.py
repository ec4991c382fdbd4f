"""Phone photos of a ruled form (``pipeline.photo``): a generated page photographed with a
known keystone, turn, lighting and fading must come back with its tables' structure."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.deskew import rotate
from pipeline.grid import detect_tables
from pipeline.photo import find_outline, straighten_photo
from pipeline.read import Page
from pipeline.tables import find_tables

from table_pages import BUDGET, TABLES, photo_of_page, table_page

DPI = 150
PPM = DPI / 25.4


def _structure(grids) -> list[set[tuple[int, int, int, int]]]:
    return [{(c.row, c.col, c.row_span, c.col_span) for c in g.cells} for g in grids]


TRUE_STRUCTURE = [{(c.row, c.col, c.row_span, c.col_span) for c in t.cells} for t in TABLES]


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray]:
    return photo_of_page(table_page(DPI, seed=3), DPI, seed=3)


def test_the_scan_path_finds_no_table_on_the_photo(photo) -> None:
    # The premise: turned 9 degrees and seen at an angle, the page defeats the scan path.
    image, _ = photo
    assert detect_tables(image, PPM) == []


def test_the_outline_found_is_the_tables_not_the_sheets_edge(photo) -> None:
    image, homography = photo
    angle = 9.0  # the photo's turn, undone exactly, so the corners can be checked
    straight = rotate(image, -angle, fill_edges=True)
    corners = find_outline(straight, PPM)
    assert corners is not None
    # The budget table's corners, through the photo's homography and the undoing turn.
    x0, x1 = BUDGET.x_mm[0] * PPM, BUDGET.x_mm[-1] * PPM
    y0, y1 = BUDGET.y_mm[0] * PPM, BUDGET.y_mm[-1] * PPM
    true = cv2.perspectiveTransform(np.float32([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]), homography)[0]
    h, w = image.shape
    undo = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), -angle, 1.0)
    true = cv2.transform(true[None], undo)[0]
    assert np.abs(corners - true).max() <= 1.0 * PPM, (corners, true)  # within a millimetre


def test_a_photographed_page_gives_back_its_tables_and_spans(photo) -> None:
    image, _ = photo
    found = find_tables(Page("photo.png", 1, image, DPI))
    assert found.deskew_deg != 0.0  # turned back (the rest of the turn: by the perspective correction)
    assert _structure(found.grids) == TRUE_STRUCTURE


def test_a_sheet_edge_without_rules_is_no_outline() -> None:
    # A light sheet on a dark desk has four straight edges but no rules: paper on one side only.
    desk = np.full((900, 1200), 70, np.uint8)
    cv2.fillConvexPoly(desk, np.int32([[150, 120], [1050, 160], [1010, 800], [120, 760]]), 235)
    assert find_outline(desk, PPM) is None


def test_straightening_keeps_the_size_and_evens_the_light(photo) -> None:
    image, _ = photo
    result = straighten_photo(image, PPM)
    assert result.image.shape == image.shape
    assert result.outline is not None

    def paper(img: np.ndarray) -> tuple[float, float]:
        # The paper's level (90th percentile: most of it is paper) in the page's top-left and
        # bottom-right quarters, which the photo lights most and least.
        h, w = img.shape
        return float(np.percentile(img[: h // 2, : w // 2], 90)), float(np.percentile(img[h // 2 :, w // 2 :], 90))

    # The desk lies round the page in the photo: compare the sheet alone, inside the outline's box.
    x0, y0 = (int(v) for v in result.outline.min(axis=0))
    x1, y1 = (int(v) for v in result.outline.max(axis=0))
    before, after = paper(image[y0:y1, x0:x1]), paper(result.image[y0:y1, x0:x1])
    assert before[0] - before[1] > 20, before
    assert abs(after[0] - after[1]) < 5, after

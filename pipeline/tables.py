"""Every ruled table on a page, read cell by cell: the generic path behind ``formscan tables``.

The stages of a form page (upright, deskew, grid, seal erased, both engines, wrap repair)
without a form to map the cells to: each table found is kept whole, with its spans and
every cell's repaired text and calibrated confidence.

Pages here are any size (a table cropped from a page, a phone photo), so the scale is not
taken from the page size alone: a page that shows part of an A4 sheet has more pixels per
millimetre than the whole sheet would, and its printed glyphs say how many.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models import PageError, PageTables, SourceRef, Table, TableCell
from pipeline.blank import is_blank
from pipeline.cell_image import prepare_cell
from pipeline.confidence import calibrated_confidence, evidence_class
from pipeline.deskew import deskew, detect_orientation, rotate_upright
from pipeline.errors import BlankPageError, FormscanError, InternalError, NoTableError
from pipeline.grid import Box, Cell, Grid, detect_tables, estimate_px_per_mm, to_gray
from pipeline.ocr import CellReader
from pipeline.photo import straighten_photo
from pipeline.read import MAX_PIXELS, Page, read_pages
from pipeline.seal import erase_seals

GLYPH_MM = 3.5  # printed Chinese glyphs (10.5-12 pt) stand 3.3-3.8 mm tall
MIN_PX_PER_MM = 72 / 25.4  # below 72 dpi nothing is legible (pipeline.read assumes no less)
MAX_PX_PER_MM = 16.0
MIN_GLYPHS = 50  # fewer glyph-sized shapes than this say nothing about the scale
READ_DPI = 200  # cells of smaller pages are enlarged to this before they are read


def glyph_height_px(gray: np.ndarray) -> float | None:
    """Typical height of a printed glyph on the page, pixels (None: too little text).

    Ink shapes that are not long rules, glyph-sized and not elongated; the 80th percentile
    of their heights, since glyphs break into parts (radicals, dots) that are shorter.
    """
    paper = float(np.percentile(gray[::4, ::4], 90))
    ink = (gray < min(paper - 60.0, 170.0)).astype(np.uint8)
    short_side = min(gray.shape[:2])
    k = max(15, short_side // 25)
    rules = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    rules |= cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    text = ink & (1 - cv2.dilate(rules, np.ones((3, 3), np.uint8)))
    _, _, stats, _ = cv2.connectedComponentsWithStats(text, connectivity=8)
    h = stats[1:, cv2.CC_STAT_HEIGHT]
    w = stats[1:, cv2.CC_STAT_WIDTH]
    glyph = (h >= 4) & (w >= 2) & (h <= short_side / 8) & (w <= 3 * h) & (h <= 4 * w + 4)
    if int(glyph.sum()) < MIN_GLYPHS:
        return None
    return float(np.percentile(h[glyph], 80))


def page_px_per_mm(image: np.ndarray) -> float:
    """Pixels per millimetre: the A4 scale of the page size, or more where its glyphs say so.

    A4 is a lower bound for any page that shows (part of) an A4 sheet or smaller; a crop or
    a photo of a table has larger glyphs than the whole sheet at that size would.
    """
    gray = to_gray(image)
    glyph = glyph_height_px(gray)
    scale = max(estimate_px_per_mm(gray.shape), glyph / GLYPH_MM if glyph else 0.0)
    return float(np.clip(scale, MIN_PX_PER_MM, MAX_PX_PER_MM))


@dataclass(frozen=True)
class FoundTables:
    image: np.ndarray  # the page upright and deskewed: the grids' coordinates
    grids: list[Grid]
    px_per_mm: float
    quarter_turns: int
    deskew_deg: float


def find_tables(page: Page) -> FoundTables:
    """Turn the page upright, deskew it and find every ruled table on it.

    A page on which no table is found that way is tried once more as a phone photo (wider
    skew, perspective, uneven light: ``pipeline.photo``); scans never take that path.
    """
    if is_blank(page.image):
        raise BlankPageError("the page is blank")
    ppm = page_px_per_mm(page.image)
    turns = detect_orientation(page.image, ppm)
    upright = rotate_upright(page.image, turns)
    image, angle = deskew(upright, ppm)
    grids = detect_tables(image, ppm)
    if not grids:
        photo = straighten_photo(upright, ppm)
        image, angle = photo.image, photo.angle
        grids = detect_tables(image, ppm, rules_bend=True)
    if not grids:
        raise NoTableError("no ruled table found")
    return FoundTables(image, grids, ppm, turns, angle)


def read_table(image: np.ndarray, grid: Grid, dpi: int, reader: CellReader, index: int = 1) -> Table:
    """Every cell of ``grid`` read as a form's cells are: Tesseract first, PP-OCR's second
    opinion wherever Tesseract's reading is not a blank or a dash (there is no form's
    vocabulary or arithmetic here to settle a reading).

    A page under ``READ_DPI`` is read from a copy enlarged to it: both engines misread
    glyphs a dozen pixels tall (a small image of a table) that they read right enlarged.
    """
    scale = max(1.0, READ_DPI / dpi)
    if scale > 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    cells = []
    for cell in grid.cells:
        b = _reading_box(grid, cell)
        box = Box(int(b.x0 * scale), int(b.y0 * scale), int(math.ceil(b.x1 * scale)), int(math.ceil(b.y1 * scale)))
        text = reader.read(prepare_cell(image, box, int(round(dpi * scale))))
        evidence = evidence_class("", text, set(), set())
        cells.append(TableCell(
            row=cell.row, col=cell.col, row_span=cell.row_span, col_span=cell.col_span, text=text.text,
            confidence=calibrated_confidence(evidence), evidence=evidence, readings=text.readings,
            box=(cell.box.x0, cell.box.y0, cell.box.x1, cell.box.y1),
        ))
    box = grid.bbox
    return Table(index=index, n_rows=grid.n_rows, n_cols=grid.n_cols, bbox=(box.x0, box.y0, box.x1, box.y1),
                 row_edges=list(grid.row_edges), col_edges=list(grid.col_edges), cells=cells)


def _reading_box(grid: Grid, cell: Cell) -> Box:
    """The area inside a cell's rules, cut just past their ink (``prepare_cell`` insets a
    little more and clears what is left of a rule): in a cramped cell of a small image the
    text comes within two pixels of the rules, inside the grid's own, wider inset box."""
    half = int(math.ceil(grid.rule_px / 2))
    x0, x1 = grid.col_edges[cell.col] + half, grid.col_edges[cell.col + cell.col_span] - half + 1
    y0, y1 = grid.row_edges[cell.row] + half, grid.row_edges[cell.row + cell.row_span] - half + 1
    return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else cell.box


def read_page_tables(page: Page, reader: CellReader) -> PageTables:
    """Every table on the page, read; a page that cannot be read gives its error instead."""
    source = SourceRef(file=page.source, page=page.number)
    try:
        found = find_tables(page)
    except FormscanError as exc:
        return PageTables(source=source, error=PageError(kind=exc.kind, message=exc.detail))
    dpi = int(round(found.px_per_mm * 25.4))
    # Cells are read with any seal's ink erased; the grid was found before (erasing can thin a rule).
    image = erase_seals(found.image, dpi, ghost=page.was_colour, grids=found.grids)
    tables = [read_table(image, grid, dpi, reader, index) for index, grid in enumerate(found.grids, 1)]
    return PageTables(source=source, tables=tables, quarter_turns=found.quarter_turns,
                      deskew_deg=round(found.deskew_deg, 3))


def read_document_tables(
    path: str | Path, reader: CellReader, *, max_pixels: int = MAX_PIXELS
) -> Iterator[PageTables]:
    """The tables of every page of one file; a file that cannot be read gives one error result,
    and so does a page on which a stage fails unexpectedly (``internal``: a bug must not lose
    the file's other pages, as ``formscan extract``'s worker pool also ensures)."""
    try:
        for page in read_pages(path, max_pixels=max_pixels):
            try:
                yield read_page_tables(page, reader)
            except Exception as exc:
                yield PageTables(source=SourceRef(file=page.source, page=page.number),
                                 error=PageError(kind=InternalError.kind, message=f"{type(exc).__name__}: {exc}"))
    except FormscanError as exc:
        yield PageTables(source=SourceRef(file=str(path), page=exc.page), error=PageError(kind=exc.kind,
                                                                                          message=exc.detail))

"""Erase an official seal's ink from a greyscale page.

A red seal stamped across the table puts its ring, star and arc text over cells
and rules. On colour scans reading the red channel leaves only a faint ghost
(see ``read``), which PP-OCR still reads as text; on grey scans it stays as
mid-grey ink. Both are lighter than print. So: find the seal as a circle whose ring is inked nearly all the way
round, then inside its disc keep only ink darker than the seal's own grey, the blurred edge of
printed strokes, and the table's rules (found before, so the seal's own straight strokes are not
taken for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.grid import Grid

WORK_DPI = 60  # circle search on a small copy: a 40 mm seal is still ~95 px across
RADIUS_MM = (15.0, 25.0)  # official seals are 38-50 mm across
RING_COVERAGE = 0.8  # share of the circumference inked: a ring, not a text block or a table
# A seal's ring is inked this much more of the way round than a circle OUTSIDE_MM outside it, which
# crosses only what the page prints there; a circle drawn through a close-set paragraph is not.
RING_OVER_OUTSIDE = 0.36
OUTSIDE_MM = 3.0
PARTLY_INKED = 0.6  # a circle inked this far round is worth searching around for a better centre
CENTRE_SEARCH_MM = 1.5  # how far from the circle search's centre a seal's centre is looked for
# The centres tried about a partly inked circle's, in mm, nearest first.
_STEPS_MM = np.arange(-CENTRE_SEARCH_MM, CENTRE_SEARCH_MM + 0.01, 0.5)
_CENTRE_OFFSETS_MM = sorted(
    ((dx, dy) for dx in _STEPS_MM for dy in _STEPS_MM if dx or dy), key=lambda o: o[0] ** 2 + o[1] ** 2
)
# The ring is sampled at every degree.
_ANGLES = np.linspace(0, 2 * np.pi, 360, endpoint=False)
_COS, _SIN = np.cos(_ANGLES), np.sin(_ANGLES)
SEAL_MARGIN = 15  # grey levels below a grey seal's typical ink that are still its ink
GHOST_MARGIN = 20  # grey levels below a ghost seal's typical ink that are still erased
SEAL_INK_FLOOR = 125  # a ring darker than this is drawn in print, not stamped
RING_CONTRAST = 22  # grey levels below paper: a red seal on a colour scan leaves only a faint ghost in the red channel
PRINT_EDGE_MM = 0.15  # the blur around a printed stroke's dark core
RULE_BAND_MM = 0.4  # how far past a found rule's half thickness its blurred edge may reach


@dataclass(frozen=True)
class Seal:
    x: float  # centre, page pixels
    y: float
    radius: float
    ink_level: float  # typical grey of the seal's ink


def _paper_level(image: np.ndarray) -> float:
    return float(np.percentile(image[:: 8, :: 8], 90))


def find_seals(image: np.ndarray, dpi: int, max_seals: int = 3) -> list[Seal]:
    scale = WORK_DPI / dpi
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 1.5)
    per_mm = WORK_DPI / 25.4
    circles = cv2.HoughCircles(
        small, cv2.HOUGH_GRADIENT, dp=1, minDist=30 * per_mm, param1=60, param2=25,
        minRadius=int(RADIUS_MM[0] * per_mm), maxRadius=int(RADIUS_MM[1] * per_mm),
    )
    if circles is None:
        return []
    paper = _paper_level(image)
    seals = []
    for x, y, r in circles[0][: max_seals * 3]:
        seal = _verify_ring(image, x / scale, y / scale, r / scale, dpi, paper)
        if seal is not None:
            seals.append(seal)
        if len(seals) == max_seals:
            break
    return seals


def _verify_ring(image: np.ndarray, x: float, y: float, r: float, dpi: int, paper: float) -> Seal | None:
    """A seal when, about some centre within CENTRE_SEARCH_MM of (x, y), some radius near ``r`` is inked,
    lighter than print, nearly all the way round.

    The circle search's centre comes from the 60-dpi copy and can be a pixel or two off there (0.4-0.8 mm):
    the ring then leaves the band on one side and covers, say, 0.77 of the way round instead of all of it.
    A centre whose ring is inked over PARTLY_INKED of the way round is searched around in 0.5 mm steps,
    nearest first; a false circle from the table's rules and text stays under RING_COVERAGE wherever it is
    put. A circle through a close-set paragraph can be inked as far round, but so is one just outside it:
    a seal's ring must stand out from its surroundings by RING_OVER_OUTSIDE.
    """
    seal, coverage = _ring_at(image, x, y, r, dpi, paper)
    if seal is None and coverage >= PARTLY_INKED:
        per_mm = dpi / 25.4
        for dx, dy in _CENTRE_OFFSETS_MM:
            seal, _ = _ring_at(image, x + dx * per_mm, y + dy * per_mm, r, dpi, paper)
            if seal is not None:
                break
    if seal is None:
        return None
    outside = _coverage(image, seal.x, seal.y, seal.radius + OUTSIDE_MM * dpi / 25.4, dpi, paper)
    ring = _coverage(image, seal.x, seal.y, seal.radius, dpi, paper)
    return seal if ring - outside >= RING_OVER_OUTSIDE else None


def _darkest_round(image: np.ndarray, x: float, y: float, radius: float, dpi: int) -> np.ndarray:
    """At every degree round the circle, the darkest pixel across a band 1.2 mm wide about it."""
    per_mm = dpi / 25.4
    h, w = image.shape
    band = [radius + d for d in np.arange(-0.6, 0.61, 0.3) * per_mm]
    xs = np.clip((x + np.outer(band, _COS)).astype(int), 0, w - 1)
    ys = np.clip((y + np.outer(band, _SIN)).astype(int), 0, h - 1)
    return image[ys, xs].min(axis=0)


def _coverage(image: np.ndarray, x: float, y: float, radius: float, dpi: int, paper: float) -> float:
    """The share of the way round the circle that is inked."""
    return float((_darkest_round(image, x, y, radius, dpi) < paper - RING_CONTRAST).mean())


def _ring_at(image: np.ndarray, x: float, y: float, r: float, dpi: int, paper: float) -> tuple[Seal | None, float]:
    """The seal centred at (x, y) with the best-inked radius near ``r``, if one is inked nearly all the way
    round; and the largest share of the way round any radius was inked."""
    per_mm = dpi / 25.4
    best: Seal | None = None
    best_coverage = RING_COVERAGE
    most = 0.0
    for radius in r + np.arange(-2.5, 2.6, 0.5) * per_mm:
        darkest = _darkest_round(image, x, y, radius, dpi)
        inked = darkest < paper - RING_CONTRAST
        coverage = float(inked.mean())
        most = max(most, coverage)
        ink_level = float(np.median(darkest[inked])) if inked.any() else paper
        # Print is near black; a seal's ink is mid-grey (grey scans) or a faint ghost (red channel).
        if coverage > best_coverage and ink_level >= SEAL_INK_FLOOR:
            best_coverage = coverage
            best = Seal(float(x), float(y), float(radius), ink_level)
    return best, most


def erase_seals(
    image: np.ndarray,
    dpi: int,
    *,
    ghost: bool = False,
    gentle: bool = False,
    seals: list[Seal] | None = None,
    grids: Sequence[Grid] | None = None,
) -> np.ndarray:
    """The page with the ink of any seal found lightened to paper, print kept.

    ``ghost``: the page is the red channel of a colour scan, where the seal is only a
    faint ghost; then only ink about as light as the ghost goes, since the thin strokes
    of print there are lighter than the print's core and must stay.

    ``gentle`` (grey scans): only ink at least as light as the seal's typical grey goes. By
    default ink between print's grey and the seal's goes too, which takes the seal's darker
    strokes but also faint print's thin ones (a serif 4 read as 1): ``gentle`` keeps those,
    and leaves the seal's darker ink behind.

    ``seals``: those ``find_seals`` already found on ``image``; looked for here if None.

    ``grids``: the tables found on ``image`` before the erasure. A straight, thin stroke of the
    seal (a point or the straight edge of its star, the flat side of its ring) looks like a rule
    and would stay, to be read as a "1" or "—" in the cell it crosses: with the grids known, only
    such strokes on their cells' rules stay.
    """
    if seals is None:
        seals = find_seals(image, dpi)
    if not seals:
        return image
    out = image.copy()
    paper = _paper_level(image)
    per_mm = dpi / 25.4
    for seal in seals:
        r = int(seal.radius + 3 * per_mm)  # the centre found on the small copy can be ~2 mm off
        x0, y0 = max(0, int(seal.x) - r), max(0, int(seal.y) - r)
        x1, y1 = min(image.shape[1], int(seal.x) + r + 1), min(image.shape[0], int(seal.y) + r + 1)
        region = out[y0:y1, x0:x1]
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = (xx - seal.x) ** 2 + (yy - seal.y) ** 2 <= r * r
        ink = region[disc & (region < paper - 35)]
        if ink.size == 0:
            continue
        text_level = float(np.percentile(ink, 3))
        # Print is darker than the seal; where the seal overlaps print it is darker still.
        seal_cut = seal.ink_level - SEAL_MARGIN  # ink at least this light is the seal's own
        if ghost:
            cut = seal.ink_level - GHOST_MARGIN
        elif gentle:
            cut = seal_cut
        else:
            cut = min(seal_cut, (seal.ink_level + text_level) / 2)
        if cut <= text_level + 10:
            continue  # the seal is as dark as print here: erasing would eat the text
        rules = _rules(region, paper, per_mm)
        if grids is not None:
            rules &= _on_grid_rules(grids, x0, y0, region.shape, per_mm)
        erased = disc & (region > cut) & ~rules
        if cut < seal_cut and not ghost:  # a cut below the seal's grey also thins print's edges
            erased &= ~_print_edges(region, cut, seal_cut, per_mm)
        region[erased] = 255
    return out


def _print_edges(region: np.ndarray, cut: float, seal_cut: float, per_mm: float) -> np.ndarray:
    """Ink lighter than ``cut`` but darker than the seal's (below ``seal_cut``) that borders ink at or
    below ``cut``: the blurred edge of a printed stroke, which the cut alone would thin away."""
    reach = max(1, round(PRINT_EDGE_MM * per_mm))
    core = (region <= cut).astype(np.uint8)
    near = cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    return near.astype(bool) & (region < seal_cut)


def _on_grid_rules(grids: Sequence[Grid], x0: int, y0: int, shape: tuple[int, ...], per_mm: float) -> np.ndarray:
    """The pixels of a page region (top left at ``x0, y0``) within a rule's reach of a cell's side."""
    band = np.zeros(shape[:2], np.uint8)
    for grid in grids:
        thickness = 2 * int(np.ceil(grid.rule_px / 2 + RULE_BAND_MM * per_mm)) + 1
        for cell in grid.cells:
            left, right = grid.col_edges[cell.col], grid.col_edges[cell.col + cell.col_span]
            top, bottom = grid.row_edges[cell.row], grid.row_edges[cell.row + cell.row_span]
            cv2.rectangle(band, (left - x0, top - y0), (right - x0, bottom - y0), 1, thickness)
    return band.astype(bool)


def _rules(region: np.ndarray, paper: float, per_mm: float) -> np.ndarray:
    """Long, thin, straight strokes: the table's rules, which may be as light as the seal and must stay.

    The seal's ring is straight enough near its top, bottom and sides to survive a long
    opening, but it is several times thicker than a rule, so thickness tells them apart.
    Needs a deskewed page: rules are then exactly horizontal or vertical.
    """
    ink = (region < paper - 35).astype(np.uint8)
    length = max(3, int(8 * per_mm))
    max_thickness = max(3, int(round(0.45 * per_mm)))
    keep = np.zeros(region.shape, bool)
    for kernel, axis in (((length, 1), cv2.CC_STAT_HEIGHT), ((1, length), cv2.CC_STAT_WIDTH)):
        opened = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
        thin = np.zeros(n, bool)
        thin[1:] = stats[1:, axis] <= max_thickness
        keep |= thin[labels]
    return cv2.dilate(keep.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)

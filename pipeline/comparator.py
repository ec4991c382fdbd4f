"""Whether a cell's leading comparator carries the bar of ≥/≤: a look at the glyph itself.

At 150–200 dpi both engines read ≥ as > (and ≤ as <) when the bar has merged into
the chevron's lower arm or is a pixel thin; agreeing, they would certify a wrong
reading. The glyph still tells: cut down its middle, > crosses two strokes of equal
thickness (the arms); ≥ crosses three (arms and bar), or two of which the lower is
markedly thicker (arm and bar merged). Anything else is left undecided.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.cell_image import CellImage

THREE_STROKE_COLUMNS = 2  # columns crossing three strokes: one alone may be a speck
MERGED_BAR_RATIO = 1.3  # lower stroke / upper stroke thickness when the bar has merged
EQUAL_ARMS_RATIO = 1.15
THIN_BAR_RATIO = 0.65  # lower stroke / upper: a bar under the merged point of < (3 px under 6-8)


def comparator_has_bar(cell: CellImage) -> bool | None:
    """True: the first glyph of the first line is ≥/≤; False: it is >/<; None: cannot tell."""
    if cell.kind != "text" or not cell.line_spans:
        return None
    glyph = _first_glyph(cell.image, cell.line_spans[0])
    if glyph is None:
        return None
    glyph = _chevron_alone(glyph)
    h, w = glyph.shape
    if h < 6 or not 0.3 * h <= w <= 1.3 * h:
        return None  # a rule remnant, a speck, or the chevron run into the next character
    strokes = [_runs(glyph[:, x]) for x in range(int(w * 0.2), max(int(w * 0.2) + 1, int(np.ceil(w * 0.75))))]
    if sum(len(r) >= 3 for r in strokes) >= THREE_STROKE_COLUMNS:
        return True
    pairs = [r for r in strokes if len(r) == 2]
    if not pairs or any(len(r) > 2 for r in strokes):
        return None
    ratios = sorted(lower / upper for upper, lower in pairs)
    # Thicker along most of its length, not only where anti-aliasing swells one column.
    if ratios[len(ratios) // 4] >= MERGED_BAR_RATIO:
        return True
    # Equal arms, and no lower stroke far thinner than the upper: that is a bar under the
    # merged point of < (≤ at 150 dpi, its lower arm run into the bar).
    if float(np.median(ratios)) <= EQUAL_ARMS_RATIO and ratios[len(ratios) // 4] >= THIN_BAR_RATIO:
        return False
    return None


def _chevron_alone(glyph: np.ndarray) -> np.ndarray:
    """The chevron cut from the character it has run into (a 150 dpi ">9" is one blob).

    The point of > is where the blob is thinnest: the column with least ink between half and
    one and a half glyph heights from the left, if the ink there is a single thin run at mid
    height (two glyphs touching at the point, not one glyph's body). A thin run low down is
    a bar run into the next character (≤2): cut there, the arms left would pass for >.
    """
    h, w = glyph.shape
    if w <= 1.3 * h:
        return glyph
    lo, hi = int(0.5 * h), min(w - 1, int(1.5 * h))
    if hi <= lo:
        return glyph
    ink = glyph[:, lo:hi].sum(axis=0)
    cut = lo + int(np.argmin(ink))
    if len(_runs(glyph[:, cut])) > 1 or ink.min() > max(2, h // 4):
        return glyph
    if not h / 3 <= float(np.flatnonzero(glyph[:, cut]).mean()) <= 2 * h / 3:
        return glyph
    rows = np.flatnonzero(glyph[:, :cut].any(axis=1))
    return glyph[rows[0] : rows[-1] + 1, :cut] if rows.size else glyph


def _first_glyph(image: np.ndarray, span: tuple[int, int]) -> np.ndarray | None:
    """The ink mask of the line's leftmost character, with any stroke beneath it (the bar)."""
    line = image[span[0] : span[1]]
    if line.size == 0 or line.min() >= 200:
        return None
    _, ink = cv2.threshold(line, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    tall = [i for i in range(1, n) if stats[i, cv2.CC_STAT_HEIGHT] >= 0.4 * line.shape[0]]
    if not tall:
        return None
    first = min(tall, key=lambda i: stats[i, cv2.CC_STAT_LEFT])
    x0 = stats[first, cv2.CC_STAT_LEFT]
    x1 = x0 + stats[first, cv2.CC_STAT_WIDTH]
    if any(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] <= x0 and stats[i, cv2.CC_STAT_AREA] >= 4
           for i in range(1, n)):
        return None  # ink before it: the comparator itself may be what fell apart
    # Components lying within the chevron's columns belong to it (a bar drawn apart).
    parts = [i for i in range(1, n) if stats[i, cv2.CC_STAT_LEFT] >= x0 - 1
             and stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] <= x1 + 1]
    mask = np.isin(labels[:, x0:x1], parts).astype(np.uint8)
    rows = np.flatnonzero(mask.any(axis=1))
    return mask[rows[0] : rows[-1] + 1] if rows.size else None


def _runs(column: np.ndarray) -> list[int]:
    """Lengths of the ink runs down one pixel column, top first."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], column, [0]))))
    return [int(b - a) for a, b in zip(edges[::2], edges[1::2])]

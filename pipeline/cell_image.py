"""Prepare one cell's image for reading: cut inside the rules, classify, trim to the ink.

A cell is ``blank`` (no ink), ``dash`` (a single short horizontal stroke: the
form's "—", which no OCR engine prints) or ``text``. Text cells are trimmed to
their ink with a margin and split into text lines by the row profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import cv2
import numpy as np

from pipeline.grid import Box

CellKind = Literal["blank", "dash", "text"]
INK_THRESHOLD = 160  # grey level below which a pixel counts as ink
# A second look, and a third: this much darker than the paper (noise and seal ghosts stay
# under ~55); a digit faded at 150 dpi keeps only its cores at the first
FADED_CONTRASTS = (70, 58)
GLYPH_MIN_MM = 1.5  # ... counts when it is as tall as one line of glyphs (digits are >= 2 mm),
GLYPH_MAX_MM = 6.0  # not taller: what is left of a seal's ring and lettering spreads wider


@dataclass(frozen=True)
class CellImage:
    kind: CellKind
    image: np.ndarray  # trimmed greyscale crop (255 = paper); empty for blank cells
    line_spans: tuple[tuple[int, int], ...]  # (y0, y1) of each text line inside ``image``
    dpi: int = 0  # of the page it was cut from: what a glyph's finest stroke may have lost

    def lines(self) -> list[CellImage]:
        """Each text line as a one-line cell of its own, with a quarter of its height above and below."""
        out = []
        for y0, y1 in self.line_spans:
            margin = max(2, (y1 - y0) // 4)
            top = max(0, y0 - margin)
            out.append(CellImage("text", self.image[top : y1 + margin], ((y0 - top, y1 - top),), self.dpi))
        return out


def median_grey(crop: np.ndarray) -> float:
    """``np.median`` of a uint8 image, from its histogram: 43 against 169 µs on a 100 x 300 crop,
    and a page has ~130 cells."""
    counts = np.cumsum(np.bincount(crop.ravel(), minlength=256))
    n = int(counts[-1])
    upper = int(np.searchsorted(counts, n // 2, side="right"))  # the (n // 2)-th value, from 0
    if n % 2:
        return float(upper)
    return (int(np.searchsorted(counts, n // 2 - 1, side="right")) + upper) / 2


def _ink_levels(crop: np.ndarray, paper: float) -> tuple[float, float]:
    """(strong, faint) grey levels: at or below ``strong`` is surely print; at or below
    ``faint`` may be the thin, blurred stroke of a character (一 at 150 dpi) or a seal's ghost.
    ``paper``: the crop's median grey."""
    if crop.size == 0 or crop.min() >= INK_THRESHOLD:
        return 0.0, 0.0
    # Otsu adapts to faded print; the cap keeps paper noise from counting as ink.
    otsu, _ = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    strong = min(float(otsu), INK_THRESHOLD)
    return strong, max(strong, (strong + paper) / 2)


BAND_LINE_INK = 0.25  # a line of a rule's band this much ink is the rule's
RULE_SIDE_PX = 2  # a cleared rule's blurred sides lie within this of it


RULE_PAST_MM = 0.8  # past the rule that bounds the cell (rules are <= 0.7 mm) ...
RULE_ALONG_MM = 1.0  # ... a rule goes on for at least this long
RULE_ALONG_INK = 0.7  # ... inked over this much of it


@dataclass(frozen=True)
class _Ruled:
    """Which rows and columns of a crop lie on a line that goes on outside the cell, past the
    rules around it: a rule's, where glyph strokes stop at the cell's edge."""

    rows: np.ndarray
    cols: np.ndarray


@dataclass(frozen=True)
class _Outside:
    """The page just outside a cell, past its rules, along each row and column of its crop:
    cut once a cell, and asked at each ink level the cell is looked at with."""

    rows: tuple[np.ndarray, ...]  # per side, (crop rows x stretch), darkest of the row and its neighbours
    cols: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, page: np.ndarray, box: Box, crop_at: Box, dpi: int) -> _Outside:
        mm = dpi / 25.4
        near = round(RULE_PAST_MM * mm)
        far = near + max(3, round(RULE_ALONG_MM * mm))

        def sides(lines: np.ndarray, first: int, n: int, lo: int, hi: int, length: int) -> tuple[np.ndarray, ...]:
            # lines: the page's lines across the crop; each crop line takes the darkest of itself
            # and its neighbours (a residual skew). A crop line on the page's edge has no
            # neighbour beyond it: it is left paper, never a rule.
            out = []
            top, bottom = max(0, first - 1), min(lines.shape[0], first + n + 1)
            for a, b in ((max(0, lo - far), max(0, lo - near)), (min(length, hi + near), min(length, hi + far))):
                strip = np.full((n + 2, b - a), 255, np.uint8)
                strip[top - first + 1 : bottom - first + 1] = lines[top:bottom, a:b]
                darkest = np.minimum(np.minimum(strip[:-2], strip[1:-1]), strip[2:])
                if first == 0:
                    darkest[0] = 255
                if first + n >= lines.shape[0]:
                    darkest[-1] = 255
                out.append(darkest)
            return tuple(out)

        height, width = page.shape[:2]
        return cls(
            sides(page, crop_at.y0, crop_at.height, box.x0, box.x1, width),
            sides(page.T, crop_at.x0, crop_at.width, box.y0, box.y1, height),
        )

    def at(self, level: float) -> _Ruled:
        def goes_on(strips: tuple[np.ndarray, ...]) -> np.ndarray:
            return np.logical_or.reduce([
                np.count_nonzero(s <= level, axis=1) >= RULE_ALONG_INK * s.shape[1] if s.shape[1] else
                np.zeros(s.shape[0], bool) for s in strips
            ])

        return _Ruled(goes_on(self.rows), goes_on(self.cols))


@dataclass(frozen=True)
class _Cleared:
    """A crop's ink mask with its rule remnants cleared, and the rows and columns cleared
    as lines inked almost end to end."""

    mask: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    @cached_property
    def beside_rows(self) -> np.ndarray:
        return _beside(self.rows)

    @cached_property
    def beside_cols(self) -> np.ndarray:
        return _beside(self.cols)

    def along_a_rule(self, stat: np.ndarray, dpi: int) -> bool:
        """A thin piece lying along a cleared line: a blurred side of a rule drawn slightly
        askew, which no line of the crop holds end to end."""
        x, y, w, h = (int(v) for v in stat[:4])
        width = max(2, dpi // 60)
        return (w <= width and h > 3 * w and bool(self.beside_cols[x : x + w].all())) or (
            h <= width and w > 3 * h and bool(self.beside_rows[y : y + h].all())
        )

    def text_components(self, dpi: int) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
        """(labels, stats, kept) of the connected pieces that may be text: specks, slivers along
        the crop's edge and a cleared rule's sides left out; None when nothing else is left."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(self.mask.view(np.uint8), connectivity=8)
        min_area = _min_area(dpi)
        kept = [i for i in range(1, n)
                if stats[i, cv2.CC_STAT_AREA] >= min_area and not _edge_sliver(stats[i], self.mask.shape, dpi)]
        if all(self.along_a_rule(stats[i], dpi) for i in kept):
            return None
        return labels, stats, kept


def _beside(lines: np.ndarray) -> np.ndarray:
    """Which lines of a crop lie within ``RULE_SIDE_PX`` of one of ``lines``."""
    return np.convolve(lines, np.ones(2 * RULE_SIDE_PX + 1), "same") > 0


def _clear_border_rules(mask: np.ndarray, dpi: int, ruled: _Ruled | None = None) -> _Cleared:
    """Drop rule remnants: long straight runs along the crop's edges, and lines inked almost end
    to end that go on outside the cell (``ruled``; any such line when None)."""
    h, w = mask.shape
    edge = max(2, dpi // 60)
    out = mask.copy()
    # Within a band that holds a rule, only its lines that are mostly ink and go on outside the
    # cell go: text printed against the rule keeps the strokes beside it, and the first glyphs
    # of lines set against the rule (扌 of 按) ink half such a band too.
    for rows in (slice(0, edge), slice(h - edge, h)):
        band = out[rows]
        if band.size and np.count_nonzero(band) / band.size > 0.5:
            lines = np.count_nonzero(band, axis=1) / w > BAND_LINE_INK
            band[lines if ruled is None else lines & ruled.rows[rows]] = False
    for cols in (slice(0, edge), slice(w - edge, w)):
        band = out[:, cols]
        if band.size and np.count_nonzero(band) / band.size > 0.5:
            lines = np.count_nonzero(band, axis=0) / h > BAND_LINE_INK
            band[:, lines if ruled is None else lines & ruled.cols[cols]] = False
    # Any remaining row/column that is ink almost end to end is a rule, not text.
    # A row of close-set bold glyphs in a tight cell is as inked, but stops at the cell's edge.
    full_rows = np.count_nonzero(out, axis=1) / w > 0.85
    full_cols = np.count_nonzero(out, axis=0) / h > 0.85
    if ruled is not None:
        full_rows &= ruled.rows
        full_cols &= ruled.cols
    out[full_rows] = False
    out[:, full_cols] = False
    return _Cleared(out, full_rows, full_cols)


def prepare_cell(page: np.ndarray, box: Box, dpi: int) -> CellImage:
    """Cut ``box`` from the page, inset past the rules, and classify what it holds."""
    inset = max(1, round(dpi * 0.008))  # ~0.2 mm: the box is inside the rules already; text may touch them
    y0, y1 = box.y0 + inset, box.y1 - inset
    x0, x1 = box.x0 + inset, box.x1 - inset
    if y1 - y0 < 4 or x1 - x0 < 4:
        return CellImage("blank", np.zeros((0, 0), np.uint8), ())
    crop = page[y0:y1, x0:x1]
    outside = _Outside.of(page, box, Box(x0, y0, x1, y1), dpi)
    mm = dpi / 25.4
    paper = median_grey(crop)
    strong_level, faint_level = _ink_levels(crop, paper)
    extent = _ink_extent(crop, strong_level, dpi, outside.at(strong_level))
    if extent is None or _looks_like_dash(extent, mm) or _is_speck(extent, mm):
        # Faded print at low resolution can stay lighter than the fixed ink level:
        # a glyph-sized shape well darker than the paper is text all the same.
        for contrast in FADED_CONTRASTS:
            relaxed = paper - contrast
            relaxed_extent = _ink_extent(crop, relaxed, dpi, outside.at(relaxed)) if relaxed > strong_level else None
            if relaxed_extent is not None and GLYPH_MIN_MM * mm <= relaxed_extent[3] - relaxed_extent[1] <= GLYPH_MAX_MM * mm:
                extent = relaxed_extent
                faint_level = max(faint_level, (relaxed + paper) / 2)
                break
    if extent is None:
        return CellImage("blank", np.zeros((0, 0), np.uint8), ())
    if _looks_like_dash(extent, mm):
        return CellImage("dash", np.zeros((0, 0), np.uint8), ())
    if _is_speck(extent, mm):
        return CellImage("blank", np.zeros((0, 0), np.uint8), ())
    # The text's extent comes from the faint mask, so thin light strokes are not cut off.
    faint_raw = crop <= faint_level
    cleared = _clear_border_rules(faint_raw, dpi, outside.at(faint_level))
    faint = cleared.mask
    components = cleared.text_components(dpi)
    if components is None:
        # What looked like ink was a rule crossing the cell (a missed column line), or at the
        # faint level it joined a rule along the crop's edge and went with it: no text.
        return CellImage("blank", np.zeros((0, 0), np.uint8), ())
    labels, stats, keep = components
    xs0, ys0, xs1, ys1 = _bounds(stats, keep)
    ink_w, ink_h = xs1 - xs0, ys1 - ys0
    kept = np.zeros(len(stats), bool)
    kept[keep] = True
    keep_mask = kept[labels]
    # Only rule remnants are erased: masking every pixel outside the ink components would
    # also erase the faint parts of thin strokes, which the engines need.
    clean = np.where(faint_raw & ~faint, 255, crop).astype(np.uint8)
    ink, mask = _mark_back_on_its_line(clean[ys0:ys1, xs0:xs1], keep_mask[ys0:ys1, xs0:xs1], mm)
    ink_h, ink_w = ink.shape
    margin = max(4, round(1.0 * mm))
    trimmed = np.full((ink_h + 2 * margin, ink_w + 2 * margin), 255, np.uint8)
    trimmed[margin : margin + ink_h, margin : margin + ink_w] = ink
    lines = _line_spans(mask, mm)
    return CellImage("text", trimmed, tuple((a + margin, b + margin) for a, b in lines), dpi)


MARK_MM = 1.3  # a punctuation mark (。，、) is at most this wide and tall at 9-12 pt
MARK_MIN_MM = 0.6  # ... and a 。 at least this (a speck of the scan's noise is smaller)
FULL_LINE = 0.9  # a line this share of its paragraph's width wrapped because it was full


def _mark_back_on_its_line(ink: np.ndarray, mask: np.ndarray, mm: float) -> tuple[np.ndarray, np.ndarray]:
    """A punctuation mark wrapped alone to the next line (a spreadsheet wraps 。 so), put
    back at the end of the line above it: a line of one small mark is read as nothing, and
    joined to the line above it is read as nothing either, by both engines. The mark stands
    where the paragraph sets a line: at its start, or, centred or set right, in the middle or
    at the end under a line that wrapped because it was full."""
    spans = _row_runs(mask, mm)
    if len(spans) < 2:
        return ink, mask
    tallest = max(b - a for a, b in spans)
    width = mask.shape[1]
    for (pa, pb), (a, b) in zip(spans, spans[1:]):
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask[a:b].view(np.uint8), connectivity=8)
        if b - a >= 0.5 * tallest or n != 2:
            continue
        x, y, w, h = (int(v) for v in stats[1, :4])
        if w > MARK_MM * mm or h > MARK_MM * mm or w > 2 * h:
            continue  # not a mark: the top stroke of 二
        above = np.flatnonzero(mask[pa:pb].any(axis=0))
        if above.size == 0:
            continue  # the line above was itself a mark, moved up already
        at_start = x <= 0.5 * tallest
        set_as_wrapped = abs(x + w / 2 - width / 2) <= 0.5 * tallest or x + w >= width - 0.5 * tallest
        mark_sized = min(w, h) >= MARK_MIN_MM * mm
        if not at_start and not (set_as_wrapped and mark_sized and above.max() - above.min() >= FULL_LINE * width):
            continue  # a stray dot or speck further on
        end = int(above.max()) + 1 + max(1, round(0.2 * mm))
        if end + w > ink.shape[1]:
            ink = np.pad(ink, ((0, 0), (0, end + w - ink.shape[1])), constant_values=255)
            mask = np.pad(mask, ((0, 0), (0, end + w - mask.shape[1])), constant_values=False)
        rows, cols = slice(a + y, a + y + h), slice(x, x + w)
        piece, piece_ink = mask[rows, cols].copy(), ink[rows, cols].copy()
        ink[rows, cols][piece] = 255
        mask[rows, cols] = False
        # bottom on the line's bottom: where a full stop sits
        to_rows, to_cols = slice(max(pa, pb - h), max(pa, pb - h) + h), slice(end, end + w)
        ink[to_rows, to_cols][piece] = piece_ink[piece]
        mask[to_rows, to_cols] |= piece
    return ink, mask


def _row_runs(mask: np.ndarray, mm: float) -> list[tuple[int, int]]:
    """Runs of rows with ink, gaps under ~0.4 mm bridged (strokes of one glyph)."""
    rows = mask.any(axis=1)
    padded = np.concatenate(([0], rows.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    runs: list[list[int]] = []
    for a, b in zip(edges[::2], edges[1::2]):
        if runs and a - runs[-1][1] < 0.4 * mm:
            runs[-1][1] = int(b)
        else:
            runs.append([int(a), int(b)])
    return [(a, b) for a, b in runs]


def _min_area(dpi: int) -> float:
    # Specks from noise or JPEG are smaller than any stroke of a character.
    return max(3, (dpi / 300) ** 2 * 12)


def _ink_extent(crop: np.ndarray, level: float, dpi: int, ruled: _Ruled) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the ink at or below ``level``, rules and specks left out."""
    if not level:
        return None
    components = _clear_border_rules(crop <= level, dpi, ruled).text_components(dpi)
    if components is None:
        return None  # nothing but a rule's sides (or nothing at all)
    _labels, stats, keep = components
    return _bounds(stats, keep)


def _edge_sliver(stat: np.ndarray, shape: tuple[int, ...], dpi: int) -> bool:
    """A thin piece lying along the crop's edge: what is left of a rule's blurred side, no text."""
    x, y, w, h = (int(v) for v in stat[:4])
    band = max(2, dpi // 60)
    along_side = w <= band and (x == 0 or x + w == shape[1]) and h > 2 * w
    along_top = h <= band and (y == 0 or y + h == shape[0]) and w > 2 * h
    return along_side or along_top


def _looks_like_dash(extent: tuple[int, int, int, int], mm: float) -> bool:
    ink_w, ink_h = extent[2] - extent[0], extent[3] - extent[1]
    return ink_h <= 0.8 * mm and ink_w >= 1.5 * mm and ink_w >= 4 * ink_h


def _is_speck(extent: tuple[int, int, int, int], mm: float) -> bool:
    return extent[3] - extent[1] < 0.6 * mm and extent[2] - extent[0] < 0.6 * mm


def _bounds(stats: np.ndarray, keep: list[int]) -> tuple[int, int, int, int]:
    x0 = min(stats[i, cv2.CC_STAT_LEFT] for i in keep)
    y0 = min(stats[i, cv2.CC_STAT_TOP] for i in keep)
    x1 = max(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] for i in keep)
    y1 = max(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] for i in keep)
    return int(x0), int(y0), int(x1), int(y1)


def _line_spans(mask: np.ndarray, mm: float) -> list[tuple[int, int]]:
    """Text lines from the row profile; gaps under ~0.4 mm don't split (strokes of one glyph)."""
    merged = [list(run) for run in _row_runs(mask, mm)]
    # Fragments much thinner than a line (a stray dot, the top of 二) join their neighbour.
    if len(merged) > 1:
        tallest = max(b - a for a, b in merged)
        out: list[list[int]] = []
        for span in merged:
            if out and (span[1] - span[0]) < 0.35 * tallest:
                out[-1][1] = span[1]
            elif out and (out[-1][1] - out[-1][0]) < 0.35 * tallest:
                out[-1][1] = span[1]
            else:
                out.append(span)
        merged = out
    return [part for a, b in merged for part in _split_tall(mask, a, b, mm)]


MULTI_LINE_MM = 5.5  # cell text is 9-12 pt: a line of ink is at most ~4.5 mm tall


def _split_tall(mask: np.ndarray, a: int, b: int, mm: float) -> list[tuple[int, int]]:
    """A span taller than any one line of cell text and than two glyphs is lines set so close
    that no paper row parts them: cut it at the rows of least ink, one line a glyph height."""
    if b - a < MULTI_LINE_MM * mm:
        return [(a, b)]
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask[a:b].view(np.uint8), connectivity=8)
    if n < 5:
        return [(a, b)]
    # CJK glyphs are square: the larger of tall and wide pieces is a glyph's size
    glyph = max(float(np.percentile(stats[1:, cv2.CC_STAT_HEIGHT], 90)),
                float(np.percentile(stats[1:, cv2.CC_STAT_WIDTH], 90)))
    count = int(round((b - a) / max(glyph, 1.0)))
    if count < 2 or (b - a) < 1.7 * glyph:
        return [(a, b)]
    ink = mask[a:b].sum(axis=1)
    pitch = (b - a) / count
    cuts = []
    for k in range(1, count):
        lo, hi = int(k * pitch - pitch / 3), int(k * pitch + pitch / 3) + 1
        cuts.append(lo + int(np.argmin(ink[lo:hi])))
    edges = [0, *cuts, b - a]
    return [(a + lo, a + hi) for lo, hi in zip(edges, edges[1:]) if hi > lo]

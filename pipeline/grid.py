"""Detect a ruled table's grid: cells with row/column spans and pixel boxes.

Classic rule-mask approach, tuned for scanned forms:

1. Line darkness = how much darker a pixel is than the paper on *both* sides across
   the rule direction: thin rules (also faded grey ones) score, solid areas and thick
   seal rings do not. BGR input is read through its red channel, where red seal ink
   is paper.
2. Threshold: the coverage mask (keeps stubs of broken rules). Opened with a 2 mm line
   kernel: glyph strokes (the clutter test); then a 5 mm one: rule finding (text, seal
   strokes and stacked vertical labels drop out). Long pieces with glyph strokes right
   beside them (lined-up text) are dropped.
3. Pieces are clustered by position into rules. A rule is accepted if it has a piece
   >= 15 mm, or if it runs from one accepted perpendicular rule to another (short
   rules inside one row). Rules closer than 3.5 mm are one rule (real ones are >= 4 mm apart).
   Only crossing rules that really pass there count, and the pieces must be collinear:
   lined-up glyph strokes in a merged cell or a large title are not bounded that way.
4. Rules only one row/column long whose broken pieces are all < 5 mm are looked for
   band by band between neighbouring crossing rules (_short_rules).
5. Each fine-cell edge is a boundary if the coverage mask, sampled on the rule's own
   centre line (+-1 px), covers >= 42 % of it and is attached to both crossings (a
   broken rule's gap never covers a crossing nor more than half a piece), or to one
   crossing with a piece of >= 1/4 of it. Text or seal strokes on a merged cell's
   missing-rule line are attached to neither. Coverage uses darkness *relative* to the
   local paper (a rule under a grey seal keeps its contrast ratio), and stretches where
   a seal ring or star runs along the line are left out as unseen.
6. Union-find over absent edges gives the spanning cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.errors import NoTableError


@dataclass(frozen=True)
class Box:
    """Pixel box, half-open: x0 <= x < x1, y0 <= y < y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class Cell:
    """A cell of the table on the fine grid (the union of all rule positions).

    A merged cell covers ``row_span`` x ``col_span`` fine cells starting at (row, col).
    ``box`` is the area inside its rules on the (deskewed) page image.
    """

    row: int
    col: int
    row_span: int
    col_span: int
    box: Box


@dataclass(frozen=True)
class Grid:
    """The table: fine-grid rule positions (pixels) and the merged cells, row-major order."""

    row_edges: tuple[int, ...]  # y of each horizontal rule, top to bottom; n_rows + 1 values
    col_edges: tuple[int, ...]  # x of each vertical rule, left to right; n_cols + 1 values
    cells: tuple[Cell, ...]
    px_per_mm: float = 0.0  # scale the detector assumed (from page size)
    rule_px: float = 0.0  # median rule thickness found, pixels

    @property
    def n_rows(self) -> int:
        return len(self.row_edges) - 1

    @property
    def n_cols(self) -> int:
        return len(self.col_edges) - 1

    @property
    def bbox(self) -> Box:
        return Box(self.col_edges[0], self.row_edges[0], self.col_edges[-1] + 1, self.row_edges[-1] + 1)

    def cell_at(self) -> dict[tuple[int, int], Cell]:
        """(row, col) of every fine cell -> the merged cell covering it."""
        return {
            (r, c): cell for cell in self.cells
            for r in range(cell.row, cell.row + cell.row_span) for c in range(cell.col, cell.col + cell.col_span)
        }


# --- tunables, in millimetres unless named otherwise ---------------------------------
A4_SHORT_MM = 210.0
OPEN_MM = 5.0  # line kernel: longer than text strokes, shorter than one row height
SMOOTH_MM = 0.25  # averaging along the rule before thresholding; below the gap between glyphs
MIN_DARKNESS = 28.0
SIDE_MM = 0.5  # paper is looked for this far either side of a rule (rules <= 0.35 mm)
CLUSTER_MM = 1.5  # segments this close across the rule direction are one rule
STRONG_MM = 15.0  # a rule this long is accepted on its own
JUNCTION_MM = 1.2  # how close a rule end must come to a crossing rule
LINE_TOL_MM = 0.25  # pieces of one rule lie this close to its line
PIECE_MM = 7.5  # a piece of a rule this long places the rule's line along itself
MIN_SEPARATION_MM = 3.5  # rules this close along the same stretch are one rule
LOCAL_COVER = 0.5  # share of a cell's side a column line's own pieces must cover to place it
LOCAL_OFFSET_MM = 0.5  # ... and how far off the line's position they must lie
JOIN_MM = 1.0  # pieces of one rule this close are rejoined
MAX_THICK_MM = 0.7  # rules are 1-4 px; thicker "lines" are seal strokes or blots
EDGE_COVER = 0.42  # a cell edge with this much rule on its line, attached to a crossing, is a boundary
STRONG_COVER = 0.85  # ... and with this much, attached or not
MIN_RUN_FRACTION = 0.25  # its longest piece covers this much of the edge
MIN_RUN_MM = 2.0  # ... and at least this
MIN_HIDDEN_MM = 1.0  # a rule's line hidden this long by ink beside it is unseen, not absent
HIDDEN_SHADE = 0.85  # "ink beside": one side is below this fraction of the paper level
HIDDEN_BAND_MM = 0.9  # ... over this width (seal rings are ~1.2 mm, glyph strokes < 0.5 mm)
PAPER_SHADE = 0.93  # ... while the other side is paper (at least this fraction of the paper level)
SHORT_OPEN_MM = 2.0  # stubs of a broken rule next to a crossing can be this short
LONG_FOR_SLOPE_MM = 20.0
CLUTTER_NEAR_MM = 0.4  # parallel strokes are looked for between these distances
CLUTTER_FAR_MM = 1.4
MAX_CLUTTER = 0.15  # rules measure < 0.07; lined-up glyph strokes 0.2-0.9
# Lined-up glyph strokes were never found longer than 30 mm (fixtures, development, hard and
# evaluation sets); a rule this long with text cramped beside it (a small form scanned whole,
# text ~1 mm from its rules: clutter 0.2-0.4) is a rule.
CLUTTER_EXEMPT_MM = 40.0
MAX_CLUTTER_LONG = 0.6
# detect_tables only:
BESIDE_MM = 0.5  # print this close either side of a line ...
PRINT_SHADE = 0.8  # ... this dark (a fraction of the paper's level: text and rules, not seal ink) ...
MAX_AMID_PRINT = 0.5  # ... along more than this share of a cell's edge: glyph strokes, no rule
MAX_PRINT_BESIDE_SHORT = 0.4  # a rule one row long, found only from pieces, has print on either side along less
OUTER_ROW_MM = OPEN_MM + 1.0  # a row at the table's top or bottom this high may have no column line found
WIDE_RULE = 0.9  # ... when the rule bounding it is ruled across this much of the table
FEW_CELLS = 6  # a ruled frame with fewer cells is looked at again for faded rules
MORE_CELLS = 1.25  # of two grids with a merged block each, the faint pass's is taken with this many more cells
TABLE_GAP_MM = 15.0  # a rule missing this long between two tables leaves them two tables
PAGE_MARGIN_MM = 3.0  # paper added around the page: outer rules at the image's edge


def to_gray(image: np.ndarray) -> np.ndarray:
    """Greyscale uint8 page; in BGR input red/pink seal ink is turned into paper."""
    if image.ndim == 2:
        return image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        return to_gray(image[:, :, 0])
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected a greyscale or BGR image, got shape {image.shape}")
    # The red channel: black and grey ink (rules, text) stay dark in it, red seal ink
    # turns paper-white, and unlike a per-pixel "is it red" mask it leaves no outline
    # where JPEG chroma blur desaturates the seal's edges.
    return np.ascontiguousarray(image[:, :, 2])


def estimate_px_per_mm(shape: tuple[int, ...]) -> float:
    """Scale from page size, assuming the A4 form family (either orientation)."""
    return float(np.clip(min(shape[0], shape[1]) / A4_SHORT_MM, 2.5, 16.0))


def _odd(n: float) -> int:
    k = max(1, int(round(n)))
    return k if k % 2 else k + 1


@dataclass
class _Segment:
    pos: float  # centre across the rule direction
    start: int  # extent along the rule direction, half-open
    end: int
    thick: float
    mid: float = 0.0  # centre along the rule direction
    slope: float = 0.0  # d(pos)/d(along), measured on long segments only
    clutter: float = 0.0
    cluttered: bool = False  # strokes beside it: a rule only where crossings bound it (text against a rule)


@dataclass
class _Rule:
    pos: float
    segments: list[_Segment] = field(default_factory=list)

    @property
    def start(self) -> int:
        return min(s.start for s in self.segments)

    @property
    def end(self) -> int:
        return max(s.end for s in self.segments)

    def line(self) -> tuple[float, float, float]:
        """(pos, slope, ref): the rule's centre line is pos + slope * (t - ref)."""
        longest = max(self.segments, key=lambda s: s.end - s.start)
        return longest.pos, longest.slope, longest.mid

    def longest(self) -> int:
        """The longest piece that may stand as a rule on its own (0 when every piece is cluttered)."""
        return max((s.end - s.start for s in self.segments if not s.cluttered), default=0)

    def covered(self) -> int:
        return sum(end - start for start, end in self.stretches())

    def stretches(self) -> list[tuple[int, int]]:
        """The stretches along the rule its pieces cover, in order, overlapping pieces joined."""
        out: list[tuple[int, int]] = []
        for s in sorted(self.segments, key=lambda s: s.start):
            if out and s.start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], s.end))
            else:
                out.append((s.start, s.end))
        return out

    def shared(self, other: _Rule) -> int:
        """How long a stretch this rule's pieces and ``other``'s both cover."""
        theirs = other.stretches()
        return sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in self.stretches() for s2, e2 in theirs)


def _paper_beside(gray: np.ndarray, d: int, horizontal: bool) -> np.ndarray:
    """The paper level beside each pixel across the line: the darker of the lightest pixel in
    the d pixels just before it and the lightest in the d just after (255 for a window whose middle
    is off the page; one the edge cuts is what is left of it).

    Both windows are shifted views of one dilation, so no page-sized array is made for each:
    at 300 dpi every one is 9 MB, and the grid's arrays set a worker's peak memory."""
    m = cv2.dilate(gray, np.ones((d, 1) if horizontal else (1, d), np.uint8))  # max over a centred window of d
    axis = 0 if horizontal else 1
    n = gray.shape[axis]
    lead = d - d // 2  # window [p-d, p-1] is centred at p - lead
    trail = d // 2 + 1  # window [p+1, p+d] is centred at p + trail

    def span(a: int, b: int) -> tuple[slice, ...]:
        return (slice(a, b),) if horizontal else (slice(None), slice(a, b))

    paper = np.full_like(gray, 255)
    # Only the window after the pixel lies on the page, only the one before, or both (or neither).
    first_both, last_both = lead, n - trail
    only_after = max(0, min(first_both, last_both))
    paper[span(0, only_after)] = m[span(trail, only_after + trail)]
    only_before = min(n, max(first_both, last_both))
    if only_before < n:
        paper[span(only_before, n)] = m[span(only_before - lead, n - lead)]
    if first_both < last_both:
        np.minimum(m[span(0, last_both - lead)], m[span(lead + trail, n)], out=paper[span(first_both, last_both)])
    return paper


def _line_darkness(gray: np.ndarray, ppm: float, horizontal: bool, faint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """How much darker each pixel is than the paper on *both* sides across the line.

    A thin rule has paper on both sides; the edge of a solid area (seal star, blot) or
    the inside of a thick seal ring does not, so they score ~0 here.
    Returns (relative, absolute): relative to the local paper level, ink multiplies,
    so a rule under a grey seal keeps its contrast ratio while the absolute difference
    shrinks with the seal's shade. Inside dense text the relative one also lifts faint
    glyph detail, so glyph strokes are looked for in the absolute one.
    """
    paper = _paper_beside(gray, max(3, int(round(SIDE_MM * ppm))), horizontal)
    absolute = cv2.subtract(paper, gray)
    relative = cv2.divide(absolute, paper, scale=255)
    if faint:
        # A faded 1-px rule that falls between two pixel rows leaves under half its
        # darkness in each: summing three rows across the line gathers it again.
        k = (1, 3) if horizontal else (3, 1)
        relative, absolute = (cv2.boxFilter(a.astype(np.uint16), -1, k, normalize=False).clip(0, 255).astype(np.uint8)
                              for a in (relative, absolute))
    return relative, absolute


def _threshold(dark: np.ndarray) -> int:
    # Noise level of the smoothed darkness over paper (most pixels are paper).
    sample = dark[::4, ::4]
    med = float(np.median(sample))
    mad = float(np.median(np.abs(sample.astype(np.float32) - med)))
    # Floor: faint enough for faded rules (>= ~40 after blur), above what is left of a
    # red seal in the red channel (~20).
    return int(max(MIN_DARKNESS, med + 6.0 * 1.4826 * mad + 4.0))


def _at_least(smooth: np.ndarray) -> np.ndarray:
    """1 where the smoothed darkness reaches its ``_threshold``, else 0, written over ``smooth``."""
    cv2.threshold(smooth, _threshold(smooth) - 1, 1, cv2.THRESH_BINARY, dst=smooth)
    return smooth


@dataclass
class _Masks:
    long: np.ndarray | None  # straight runs >= OPEN_MM: finds the rules (dropped once they are found)
    strokes: np.ndarray  # straight runs >= SHORT_OPEN_MM, thick blobs cut out: text strokes too
    dark: np.ndarray  # every pixel dark enough: measures edge coverage (keeps stubs of broken rules)


def _line_masks(gray: np.ndarray, ppm: float, horizontal: bool, faint: bool = False) -> _Masks:
    s = max(3, _odd(SMOOTH_MM * ppm))  # at 150 dpi 1 px would leave noise unaveraged
    k_thick = int(math.ceil(max(5.0, MAX_THICK_MM * ppm))) + 1
    k_join = _odd(JOIN_MM * ppm)

    def along(n: int) -> np.ndarray:
        return cv2.getStructuringElement(cv2.MORPH_RECT, (n, 1) if horizontal else (1, n))

    def across(n: int) -> np.ndarray:
        return cv2.getStructuringElement(cv2.MORPH_RECT, (1, n) if horizontal else (n, 1))

    relative, absolute = _line_darkness(gray, ppm, horizontal, faint)
    # Coverage is judged on the relative darkness: where a grey seal lies over a rule,
    # the rule keeps its contrast ratio to the seal though not its absolute difference.
    # (Each page-sized array is let go as soon as it is used: at 300 dpi each is 9 MB.)
    dark = _at_least(cv2.blur(relative, (s, 1) if horizontal else (1, s)))
    del relative
    strokes = _at_least(cv2.blur(absolute, (s, 1) if horizontal else (1, s)))
    del absolute
    strokes = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, along(max(5, int(round(SHORT_OPEN_MM * ppm)))))
    # Thicker than any rule across the line: seal ring arcs, blots. Cutting them out
    # keeps a rule that a seal arc touches from being dropped with it.
    strokes[cv2.morphologyEx(strokes, cv2.MORPH_OPEN, across(k_thick)) > 0] = 0
    long = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, along(max(9, int(round(OPEN_MM * ppm)))))
    # Re-join pieces split by noise or the cut-outs above.
    long = cv2.morphologyEx(long, cv2.MORPH_CLOSE, along(k_join))
    return _Masks(long, strokes, dark)


def _clutter(binary: np.ndarray, seg: _Segment, horizontal: bool, ppm: float) -> tuple[float, float]:
    """Fraction of a segment with parallel strokes close by on one side: the worse side's, and the better's.

    A rule has paper beside it (text keeps clear of rules); a run of glyph strokes
    that happen to line up (the middle or bottom strokes of a text line) has more
    glyph strokes just beside it.
    """
    t = np.arange(seg.start, seg.end)
    centre = seg.pos + seg.slope * (t - seg.mid)
    near = int(math.ceil(seg.thick / 2 + CLUTTER_NEAR_MM * ppm))
    far = int(math.ceil(seg.thick / 2 + CLUTTER_FAR_MM * ppm))
    limit = binary.shape[0] if horizontal else binary.shape[1]
    sides = []
    for sign in (-1, 1):
        hit = np.zeros(len(t), dtype=bool)
        for o in range(near, far + 1):
            c = np.clip(np.rint(centre + sign * o).astype(np.int64), 0, limit - 1)
            hit |= (binary[c, t] if horizontal else binary[t, c]) > 0
        sides.append(hit)
    return max(float(sides[0].mean()), float(sides[1].mean())), min(float(sides[0].mean()), float(sides[1].mean()))


def _segments(mask: np.ndarray, horizontal: bool, ppm: float, strokes: np.ndarray | None = None) -> list[_Segment]:
    """Straight pieces of a line mask; long ones with glyph strokes beside them (``strokes``) are dropped."""
    # 16-bit labels: half the page-sized array of 32-bit ones (a rule mask has hundreds of pieces;
    # OpenCV refuses a mask with more than 16 bits can number, a page of hatching, say).
    try:
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    max_thick = max(5.0, MAX_THICK_MM * ppm)
    segs = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        length = w if horizontal else h
        thick = area / max(length, 1)
        if thick > 2 * max_thick:  # thick blobs were cut out already; this only drops debris
            continue
        slope = 0.0
        if length >= LONG_FOR_SLOPE_MM * ppm:
            ys, xs = np.nonzero(labels[y : y + h, x : x + w] == i)
            a, b = (xs, ys) if horizontal else (ys, xs)
            a = a - a.mean()
            slope = float(np.dot(a, b - b.mean()) / max(np.dot(a, a), 1e-9))
        cx, cy = float(centroids[i][0]), float(centroids[i][1])
        if horizontal:
            seg = _Segment(cy, int(x), int(x + w), thick, cx, slope)
        else:
            seg = _Segment(cx, int(y), int(y + h), thick, cy, slope)
        if strokes is not None and length >= STRONG_MM * ppm:
            # Only long pieces are checked: they are accepted as rules on their own,
            # short ones need crossings at both ends anyway.
            seg.clutter, other_side = _clutter(strokes, seg, horizontal, ppm)
            limit = MAX_CLUTTER_LONG if length >= CLUTTER_EXEMPT_MM * ppm else MAX_CLUTTER
            if other_side > limit:
                continue  # strokes on both sides: a run of lined-up glyph strokes
            # Strokes on one side: text printed against a rule. It is kept, but stands as a
            # rule only where crossing rules bound it at both ends.
            seg.cluttered = seg.clutter > limit
        segs.append(seg)
    return segs


def _cluster(segs: list[_Segment], tol: float) -> list[_Rule]:
    # Longest segments first anchor the rules; no chaining, so seal or text pieces
    # cannot drag a rule's position across to a neighbour.
    rules: list[_Rule] = []
    for s in sorted(segs, key=lambda s: s.end - s.start, reverse=True):
        best = min(rules, key=lambda r: abs(r.pos - s.pos), default=None)
        if best is not None and abs(best.pos - s.pos) <= tol:
            best.segments.append(s)
        else:
            rules.append(_Rule(s.pos, [s]))
    for r in rules:
        # Cluttered pieces place a rule only when it has no other: text beside a rule must not pull it.
        clean = [s for s in r.segments if not s.cluttered] or r.segments
        weights = np.array([s.end - s.start for s in clean], dtype=np.float64)
        r.pos = float(np.average([s.pos for s in clean], weights=weights))
    return sorted(rules, key=lambda r: r.pos)


def _on_line(rule: _Rule, line_tol: float) -> list[_Segment]:
    """The rule's pieces lying on the line of its longest piece."""
    pos, slope, ref = rule.line()
    return [s for s in rule.segments if abs(s.pos - (pos + slope * (s.mid - ref))) <= line_tol]


def _passes(rule: _Rule, pos: float, tol: float, line_tol: float) -> bool:
    """Does a piece on the rule's own line run past ``pos`` (along the rule)?"""
    spanning = [s for s in rule.segments if s.start - tol <= pos <= s.end + tol]
    return bool(spanning) and any(s in spanning for s in _on_line(rule, line_tol))


def _bounded(rule: _Rule, cross: list[_Rule], tol: float, line_tol: float) -> _Rule | None:
    """The part of ``rule`` running from one crossing rule to another, mostly covered.

    Only crossing rules that pass through the rule's position count, on their own line:
    a short run of lined-up glyph strokes inside a merged cell lies between the *lines*
    of rules that stop short of it, or between strokes of a large title clustered with
    them. The pieces must be collinear (glyph strokes at slightly different heights are
    not one rule); pieces outside the span (text beyond the table on the same line) are
    dropped so they cannot pull the rule's position. None if there is no such span.
    """
    through = sorted(c.pos for c in cross if _passes(c, rule.pos, tol, line_tol))
    if len(through) < 2:
        return None
    starts = {p for s in rule.segments for p in through if abs(p - s.start) <= tol}
    ends = {p for s in rule.segments for p in through if abs(p - s.end) <= tol}
    best: _Rule | None = None
    for lo in starts:
        for hi in ends:
            if hi <= lo or (best is not None and hi - lo <= best.end - best.start):
                continue
            inside = [s for s in rule.segments if s.start >= lo - tol and s.end <= hi + tol]
            part = _Rule(rule.pos, inside)
            part.segments = _on_line(part, line_tol)
            if (
                any(abs(s.start - lo) <= tol for s in part.segments)
                and any(abs(s.end - hi) <= tol for s in part.segments)
                and part.covered() >= 0.6 * (hi - lo)
            ):
                weights = np.array([s.end - s.start for s in part.segments], dtype=np.float64)
                part.pos = float(np.average([s.pos for s in part.segments], weights=weights))
                best = part
    return best


def _accept(h_rules: list[_Rule], v_rules: list[_Rule], ppm: float) -> tuple[list[_Rule], list[_Rule]]:
    strong = STRONG_MM * ppm
    tol = JUNCTION_MM * ppm
    line_tol = max(1.5, LINE_TOL_MM * ppm)
    h_ok = [r for r in h_rules if r.longest() >= strong]
    v_ok = [r for r in v_rules if r.longest() >= strong]
    for _ in range(3):
        h_new = _accept_bounded(h_rules, v_ok, strong, tol, line_tol)
        v_new = _accept_bounded(v_rules, h_ok, strong, tol, line_tol)
        if len(h_new) == len(h_ok) and len(v_new) == len(v_ok):
            break
        h_ok, v_ok = h_new, v_new
    return h_ok, v_ok


def _accept_bounded(rules: list[_Rule], cross: list[_Rule], strong: float, tol: float, line_tol: float) -> list[_Rule]:
    """Rules long enough on their own, plus the bounded parts of shorter ones."""
    out = []
    for r in rules:
        if r.longest() >= strong:
            out.append(r)
        elif (part := _bounded(r, cross, tol, line_tol)) is not None:
            out.append(part)
    return out


@dataclass(frozen=True)
class _OwnSides:
    """A cell's left and right sides where its own pieces of a column line lie, when they lie
    outward of the line's position by ``offset`` and the cell's print runs into the strip between."""

    gray: np.ndarray
    v_rules: list[_Rule]
    row_pos: list[float]
    inset: int
    print_level: float
    reach: float
    offset: float

    def left(self, line: int, top: int, bottom: int, side: int) -> int:
        own = self._own_pos(line, top, bottom)
        if own is None or own + self.inset >= side - 1:
            return side
        return own + self.inset if self._print_in(own + self.inset, side, top, bottom) else side

    def right(self, line: int, top: int, bottom: int, side: int) -> int:
        own = self._own_pos(line, top, bottom)
        if own is None or own - self.inset + 1 <= side + 1:
            return side
        return own - self.inset + 1 if self._print_in(side, own - self.inset + 1, top, bottom) else side

    def _own_pos(self, line: int, top: int, bottom: int) -> int | None:
        """Where the line's pieces lie between rows ``top`` and ``bottom``, when they cover most of
        that stretch and lie ``offset`` off the line's position; else None."""
        rule = self.v_rules[line]
        lo, hi = self.row_pos[top], self.row_pos[bottom]
        pieces = [
            (s.pos, min(s.end, hi) - max(s.start, lo)) for s in rule.segments
            if not s.cluttered and abs(s.pos - rule.pos) <= self.reach
        ]
        pieces = [(pos, overlap) for pos, overlap in pieces if overlap > 0]
        if sum(overlap for _, overlap in pieces) < LOCAL_COVER * (hi - lo):
            return None
        own = float(np.average([pos for pos, _ in pieces], weights=[overlap for _, overlap in pieces]))
        return int(round(own)) if abs(own - rule.pos) >= self.offset else None

    def _print_in(self, x0: int, x1: int, top: int, bottom: int) -> bool:
        y0, y1 = int(self.row_pos[top]) + self.inset, int(self.row_pos[bottom]) - self.inset
        strip = self.gray[y0:y1, x0:x1]
        return strip.size > 0 and int((strip < self.print_level).sum()) >= 3


def _merge_close(rules: list[_Rule], min_sep: float, join: float | None = None) -> list[_Rule]:
    """Rules closer than ``min_sep`` are one rule; with ``join``, only where the stretches their
    pieces cover overlap by more than ``join``: a form's blocks, printed from a spreadsheet, draw
    their column lines a few millimetres apart side by side along the page, each ending at the
    rule between the blocks, which both cross (and a block above and one below may draw theirs
    at one place, a rule in two pieces with the other's between them)."""
    out: list[_Rule] = []
    for r in sorted(rules, key=lambda r: r.pos):
        close = bool(out) and r.pos - out[-1].pos < min_sep
        if close and not (join is not None and r.shared(out[-1]) <= join):
            keep, drop = (out[-1], r) if out[-1].covered() >= r.covered() else (r, out[-1])
            merged = _Rule(keep.pos, keep.segments + drop.segments)
            out[-1] = merged
        else:
            out.append(r)
    return out


Region = tuple[float, float, float, float]  # x0, y0, x1, y1


def _table_regions(h_rules: list[_Rule], v_rules: list[_Rule], ppm: float) -> list[Region]:
    """Bounding boxes of the connected sets of crossing rules (2+ each way), largest first."""
    tol = JUNCTION_MM * ppm
    nh = len(h_rules)
    parent = list(range(nh + len(v_rules)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, h in enumerate(h_rules):
        for j, v in enumerate(v_rules):
            if h.start - tol <= v.pos <= h.end + tol and v.start - tol <= h.pos <= v.end + tol:
                parent[find(i)] = find(nh + j)
    groups: dict[int, list[int]] = {}
    for i in range(len(parent)):
        groups.setdefault(find(i), []).append(i)
    regions = []
    for members in groups.values():
        hs = [h_rules[i] for i in members if i < nh]
        vs = [v_rules[i - nh] for i in members if i >= nh]
        if len(hs) < 2 or len(vs) < 2:
            continue
        x0 = min(min(v.pos for v in vs), min(h.start for h in hs))
        x1 = max(max(v.pos for v in vs), max(h.end for h in hs))
        y0 = min(min(h.pos for h in hs), min(v.start for v in vs))
        y1 = max(max(h.pos for h in hs), max(v.end for v in vs))
        if (x1 - x0) * (y1 - y0) > 0:
            regions.append((x0, y0, x1, y1))
    # A stable sort: of equal areas, the first found comes first.
    return sorted(regions, key=lambda r: (r[2] - r[0]) * (r[3] - r[1]), reverse=True)


def _coverage(mask: np.ndarray, rule: _Rule, lo: int, hi: int, half_band: int, horizontal: bool, ppm: float) -> np.ndarray:
    """Boolean rule presence along [lo, hi), sampled in a narrow band on the rule's line.

    Along each long piece of the rule the band follows that piece: blocks printed with
    their column lines a little apart (a spreadsheet's) make one rule of offset pieces."""
    pos, slope, ref = rule.line()
    t = np.arange(lo, hi)
    line = pos + slope * (t - ref)
    # cluttered pieces first: where a clean piece runs too, it places the line
    for seg in sorted(rule.segments, key=lambda seg: not seg.cluttered):
        if seg.end - seg.start >= PIECE_MM * ppm:
            a, b = max(seg.start, lo) - lo, min(seg.end, hi) - lo
            if a < b:
                line[a:b] = seg.pos + seg.slope * (t[a:b] - seg.mid)
    centre = np.rint(line).astype(np.int64)
    limit = mask.shape[0] if horizontal else mask.shape[1]
    t = np.clip(t, 0, (mask.shape[1] if horizontal else mask.shape[0]) - 1)
    prof = np.zeros(hi - lo, dtype=bool)
    for o in range(-half_band, half_band + 1):
        c = np.clip(centre + o, 0, limit - 1)
        prof |= (mask[c, t] if horizontal else mask[t, c]) > 0
    return prof


def _beside_line(
    gray: np.ndarray, rule: _Rule, lo: int, hi: int, offsets: range, horizontal: bool, pick: np.ufunc,
) -> tuple[np.ndarray, np.ndarray]:
    """Along [lo, hi) of a rule's line, the grey ``pick`` (np.minimum: the darkest, np.maximum:
    the lightest) over ``offsets`` px across the line, before it and after it."""
    pos, slope, ref = rule.line()
    t = np.clip(np.arange(lo, hi), 0, (gray.shape[1] if horizontal else gray.shape[0]) - 1)
    centre = np.rint(pos + slope * (np.arange(lo, hi) - ref)).astype(np.int64)
    limit = gray.shape[0] if horizontal else gray.shape[1]
    sides = []
    for sign in (-1, 1):
        out = np.full(hi - lo, 255 if pick is np.minimum else 0, dtype=np.uint8)
        for o in offsets:
            c = np.clip(centre + sign * o, 0, limit - 1)
            pick(out, gray[c, t] if horizontal else gray[t, c], out=out)
        sides.append(out)
    return sides[0], sides[1]


def _unseen(
    gray: np.ndarray, rule: _Rule, lo: int, hi: int, band_px: int, paper_level: float, covered: np.ndarray,
    min_px: int, horizontal: bool,
) -> np.ndarray:
    """Stretches of a rule's line where a faded rule could not be seen, not covered.

    That is where a broad band of ink (seal ring or star, >= band_px wide) runs along
    one side of the line: a faded rule can be lighter than it, so the darkness test
    cannot see the rule. The other side must be paper: a tinted cell is dark on both
    sides, and a rule in it still shows. Stretches shorter than min_px are left out:
    glyph strokes beside the line must not excuse a missing rule.
    """
    sides = _beside_line(gray, rule, lo, hi, range(1, band_px + 1), horizontal, np.maximum)
    darker, lighter = np.minimum(*sides), np.maximum(*sides)
    hidden = (darker < HIDDEN_SHADE * paper_level) & (lighter >= PAPER_SHADE * paper_level) & ~covered
    if not hidden.any():
        return hidden
    padded = np.concatenate(([0], hidden.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < min_px:
            hidden[a:b] = False
    return hidden


def _ink_on_line(gray: np.ndarray, rule: _Rule, lo: int, hi: int, half_band: int, horizontal: bool) -> np.ndarray:
    """The darkest grey on the rule's line (+-half_band across) at each point of [lo, hi)."""
    pos, slope, ref = rule.line()
    t = np.arange(lo, hi)
    centre = np.rint(pos + slope * (t - ref)).astype(np.int64)
    t = np.clip(t, 0, (gray.shape[1] if horizontal else gray.shape[0]) - 1)
    limit = gray.shape[0] if horizontal else gray.shape[1]
    darkest = np.full(hi - lo, 255, dtype=np.uint8)
    for o in range(-half_band, half_band + 1):
        c = np.clip(centre + o, 0, limit - 1)
        np.minimum(darkest, gray[c, t] if horizontal else gray[t, c], out=darkest)
    return darkest


@dataclass(frozen=True)
class _PrintBeside:
    """Print close beside a line, past the rule's own blur: text in a cell keeps clear of a rule
    at least on one side, where a glyph's stroke has its other strokes on both."""

    gray: np.ndarray
    near: int  # px from the line's centre
    far: int
    level: float  # darker than this is print

    def sides(self, rule: _Rule, lo: int, hi: int, horizontal: bool) -> tuple[np.ndarray, np.ndarray]:
        """Where along [lo, hi) print lies beside the rule's line: before it, and after it."""
        before, after = _beside_line(self.gray, rule, lo, hi, range(self.near, self.far + 1), horizontal, np.minimum)
        return before < self.level, after < self.level


def _joined_at_ends(ink: np.ndarray, lo: int, a: float, b: float, end_px: int, paper_level: float) -> bool:
    """Does the line's ink run unbroken into both crossing rules (at a and b)?

    A rule meets its crossings; a glyph's stroke lying on a rule's line inside a cramped
    cell stops a pixel or more short of them, with paper between. Only paper *after* ink,
    going from the crossing inwards, is a gap: a crossing's position is known to a pixel.
    """
    i0, i1 = int(round(a)) - lo, int(round(b)) - lo
    if i1 - i0 <= 2 * end_px + 2:
        return True
    body = ink[i0 + end_px : i1 - end_px + 1]
    # Half way from the line's ink (its darker quarter: a broken rule's gaps are paper) to paper.
    level = (float(np.percentile(body, 25)) + paper_level) / 2
    return _unbroken(ink[max(0, i0 - 1) : i0 + end_px + 1] < level) and _unbroken(
        ink[i1 - end_px : i1 + 2][::-1] < level
    )


def _unbroken(dark: np.ndarray) -> bool:
    """Ink from its first pixel to the end, no paper after it."""
    return bool(dark.any()) and bool(dark[int(np.argmax(dark)) :].all())


def _has_edge(
    prof: np.ndarray, hidden: np.ndarray, lo: int, a: float, b: float, end_px: int, anchor_px: int, min_run_px: int
) -> bool:
    """Is there rule along [a, b]? Enough coverage, attached to the crossings.

    A broken rule keeps at least half its length and its gap stays >= 1 mm from the
    crossings, so it is attached at both ends; seal strokes across it can cut it
    into more pieces. One that a seal or fading hides at one end must show one long
    piece instead. Text or seal strokes lying on the line of a merged cell's missing
    rule are pieces floating in the middle: attached at neither end.
    Stretches hidden by a seal ring or star count for neither: coverage is measured on
    what can be seen, and a hidden end may be attached.
    """
    i0 = max(int(round(a)) + end_px - lo, 0)
    i1 = min(int(round(b)) - end_px - lo, len(prof))
    if i1 - i0 < 2:
        return False
    seg, hid = prof[i0:i1], hidden[i0:i1]
    seen = len(seg) - int(hid.sum())
    if seen < max(2, 0.25 * len(seg)):
        return False
    cover = float(seg.sum()) / seen
    if seen < min_run_px:
        # a fine cell narrower than a run, between two close rules: only full cover tells
        return cover >= STRONG_COVER
    if cover >= STRONG_COVER:
        return True
    if cover < EDGE_COVER:
        return False
    attach = seg | hid
    attached = (float(attach[:anchor_px].mean()) >= 0.7) + (float(attach[-anchor_px:].mean()) >= 0.7)
    if attached == 2:
        return True
    return attached == 1 and _longest_run(seg) >= max(MIN_RUN_FRACTION * seen, min_run_px)


def _amid_print(crowded: np.ndarray, lo: int, a: float, b: float, end_px: int) -> bool:
    """Is the stretch [a, b] of a line mostly print on both sides? Then its ink is a glyph's
    stroke amid other strokes: text in a cell keeps clear of a rule at least on one side."""
    i0 = max(int(round(a)) + end_px - lo, 0)
    i1 = min(int(round(b)) - end_px - lo, len(crowded))
    return i1 > i0 and float(crowded[i0:i1].mean()) > MAX_AMID_PRINT


def _longest_run(flags: np.ndarray) -> int:
    if not flags.any():
        return 0
    padded = np.concatenate(([0], flags.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _joined(n_rows: int, n_cols: int, h_edge: np.ndarray, v_edge: np.ndarray) -> list[int]:
    """Union-find parents of the fine cells, joined where no rule parts them."""
    parent = list(range(n_rows * n_cols))
    for r in range(n_rows):
        for c in range(n_cols):
            i = r * n_cols + c
            if c + 1 < n_cols and not v_edge[r, c]:
                parent[_find(parent, i)] = _find(parent, i + 1)
            if r + 1 < n_rows and not h_edge[r, c]:
                parent[_find(parent, i)] = _find(parent, i + n_cols)
    return parent


def _labels(parent: list[int], n_rows: int, n_cols: int) -> np.ndarray:
    return np.array([_find(parent, i) for i in range(n_rows * n_cols)]).reshape(n_rows, n_cols)


def _rectangular(member: np.ndarray) -> bool:
    rr, cc = np.nonzero(member)
    return len(rr) == (rr.max() - rr.min() + 1) * (cc.max() - cc.min() + 1)


def _merge_cells(n_rows: int, n_cols: int, h_edge: np.ndarray, v_edge: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Spanning cells (row, col, row_span, col_span) from fine-cell boundary presence.

    h_edge[r, c]: rule between fine rows r and r+1 in column c (shape n_rows-1 x n_cols).
    v_edge[r, c]: rule between fine cols c and c+1 in row r (shape n_rows x n_cols-1).
    """
    labels = _labels(_joined(n_rows, n_cols, h_edge, v_edge), n_rows, n_cols)
    uneven = {lab for lab in np.unique(labels) if not _rectangular(labels == lab)}
    for lab in uneven:
        # A gap in a broken rule, one fine cell long between two stretches of the rule, joins a
        # cell to its neighbour across it: the rule is taken as whole there before any group is
        # grown to a rectangle, which across a table's blocks swallowed a whole table.
        # Only where that leaves every part of the group a rectangle: otherwise more than a gap
        # is wrong there, and the group is grown as before.
        h_try, v_try = h_edge.copy(), v_edge.copy()
        for r in range(n_rows - 1):
            for c in range(1, n_cols - 1):
                if not h_try[r, c] and labels[r, c] == lab and h_try[r, c - 1] and h_try[r, c + 1]:
                    h_try[r, c] = True
        for r in range(1, n_rows - 1):
            for c in range(n_cols - 1):
                if not v_try[r, c] and labels[r, c] == lab and v_try[r - 1, c] and v_try[r + 1, c]:
                    v_try[r, c] = True
        parts = _labels(_joined(n_rows, n_cols, h_try, v_try), n_rows, n_cols)
        if all(_rectangular(parts == part) for part in np.unique(parts[labels == lab])):
            h_edge, v_edge = h_try, v_try
    parent = _joined(n_rows, n_cols, h_edge, v_edge)
    # Non-rectangular groups (a missed rule) are grown to their bounding rectangles.
    while True:
        labels = _labels(parent, n_rows, n_cols)
        changed = False
        for lab in np.unique(labels):
            rr, cc = np.nonzero(labels == lab)
            block = labels[rr.min() : rr.max() + 1, cc.min() : cc.max() + 1]
            for other in np.unique(block):
                if other != lab:
                    parent[_find(parent, int(other))] = _find(parent, int(lab))
                    changed = True
        if not changed:
            break
    cells = []
    for lab in np.unique(labels):
        rr, cc = np.nonzero(labels == lab)
        cells.append((int(rr.min()), int(cc.min()), int(rr.max() - rr.min() + 1), int(cc.max() - cc.min() + 1)))
    cells.sort()
    return cells


def _short_rules(
    dark: np.ndarray, strokes: np.ndarray, cross: list[_Rule], known: list[float], span: tuple[int, int],
    horizontal: bool, ppm: float, thick: float, end_px: int, anchor_px: int, min_sep: float, tol: float,
    line_tol: float, beside: _PrintBeside,
) -> list[_Rule]:
    """Rules too short to be found as straight runs: one crossing band, broken by a gap.

    A rule only one row high (主管部门 | 实施单位) with a gap keeps pieces down to 1 mm,
    which no line kernel keeps. Between each pair of neighbouring crossing rules, a
    position is a rule if the coverage mask covers >= half the band on its line (a gap
    takes at most half), reaching both crossing rules, both of those run past it (a
    junction, not the inside of a merged cell), and it has paper beside it. Text keeps
    clear of the rules, so it reaches neither. ``span``: the table's extent across.
    """
    found: list[_Rule] = []
    lo, hi = span
    for top, bottom in zip(cross, cross[1:]):
        a, b = int(round(top.pos)) + end_px, int(round(bottom.pos)) - end_px
        if b - a < 2 * anchor_px + 2 or hi - lo < 3:
            continue
        # Rows: along the sought rule; columns: its candidate positions.
        band = (dark[lo:hi, a:b].T if horizontal else dark[a:b, lo:hi]) > 0
        wide = band[:, 1:-1] | band[:, :-2] | band[:, 2:]  # +-1 px across the sought line
        cover = wide.mean(axis=0)
        ok = (cover >= 0.5) & (wide[:anchor_px].mean(axis=0) >= 0.7) & (wide[-anchor_px:].mean(axis=0) >= 0.7)
        if not ok.any():
            continue
        padded = np.concatenate(([0], ok.astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(padded))
        for r0, r1 in zip(edges[::2], edges[1::2]):
            w = cover[r0:r1]
            pos = lo + 1 + float(np.average(np.arange(r0, r1), weights=w))
            if r1 - r0 > thick + 3 or any(abs(pos - k) < min_sep for k in known):
                continue
            if not (_passes(top, pos, tol, line_tol) and _passes(bottom, pos, tol, line_tol)):
                continue
            seg = _Segment(pos, int(round(top.pos)), int(round(bottom.pos)) + 1, thick, (top.pos + bottom.pos) / 2)
            if _clutter(strokes, seg, horizontal, ppm)[0] > MAX_CLUTTER:  # a glyph stroke among others
                continue
            if np.logical_or(*beside.sides(_Rule(pos, [seg]), a, b, horizontal)).mean() > MAX_PRINT_BESIDE_SHORT:
                continue  # a one-row rule is made out of pieces only with paper either side
            near = next((r for r in found if abs(r.pos - pos) < min_sep), None)
            if near is None:
                found.append(_Rule(pos, [seg]))
            else:
                near.segments.append(seg)
    return found


def detect_grid(image: np.ndarray, px_per_mm: float | None = None, faint: bool | None = None) -> Grid:
    """Find the largest ruled table on a deskewed page (greyscale uint8 with 0 = ink, or BGR).

    ``px_per_mm`` defaults to the A4 scale implied by the page size. ``faint`` looks
    for faded hairline rules (more sensitive, and more easily misled by text); by
    default it is tried only when the normal pass finds no table, a block of cells
    merged both ways (then kept if it has no such block, or ``MORE_CELLS`` times the
    cells), or fewer than ``FEW_CELLS`` cells (then kept if it has more).
    Raises ``NoTableError`` when no ruled table (2+ crossing rules each way) is found.
    """
    gray = to_gray(image)
    ppm = float(px_per_mm) if px_per_mm else estimate_px_per_mm(gray.shape)
    if faint is None:
        try:
            grid = _detect_grid(gray, ppm, faint=False)
        except NoTableError:
            return _detect_grid(gray, ppm, faint=True)
        merged = _has_merged_block(grid)
        if not merged and len(grid.cells) >= FEW_CELLS:
            return grid
        # A block merged across rows *and* columns inside the table is what faded rules under
        # a seal leave behind (labels merge one way only), and a frame with next to nothing
        # inside is what rules faded all over leave: the faint pass may see them.
        try:
            retry = _detect_grid(gray, ppm, faint=True)
        except NoTableError:
            return grid
        if merged and not _has_merged_block(retry):
            return retry
        # both in doubt, or a frame with next to nothing inside: the one that saw more rules
        more = len(retry.cells) >= (MORE_CELLS if merged else 1.0) * len(grid.cells) and len(retry.cells) > len(grid.cells)
        return retry if more else grid
    return _detect_grid(gray, ppm, faint)


def _has_merged_block(grid: Grid) -> bool:
    """A cell spanning several rows and several columns, away from the first column."""
    return any(c.row_span >= 2 and c.col_span >= 2 and c.col > 0 for c in grid.cells)


def detect_tables(image: np.ndarray, px_per_mm: float | None = None, *, rules_bend: bool = False) -> list[Grid]:
    """Every ruled table on a deskewed page, in reading order (top to bottom, then left to right).

    Any ruled table, not only the 绩效 form ``detect_grid`` is tuned for: each connected set
    of crossing rules is a table of its own (tables of one cell are left out). The page is
    read with a margin of paper around it, so a table cropped at its outer rules keeps them,
    and a fine-cell edge counts only if its ink runs into its crossing rules (glyph strokes
    on a rule's line, in a cramped cell, stop short of them); fine rules no cell ends at are
    dropped. The sensitive pass for faded hairline rules runs only when the normal one finds
    no table.

    ``rules_bend``: the page is a photo of a creased sheet, whose rules bend a few pixels off
    any straight line; the ink-runs-into-its-crossings test, which needs a rule's line to a
    pixel, would refuse every edge, and is left out.
    """
    gray = to_gray(image)
    ppm = float(px_per_mm) if px_per_mm else estimate_px_per_mm(gray.shape)
    margin = int(math.ceil(PAGE_MARGIN_MM * ppm))
    paper = int(np.median(gray[::4, ::4]))
    padded = cv2.copyMakeBorder(gray, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=paper)
    glyph_check = not rules_bend
    grids = _detect_grids(padded, ppm, False, glyph_check) or _detect_grids(padded, ppm, True, glyph_check)
    shifted = [_shifted(g, -margin, gray.shape) for g in grids]
    return sorted(shifted, key=lambda g: (g.bbox.y0, g.bbox.x0))


def _detect_grids(gray: np.ndarray, ppm: float, faint: bool, glyph_check: bool) -> list[Grid]:
    page = _page_rules(gray, ppm, faint)
    # The outer rules of two tables one above the other are collinear and cluster into one
    # rule, which would join the tables: each table gets its own stretch of such a rule.
    gap = TABLE_GAP_MM * ppm
    rules = _PageRules(page.h_masks, page.v_masks, _split_at_gaps(page.h_rules, gap), _split_at_gaps(page.v_rules, gap))
    grids: list[Grid] = []
    for region in _table_regions(rules.h_rules, rules.v_rules, ppm):
        # The rules of a larger table's region are all its own: a set of rules inside it
        # that no rule joins to the rest is not a second table.
        if any(_inside(region, g.bbox) >= 0.5 for g in grids):
            continue
        try:
            grid = _grid_in_region(gray, ppm, rules, region, glyph_check)
        except NoTableError:
            continue
        if len(grid.cells) >= 2:
            grids.append(_without_unused_rules(grid))
    return grids


def _without_unused_rules(grid: Grid) -> Grid:
    """The grid without fine rules that no cell ends at (a rule position found elsewhere on
    the page, or glyph strokes whose every edge was refused): spans count real columns."""
    owner = _owners(grid)
    keep_rows = [0] + [r for r in range(1, grid.n_rows) if (owner[r - 1] != owner[r]).any()] + [grid.n_rows]
    keep_cols = [0] + [c for c in range(1, grid.n_cols) if (owner[:, c - 1] != owner[:, c]).any()] + [grid.n_cols]
    if len(keep_rows) == grid.n_rows + 1 and len(keep_cols) == grid.n_cols + 1:
        return grid
    row_of = {old: new for new, old in enumerate(keep_rows)}
    col_of = {old: new for new, old in enumerate(keep_cols)}
    cells = tuple(
        Cell(row_of[c.row], col_of[c.col], row_of[c.row + c.row_span] - row_of[c.row],
             col_of[c.col + c.col_span] - col_of[c.col], c.box)
        for c in grid.cells
    )
    return Grid(tuple(grid.row_edges[r] for r in keep_rows), tuple(grid.col_edges[c] for c in keep_cols),
                cells, px_per_mm=grid.px_per_mm, rule_px=grid.rule_px)


def _owners(grid: Grid) -> np.ndarray:
    """Index of the cell covering each fine cell."""
    owner = np.full((grid.n_rows, grid.n_cols), -1)
    for i, c in enumerate(grid.cells):
        owner[c.row : c.row + c.row_span, c.col : c.col + c.col_span] = i
    return owner


def _split_at_gaps(rules: list[_Rule], gap: float) -> list[_Rule]:
    """Each rule cut into stretches wherever no piece of it runs for more than ``gap`` pixels."""
    out = []
    for rule in rules:
        stretch: list[_Segment] = []
        for seg in sorted(rule.segments, key=lambda s: s.start):
            if stretch and seg.start - max(s.end for s in stretch) > gap:
                out.append(_stretch(stretch))
                stretch = []
            stretch.append(seg)
        out.append(_stretch(stretch))
    return sorted(out, key=lambda r: r.pos)


def _stretch(segments: list[_Segment]) -> _Rule:
    weights = np.array([s.end - s.start for s in segments], dtype=np.float64)
    return _Rule(float(np.average([s.pos for s in segments], weights=weights)), segments)


def _inside(region: Region, box: Box) -> float:
    """Share of ``region``'s area inside ``box``."""
    x0, y0, x1, y1 = region
    w = max(0.0, min(x1, box.x1) - max(x0, box.x0))
    h = max(0.0, min(y1, box.y1) - max(y0, box.y0))
    return w * h / max(1e-9, (x1 - x0) * (y1 - y0))


def _shifted(grid: Grid, offset: int, shape: tuple[int, ...]) -> Grid:
    """``grid`` moved by ``offset`` pixels both ways, kept inside an image of ``shape``."""
    h, w = shape[:2]

    def box(b: Box) -> Box:
        x0, x1 = min(max(b.x0 + offset, 0), w - 1), min(max(b.x1 + offset, 1), w)
        y0, y1 = min(max(b.y0 + offset, 0), h - 1), min(max(b.y1 + offset, 1), h)
        return Box(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))

    return Grid(
        tuple(min(max(y + offset, 0), h - 1) for y in grid.row_edges),
        tuple(min(max(x + offset, 0), w - 1) for x in grid.col_edges),
        tuple(Cell(c.row, c.col, c.row_span, c.col_span, box(c.box)) for c in grid.cells),
        px_per_mm=grid.px_per_mm,
        rule_px=grid.rule_px,
    )


@dataclass(frozen=True)
class RuleSegment:
    """A straight run of rule the grid says is printed: at ``pos`` across, from ``start`` to ``end`` along."""

    horizontal: bool
    pos: int
    start: int
    end: int


def ruling_segments(grid: Grid) -> list[RuleSegment]:
    """The rules a grid implies: every fine-cell edge between two different cells or on the
    table's border, joined into maximal straight runs."""
    owner = _owners(grid)
    # Padded with -2 all round: the border is an edge between the table and the outside.
    padded = np.pad(owner, 1, constant_values=-2)
    h_on = padded[:-1, 1:-1] != padded[1:, 1:-1]  # (n_rows + 1) x n_cols
    v_on = padded[1:-1, :-1] != padded[1:-1, 1:]  # n_rows x (n_cols + 1)
    out = []
    for r in range(grid.n_rows + 1):
        for c0, c1 in _runs(h_on[r]):
            out.append(RuleSegment(True, grid.row_edges[r], grid.col_edges[c0], grid.col_edges[c1]))
    for c in range(grid.n_cols + 1):
        for r0, r1 in _runs(v_on[:, c]):
            out.append(RuleSegment(False, grid.col_edges[c], grid.row_edges[r0], grid.row_edges[r1]))
    return out


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of the True runs."""
    padded = np.concatenate(([0], flags.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


@dataclass
class _PageRules:
    """The line masks and accepted rules of a page, shared by every table on it."""

    h_masks: _Masks
    v_masks: _Masks
    h_rules: list[_Rule]
    v_rules: list[_Rule]


def _page_rules(gray: np.ndarray, ppm: float, faint: bool) -> _PageRules:
    # Each direction's rules are found before the other's masks are made, and its ``long`` mask let
    # go: only ``dark`` and ``strokes`` are looked at again (fewer page-sized arrays held at once).
    h_masks = _line_masks(gray, ppm, horizontal=True, faint=faint)
    h_segs = _segments(h_masks.long, True, ppm, h_masks.strokes)
    h_masks.long = None
    v_masks = _line_masks(gray, ppm, horizontal=False, faint=faint)
    v_segs = _segments(v_masks.long, False, ppm, v_masks.strokes)
    v_masks.long = None
    tol = CLUSTER_MM * ppm
    h_rules, v_rules = _accept(_cluster(h_segs, tol), _cluster(v_segs, tol), ppm)
    return _PageRules(h_masks, v_masks, h_rules, v_rules)


def _detect_grid(gray: np.ndarray, ppm: float, faint: bool) -> Grid:
    """The table of the largest connected set of rules."""
    rules = _page_rules(gray, ppm, faint)
    regions = _table_regions(rules.h_rules, rules.v_rules, ppm)
    if not regions:
        raise NoTableError("no ruled table found")
    return _grid_in_region(
        gray, ppm, rules, _with_outer_rows(regions[0], rules.h_rules, ppm), blocks_apart=True, lone_pieces_join=faint
    )


def _with_outer_rows(region: Region, h_rules: list[_Rule], ppm: float) -> Region:
    """``region`` grown by the rows above and below it too low for their column lines to be
    found as rules (a row under ``OPEN_MM`` high: 项目名称 or 总分 set tight): a rule as wide
    as the region's own top (bottom) rule, close above (below) it, bounds one more row."""
    x0, y0, x1, y1 = region
    width = x1 - x0
    reach = OUTER_ROW_MM * ppm
    rows = sorted(h_rules, key=lambda r: r.pos)

    def spans_table(rule: _Rule) -> bool:
        overlap = min(rule.end, x1) - max(rule.start, x0)
        return overlap >= WIDE_RULE * width and rule.covered() >= WIDE_RULE * width

    grown = True
    while grown:
        grown = False
        above = [r for r in rows if y0 - reach <= r.pos < y0 - MIN_SEPARATION_MM * ppm and spans_table(r)]
        below = [r for r in rows if y1 + MIN_SEPARATION_MM * ppm < r.pos <= y1 + reach and spans_table(r)]
        if above:
            y0, grown = max(r.pos for r in above), True
        if below:
            y1, grown = min(r.pos for r in below), True
    return x0, y0, x1, y1


def _grid_in_region(
    gray: np.ndarray, ppm: float, rules: _PageRules, region: Region, glyph_check: bool = False, blocks_apart: bool = False,
    lone_pieces_join: bool = False,
) -> Grid:
    """The grid of the rules inside ``region``. ``glyph_check``: see ``detect_tables``. ``blocks_apart``:
    close rules side by side along the page stay two (the form's blocks; see ``_merge_close``)."""
    h_masks, v_masks = rules.h_masks, rules.v_masks
    x0, y0, x1, y1 = region
    pad = JUNCTION_MM * ppm
    h_rules = [r for r in rules.h_rules if y0 - pad <= r.pos <= y1 + pad and r.end > x0 and r.start < x1]
    v_rules = [r for r in rules.v_rules if x0 - pad <= r.pos <= x1 + pad and r.end > y0 and r.start < y1]
    min_sep = MIN_SEPARATION_MM * ppm
    join = pad if blocks_apart else None
    h_rules = _merge_close(h_rules, min_sep, join)
    v_rules = _merge_close(v_rules, min_sep, join)
    if len(h_rules) < 2 or len(v_rules) < 2:
        raise NoTableError("no ruled table found")

    thick = float(np.median([s.thick for r in h_rules + v_rules for s in r.segments]))
    # Only the rule's own centre line counts: text or seal strokes beside it do not.
    half_band = max(1, int(thick // 2) - 1)
    end_px = int(math.ceil(thick / 2)) + 1
    anchor_px = max(2, int(round(0.3 * ppm)))

    paper_level = float(np.median(gray[::8, ::8]))
    # looked for past the rule's blurred edge: a thick rule's own blur is dark at that level
    near = int(math.ceil(thick)) + 2
    beside = _PrintBeside(gray, near, near + max(2, int(round(BESIDE_MM * ppm))), PRINT_SHADE * paper_level)

    x_span = (int(round(v_rules[0].pos)), int(round(v_rules[-1].pos)) + 1)
    y_span = (int(round(h_rules[0].pos)), int(round(h_rules[-1].pos)) + 1)
    line_tol = max(1.5, LINE_TOL_MM * ppm)
    new_v = _short_rules(v_masks.dark, v_masks.strokes, h_rules, [r.pos for r in v_rules], x_span, False, ppm,
                         thick, end_px, anchor_px, min_sep, pad, line_tol, beside)
    new_h = _short_rules(h_masks.dark, h_masks.strokes, v_rules, [r.pos for r in h_rules], y_span, True, ppm,
                         thick, end_px, anchor_px, min_sep, pad, line_tol, beside)
    v_rules = sorted(v_rules + new_v, key=lambda r: r.pos)
    h_rules = sorted(h_rules + new_h, key=lambda r: r.pos)

    row_pos = [r.pos for r in h_rules]
    col_pos = [r.pos for r in v_rules]
    n_rows, n_cols = len(row_pos) - 1, len(col_pos) - 1
    xlo, xhi = int(math.floor(col_pos[0] - pad)), int(math.ceil(col_pos[-1] + pad)) + 1
    ylo, yhi = int(math.floor(row_pos[0] - pad)), int(math.ceil(row_pos[-1] + pad)) + 1
    min_run_px = int(round(MIN_RUN_MM * ppm))
    min_hidden_px = int(round(MIN_HIDDEN_MM * ppm))
    band_px = max(3, int(round(HIDDEN_BAND_MM * ppm)))
    h_edge = np.ones((max(n_rows - 1, 0), n_cols), dtype=bool)
    # (a rule between rows is not judged by the print beside it: stacked rows of tight text
    # touch it from both sides; a column line, by contrast, has padding on one side at least)
    for r in range(1, n_rows):
        prof = _coverage(h_masks.dark, h_rules[r], xlo, xhi, half_band, horizontal=True, ppm=ppm)
        hidden = _unseen(gray, h_rules[r], xlo, xhi, band_px, paper_level, prof, min_hidden_px, horizontal=True)
        ink = _ink_on_line(gray, h_rules[r], xlo, xhi, half_band + 1, horizontal=True) if glyph_check else None
        for c in range(n_cols):
            edge = _has_edge(prof, hidden, xlo, col_pos[c], col_pos[c + 1], end_px, anchor_px, min_run_px)
            if edge and ink is not None:
                edge = _joined_at_ends(ink, xlo, col_pos[c], col_pos[c + 1], end_px, paper_level)
            h_edge[r - 1, c] = edge
    v_edge = np.ones((n_rows, max(n_cols - 1, 0)), dtype=bool)
    for c in range(1, n_cols):
        prof = _coverage(v_masks.dark, v_rules[c], ylo, yhi, half_band, horizontal=False, ppm=ppm)
        hidden = _unseen(gray, v_rules[c], ylo, yhi, band_px, paper_level, prof, min_hidden_px, horizontal=False)
        ink = _ink_on_line(gray, v_rules[c], ylo, yhi, half_band + 1, horizontal=False) if glyph_check else None
        crowded = np.logical_and(*beside.sides(v_rules[c], ylo, yhi, horizontal=False))
        for r in range(n_rows):
            edge = _has_edge(prof, hidden, ylo, row_pos[r], row_pos[r + 1], end_px, anchor_px, min_run_px)
            edge = edge and not _amid_print(crowded, ylo, row_pos[r], row_pos[r + 1], end_px)
            if edge and ink is not None:
                edge = _joined_at_ends(ink, ylo, row_pos[r], row_pos[r + 1], end_px, paper_level)
            v_edge[r, c - 1] = edge
        if lone_pieces_join:
            # a column line one row long is a glyph's stroke unless its ink runs into both rules
            ink = _ink_on_line(gray, v_rules[c], ylo, yhi, half_band + 1, horizontal=False)
            for r in range(n_rows):
                alone = not (r > 0 and v_edge[r - 1, c - 1]) and not (r + 1 < n_rows and v_edge[r + 1, c - 1])
                if v_edge[r, c - 1] and alone:
                    v_edge[r, c - 1] = _joined_at_ends(ink, ylo, row_pos[r], row_pos[r + 1], end_px, paper_level)

    inset = int(math.ceil(thick / 2)) + 2
    row_edges = tuple(int(round(p)) for p in row_pos)
    col_edges = tuple(int(round(p)) for p in col_pos)
    # Two blocks' column lines a millimetre apart are one rule; a cell whose print runs past that
    # rule's line to its own block's piece is bounded by the piece (``_OwnSides``).
    sides = _OwnSides(gray, v_rules, row_pos, inset, beside.level, CLUSTER_MM * ppm, LOCAL_OFFSET_MM * ppm)
    cells, plain = [], []
    for r, c, rs, cs in _merge_cells(n_rows, n_cols, h_edge, v_edge):
        bx0, bx1 = col_edges[c] + inset, col_edges[c + cs] - inset + 1
        by0, by1 = row_edges[r] + inset, row_edges[r + rs] - inset + 1
        if bx1 <= bx0:
            bx0, bx1 = col_edges[c], col_edges[c + cs] + 1
        if by1 <= by0:
            by0, by1 = row_edges[r], row_edges[r + rs] + 1
        plain.append(Cell(r, c, rs, cs, Box(bx0, by0, bx1, by1)))
        own = Box(sides.left(c, r, r + rs, bx0), by0, sides.right(c + cs, r, r + rs, bx1), by1)
        cells.append(Cell(r, c, rs, cs, own))
    return Grid(row_edges, col_edges, tuple(_apart(cells, plain)), px_per_mm=ppm, rule_px=thick)


def _apart(cells: list[Cell], plain: list[Cell]) -> list[Cell]:
    """``cells``, but a cell whose box widened to its own piece of a rule and now overlaps a
    neighbour's gets its ``plain`` box back."""
    def overlap(a: Box, b: Box) -> bool:
        return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)

    widened = [i for i, (cell, base) in enumerate(zip(cells, plain)) if cell.box != base.box]
    out = list(cells)
    for i in widened:
        if any(j != i and overlap(out[i].box, out[j].box) for j in range(len(out))):
            out[i] = plain[i]
    return out

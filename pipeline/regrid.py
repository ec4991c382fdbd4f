"""Find the vertical rules the grid missed, inside the cells whose text says they hide one.

A hairline or faded rule next to text can stay under the grid's page-wide threshold, and
the cells either side of it come out as one: 全年执行数 and 分值 in one header cell, two
amounts in one body cell. Such a cell is searched again, alone, at a lower threshold for
a thin dark line across its whole height with paper beside it. A rule found there runs
on through the column: every other cell it crosses is split where it shows too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from pipeline.assemble import label_key
from pipeline.grid import Box, Cell, Grid, to_gray
from pipeline.templates import Template

EDGE_MM = 1.5  # a hidden rule lies this far at least inside the cell's own rules
RULE_COVER = 0.8  # share of the cell's height the line must darken
PAPER_BESIDE = 0.35  # share of its height with paper just left and just right of the line
RULE_TO_RULE = 0.5  # a rule's lightest point is this share of its usual darkness at least
CONTINUED_COVER = 0.6  # in a cell the rule runs on into, a broken or faded stretch still counts
MIN_DARKNESS = 10  # grey levels below the cell's paper: a faded rule after blur and JPEG
INSET_MM = 0.4  # the cell's top and bottom rows are left out: the horizontal rules' blur
PROSE_MARKS = "，。；"
NEAR_WORD_LEN = 4  # a printed word this long is still known with one character misread
NUMBER_GROUPS = re.compile(r"[-\d.,%]+\s+[-\d.,%—]+")


@dataclass(frozen=True)
class Suspect:
    """A cell whose text says it holds what two cells print."""

    cell: Cell
    parts: int  # how many cells its text shows (two labels: 2)
    across: bool = True  # the hidden rule runs down the page (False: along it, between rows)


def suspects(texts: dict[Cell, str], template: Template) -> list[Suspect]:
    """Cells holding two or more of the form's printed words, a label and other text, or
    number groups with a gap between them. In prose (a goal, a deviation reason) a printed
    word counts only at its start: 达到预期目标 is written there, not printed."""
    keys = sorted({label_key(w) for w in template.printed_words() if len(label_key(w)) >= 2}, key=len, reverse=True)
    out = []
    for cell, text in texts.items():
        key = label_key(text)
        prose = any(mark in text for mark in PROSE_MARKS)
        found, rest = 0, key
        for near in (False, True):  # exact words first, so a near one cannot take an exact one's place
            for word in keys:
                at, length = _word_at(rest, word, prose, near)
                if at >= 0:
                    found += 1
                    rest = rest[:at] + "|" + rest[at + length:]
        if found >= 2 or (found == 1 and len(rest) >= 3):
            # two labels, or a label and a value (a value, a label and a value: three parts);
            # the hidden rule may run either way
            parts = found + sum(len(piece) >= 2 for piece in rest.split("|"))
            out += [Suspect(cell, parts), Suspect(cell, parts, across=False)]
        elif NUMBER_GROUPS.search(text.strip()):
            out.append(Suspect(cell, 2))
    return out


def _word_at(text: str, word: str, prose: bool, near: bool) -> tuple[int, int]:
    """Where ``word`` is printed in ``text`` and how many characters it takes there ((-1, 0):
    nowhere); only at its start in prose. ``near``: a word of four or more characters with one
    of them misread (实见单位 for 实施单位) or dropped (实单位) counts too."""
    if not near:
        at = (0 if text.startswith(word) else -1) if prose else text.find(word)
        return at, len(word) if at >= 0 else 0
    if len(word) < NEAR_WORD_LEN:
        return -1, 0
    dropped = {word[:i] + word[i + 1 :] for i in range(len(word))}
    for at in range(1 if prose else len(text)):
        window = text[at : at + len(word)]
        if len(window) == len(word) and sum(a != b for a, b in zip(window, word)) == 1:
            return at, len(word)
        if window[: len(word) - 1] in dropped:
            return at, len(word) - 1
    return -1, 0


def _ink_level(crop: np.ndarray) -> float:
    """The grey level below which a cell crop's pixel is ink, faint rules included."""
    paper = float(np.percentile(crop, 90))
    ink = float(np.percentile(crop, 1))
    return paper - max(MIN_DARKNESS, 0.12 * (paper - ink))


def _spread(dark: np.ndarray) -> np.ndarray:
    """``dark`` with each pixel also dark where its left neighbour is: a line may lean a pixel
    over the cell's height after deskew."""
    spread = dark.copy()
    spread[:, 1:] |= dark[:, :-1]
    return spread


def _darker_of_neighbours(crop: np.ndarray) -> np.ndarray:
    """Each pixel of ``crop`` or its left neighbour's, the darker: grey levels as ``_spread`` is to masks."""
    return np.minimum(crop, np.concatenate([crop[:, :1], crop[:, :-1]], axis=1))


def _line_strength(dark: np.ndarray, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a cell crop's ink mask: the share of rows where it is ink, and the share
    where the columns just beside it on both sides are paper."""
    cover = _spread(dark).mean(axis=0)
    side = max(2, round(0.35 * ppm))
    light = ~dark
    both = np.zeros(dark.shape[1], np.float64)
    if dark.shape[1] > 2 * side:
        left, right = light[:, : -2 * side], light[:, 2 * side :]
        both[side:-side] = (left & right).mean(axis=0)
    return cover, both


def hidden_rule_xs(gray: np.ndarray, box: Box, ppm: float, at: int | None = None, cover: float = RULE_COVER) -> list[int]:
    """x of the thin vertical lines across ``box`` (page pixels), strongest first; near ``at`` only when given."""
    inset_y = max(1, round(INSET_MM * ppm))
    edge = max(2, round(EDGE_MM * ppm))
    y0, y1 = box.y0 + inset_y, box.y1 - inset_y
    if y1 - y0 < 4 or box.width < 2 * edge + 4:
        return []
    crop = gray[y0:y1, box.x0 : box.x1]
    level = _ink_level(crop)
    strength, beside = _line_strength(crop < level, ppm)
    # A rule runs as dark from the rule above to the one below; a glyph's stroke, however tall,
    # leaves paper at the cell's top or bottom. Text set against a rule on both sides hides the
    # paper beside it, so a line that even at its lightest is that dark needs none.
    whole = _darker_of_neighbours(gray[box.y0 : box.y1, box.x0 : box.x1])
    paper = float(np.percentile(crop, 90))
    typical, lightest_whole = np.percentile(whole, [50, 95], axis=0)
    rule_to_rule = lightest_whole < paper - RULE_TO_RULE * np.maximum(paper - typical, MIN_DARKNESS)
    ok = (strength >= cover) & ((beside >= PAPER_BESIDE) | rule_to_rule)
    ok[:edge] = ok[-edge:] = False
    if at is not None:
        near = np.zeros_like(ok)
        lo, hi = max(0, at - box.x0 - edge // 2), min(len(ok), at - box.x0 + edge // 2 + 1)
        near[lo:hi] = True
        ok &= near
    # of lines as long, the one whose lightest stretch is darkest
    lightest = np.percentile(_darker_of_neighbours(crop), 90, axis=0)
    xs: list[int] = []
    for x in np.lexsort((lightest, -strength, ~rule_to_rule)):
        if not ok[x]:
            continue
        if all(abs(int(x) - prior) > edge for prior in xs):
            xs.append(int(x))
    return [box.x0 + x for x in xs]


def _split(grid: Grid, x: int, split_cells: set[Cell]) -> Grid:
    """``grid`` with a new column edge at ``x``: the cells in ``split_cells`` cut in two there,
    every other cell across it widened by one fine column."""
    k = next(i for i, e in enumerate(grid.col_edges) if e > x)  # the new edge's index
    edges = (*grid.col_edges[:k], x, *grid.col_edges[k:])
    half = max(1, round(grid.rule_px / 2) + 1)
    cells = []
    for cell in grid.cells:
        first, last = cell.col, cell.col + cell.col_span  # edge indices before the insert
        if last < k:
            cells.append(cell)
        elif first >= k:
            cells.append(Cell(cell.row, cell.col + 1, cell.row_span, cell.col_span, cell.box))
        elif cell in split_cells:
            b = cell.box
            cells.append(Cell(cell.row, cell.col, cell.row_span, k - first, Box(b.x0, b.y0, x - half, b.y1)))
            cells.append(Cell(cell.row, k, cell.row_span, last - k + 1, Box(x + half, b.y0, b.x1, b.y1)))
        else:
            cells.append(Cell(cell.row, cell.col, cell.row_span, cell.col_span + 1, cell.box))
    cells.sort(key=lambda c: (c.row, c.col))
    return Grid(grid.row_edges, edges, tuple(cells), grid.px_per_mm, grid.rule_px)


def _transposed(grid: Grid) -> Grid:
    cells = tuple(sorted(
        (Cell(c.col, c.row, c.col_span, c.row_span, Box(c.box.y0, c.box.x0, c.box.y1, c.box.x1)) for c in grid.cells),
        key=lambda c: (c.row, c.col),
    ))
    return Grid(grid.col_edges, grid.row_edges, cells, grid.px_per_mm, grid.rule_px)


@dataclass(frozen=True)
class _Ink:
    """The page in grey twice: where a suspect cell is searched (before its seals were erased,
    as the grid was found: erasing a seal takes a faded rule under it too), and where a rule
    found is followed into the cells around (seals erased: a seal's stroke is no rule)."""

    searched: np.ndarray
    followed: np.ndarray

    def transposed(self) -> _Ink:
        return _Ink(np.ascontiguousarray(self.searched.T), np.ascontiguousarray(self.followed.T))


def _split_across(ink: _Ink, grid: Grid, found: list[Suspect]) -> Grid:
    """``grid`` with the vertical rules hidden in the ``found`` cells added."""
    ppm = grid.px_per_mm
    starts: dict[int, set[Cell]] = {}  # x of a hidden rule -> the suspects it was found in
    for suspect in found:
        for x in hidden_rule_xs(ink.searched, suspect.cell.box, ppm)[: suspect.parts - 1]:
            same = next((prior for prior in starts if abs(x - prior) <= EDGE_MM * ppm), x)
            starts.setdefault(same, set()).add(suspect.cell)
    out = grid
    for x in sorted(starts):
        boxes = {c.box for c in starts[x]}  # the suspects as cut by the rules found before
        split = set().union(*(_run_through(ink.followed, out, cell, x) for cell in out.cells if cell.box in boxes))
        if split:
            out = _split(out, x, split)
    return out


def _run_through(gray: np.ndarray, grid: Grid, start: Cell, x: int) -> set[Cell]:
    """The cell a hidden rule was found in and the cells above and below it, one after the
    other, that the rule runs on into: it stops at the first cell where it does not show, so
    text in another block of the form lined up with it is never cut."""
    ppm = grid.px_per_mm

    def covering(row: int) -> Cell | None:
        return next((c for c in grid.cells if c.row <= row < c.row + c.row_span and c.box.x0 <= x < c.box.x1), None)

    run = {start}
    for step in (-1, 1):
        cell = start
        while True:
            row = cell.row - 1 if step < 0 else cell.row + cell.row_span
            nxt = covering(row)
            inside = nxt is not None and nxt.box.x0 + EDGE_MM * ppm < x < nxt.box.x1 - EDGE_MM * ppm
            if not inside or not hidden_rule_xs(gray, nxt.box, ppm, at=x, cover=CONTINUED_COVER):
                break
            run.add(nxt)
            cell = nxt
    return run


def _inside(flipped: Box, box: Box) -> bool:
    """Does the transposed box ``flipped`` lie within ``box``?"""
    return box.x0 <= flipped.y0 and flipped.y1 <= box.x1 and box.y0 <= flipped.x0 and flipped.x1 <= box.y1


def split_hidden_rules(
    image: np.ndarray, grid: Grid, found: list[Suspect], stamped: np.ndarray | None = None
) -> Grid | None:
    """The grid with the rules hidden in the ``found`` cells added, or None when none shows.
    ``image`` has its seals erased; ``stamped``, when given, is the page before (see ``_Ink``).
    Rules between rows are found as vertical ones on the transposed page."""
    if not found:
        return None
    gray = to_gray(image)
    ink = _Ink(gray if stamped is None else to_gray(stamped), gray)
    out = _split_across(ink, grid, [s for s in found if s.across])
    along = [s for s in found if not s.across]
    if along:
        flipped = _transposed(out)
        # the suspects as they are after the vertical rules found cut them
        still = [Suspect(c, s.parts) for s in along for c in flipped.cells if _inside(c.box, s.cell.box)]
        out = _transposed(_split_across(ink.transposed(), flipped, still))
    return None if out.cells == grid.cells and out.row_edges == grid.row_edges else out


ROW_GAP_MM = 0.8  # paper this far either side of a row edge, inside a cell, for a rule missed there


def split_rows_cut_beside(image: np.ndarray, grid: Grid) -> Grid:
    """``grid`` with a cell that spans rows cut at a row edge where the cells on both sides of it
    are cut, and where inside it paper runs along that edge with text above and below: the rule
    there was missed (faded, or under a seal), and each row's value was read as one."""
    gray = to_gray(image)
    band = max(2, int(round(ROW_GAP_MM * grid.px_per_mm)))
    half = max(1, round(grid.rule_px / 2) + 1)
    at = grid.cell_at()
    cells = []
    for cell in grid.cells:
        left, right = cell.col - 1, cell.col + cell.col_span
        cuts = [
            k for k in range(cell.row + 1, cell.row + cell.row_span)
            if left >= 0 and right < grid.n_cols
            and at[(k - 1, left)] is not at[(k, left)] and at[(k - 1, right)] is not at[(k, right)]
            and _paper_between_lines(gray, cell.box, grid.row_edges[k], band, grid.rule_px)
        ]
        if not cuts:
            cells.append(cell)
            continue
        b = cell.box
        bounds = [cell.row, *cuts, cell.row + cell.row_span]
        for first, last in zip(bounds, bounds[1:]):
            y0 = b.y0 if first == cell.row else grid.row_edges[first] + half
            y1 = b.y1 if last == cell.row + cell.row_span else grid.row_edges[last] - half
            cells.append(Cell(first, cell.col, last - first, cell.col_span, Box(b.x0, y0, b.x1, y1)))
    if len(cells) == len(grid.cells):
        return grid
    cells.sort(key=lambda c: (c.row, c.col))
    return Grid(grid.row_edges, grid.col_edges, tuple(cells), grid.px_per_mm, grid.rule_px)


def _paper_between_lines(gray: np.ndarray, box: Box, y: int, band: int, rule_px: float) -> bool:
    """Does paper run across the box for ``band`` px either side of ``y``, with ink above and below?
    What is left of a faint rule on ``y`` itself is no ink."""
    if not box.y0 + band < y < box.y1 - band:
        return False
    crop = gray[box.y0 : box.y1, box.x0 : box.x1]
    paper = float(np.percentile(crop, 90))
    inked = (crop < paper - 3 * MIN_DARKNESS).sum(axis=1) >= 2
    at = y - box.y0
    on_rule = int(np.ceil(rule_px / 2)) + 1
    near = np.r_[inked[at - band : at - on_rule], inked[at + on_rule + 1 : at + band]]
    return not near.any() and inked[: at - band].any() and inked[at + band :].any()

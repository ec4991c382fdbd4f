"""``formscan tables`` on real documents, scored against truth that does not come from it.

    python -m bench.tables [--realdata ../shared/realdata] [--budget-pages N] [--no-read]

Reads ``../shared/realdata`` in place (see its README; nothing is copied) and prints:

1. **Rules on the two forms annotated line by line** (``*.labelme_lines.json``: every
   ruling line as a two-point segment). The detected rules are the grid's own
   (``pipeline.grid.ruling_segments``: every fine-cell edge between two cells, or on the
   border, joined into maximal runs). A detected rule matches an annotated one when both
   run the same way, their positions across differ by at most 3 px and each end by at most
   5 px (the annotations' ends stray up to 3 px past the junction they stop at); pairs are
   made one to one, closest first. Recall: matched annotated rules / annotated rules;
   precision: matched detected rules / detected rules.

2. **The budget tables of the two Shanghai PDFs**, rendered at 200 dpi and damaged like a
   scan (paper tone, a skew of 0.3-1.2 degrees either way, blur, noise, JPEG at quality 70;
   the random generator is seeded by the page number, so every run damages alike), then read
   by ``formscan tables``' own stages. The truth comes from the PDF and nothing else:
   *structure* from its vector rules (the thin filled black rectangles WPS draws rules with,
   given to pdfplumber's table finder as its explicit lines: white cell backgrounds and the
   table of contents' invisible boxes are left out), *text* from its text layer (each cell's
   characters, those whose centre lies inside it, in reading order). Truth taken from the
   cells our own detector finds on a clean render would share its mistakes; the PDF's rules
   do not. Scores, over every cell of every truth table: span accuracy, the share of truth
   cells for which the detected table has a cell with exactly the same four rules (its
   fine-grid edges matched to the truth's within 1 mm); text exact match, the share of the
   truth cells holding text whose detected cell reads the same after NFKC with whitespace
   removed (a cell not found counts as wrong).

3. **Every real image**: read whole (tables found, cells read); a crash is any exception.
   A table must be found on every image that shows a ruled table; ``NO_TABLE_EXPECTED``
   names the exceptions, with why.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.grid import RuleSegment, ruling_segments
from pipeline.read import Page, read_pages

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
ANNOTATED_FORMS = ("tabledetect_teacher_eval_form", "tabledetect_thesis_list_form")
BUDGET_PDFS = (
    "gov_shanghai_putuo_justice_bureau_2026_dept_budget.pdf",
    "gov_shanghai_putuo_justice_bureau_2026_unit_budget.pdf",
)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# Images with no ruled table formscan can be expected to find, and why (none now: the last
# one, a crumpled phone photo of a form ruled in faint red, is read by ``pipeline.photo``).
NO_TABLE_EXPECTED: dict[str, str] = {}
RULE_POS_TOL_PX = 3.0
RULE_END_TOL_PX = 5.0
BUDGET_DPI = 200
EDGE_TOL_MM = 1.0
PT_PER_INCH = 72.0


# --- 1. rules on the annotated forms -------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    horizontal: bool
    pos: float  # across the rule
    start: float  # along it
    end: float


def annotated_rules(path: Path) -> list[Rule]:
    """The ruling lines of a labelme ``line`` annotation."""
    rules = []
    for shape in json.loads(path.read_text(encoding="utf-8"))["shapes"]:
        (x0, y0), (x1, y1) = shape["points"][:2]
        if abs(x1 - x0) >= abs(y1 - y0):
            rules.append(Rule(True, (y0 + y1) / 2, min(x0, x1), max(x0, x1)))
        else:
            rules.append(Rule(False, (x0 + x1) / 2, min(y0, y1), max(y0, y1)))
    return rules


def as_rule(segment: RuleSegment) -> Rule:
    return Rule(segment.horizontal, float(segment.pos), float(segment.start), float(segment.end))


def match_rules(found: Sequence[Rule], truth: Sequence[Rule], pos_tol: float = RULE_POS_TOL_PX,
                end_tol: float = RULE_END_TOL_PX) -> int:
    """How many one-to-one pairs (found, truth) agree in direction, position and both ends."""
    pairs = []
    for i, f in enumerate(found):
        for j, t in enumerate(truth):
            d_pos, d_ends = abs(f.pos - t.pos), max(abs(f.start - t.start), abs(f.end - t.end))
            if f.horizontal == t.horizontal and d_pos <= pos_tol and d_ends <= end_tol:
                pairs.append((d_pos + d_ends, i, j))
    used_f: set[int] = set()
    used_t: set[int] = set()
    for _, i, j in sorted(pairs):
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    return len(used_f)


@dataclass(frozen=True)
class RuleScore:
    name: str
    annotated: int
    detected: int
    matched: int

    @property
    def recall(self) -> float:
        return self.matched / max(1, self.annotated)

    @property
    def precision(self) -> float:
        return self.matched / max(1, self.detected)


def rule_scores(realdata: Path = REALDATA) -> list[RuleScore]:
    from pipeline.tables import find_tables

    scores = []
    for name in ANNOTATED_FORMS:
        page = next(read_pages(realdata / f"{name}.jpg"))
        found = find_tables(page)
        # The forms are upright; deskew turns them by a few hundredths of a degree at most,
        # which moves no rule by more than 0.3 px.
        assert found.quarter_turns == 0
        detected = [as_rule(s) for grid in found.grids for s in ruling_segments(grid)]
        truth = annotated_rules(realdata / f"{name}.labelme_lines.json")
        scores.append(RuleScore(name, len(truth), len(detected), match_rules(detected, truth)))
    return scores


# --- 2. the budget tables ------------------------------------------------------------------

@dataclass(frozen=True)
class TruthCell:
    row: int
    col: int
    row_span: int
    col_span: int
    text: str  # NFKC, no whitespace


@dataclass
class TruthTable:
    row_edges: list[float]  # pixels at BUDGET_DPI
    col_edges: list[float]
    cells: list[TruthCell] = field(default_factory=list)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.col_edges[0], self.row_edges[0], self.col_edges[-1], self.row_edges[-1]


def text_key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _snap(values: Iterable[float], tol: float) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if out and v - out[-1] <= tol:
            continue
        out.append(v)
    return out


def _index(edges: Sequence[float], value: float, tol: float) -> int:
    i = int(np.argmin([abs(e - value) for e in edges]))
    if abs(edges[i] - value) > tol:
        raise ValueError(f"{value} is no edge of {edges}")
    return i


def budget_truth(pdf_path: Path, number: int, dpi: int = BUDGET_DPI) -> list[TruthTable]:
    """The page's ruled tables from its vector rules, each cell's text from its text layer."""
    import pdfplumber

    scale = dpi / PT_PER_INCH
    with pdfplumber.open(str(pdf_path)) as pdf:
        page = pdf.pages[number - 1]
        rules = [r for r in page.rects if r["fill"] and min(r["width"], r["height"]) < 2.0
                 and max(r.get("non_stroking_color") or (1.0,)) < 0.5]
        verticals = [r for r in rules if r["height"] > r["width"]]
        horizontals = [r for r in rules if r["width"] >= r["height"]]
        if not verticals or not horizontals:
            return []
        found = page.find_tables({"vertical_strategy": "explicit", "horizontal_strategy": "explicit",
                                  "explicit_vertical_lines": verticals, "explicit_horizontal_lines": horizontals})
        tables = []
        for table in found:
            boxes = [c for c in table.cells if c is not None]
            xs = _snap([v for c in boxes for v in (c[0], c[2])], 1.5)
            ys = _snap([v for c in boxes for v in (c[1], c[3])], 1.5)
            if len(xs) < 3 or len(ys) < 2:  # one column: not a table of cells
                continue
            truth = TruthTable([y * scale for y in ys], [x * scale for x in xs])
            for x0, top, x1, bottom in boxes:
                chars = [ch for ch in page.chars
                         if x0 <= (ch["x0"] + ch["x1"]) / 2 <= x1 and top <= (ch["top"] + ch["bottom"]) / 2 <= bottom]
                chars.sort(key=lambda ch: (round(ch["top"]), ch["x0"]))
                c0, c1 = _index(xs, x0, 1.5), _index(xs, x1, 1.5)
                r0, r1 = _index(ys, top, 1.5), _index(ys, bottom, 1.5)
                truth.cells.append(TruthCell(r0, c0, r1 - r0, c1 - c0, text_key("".join(ch["text"] for ch in chars))))
            tables.append(truth)
        return tables


def budget_pages(realdata: Path = REALDATA) -> list[tuple[Path, int]]:
    """Every (PDF, page) of the budget PDFs whose vector rules make a table."""
    import pdfplumber

    pages = []
    for name in BUDGET_PDFS:
        path = realdata / name
        with pdfplumber.open(str(path)) as pdf:
            count = len(pdf.pages)
        pages.extend((path, n) for n in range(1, count + 1) if budget_truth(path, n))
    return pages


def damaged_render(pdf_path: Path, number: int, dpi: int = BUDGET_DPI) -> np.ndarray:
    """The page rendered at ``dpi`` in grey and damaged like a scan, the same on every run."""
    from pdf2image import convert_from_path

    page = np.asarray(convert_from_path(str(pdf_path), dpi=dpi, first_page=number, last_page=number,
                                        grayscale=True)[0], dtype=np.float32)
    rng = np.random.default_rng(number)
    page = page * 0.9 + 18.0  # paper tone: print not quite black, paper not quite white
    h, w = page.shape
    angle = float(rng.uniform(0.3, 1.2) * rng.choice([-1.0, 1.0]))
    turn = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    page = cv2.warpAffine(page, turn, (w, h), flags=cv2.INTER_LINEAR, borderValue=float(page.max()))
    page = cv2.GaussianBlur(page, (0, 0), 0.7)
    page = np.clip(page + rng.normal(0.0, 6.0, page.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format="JPEG", quality=70)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))


@dataclass
class BudgetScore:
    tables: int = 0
    tables_found: int = 0
    cells: int = 0
    spans_right: int = 0
    text_cells: int = 0
    text_right: int = 0
    blank_cells: int = 0
    blank_right: int = 0
    wrong: list[str] = field(default_factory=list)

    def add(self, other: BudgetScore) -> None:
        for name in ("tables", "tables_found", "cells", "spans_right", "text_cells", "text_right", "blank_cells",
                     "blank_right"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.wrong.extend(other.wrong)

    @property
    def span_accuracy(self) -> float:
        return self.spans_right / max(1, self.cells)

    @property
    def text_accuracy(self) -> float:
        return self.text_right / max(1, self.text_cells)


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / max(union, 1e-9)


def _edge_map(truth: Sequence[float], found: Sequence[float], tol: float) -> list[int | None]:
    """For each truth edge, the index of the found edge within ``tol`` of it (nearest), or None."""
    out: list[int | None] = []
    for t in truth:
        i = int(np.argmin([abs(f - t) for f in found]))
        out.append(i if abs(found[i] - t) <= tol else None)
    return out


def score_budget_page(
    truth: Sequence[TruthTable], found: Sequence, label: str = "", dpi: int = BUDGET_DPI
) -> BudgetScore:
    """Score the tables found on a page (``Table`` models with text, or bare ``Grid``s: then
    text is not scored) against its truth tables."""
    score = BudgetScore()
    tol = EDGE_TOL_MM * dpi / 25.4
    for t_index, table in enumerate(truth, 1):
        score.tables += 1
        score.cells += len(table.cells)
        with_text = [c for c in table.cells if c.text]
        blank = [c for c in table.cells if not c.text]
        score.text_cells += len(with_text)
        score.blank_cells += len(blank)
        boxes = [(f.col_edges[0], f.row_edges[0], f.col_edges[-1], f.row_edges[-1]) for f in found]
        best = max(range(len(found)), key=lambda i: _iou(boxes[i], table.bbox), default=None)
        if best is None or _iou(boxes[best], table.bbox) < 0.5:
            score.wrong.append(f"{label} table {t_index}: not found")
            continue
        score.tables_found += 1
        match = found[best]
        rows = _edge_map(table.row_edges, match.row_edges, tol)
        cols = _edge_map(table.col_edges, match.col_edges, tol)
        by_extent = {(c.row, c.row + c.row_span, c.col, c.col + c.col_span): c for c in match.cells}
        for cell in table.cells:
            extent = (rows[cell.row], rows[cell.row + cell.row_span], cols[cell.col], cols[cell.col + cell.col_span])
            got = by_extent.get(extent) if None not in extent else None
            if got is None:
                score.wrong.append(f"{label} table {t_index} cell ({cell.row},{cell.col}) "
                                   f"{cell.row_span}x{cell.col_span} {cell.text!r}: no detected cell with its rules")
                continue
            score.spans_right += 1
            text = getattr(got, "text", None)
            if text is None:
                continue
            if not cell.text:
                score.blank_right += int(not text_key(text))
            elif text_key(text) == cell.text:
                score.text_right += 1
            else:
                score.wrong.append(f"{label} table {t_index} cell ({cell.row},{cell.col}): "
                                   f"read {text_key(text)!r}, truth {cell.text!r}")
    return score


def budget_scores(realdata: Path = REALDATA, pages: Sequence[tuple[Path, int]] | None = None, read: bool = True,
                  reader=None) -> BudgetScore:
    """Every budget table page (or ``pages``), damaged, through ``formscan tables``' stages:
    the tables read (``read``) or only found."""
    from pipeline.errors import FormscanError
    from pipeline.tables import find_tables, read_page_tables

    total = BudgetScore()
    for path, number in pages if pages is not None else budget_pages(realdata):
        truth = budget_truth(path, number)
        page = Page(f"{path.name} (200 dpi, damaged)", number, damaged_render(path, number), BUDGET_DPI)
        label = f"{path.stem[-11:]} p{number}"
        if read:
            result = read_page_tables(page, reader)
            found = result.tables
        else:
            try:
                found = find_tables(page).grids
            except FormscanError:
                found = []
        total.add(score_budget_page(truth, found, label))
    return total


# --- 3. every real image -------------------------------------------------------------------

@dataclass(frozen=True)
class ImageOutcome:
    name: str
    tables: int
    cells: int
    error: str  # "" or the error kind, "crash: ..." for an exception
    seconds: float

    @property
    def crashed(self) -> bool:
        return self.error.startswith("crash")


def real_images(realdata: Path = REALDATA) -> list[Path]:
    if not realdata.is_dir():
        return []
    return sorted(p for p in realdata.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def survey_image(path: Path, reader=None) -> ImageOutcome:
    """Read one image as ``formscan tables`` does (with ``reader``), or only find its tables."""
    from pipeline.errors import FormscanError
    from pipeline.tables import find_tables, read_document_tables

    start = time.perf_counter()
    try:
        if reader is not None:
            results = list(read_document_tables(path, reader))
            tables = [t for r in results for t in r.tables]
            error = next((r.error.kind for r in results if r.error), "")
            counts = (len(tables), sum(len(t.cells) for t in tables))
        else:
            try:
                grids = [g for page in read_pages(path) for g in find_tables(page).grids]
                error = ""
            except FormscanError as exc:
                grids, error = [], exc.kind
            counts = (len(grids), sum(len(g.cells) for g in grids))
    except Exception as exc:  # the point: any exception is a crash to report
        return ImageOutcome(path.name, 0, 0, f"crash: {type(exc).__name__}: {exc}", time.perf_counter() - start)
    return ImageOutcome(path.name, counts[0], counts[1], error, time.perf_counter() - start)


# --- the report ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--budget-pages", type=int, default=0, metavar="N", help="only the first N table pages")
    parser.add_argument("--no-read", action="store_true", help="structure only: no OCR (fast)")
    parser.add_argument("--errors", action="store_true", help="list every wrong budget cell")
    args = parser.parse_args(argv)
    if not args.realdata.is_dir():
        print(f"no {args.realdata}: nothing to score")
        return 1
    reader = None
    if not args.no_read:
        from pipeline.ocr import CellReader

        reader = CellReader()

    print("1. Rules on the annotated forms (position <= 3 px, ends <= 5 px)")
    print(f"{'form':<34}{'annotated':>10}{'detected':>10}{'matched':>9}{'recall':>8}{'precision':>11}")
    for s in rule_scores(args.realdata):
        print(f"{s.name:<34}{s.annotated:>10}{s.detected:>10}{s.matched:>9}{s.recall:>8.3f}{s.precision:>11.3f}")

    pages = budget_pages(args.realdata)
    if args.budget_pages:
        pages = pages[: args.budget_pages]
    start = time.perf_counter()
    budget = budget_scores(args.realdata, pages, read=reader is not None, reader=reader)
    seconds = time.perf_counter() - start
    print(f"\n2. Budget tables, rendered at {BUDGET_DPI} dpi and damaged ({len(pages)} pages, {seconds:.0f} s)")
    print(f"tables found {budget.tables_found}/{budget.tables}; cells {budget.cells}: "
          f"span accuracy {budget.span_accuracy:.4f} ({budget.spans_right}/{budget.cells})")
    if reader is not None:
        print(f"text exact match {budget.text_accuracy:.4f} ({budget.text_right}/{budget.text_cells} cells with text); "
              f"blank cells read blank {budget.blank_right}/{budget.blank_cells}")
    for line in budget.wrong if args.errors else budget.wrong[:15]:
        print("  wrong:", line)
    if len(budget.wrong) > 15 and not args.errors:
        print(f"  ... {len(budget.wrong) - 15} more (--errors lists them all)")

    print("\n3. Every real image" + (" (read whole)" if reader is not None else " (tables found)"))
    outcomes = [survey_image(p, reader) for p in real_images(args.realdata)]
    for o in outcomes:
        expected = "" if o.name not in NO_TABLE_EXPECTED else f"  (no table expected: {NO_TABLE_EXPECTED[o.name]})"
        print(f"  {o.name:<54}{o.tables:>3} tables{o.cells:>6} cells  {o.error or 'ok':<12}"
              f"{o.seconds:>6.1f} s{expected}")
    crashed = sum(o.crashed for o in outcomes)
    missed = [o.name for o in outcomes if not o.tables and o.name not in NO_TABLE_EXPECTED]
    print(f"{len(outcomes)} images: {crashed} crashed; a table found on {sum(1 for o in outcomes if o.tables)}; "
          f"missed where one was expected: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Any ruled table read from a page: what ``formscan tables`` writes (JSON) and exports (HTML, XLSX).

Cells sit on the table's fine grid (the union of every rule position): a merged cell
starts at (``row``, ``col``) and covers ``row_span`` x ``col_span`` fine cells. Boxes are
pixels on the page as read: turned upright by ``quarter_turns`` (clockwise) and then
rotated by ``deskew_deg`` (counter-clockwise) about the page's centre.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from models.result import PageError, SourceRef


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableCell(_Strict):
    row: int
    col: int
    row_span: int = 1
    col_span: int = 1
    text: str = ""  # repaired: wrap breaks joined, Chinese punctuation; "—" for a dash cell
    confidence: float  # calibrated: how often cells of this evidence class were read right
    evidence: str  # the evidence class: agreed, blank, dash, paddle>=0.99, tesseract_only, ...
    readings: dict[str, str] = Field(default_factory=dict)  # engine -> raw text it read
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 inside the cell's rules, half-open


class Table(_Strict):
    index: int  # 1-based, in reading order on the page
    n_rows: int  # of the fine grid
    n_cols: int
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 of the outer rules
    row_edges: list[int]  # y of each horizontal rule of the fine grid, n_rows + 1 values
    col_edges: list[int]  # x of each vertical rule, n_cols + 1 values
    cells: list[TableCell]  # row-major by top-left corner; every fine cell covered once


class PageTables(_Strict):
    """Every ruled table found on one page, or why none could be read."""

    source: SourceRef
    tables: list[Table] = Field(default_factory=list)
    quarter_turns: int = 0
    deskew_deg: float = 0.0
    error: PageError | None = None

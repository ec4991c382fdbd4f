"""Map a grid's read cells to the record by their header labels and spans.

Nothing here depends on pixel positions: a value is found as the cell right of
its label, below its header, or where its row meets a header's column, so other
column widths, wrapped labels or more indicator rows map the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher

from models import FUND_SOURCES, FormRecord, FundsRow, IndicatorRow
from pipeline.errors import NotAFormError
from pipeline.grid import Cell, Grid
from pipeline.lexicon import LEVEL2, Lexicon, field_kind
from pipeline.numbers import NumberFormatError, parse_number
from pipeline.ocr import BLANK, CellText, comparable

FUND_COLUMNS = {
    "initial_budget": "年初预算数",
    "annual_budget": "全年预算数",
    "executed": "全年执行数",
    "weight": "分值",
    "execution_rate": "执行率",
    "score": "得分",
}
INDICATOR_COLUMNS = {
    "level1": "一级指标",
    "level2": "二级指标",
    "name": "三级指标",
    "target": "年度指标值",
    "actual": "实际完成值",
    "weight": "分值",
    "score": "得分",
    "deviation_reason": "偏差原因分析及改进措施",
}
# The form's printed labels beyond the column headers: with the lexicon's terms, the
# words a cell may hold that Tesseract alone can be trusted to read (see form_vocabulary).
FORM_LABELS = (
    "项目名称", "主管部门", "实施单位", "项目资金（万元）", "项目资金（元）", "年度资金总额",
    "其中：当年财政拨款", "上年结转资金", "其他资金", "年度总体目标", "预期目标", "实际完成情况",
    "绩效指标", "总分",
)
_PUNCT = re.compile(r"[\s（）()：:，,。、“”\"]")
_UNIT = re.compile(r"\((万元|元|千元)\)")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")


@dataclass(frozen=True)
class FieldEvidence:
    """Where a record field came from: its cell and what the engines read there."""

    cell: Cell
    text: CellText


@dataclass
class AssembledPage:
    record: FormRecord
    evidence: dict[str, FieldEvidence] = field(default_factory=dict)
    unparseable: dict[str, str] = field(default_factory=dict)  # field path -> text that is no number
    unmapped: dict[str, str] = field(default_factory=dict)  # field path -> why no cell could be found for it
    misaligned: dict[str, str] = field(default_factory=dict)  # field path -> why its cell looks cut wrong


def _key(text: str) -> str:
    return _PUNCT.sub("", comparable(text))


def label_similarity(text: str, label: str) -> float:
    a, b = _key(text), _key(label)
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b).ratio()


class _Table:
    def __init__(self, grid: Grid, texts: dict[Cell, CellText]):
        self.grid = grid
        self.texts = texts
        self.at: dict[tuple[int, int], Cell] = {}
        for cell in grid.cells:
            for r in range(cell.row, cell.row + cell.row_span):
                for c in range(cell.col, cell.col + cell.col_span):
                    self.at[(r, c)] = cell

    def text(self, cell: Cell | None) -> CellText:
        return self.texts.get(cell, BLANK) if cell is not None else BLANK

    def find(self, label: str, *, rows: range | None = None, threshold: float = 0.72) -> Cell | None:
        """The cell whose text best matches ``label`` (top-most on ties)."""
        best, best_score = None, threshold
        for cell in self.grid.cells:
            if rows is not None and not (rows.start <= cell.row < rows.stop):
                continue
            score = label_similarity(self.text(cell).text, label)
            if score > best_score:
                best, best_score = cell, score
        return best

    def right_of(self, cell: Cell) -> Cell | None:
        return self.at.get((cell.row, cell.col + cell.col_span))

    def below(self, cell: Cell) -> Cell | None:
        return self.at.get((cell.row + cell.row_span, cell.col))


def _shared_cells(row_cells: dict[str, Cell | None], prefix: str, headers: dict[str, str]) -> dict[str, str]:
    """Fields of one table row whose cell also lies under another field's header.

    Every body cell of this form sits under exactly one header; one reaching under two
    means a rule between them was missed (faded, broken, hidden by a seal), and both
    values are then read from the wrong place.
    """
    out: dict[str, str] = {}
    for key, cell in row_cells.items():
        others = [k for k, c in row_cells.items() if k != key and c is not None and c == cell]
        if cell is not None and others:
            names = "、".join(headers[k] for k in (key, *others))
            out[f"{prefix}.{key}"] = f"one cell spans the {names} columns: a rule may have been missed"
    return out


def _is_label(text: str) -> bool:
    key = _key(text)
    return bool(key) and any(key == _key(label) for label in (*FORM_LABELS, *FUND_COLUMNS.values(), *INDICATOR_COLUMNS.values()))


def form_vocabulary(lexicon: Lexicon | None = None) -> frozenset[str]:
    """Every fixed word of the form (labels, headers, lexicon terms), in comparable form."""
    words = [*FORM_LABELS, *FUND_COLUMNS.values(), *INDICATOR_COLUMNS.values()]
    for terms in (lexicon or Lexicon.builtin()).terms.values():
        words.extend(terms)
    return frozenset(comparable(w) for w in words if w)


def read_year(header_text: str) -> int | None:
    match = _YEAR.search(comparable(header_text))
    return int(match.group(1)) if match else None


def assemble_record(
    grid: Grid, texts: dict[Cell, CellText], header_text: str = "", lexicon: Lexicon | None = None
) -> AssembledPage:
    """Build the record from read cells; raise NotAFormError when the labels aren't this form's.

    Text fields with a vocabulary (指标 levels, target words, units) are snapped onto
    ``lexicon`` terms when exactly one is within reach; the flag logic still sees how
    sure the engines were.
    """
    table = _Table(grid, texts)
    name_label = table.find("项目名称")
    indicator_header = table.find("三级指标")
    if name_label is None or indicator_header is None:
        raise NotAFormError("no 项目名称 / 三级指标 labels: not a 项目支出绩效自评表")
    page = AssembledPage(FormRecord(year=read_year(header_text)))
    values: dict[str, object] = {"year": page.record.year}

    def take_text(path: str, cell: Cell | None) -> str:
        text = table.text(cell)
        if lexicon is not None and not text.is_blank:
            snap = lexicon.snap(field_kind(path), text.text)
            if snap.changed:
                text = replace(text, text=snap.text, readings={**text.readings, "lexicon": snap.text})
        if cell is not None:
            page.evidence[path] = FieldEvidence(cell, text)
        return "" if text.is_blank else text.text

    def take_number(path: str, cell: Cell | None, percent: bool = False) -> float | None:
        raw = take_text(path, cell)
        try:
            return parse_number(raw, percent=percent)
        except NumberFormatError:
            page.unparseable[path] = raw
            return None

    values["project_name"] = take_text("project_name", table.right_of(name_label))
    for path, label in (("department", "主管部门"), ("implementing_unit", "实施单位")):
        found = table.find(label)
        values[path] = take_text(path, table.right_of(found)) if found else ""

    values["funds"] = _assemble_funds(table, take_number, page.unmapped, page.misaligned)
    values["funds_unit"] = _funds_unit(table)

    # The goals sit above the indicator header, whose 实际完成值 is close enough to
    # 实际完成情况 to be mistaken for it when a seal blurs the real label.
    goal_rows = range(0, indicator_header.row)
    expected_label = table.find("预期目标", rows=goal_rows)
    actual_label = table.find("实际完成情况", rows=goal_rows)
    if actual_label is None and expected_label is not None:
        actual_label = table.right_of(expected_label)  # the layout puts it there
    for path, found in (("goal_expected", expected_label), ("goal_actual", actual_label)):
        values[path] = take_text(path, table.below(found)) if found else ""
        if _is_label(values[path]):
            page.misaligned[path] = f"the cell read holds the label {values[path]}: the layout was not recognised"

    columns, problems = _header_columns(table, indicator_header, INDICATOR_COLUMNS)
    if "name" in problems:
        raise NotAFormError(f"the 三级指标 column cannot be mapped: {problems['name']}")
    indicators, total_row = _assemble_indicators(table, indicator_header, columns, take_text, take_number, page.misaligned)
    values["indicators"] = indicators
    for i in range(len(indicators)):
        for key, why in problems.items():
            page.unmapped[f"indicators[{i}].{key}"] = why
    if total_row is not None:
        for path, key in (("total_weight", "weight"), ("total_score", "score")):
            col = columns.get(key)
            values[path] = take_number(path, table.at.get((total_row, col))) if col is not None else None
            if col is None:
                page.unmapped[path] = problems[key]
    page.record = FormRecord.model_validate(values)
    return page


def _header_columns(table: _Table, anchor: Cell, wanted: dict[str, str]) -> tuple[dict[str, int], dict[str, str]]:
    """Column index of each wanted header label on the anchor's row(s), and why the others have none.

    Two labels found in one cell mean a rule between them was missed: neither column can
    then be trusted, since the cells below may be merged too.
    """
    rows = range(anchor.row, anchor.row + anchor.row_span)
    header_cells = [c for c in table.grid.cells if rows.start <= c.row < rows.stop]
    # One label to one cell, best matches first: 一级/二级/三级指标 are alike, so a label
    # must not take a cell that its own, closer-matching sibling claims.
    candidates = sorted(
        (
            (label_similarity(table.text(cell).text, label), key, cell)
            for key, label in wanted.items()
            for cell in header_cells
        ),
        key=lambda item: -item[0],
    )
    cells: dict[str, Cell] = {}
    for score, key, cell in candidates:
        if score >= 0.6 and key not in cells and cell not in cells.values():
            cells[key] = cell
    problems = {key: f"no {label} column was found" for key, label in wanted.items() if key not in cells}
    for key, cell in cells.items():
        text = _key(table.text(cell).text)
        sharing = [label for k, label in wanted.items() if k == key or _key(label) in text]
        if len(sharing) > 1:
            problems[key] = "the headers " + " and ".join(sharing) + " were read as one cell"
    return {key: cell.col for key, cell in cells.items() if key not in problems}, problems


def _funds_unit(table: _Table) -> str:
    """The unit in the 项目资金（万元） label; 万元 when it cannot be read."""
    for cell in table.grid.cells:
        text = comparable(table.text(cell).text)
        if text.startswith("项目资金"):
            match = _UNIT.search(text)
            if match:
                return match.group(1)
    return "万元"


def _source_of(text: str) -> str | None:
    key = _key(text)
    for source in FUND_SOURCES:
        if key.endswith(source) or (key and label_similarity(key[-len(source) :], source) >= 0.75):
            return source
    return None


def _assemble_funds(
    table: _Table, take_number, unmapped: dict[str, str], misaligned: dict[str, str]
) -> list[FundsRow]:
    header = table.find("年初预算数")
    if header is None:
        return []
    columns, problems = _header_columns(table, header, FUND_COLUMNS)
    source_col = header.col - 1
    rows: list[FundsRow] = []
    row = header.row + header.row_span
    while row < table.grid.n_rows:
        label = table.at.get((row, source_col))
        if label is None or label.row != row:
            break
        source = _source_of(table.text(label).text)
        if source is None:
            break
        i = len(rows)
        values: dict[str, object] = {"source": source}
        cells = {key: table.at.get((row, col)) for key, col in columns.items()}
        for key, cell in cells.items():
            values[key] = take_number(f"funds[{i}].{key}", cell, key == "execution_rate")
        for key, why in problems.items():
            unmapped[f"funds[{i}].{key}"] = why
        misaligned.update(_shared_cells(cells, f"funds[{i}]", FUND_COLUMNS))
        rows.append(FundsRow.model_validate(values))
        row = label.row + label.row_span
    return rows


def _level2_label_only(table: _Table, row: int, name_cell: Cell, columns: dict[str, int]) -> bool:
    """A row with a 二级指标 and no indicator whose level2 | name rule was missed: the
    one cell holds just the 二级指标 name (a real indicator would add its own name)."""
    level2_col = columns.get("level2")
    if level2_col is None or table.at.get((row, level2_col)) != name_cell:
        return False
    text = table.text(name_cell).text
    return max(label_similarity(text, term) for term in LEVEL2) >= 0.8


def _assemble_indicators(
    table: _Table, header: Cell, columns: dict[str, int], take_text, take_number, misaligned: dict[str, str]
):
    name_col = columns["name"]
    total = table.find("总分", rows=range(header.row + 1, table.grid.n_rows))
    end = total.row if total is not None else table.grid.n_rows
    rows: list[IndicatorRow] = []
    row = header.row + header.row_span
    level1_col = columns.get("level1")
    while row < end:
        name_cell = table.at.get((row, name_col))
        if name_cell is None:
            row += 1
            continue
        if level1_col is not None and table.at.get((row, level1_col)) == name_cell:
            # A cell spanning the 一级指标 and 三级指标 columns is the 总分 label (read wrong,
            # or it would have been found above), never an indicator.
            return rows, row
        next_row = name_cell.row + name_cell.row_span
        if name_cell.row != row or table.text(name_cell).is_blank or _level2_label_only(table, row, name_cell, columns):
            row = next_row
            continue
        i = len(rows)
        values: dict[str, object] = {}
        cells = {key: table.at.get((row, col)) for key, col in columns.items()}
        for key, cell in cells.items():
            path = f"indicators[{i}].{key}"
            if key in ("weight", "score"):
                values[key] = take_number(path, cell)
            else:
                values[key] = take_text(path, cell)
        misaligned.update(_shared_cells(cells, f"indicators[{i}]", INDICATOR_COLUMNS))
        rows.append(IndicatorRow.model_validate(values))
        row = next_row
    return rows, (total.row if total is not None else None)

"""Map a grid's read cells to the record by their header labels and spans, as a template says.

Nothing here depends on pixel positions: a value is found as the cell right of
its label, below its header, or where its row meets a header's column, so other
column widths, wrapped labels or more indicator rows map the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from functools import lru_cache

from models import FormRecord, TemplateRecord
from pipeline.grid import Cell, Grid
from pipeline.lexicon import Lexicon, field_kind
from pipeline.numbers import NumberFormatError, parse_number
from pipeline.ocr import BLANK, CellText, comparable
from pipeline.templates import FieldPart, Section, Template, get_template

_PUNCT = re.compile(r"[\s（）()：:，,。、“”\"]")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
HEADER_MATCH = 0.6  # a header cell this like a column label is that column's header
NEAR_LABEL_LEN = 4  # a label this long is still known with one character misread
_SPECKS = " |丨!lI:：;；,，.。、-_~“”\"'`"  # a missed rule's remnant and stray marks between a label and its value


@dataclass(frozen=True)
class FieldEvidence:
    """Where a record field came from: its cell and what the engines read there."""

    cell: Cell
    text: CellText


@dataclass
class AssembledPage:
    record: FormRecord | TemplateRecord
    evidence: dict[str, FieldEvidence] = field(default_factory=dict)
    unparseable: dict[str, str] = field(default_factory=dict)  # field path -> text that is no number
    unmapped: dict[str, str] = field(default_factory=dict)  # field path -> why no cell could be found for it
    misaligned: dict[str, str] = field(default_factory=dict)  # field path -> why its cell looks cut wrong
    cut_values: dict[str, tuple[Cell, ...]] = field(default_factory=dict)  # field path -> the cells its value was cut into
    layout_failed: str | None = None  # why the template's layout could not be mapped onto the table
    under_seal: set[str] = field(default_factory=set)  # fields whose cell a grey seal's erasure changed


def label_key(text: str) -> str:
    """A label or cell text as labels are compared: comparable, without spaces and punctuation."""
    return _PUNCT.sub("", comparable(text))


@lru_cache(maxsize=1 << 16)
def label_similarity(text: str, label: str, at_least: float = 0.0) -> float:
    """How alike a cell's text and a label are (difflib's ratio, 0..1), or 0.0 when their
    lengths alone keep it from exceeding ``at_least``: searching a page for a label compares
    it with every cell, ~3,000 comparisons a page, and most differ in length too much to match."""
    a, b = label_key(text), label_key(label)
    if not a or not b:
        return 0.0
    matcher = SequenceMatcher(None, a, b)
    if matcher.real_quick_ratio() <= at_least:
        return 0.0
    return matcher.ratio()


class _Table:
    def __init__(self, grid: Grid, texts: dict[Cell, CellText]):
        self.grid = grid
        self.texts = texts
        self.at = grid.cell_at()
        self.header_end: dict[tuple[str, str], int] = {}  # (section, field) -> the column after its header cell

    def text(self, cell: Cell | None) -> CellText:
        return self.texts.get(cell, BLANK) if cell is not None else BLANK

    def find(self, label: str, *, rows: range | None = None, threshold: float = 0.72) -> Cell | None:
        """The cell whose text best matches ``label`` (top-most on ties)."""
        best, best_score = None, threshold
        for cell in self.grid.cells:
            if rows is not None and not (rows.start <= cell.row < rows.stop):
                continue
            score = label_similarity(self.text(cell).text, label, best_score)
            if score > best_score:
                best, best_score = cell, score
        return best

    def right_of(self, cell: Cell) -> Cell | None:
        return self.at.get((cell.row, cell.col + cell.col_span))

    def below(self, cell: Cell) -> Cell | None:
        return self.at.get((cell.row + cell.row_span, cell.col))

    def left_of(self, cell: Cell) -> Cell | None:
        return self.at.get((cell.row, cell.col - 1))


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


def _is_label(text: str, template: Template) -> bool:
    key = label_key(text)
    return bool(key) and any(key == label_key(label) for label in template.printed_words())


def form_vocabulary(lexicon: Lexicon | None = None, template: Template | None = None) -> frozenset[str]:
    """Every fixed word of the form (labels, headers, lexicon terms), in comparable form."""
    template = template or get_template()
    words = list(template.printed_words())
    for terms in (lexicon or Lexicon.builtin(template)).terms.values():
        words.extend(terms)
    return frozenset(comparable(w) for w in words if w)


def read_year(header_text: str) -> int | None:
    match = _YEAR.search(comparable(header_text))
    return int(match.group(1)) if match else None


def identifying_score(template: Template, grid: Grid, texts: dict[Cell, CellText]) -> float:
    """How well the page's cells show the template's identifying labels: the mean, over
    those labels, of the best similarity of any cell's text to it (1.0: all printed as is)."""
    keys = [label_key(texts.get(cell, BLANK).text) for cell in grid.cells]
    keys = [k for k in keys if k]
    scores = []
    for label in template.identify:
        target = label_key(label)
        scores.append(max((SequenceMatcher(None, k, target).ratio() for k in keys), default=0.0))
    return sum(scores) / len(scores)


def assemble_record(
    grid: Grid,
    texts: dict[Cell, CellText],
    header_text: str = "",
    lexicon: Lexicon | None = None,
    template: Template | None = None,
) -> AssembledPage:
    """Build the record from read cells by ``template`` (the project form's by default).

    When the template's identifying labels are not all there, or a section's key column
    cannot be mapped, the record holds what could be mapped and ``layout_failed`` says why;
    the parts that could not be mapped are ``unmapped``. Whether such a page is the form at
    all is for ``pipeline.identify`` to say.

    Text fields with a vocabulary (指标 levels, target words, units) are snapped onto
    ``lexicon`` terms when exactly one is within reach; the flag logic still sees how
    sure the engines were.
    """
    template = template or get_template()
    table = _Table(grid, texts)
    absent = [label for label in template.identify if table.find(label) is None]
    year = read_year(header_text)
    page = AssembledPage(FormRecord(year=year) if template.record == "project" else
                         TemplateRecord(form_type=template.form_type, year=year))
    values: dict[str, object] = {"year": year}

    def take_text(path: str, cell: Cell | None) -> str:
        text = table.text(cell)
        if lexicon is not None and not text.is_blank:
            snap = lexicon.snap_reading(field_kind(path), text)
            if snap.changed:
                text = replace(text, text=snap.text, readings={**text.readings, "lexicon": snap.text})
        if cell is not None:
            page.evidence[path] = FieldEvidence(cell, text)
        return "" if text.is_blank else text.text

    def take_as(path: str, cell: Cell, text: str) -> str:
        """``take_text`` of ``cell`` read as ``text``: the part of it that is the field's value."""
        read = table.text(cell)
        table.texts[cell] = replace(read, text=text)
        try:
            return take_text(path, cell)
        finally:
            table.texts[cell] = read

    def take_number(path: str, cell: Cell | None, percent: bool = False) -> float | None:
        raw = take_text(path, cell)
        try:
            return parse_number(raw, percent=percent)
        except NumberFormatError:
            page.unparseable[path] = raw
            return None

    def take(path: str, cell: Cell | None, grammar: str | None) -> object:
        return take_text(path, cell) if grammar is None else take_number(path, cell, grammar == "rate")

    label_cells: dict[str, Cell | None] = {}  # field -> the label cell its value was found by
    read_with: dict[str, tuple[Cell, str]] = {}  # label -> its value, read in a run of cells before it
    total_rows: dict[str, int | None] = {}  # section -> the row of its end label
    section_columns: dict[str, tuple[dict[str, int], dict[str, str]]] = {}
    for part in template.parts:
        if isinstance(part, Section):
            rows, total_row, columns, problems = _assemble_section(table, part, take, page)
            values[part.name] = rows
            total_rows[part.name] = total_row
            section_columns[part.name] = (columns, problems)
        elif part.place == "right_of":
            found = label_cells[part.name] = table.find(part.label)
            value_cell = table.right_of(found) if found else None
            values[part.name] = take_text(part.name, value_cell) if found else ""
            joined = (_label_with_value(table, part.label) or read_with.get(part.label)) if found is None else None
            cut = _before_label(table.text(value_cell).text, template, part.label) if value_cell else None
            if joined is not None:
                # the rule between the label and a value was missed: the value is read beside the label
                cell, value = joined
                label_cells[part.name] = cell
                values[part.name] = take_as(part.name, cell, value)
                page.misaligned[part.name] = f"the label {part.label} was read in one cell with a value"
            elif found is None:
                page.unmapped[part.name] = f"no {part.label} label was found"
            elif cut is not None:
                # the next label and its value were read with this one's value
                values[part.name] = take_as(part.name, value_cell, cut)
                page.misaligned[part.name] = "the value was read in one cell with the next label"
            rest = _runs_on_into(table, value_cell, template) if value_cell is not None and cut is None else []
            if rest:
                whole = str(values[part.name]) + "".join(table.text(c).text for c in rest)
                values[part.name] = whole
                page.misaligned[part.name] = "the value runs on into the next cell: a rule may have been found in its text"
                after = _next_label(whole, template, part.label)
                if after is not None:
                    # the run took the next label too, cut by a false rule, its own rule missed
                    label, start, end = after
                    values[part.name] = take_as(part.name, value_cell, whole[:start].rstrip(_SPECKS))
                    read_with[label] = (rest[-1], whole[end:].lstrip(_SPECKS))
        elif part.place == "below":
            above = table.find(part.above) if part.above else None
            found = table.find(part.label, rows=range(0, above.row) if above is not None else None)
            if found is None and part.else_right_of and label_cells.get(part.else_right_of) is not None:
                found = table.right_of(label_cells[part.else_right_of])  # the layout puts it there
            label_cells[part.name] = found
            values[part.name] = take_text(part.name, table.below(found)) if found else ""
            if found is None:
                page.unmapped[part.name] = f"no {part.label} label was found"
            if _is_label(values[part.name], template):
                page.misaligned[part.name] = (
                    f"the cell read holds the label {values[part.name]}: the layout was not recognised"
                )
        elif part.place == "unit_in":
            values[part.name] = _unit_in(table, part)
        else:  # total_of
            total_row = total_rows.get(part.section)
            values[part.name] = None
            if total_row is not None:
                columns, problems = section_columns[part.section]
                col = columns.get(part.column)
                if col is None:
                    page.unmapped[part.name] = problems.get(part.column) or str(page.layout_failed)
                else:
                    values[part.name] = take(part.name, table.at.get((total_row, col)), part.number)
    for part in template.parts:
        sibling = label_cells.get(part.else_left_of) if isinstance(part, FieldPart) and part.else_left_of else None
        if part.name in page.unmapped and sibling is not None:
            # the label was not read (a seal, a rule found in it), its neighbour's was: the layout
            # puts the value left of the neighbour's
            beside = table.below(sibling)
            value_cell = table.left_of(beside) if beside is not None else None
            if value_cell is not None and value_cell.row == beside.row:
                values[part.name] = take_text(part.name, value_cell)
                del page.unmapped[part.name]
                other = next(p for p in template.parts if p.name == part.else_left_of)
                page.misaligned[part.name] = f"no {part.label} label was found: the value is the one left of {other.label}'s"
    if absent:
        _mark_layout_failed(page, template, absent)
    if template.record == "project":
        page.record = FormRecord.model_validate(values)
    else:
        page.record = TemplateRecord.model_validate({"form_type": template.form_type, **values})
    return page


def label_length(text: str, label: str) -> int:
    """How many characters at the start of ``text`` print ``label`` (0: it does not start with
    it). Spaces and punctuation are skipped as ``label_key`` skips them, and a label of
    ``NEAR_LABEL_LEN`` or more characters may have one misread (实见单位 for 实施单位)."""
    want = label_key(label)
    taken, misread = "", 0
    for i, char in enumerate(text):
        key = label_key(char)
        if not key:
            continue
        for got in key:
            misread += got != want[len(taken)] if len(taken) < len(want) else 0
            taken += got
        if misread > (1 if len(want) >= NEAR_LABEL_LEN else 0):
            return 0
        if len(taken) >= len(want):
            return i + 1 if taken[: len(want)] == want or misread == 1 else 0
    return 0


def label_at(text: str, label: str) -> tuple[int, int] | None:
    """Where in ``text`` ``label`` is printed, as ``label_length`` finds it: (start, end), or None."""
    for start, char in enumerate(text):
        if label_key(char):
            length = label_length(text[start:], label)
            if length:
                return start, start + length
    return None


def _label_with_value(table: _Table, label: str) -> tuple[Cell, str] | None:
    """The value of a ``label`` read in one cell with what stands beside it: the cell and the
    text after the label (specks at its start dropped), or, when the label ends a cell's text
    after another value, the cell right of it and its text."""
    for cell in table.grid.cells:
        text = table.text(cell).text
        at = label_at(text, label)
        if at is None:
            continue
        value = text[at[1] :].lstrip(_SPECKS)
        if len(label_key(value)) >= 2:
            return cell, value
        beside = table.right_of(cell)
        if at[0] > 0 and not label_key(value) and beside is not None and not table.text(beside).is_blank:
            return beside, table.text(beside).text
    return None


def _before_label(text: str, template: Template, own: str) -> str | None:
    """``text`` up to another right-of label printed in it after a value (主管部门's value read
    with 实施单位), or None when it holds none."""
    after = _next_label(text, template, own)
    return text[: after[1]].rstrip(_SPECKS) if after is not None else None


def _next_label(text: str, template: Template, own: str) -> tuple[str, int, int] | None:
    """Another right-of label printed in ``text`` after a value: (the label, its start, its end)."""
    for part in template.parts:
        if isinstance(part, FieldPart) and part.place == "right_of" and part.label != own:
            at = label_at(text, part.label)
            if at is not None and len(label_key(text[: at[0]])) >= 2:
                return part.label, at[0], at[1]
    return None


def _runs_on_into(table: _Table, cell: Cell, template: Template) -> list[Cell]:
    """The cells right of a label's value cell, up to the row's next printed label (or a cell
    starting with one): a value the form prints in one cell, cut by a rule found in its text
    (a glyph's stroke)."""
    out = []
    nxt = table.right_of(cell)
    while nxt is not None and (nxt.row, nxt.row_span) == (cell.row, cell.row_span):
        text = table.text(nxt)
        if text.is_blank or any(
            label_similarity(text.text, word, 0.72) > 0.72
            or (len(label_key(word)) >= NEAR_LABEL_LEN and label_length(text.text, word))
            for word in template.printed_words()
        ):
            break
        out.append(nxt)
        nxt = table.right_of(nxt)
    return out


def _mark_layout_failed(page: AssembledPage, template: Template, absent: list[str]) -> None:
    """Record that the identifying labels ``absent`` were not found: the parts they anchor are unmapped."""
    page.layout_failed = f"no {' / '.join(absent)} label was found: the table's layout was not recognised"
    for part in template.parts:
        anchors = {part.anchor, *part.headers.values()} if isinstance(part, Section) else {part.label}
        if anchors & set(absent):
            page.unmapped.setdefault(part.name, page.layout_failed)
    if not page.unmapped:
        page.unmapped[template.parts[0].name] = page.layout_failed


def _header_columns(
    table: _Table, anchor: Cell, wanted: dict[str, str]
) -> tuple[dict[str, int], dict[str, str], dict[str, int]]:
    """Column index of each wanted header label on the anchor's row(s), why the others have
    none, and the column after each header cell found.

    Two labels found in one cell mean a rule between them was missed: neither column can
    then be trusted, since the cells below may be merged too.
    """
    rows = range(anchor.row, anchor.row + anchor.row_span)
    header_cells = sorted((c for c in table.grid.cells if rows.start <= c.row < rows.stop), key=lambda c: (c.col, c.row))
    cells = _in_printed_order(table, header_cells, wanted)
    problems = {key: f"no {label} column was found" for key, label in wanted.items() if key not in cells}
    for key, cell in cells.items():
        text = label_key(table.text(cell).text)
        others = [label_key(label) for k, label in wanted.items() if k != key and label_key(label) in text]
        # a cell reading exactly another header (三级指标 for 二级指标) is a misread of its own;
        # one holding another header and more besides holds two
        if others and len(text) - max(map(len, others)) >= len(label_key(wanted[key])) / 2:
            sharing = [wanted[key], *(label for k, label in wanted.items() if k != key and label_key(label) in text)]
            problems[key] = "the headers " + " and ".join(sharing) + " were read as one cell"
    kept = {key: cell for key, cell in cells.items() if key not in problems}
    return {key: cell.col for key, cell in kept.items()}, problems, {key: cell.col + cell.col_span for key, cell in kept.items()}


def _in_printed_order(table: _Table, header_cells: list[Cell], wanted: dict[str, str]) -> dict[str, Cell]:
    """Each wanted label's cell: labels and cells matched in printed order, left to right, with the
    highest total similarity. 一级/二级/三级指标 differ in one character, so one misread must not
    let a label take a sibling's cell and swap two columns silently."""
    keys = list(wanted)
    score = [[label_similarity(table.text(cell).text, wanted[key]) for cell in header_cells] for key in keys]
    # best[i][j]: the highest total over the first i labels and the first j cells
    best = [[0.0] * (len(header_cells) + 1) for _ in range(len(keys) + 1)]
    for i in range(1, len(keys) + 1):
        for j in range(1, len(header_cells) + 1):
            matched = score[i - 1][j - 1]
            best[i][j] = max(
                best[i - 1][j], best[i][j - 1],
                best[i - 1][j - 1] + matched if matched >= HEADER_MATCH else 0.0,
            )
    cells: dict[str, Cell] = {}
    i, j = len(keys), len(header_cells)
    while i and j:
        matched = score[i - 1][j - 1]
        if matched >= HEADER_MATCH and best[i][j] == best[i - 1][j - 1] + matched:
            cells[keys[i - 1]] = header_cells[j - 1]
            i, j = i - 1, j - 1
        elif best[i][j] == best[i - 1][j]:
            i -= 1
        else:
            j -= 1
    return cells


def _unit_in(table: _Table, part: FieldPart) -> str:
    """The unit in brackets in the part's label (项目资金（万元）); its default when it cannot be read."""
    pattern = re.compile(r"\((" + "|".join(map(re.escape, part.units)) + r")\)")
    for cell in table.grid.cells:
        text = comparable(table.text(cell).text)
        if text.startswith(part.label):
            match = pattern.search(text)
            if match:
                return match.group(1)
    return part.default


def _row_label_of(text: str, row_labels: tuple[str, ...]) -> str | None:
    """The row label a label cell's text ends with (a printed 其中： in front is allowed)."""
    key = label_key(text)
    for label in row_labels:
        if key.endswith(label) or (key and label_similarity(key[-len(label) :], label) >= 0.75):
            return label
    return None


def _assemble_section(table: _Table, section: Section, take, page: AssembledPage):
    """The section's rows as dicts, the row of its end label, its columns and unmapped ones."""
    header = _section_anchor(table, section)
    if header is None:
        return [], None, {}, {}
    columns, problems, ends = _header_columns(table, header, section.headers)
    table.header_end.update({(section.name, key): end for key, end in ends.items()})
    grammar = {c.field: c.number for c in section.columns}
    if section.key is not None and section.key in problems:
        page.layout_failed = f"the {section.headers[section.key]} column cannot be mapped: {problems[section.key]}"
        page.unmapped[section.name] = page.layout_failed
        return [], None, {}, problems
    rows: list[dict[str, object]] = []
    if section.row_labels:
        total_row = None
        label_col = header.col - 1
        row = header.row + header.row_span
        while row < table.grid.n_rows:
            label = table.at.get((row, label_col))
            if label is None or label.row != row:
                break
            row_label = _row_label_of(table.text(label).text, section.row_labels)
            if row_label is None:
                break
            labelled = {section.row_label: row_label}
            rows.append(_take_row(table, section, row, len(rows), columns, grammar, take, page, labelled))
            for key, why in problems.items():
                page.unmapped[f"{section.name}[{len(rows) - 1}].{key}"] = why
            row = label.row + label.row_span
        absent = [label for label in section.row_labels if label not in {r[section.row_label] for r in rows}]
        if absent:
            # the form prints every labelled row: one not found was cut or merged away
            page.unmapped.setdefault(section.name, f"no {'、'.join(absent)} row was found")
    else:
        total_row = _open_rows(table, section, header, columns, grammar, take, page, rows)
        for i in range(len(rows)):
            for key, why in problems.items():
                page.unmapped[f"{section.name}[{i}].{key}"] = why
    return rows, total_row, columns, problems


def _section_anchor(table: _Table, section: Section) -> Cell | None:
    """The cell of the section's anchor header. When it is read too badly to be found alone
    (年频算数 for 年初预算数), or the cell found is a sibling header's (全年预算数 is as like
    年初预算数 as that), it is found in the row where two or more of the other headers stand,
    matched with them in printed order."""
    anchor_key = next(key for key, label in section.headers.items() if label == section.anchor)
    found = table.find(section.anchor)
    if found is not None and _best_header(table.text(found).text, section) == anchor_key:
        return found
    rows = Counter(
        cell.row for key, label in section.headers.items() if key != anchor_key
        for cell in [table.find(label)] if cell is not None
    )
    if not rows or rows.most_common(1)[0][1] < 2:
        return found
    row = rows.most_common(1)[0][0]
    header_cells = sorted((c for c in table.grid.cells if c.row == row), key=lambda c: c.col)
    return _in_printed_order(table, header_cells, section.headers).get(anchor_key, found)


def _best_header(text: str, section: Section) -> str:
    """The key of the section's header ``text`` is most like."""
    return max(section.headers, key=lambda key: label_similarity(text, section.headers[key]))


def _take_row(table: _Table, section: Section, row: int, i: int, columns, grammar, take, page, values) -> dict:
    cells = {key: table.at.get((row, col)) for key, col in columns.items()}
    for key in section.headers:
        # A column whose header was not found stays empty (its fields are flagged ``missing``):
        # the rest of the row is still kept, and a required text field still has a value.
        values.setdefault(key, None if grammar[key] else "")
    for key, cell in cells.items():
        path = f"{section.name}[{i}].{key}"
        values[key] = take(path, cell, grammar[key])
        end = table.header_end.get((section.name, key))
        rest = _cut_off_under(table, cell, end) if cell is not None and end is not None else []
        if rest:
            # a rule found inside the column (a glyph's or a seal's stroke) cut the value
            joined = table.text(cell).text + "".join(table.text(c).text for c in rest)
            text = table.text(cell)
            table.texts[cell] = replace(text, text=joined)
            values[key] = take(path, cell, grammar[key])
            table.texts[cell] = text
            page.misaligned[path] = "the value is cut in two under its header: a rule may have been found in its text"
            page.cut_values[path] = (cell, *rest)
    page.misaligned.update(_shared_cells(cells, f"{section.name}[{i}]", section.headers))
    return values


def _cut_off_under(table: _Table, cell: Cell, end: int) -> list[Cell]:
    """The cells with text right of ``cell`` in its row that lie wholly under its header,
    whose cell ends before column ``end``."""
    out = []
    nxt = table.right_of(cell)
    while nxt is not None and nxt.col + nxt.col_span <= end and (nxt.row, nxt.row_span) == (cell.row, cell.row_span):
        if not table.text(nxt).is_blank:
            out.append(nxt)
        nxt = table.right_of(nxt)
    return out


def _label_only(table: _Table, section: Section, row: int, key_cell: Cell, columns: dict[str, int]) -> bool:
    """A key cell that also spans ``skip_if_only``'s column and holds just one of its
    vocabulary's terms (a 二级指标 name): the rule between them was missed on a row with
    no entry of its own (a real indicator would add its own name)."""
    rule = section.skip_if_only
    if not rule:
        return False
    col = columns.get(rule[0])
    if col is None or table.at.get((row, col)) != key_cell:
        return False
    terms = rule[1]
    text = table.text(key_cell).text
    return bool(terms) and max(label_similarity(text, term) for term in terms) >= 0.8


def _open_rows(table: _Table, section: Section, header: Cell, columns, grammar, take, page, rows: list) -> int | None:
    """Every row with text in the key column up to the end label; the end label's row."""
    key_col = columns[section.key]
    end = table.find(section.end, rows=range(header.row + 1, table.grid.n_rows)) if section.end else None
    last = end.row if end is not None else table.grid.n_rows
    stop_col = columns.get(section.stop_at) if section.stop_at else None
    row = header.row + header.row_span
    while row < last:
        key_cell = table.at.get((row, key_col))
        if key_cell is None:
            row += 1
            continue
        if stop_col is not None and table.at.get((row, stop_col)) == key_cell:
            # A key cell spanning the stop_at column too is the end label (the 总分 of the
            # 一级指标 .. 三级指标 columns) read wrong, or it would have been found above.
            return row
        next_row = key_cell.row + key_cell.row_span
        if key_cell.row != row or table.text(key_cell).is_blank or _label_only(table, section, row, key_cell, columns):
            row = next_row
            continue
        rows.append(_take_row(table, section, row, len(rows), columns, grammar, take, page, {}))
        row = next_row
    return end.row if end is not None else None


def find_label(grid: Grid, texts: dict[Cell, CellText], label: str) -> Cell | None:
    """The cell holding ``label`` as ``assemble_record`` finds it (None when no cell is close enough)."""
    return _Table(grid, texts).find(label)

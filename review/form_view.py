"""The review page's form view: a record laid out as its form is printed, with the form's labels,
and the cell each field was read from (so any field, flagged or not, lights up on the image).

The layout follows the form's template (``pipeline/templates/*.toml``) in its order: header
fields beside their labels (项目名称; 主管部门 | 实施单位), each table under its printed
headers with its rows' labels (项目资金: 年度资金总额 ...; 绩效指标 with the 总分 row at its
foot), and fields printed under one heading side by side (年度总体目标: 预期目标 | 实际完成情况).
Everything here is plain data: the template renders it escaped, the script gets it as JSON.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import parse_record
from pipeline.templates import FieldPart, Section
from review.fields import Record, get_text, is_editable
from review.labels import (
    GROUP_TITLES,
    STATUS_NAMES,
    field_label,
    field_labels,
    is_long,
    printed,
    reason_table,
    row_label,
    script_text,
    section_title,
    status_name,
    template_for,
)
from review.store import CellRow, FieldEvidenceRow


def _cell(record: Record, path: str, lang: str) -> dict[str, Any]:
    value = get_text(record, path)
    return {"path": path, "label": field_label(path, record, lang), "value": value,
            "long": is_long(path, value), "editable": is_editable(record, path)}


def form_layout(record: Record, lang: str) -> list[dict[str, Any]]:
    """The record as blocks in printed order: ``fields`` (rows of label/value pairs), ``group``
    (fields under one heading, side by side) and ``table`` (headers, labelled rows, a total row)."""
    template = template_for(record)
    data = record.model_dump(mode="json")
    parts = list(template.parts)
    placed = {p.name for p in parts}
    # Header fields the template does not place (the year) go first; 表格类型 is no field to check.
    blocks: list[dict[str, Any]] = []
    loose = [key for key, value in data.items()
             if key not in placed and key != "form_type" and not isinstance(value, (list, dict))]
    if loose:
        blocks.append({"kind": "fields", "rows": [[_cell(record, key, lang)] for key in loose]})
    totals = [p for p in parts if isinstance(p, FieldPart) and p.place == "total_of"]
    units = {p.name: p for p in parts if isinstance(p, FieldPart) and p.place == "unit_in"}
    i = 0
    while i < len(parts):
        part = parts[i]
        if isinstance(part, Section):
            blocks.append(_table(record, data, template, part, totals, units.get(f"{part.name}_unit"), lang))
            i += 1
            continue
        if part.place == "total_of" or (part.place == "unit_in" and part.name.removesuffix("_unit")
                                        in template.sections):
            i += 1  # shown in its table: the 总分 row, the unit beside the table's title
            continue
        run = [part]
        while i + len(run) < len(parts) and isinstance(parts[i + len(run)], FieldPart) \
                and parts[i + len(run)].place == part.place and part.place in ("right_of", "below"):
            run.append(parts[i + len(run)])
        i += len(run)
        names = [p.name for p in run if p.name in data]
        if not names:
            continue
        if part.place == "below":
            title = GROUP_TITLES.get(names[0])
            blocks.append({"kind": "group", "title": printed(title, lang) if title else "",
                           "headers": [printed(template.fields[n].label, lang) for n in names],
                           "cells": [_cell(record, n, lang) for n in names]})
        else:
            # As printed: the first label alone on its row when there is an odd number, then two a row
            # (项目名称; 主管部门 | 实施单位).
            rows = [names[:1]] if len(names) % 2 else []
            rest = names[1:] if len(names) % 2 else names
            rows += [rest[k:k + 2] for k in range(0, len(rest), 2)]
            blocks.append({"kind": "fields", "rows": [[_cell(record, n, lang) for n in row] for row in rows]})
    if loose and len(blocks) > 1 and blocks[1]["kind"] == "fields":  # the year heads the header fields
        year = blocks.pop(0)
        blocks[0]["rows"][:0] = year["rows"]
    return blocks


def _table(record: Record, data: dict[str, Any], template, section: Section, totals: list[FieldPart],
           unit: FieldPart | None, lang: str) -> dict[str, Any]:
    rows = data.get(section.name) or []
    columns = list(section.columns)
    body = []
    for index, row in enumerate(rows):
        body.append({
            "label": row_label(template, section, index, row, lang) if section.row_label else None,
            "number": index + 1,
            "cells": [_cell(record, f"{section.name}[{index}].{c.field}", lang) for c in columns],
        })
    total = None
    mine = [p for p in totals if p.section == section.name and p.name in data]
    if mine:
        by_column = {p.column: p.name for p in mine}
        cells = [_cell(record, by_column[c.field], lang) if c.field in by_column else None for c in columns]
        first = next(k for k, cell in enumerate(cells) if cell is not None)
        # 总分 is printed across the columns left of the first total, the totals under their columns
        total = {"label": printed(mine[0].label, lang), "first": first, "cells": cells[first:]}
    return {
        "kind": "table", "name": section.name, "title": section_title(template, section.name, lang),
        "unit": _cell(record, unit.name, lang) if unit is not None and unit.name in data else None,
        "labelled": bool(section.row_label), "headers": [printed(c.header, lang) for c in columns],
        "rows": body, "total": total,
    }


def layout_order(blocks: list[dict[str, Any]]) -> list[str]:
    """Every field path of the layout, in the order the form is read (row by row)."""
    order: list[str] = []
    for block in blocks:
        if block["kind"] == "fields":
            order += [cell["path"] for row in block["rows"] for cell in row]
        elif block["kind"] == "group":
            order += [cell["path"] for cell in block["cells"]]
        else:
            if block["unit"]:
                order.append(block["unit"]["path"])
            order += [cell["path"] for row in block["rows"] for cell in row["cells"]]
            if block["total"]:
                order += [cell["path"] for cell in block["total"]["cells"] if cell]
    return order


def field_cells(session: Session, page_id: int) -> dict[str, dict[str, Any]]:
    """Per field read from a cell: the cell's box on the page image and what the engines read there."""
    rows = session.execute(
        select(FieldEvidenceRow, CellRow).join(CellRow, CellRow.id == FieldEvidenceRow.cell_id)
        .where(FieldEvidenceRow.page_id == page_id)
    )
    return {
        evidence.field: {"id": cell.id, "x0": cell.x0, "y0": cell.y0, "x1": cell.x1, "y1": cell.y1,
                         "readings": dict(evidence.readings or {}), "confidence": evidence.confidence,
                         "evidence": cell.source}
        for evidence, cell in rows
    }


def review_context(session: Session, detail: dict[str, Any], lang: str) -> dict[str, Any]:
    """What the review page renders beside the API's page detail: the form's layout and, for the
    script, labels, cells, the form's reading order and reason words."""
    record = parse_record(detail["record"]) if detail.get("record") else None
    blocks = form_layout(record, lang) if record is not None else []
    view = {
        "lang": lang,
        # the audit trail names page actions (done, reject) by the field "(page)"
        "labels": {**(field_labels(record, lang) if record is not None else {}), "(page)": printed("整页", lang)},
        "cells": field_cells(session, detail["id"]),
        "order": layout_order(blocks),
        "long": [path for path in layout_order(blocks) if is_long(path, get_text(record, path))] if record else [],
        "reasons": reason_table(lang),
        "text": script_text(lang),
        "statuses": {status: status_name(status, lang) for status in STATUS_NAMES},
    }
    return {"blocks": blocks, "view": view}

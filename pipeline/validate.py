"""Validate a record: named domain rules plus the confidence of each field's reading.

Every rule has a name (the flag reason is ``rule:<name>``) and a message a
reviewer can act on; where the arithmetic implies a value it is proposed. Which
rules apply to a form, on which fields and with which tolerances, its template
says (``pipeline/templates/*.toml``, ``[[rules]]``).
"""

from __future__ import annotations

from collections.abc import Iterator

from models import Flag, FlagReason, FormRecord, Notice, TemplateRecord
from models.result import rule_reason
from pipeline.assemble import AssembledPage
from pipeline.confidence import REVIEW_BELOW, calibrated_confidence, evidence_class
from pipeline.errors import TemplateError
from pipeline.lexicon import Lexicon, field_kind
from pipeline.repair import repair_text
from pipeline.templates import Template, get_template, template_for_form_type

# A part of a page known to be the form that its layout could not be mapped onto.
LAYOUT_FAILED = rule_reason("layout_failed")


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def template_of(record: FormRecord | TemplateRecord) -> Template:
    return get_template() if isinstance(record, FormRecord) else template_for_form_type(record.form_type)


def _rows(data: dict, section: str) -> list[dict]:
    return data.get(section) or []


# --- rules over the whole record: (record as a dict, the rule's parameters, template) -> flags

def _empty(value: object) -> bool:
    return value is None or value == ""


def _required(data: dict, rule: dict, template: Template) -> Iterator[Flag]:
    for path in rule["fields"]:
        if _empty(data.get(path)):
            note = f" ({rule['note']})" if "note" in rule else ""
            yield Flag(field=path, reason=FlagReason.MISSING.value, message=f"{path}{note} is empty")


def _required_row(data: dict, rule: dict, template: Template) -> Iterator[Flag]:
    if not any(row.get(rule["column"]) == rule["value"] for row in _rows(data, rule["section"])):
        yield Flag(field=rule["section"], reason=FlagReason.MISSING.value, message=f"no {rule['value']} row was found")


def _required_rows(data: dict, rule: dict, template: Template) -> Iterator[Flag]:
    if not _rows(data, rule["section"]):
        yield Flag(field=rule["section"], reason=FlagReason.MISSING.value, message=f"no {rule['what']} rows were found")


def _label_in_value(data: dict, rule: dict, template: Template) -> Iterator[Flag]:
    for path in rule["fields"]:
        label = next((label for label in rule["labels"] if label in (data.get(path) or "")), None)
        if label:
            yield Flag(
                field=path,
                reason=rule_reason("label_in_value"),
                message=f"the value contains the label {label}: two cells may have been read as one",
            )


_PAIRS = {"“": "”", "《": "》", "【": "】"}  # printed in pairs; （） are not: a list numbers 1）2）


def _marks_paired(data: dict, rule: dict, template: Template) -> Iterator[Flag]:
    paths = [(path, data.get(path)) for path in rule.get("fields", [])]
    for section, columns in rule.get("columns", {}).items():
        paths += [(f"{section}[{i}].{col}", row.get(col)) for i, row in enumerate(_rows(data, section)) for col in columns]
    for path, value in paths:
        if isinstance(value, str) and not _paired(value):
            yield Flag(
                field=path,
                reason=rule_reason("marks_paired"),
                message="a quotation mark or bracket has no partner: one may have been dropped or misread",
            )


def _paired(text: str) -> bool:
    """Do the text's “” 《》 【】 open and close in turn (never nested on the form)?"""
    closing = set(_PAIRS.values())
    expected = None  # the mark that closes the one open
    for ch in text:
        if ch in _PAIRS:
            if expected is not None:
                return False
            expected = _PAIRS[ch]
        elif ch in closing:
            if ch != expected:
                return False
            expected = None
    return expected is None


def _sum_terms(data: dict, rule: dict) -> list[tuple[str | None, float | None]]:
    """(path, value) of every term of a sum rule; a term of ``rows = n`` always gives n,
    a row the section lacks as (None, None)."""
    terms = []
    for term in rule["terms"]:
        rows = _rows(data, term["section"])
        count = term.get("rows", len(rows))
        for i in range(count):
            row = rows[i] if i < len(rows) else None
            path = f"{term['section']}[{i}].{term['column']}" if row is not None else None
            terms.append((path, row.get(term["column"]) if row is not None else None))
    return terms


def _sum(data: dict, rule: dict, template: Template) -> Iterator[Flag]:
    total = data.get(rule["total"])
    if total is None:
        return
    terms = _sum_terms(data, rule)
    summed = sum(value for _, value in terms if value is not None)
    if abs(summed - total) > rule["tolerance"]:
        part = template.fields.get(rule["total"])
        message = f"{part.label if part else rule['total']} {_fmt(total)} but the rows add up to {_fmt(summed)}"
        reason = rule_reason(rule["rule"])
        yield Flag(field=rule["total"], reason=reason, message=message, proposal=_fmt(summed))
        # The misread term may be any of them: a reviewer sees every term of the sum. A lone term
        # that could not be read is offered what the total leaves for it.
        unread = [path for path, value in terms if path is not None and value is None]
        for path, _ in terms:
            if path is not None:
                left = total - summed if unread == [path] and total > summed else None
                yield Flag(field=path, reason=reason, message=message, proposal=_fmt(left) if left is not None else None)


def _rows_sum(data: dict, rule: dict, template: Template) -> Iterator[Flag]:
    """The rows labelled ``parts`` add up to the row labelled ``total`` in each of ``columns``
    (基本支出 + 项目支出 = 年度资金总额): a misread amount that the 执行率 of its own row
    cannot catch (both amounts misread alike) breaks this sum."""
    by_label = {row.get(rule["label_column"]): i for i, row in enumerate(_rows(data, rule["section"]))}
    if rule["total"] not in by_label or any(part not in by_label for part in rule["parts"]):
        return
    rows = _rows(data, rule["section"])
    total_i, part_is = by_label[rule["total"]], [by_label[part] for part in rule["parts"]]
    for column in rule["columns"]:
        total, parts = rows[total_i].get(column), [rows[i].get(column) for i in part_is]
        if total is None or any(part is None for part in parts):
            continue
        summed = sum(parts)
        if abs(summed - total) > rule["tolerance"]:
            message = f"{rule['total']} {_fmt(total)} but {' + '.join(rule['parts'])} = {_fmt(summed)}"
            path = f"{rule['section']}[{total_i}].{column}"
            yield Flag(field=path, reason=rule_reason("rows_sum"), message=message, proposal=_fmt(summed))
            for i in part_is:
                yield Flag(field=f"{rule['section']}[{i}].{column}", reason=rule_reason("rows_sum"), message=message)


# --- rules over one row of a section: (section, row index, row, parameters) -> flags

def _row_filled(section: str, i: int, row: dict, rule: dict) -> Iterator[Flag]:
    for column in rule["columns"]:
        if _empty(row.get(column)):
            path = f"{section}[{i}].{column}"
            yield Flag(field=path, reason=FlagReason.MISSING.value, message=f"{path} is empty: every row has one")


def _execution_rate(section: str, i: int, row: dict, rule: dict) -> Iterator[Flag]:
    budget, executed, rate = row.get(rule["budget"]), row.get(rule["executed"]), row.get(rule["rate"])
    if rate is not None and budget is None and executed is None:
        # A rate no amount of its row gives: in the blank rows under 年度资金总额, a rule's
        # remnant or a speck read "1" by both engines alike.
        yield Flag(field=f"{section}[{i}].{rule['rate']}", reason=rule_reason("execution_rate"),
                   message=f"执行率 {_fmt(rate)}% in a row with no 全年预算数 or 全年执行数")
    if budget and executed is not None and rate is not None:
        expected = executed / budget * 100
        if abs(expected - rate) > rule["tolerance"]:
            message = (
                f"执行率 {_fmt(rate)}% but 全年执行数/全年预算数 = "
                f"{_fmt(executed)}/{_fmt(budget)} = {expected:.2f}%"
            )
            reason = rule_reason("execution_rate")
            path = f"{section}[{i}].{rule['rate']}"
            yield Flag(field=path, reason=reason, message=message, proposal=f"{expected:.2f}")
            # Any of the three may be the misread one: a reviewer sees all three.
            for key in (rule["budget"], rule["executed"]):
                yield Flag(field=f"{section}[{i}].{key}", reason=reason, message=message)


def _subrow_unscored(section: str, i: int, row: dict, rule: dict) -> Iterator[Flag]:
    # Only the scored row (年度资金总额) is weighted and scored; the form prints "—" below it.
    if row.get(rule["label_column"]) == rule["scored_row"]:
        return
    for key, printed in rule["columns"].items():
        if row.get(key) is not None:
            yield Flag(
                field=f"{section}[{i}].{key}",
                reason=rule_reason("subrow_unscored"),
                message=f"{row.get(rule['label_column'])} has a {printed}; the form prints — there",
            )


def _score_le_weight(section: str, i: int, row: dict, rule: dict) -> Iterator[Flag]:
    score, weight = row.get(rule.get("score", "score")), row.get(rule.get("weight", "weight"))
    if score is not None and weight is not None and score > weight + rule["tolerance"]:
        yield Flag(
            field=f"{section}[{i}].{rule.get('score', 'score')}",
            reason=rule_reason("score_le_weight"),
            message=f"得分 {_fmt(score)} exceeds 分值 {_fmt(weight)}",
        )
    elif score is not None and weight is None:
        # the form prints a 分值 wherever it prints a 得分: an empty one was lost, not left out
        yield Flag(
            field=f"{section}[{i}].{rule.get('weight', 'weight')}",
            reason=rule_reason("score_le_weight"),
            message=f"得分 {_fmt(score)} has no 分值",
        )


RECORD_RULES = {
    "required": _required, "required_row": _required_row, "required_rows": _required_rows,
    "label_in_value": _label_in_value, "marks_paired": _marks_paired, "weights_sum": _sum, "scores_sum": _sum, "rows_sum": _rows_sum,
}
ROW_RULES = {
    "execution_rate": _execution_rate, "subrow_unscored": _subrow_unscored, "score_le_weight": _score_le_weight,
    "row_filled": _row_filled,
}


def _amount_plausible(data: dict, notice: dict) -> Iterator[Notice]:
    if data.get(notice["unit_field"]) != notice["unit"]:
        return
    # The form prints 万元 over amounts that are really 元 on some pages: the heading is
    # what is wrong, as printed. An amount misread by a factor of 100 breaks 执行率 and
    # the sums instead, and is flagged there.
    largest = max(
        (row[key] for row in _rows(data, notice["section"]) for key in notice["columns"] if row.get(key) is not None),
        default=0.0,
    )
    if largest >= notice["limit"]:
        yield Notice(
            rule="amount_plausible",
            message=f"{_fmt(largest)} {notice['unit']} is implausible for {notice['what']}: the amounts may be in 元",
        )


NOTICES = {"amount_plausible": _amount_plausible}


def _named(table: dict, name: str, template: Template):
    if name not in table:
        raise TemplateError(f"{template.path or template.name}: no rule named {name!r} in pipeline/validate.py")
    return table[name]


def record_notices(record: FormRecord | TemplateRecord, template: Template | None = None) -> list[Notice]:
    """What the user of this record should know about the document itself (see ``Notice``)."""
    template = template or template_of(record)
    data = record.model_dump()
    return [n for notice in template.notices for n in _named(NOTICES, notice["rule"], template)(data, notice)]


def rule_flags(record: FormRecord | TemplateRecord, template: Template | None = None) -> Iterator[Flag]:
    """Flags for broken domain rules and missing required fields: the template's rules, in
    its order; rules one after another on the same section are checked row by row, so
    each row's flags stay together."""
    template = template or template_of(record)
    data = record.model_dump()
    rules = list(template.rules)
    k = 0
    while k < len(rules):
        rule = rules[k]
        if rule["rule"] not in ROW_RULES:
            yield from _named(RECORD_RULES, rule["rule"], template)(data, rule, template)
            k += 1
            continue
        group = [rule]
        while k + len(group) < len(rules) and rules[k + len(group)]["rule"] in ROW_RULES \
                and rules[k + len(group)]["section"] == rule["section"]:
            group.append(rules[k + len(group)])
        for i, row in enumerate(_rows(data, rule["section"])):
            for each in group:
                yield from ROW_RULES[each["rule"]](rule["section"], i, row, each)
        k += len(group)


def confirmed_by_rules(
    record: FormRecord | TemplateRecord, template: Template | None = None, *, any_amount: bool = False
) -> set[str]:
    """Fields the form's arithmetic vouches for: a misread digit would break the equation.

    执行率 = 全年执行数 / 全年预算数 ties three readings together; the 分值 and 得分 columns
    must add up to 总分. Where an equation holds, each of its terms is confirmed even when
    the OCR engines disagreed about it. ``any_amount``: the 执行率 equation holding over amounts
    of any size (which alone does not pin a large amount's last digits) counts too.
    """
    template = template or template_of(record)
    data = record.model_dump()
    confirmed: set[str] = set()
    for rule in template.rules:
        if rule["rule"] == "execution_rate":
            keys = (rule["budget"], rule["executed"], rule["rate"])
            for i, row in enumerate(_rows(data, rule["section"])):
                budget, executed, rate = (row.get(key) for key in keys)
                # The rate is printed to 0.01 %: past 100/tolerance (~9,000) a misread in an
                # amount's ones digit no longer moves it (922306.65 for 922366.65 holds).
                pinned = any_amount or (budget is not None and budget * rule["tolerance"] < 100)
                if budget and executed is not None and rate is not None and pinned:
                    if abs(executed / budget * 100 - rate) <= rule["tolerance"]:
                        confirmed.update(f"{rule['section']}[{i}].{key}" for key in keys)
        elif rule["rule"] in ("weights_sum", "scores_sum"):
            total = data.get(rule["total"])
            terms = _sum_terms(data, rule)
            if total is None or any(value is None for _, value in terms):
                continue
            if abs(sum(value for _, value in terms) - total) <= rule["tolerance"]:
                confirmed.add(rule["total"])
                confirmed.update(path for path, _ in terms if path is not None)
    return confirmed


def confirmed_by_vocabulary(page: AssembledPage, lexicon: Lexicon) -> set[str]:
    """Fields whose PP-OCR reading is, exactly, a word the form uses in that field."""
    confirmed = set()
    for path, evidence in page.evidence.items():
        kind = field_kind(path)
        reading = repair_text(evidence.text.readings.get("paddle", ""))
        if kind and reading and reading in lexicon.terms.get(kind, ()):
            confirmed.add(path)
    return confirmed


def evidence_classes(page: AssembledPage, lexicon: Lexicon | None = None) -> dict[str, str]:
    """Per field read from a cell, its evidence class (see ``pipeline.confidence``)."""
    template = template_of(page.record)
    by_rule = confirmed_by_rules(page.record, template)
    by_vocabulary = confirmed_by_vocabulary(page, lexicon or Lexicon.builtin(template))
    return {
        # A number that does not parse is flagged as such whatever the engines said: it is
        # kept out of the reading classes, whose confidence matters where nothing else flags.
        path: "unparseable" if path in page.unparseable
        else evidence_class(path, evidence.text, by_rule, by_vocabulary, template.number_grammar(path),
                            under_seal=path in page.under_seal)
        for path, evidence in page.evidence.items()
    }


def confidence_flags(page: AssembledPage, classes: dict[str, str]) -> Iterator[Flag]:
    """Flags for fields whose calibrated confidence is below ``REVIEW_BELOW``: fields read
    differently by the two engines and confirmed neither by the form's arithmetic or
    vocabulary nor by a PP-OCR score that has proved right often enough."""
    unmapped_reason = LAYOUT_FAILED if page.layout_failed else FlagReason.MISSING.value
    for path, why in page.unmapped.items():
        yield Flag(field=path, reason=unmapped_reason, message=why)
    for path, why in page.misaligned.items():
        yield Flag(field=path, reason=rule_reason("layout"), message=why)
    for path, raw in page.unparseable.items():
        evidence = page.evidence.get(path)
        yield Flag(
            field=path,
            reason=FlagReason.UNPARSEABLE.value,
            confidence=evidence.text.confidence if evidence else None,
            message=f"{raw!r} is not a number",
            readings=evidence.text.readings if evidence else {},
        )
    for path, evidence in page.evidence.items():
        if path in page.unparseable:
            continue
        text = evidence.text
        confidence = calibrated_confidence(classes[path])
        if confidence >= REVIEW_BELOW:
            continue
        yield Flag(
            field=path,
            reason=FlagReason.LOW_CONFIDENCE.value,
            confidence=round(confidence, 4),
            message="the two OCR engines disagree" if len(set(text.readings.values())) > 1 else "low OCR confidence",
            readings=dict(text.readings),
        )


LAYOUT_DOUBT = rule_reason("layout_doubt")
# Flags that say the table's structure was misread (a missed rule, a header not found), not
# one value: the cells around may be cut or mapped wrong too, however sure their readings are.
_LAYOUT = rule_reason("layout")
_STRUCTURE_REASONS = (_LAYOUT, rule_reason("label_in_value"))


def layout_doubt(page: AssembledPage, flags: list[Flag]) -> str | None:
    """Why the page's layout is in doubt (a column header not found, a cell reaching under two
    headers, a label read inside a value), or None. A label's value cut wrong (a rule found in
    the 项目名称 row's text) puts only its rows in doubt (``rows_in_doubt``)."""
    if page.unmapped:
        return next(iter(page.unmapped.values()))
    return next((flag.message for flag in flags if flag.reason in _STRUCTURE_REASONS and not _cut_label_value(page, flag)), None)


def rows_in_doubt(page: AssembledPage, flags: list[Flag]) -> set[int]:
    """The grid rows a label's value cut wrong lies in, and the rows next to them: a rule found
    in a row's text runs on into its neighbours at most, and may have cut their glyphs too."""
    rows: set[int] = set()
    for flag in flags:
        if _cut_label_value(page, flag):
            cell = page.evidence[flag.field].cell
            rows.update(range(cell.row - 1, cell.row + cell.row_span + 1))
    return rows


def _cut_label_value(page: AssembledPage, flag: Flag) -> bool:
    # a value printed beside its label (no "[": not a table row), read from a cell of the grid
    return flag.reason == _LAYOUT and "[" not in flag.field and flag.field in page.evidence


def validate(page: AssembledPage, lexicon: Lexicon | None = None) -> list[Flag]:
    """All flags of a page, one per (field, reason), in field order of discovery.

    On a page whose layout is in doubt (``layout_doubt``) every field read from a cell is
    flagged: on the calibration set such pages (7 of 400: missed rules merging columns, a
    misread 二级指标 header shifting the indicator columns) held wrong fields of every evidence
    class, agreed readings of merged cells (1515 for 15) among them.
    """
    flags: dict[tuple[str, str], Flag] = {}
    for flag in (*confidence_flags(page, evidence_classes(page, lexicon)), *rule_flags(page.record)):
        flags.setdefault((flag.field, flag.reason), flag)
    why = layout_doubt(page, list(flags.values()))
    rows = rows_in_doubt(page, list(flags.values())) if why is None else set()
    message = (f"the page's layout is in doubt ({why}): every field is to be checked" if why is not None
               else "a rule may have been found in the text of a row beside this one: to be checked")
    flagged = {field for field, _ in flags}
    for path, evidence in page.evidence.items():
        cell = evidence.cell
        in_doubt = why is not None or not rows.isdisjoint(range(cell.row, cell.row + cell.row_span))
        if in_doubt and path not in flagged:
            flags[(path, LAYOUT_DOUBT)] = Flag(
                field=path, reason=LAYOUT_DOUBT, readings=dict(evidence.text.readings), message=message
            )
    if why is not None:
        # rows the grid lost have no field to flag: the table itself is to be checked
        for name, value in page.record:
            if isinstance(value, list) and (name, LAYOUT_DOUBT) not in flags and name not in flagged:
                flags[(name, LAYOUT_DOUBT)] = Flag(
                    field=name, reason=LAYOUT_DOUBT,
                    message=f"the page's layout is in doubt ({why}): rows may be missing or extra",
                )
    return list(flags.values())

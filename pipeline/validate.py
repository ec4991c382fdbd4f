"""Validate a record: named domain rules plus the confidence of each field's reading.

Every rule has a name (the flag reason is ``rule:<name>``) and a message a
reviewer can act on; where the arithmetic implies a value it is proposed.
"""

from __future__ import annotations

from collections.abc import Iterator

from models import Flag, FlagReason, FormRecord, Notice
from models.result import rule_reason
from pipeline.assemble import AssembledPage
from pipeline.confidence import REVIEW_BELOW, calibrated_confidence, evidence_class
from pipeline.lexicon import Lexicon, field_kind
from pipeline.repair import repair_text

RATE_TOLERANCE = 0.011  # percent points: rates print rounded to 2 decimals
SUM_TOLERANCE = 0.005
AMOUNT_LIMIT_WAN = 100_000.0  # 10 亿元 for one project is implausible when the unit says 万元


FORM_LABELS = ("项目名称", "主管部门", "实施单位", "项目资金", "年初预算数", "全年预算数", "全年执行数",
               "预期目标", "实际完成情况", "一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值")


def _embedded_label(value: str) -> str | None:
    return next((label for label in FORM_LABELS if label in value), None)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def record_notices(record: FormRecord) -> list[Notice]:
    """What the user of this record should know about the document itself (see ``Notice``)."""
    notices = []
    if record.funds_unit == "万元":
        # The form prints 万元 over amounts that are really 元 on some pages: the heading is
        # what is wrong, as printed. An amount misread by a factor of 100 breaks 执行率 and
        # the sums instead, and is flagged there.
        largest = max(
            (v for row in record.funds for v in (row.initial_budget, row.annual_budget, row.executed) if v is not None),
            default=0.0,
        )
        if largest >= AMOUNT_LIMIT_WAN:
            notices.append(Notice(
                rule="amount_plausible",
                message=f"{_fmt(largest)} 万元 is implausible for one project: the amounts may be in 元",
            ))
    return notices


def rule_flags(record: FormRecord) -> Iterator[Flag]:
    """Flags for broken domain rules and missing required fields."""
    for path in ("project_name", "department", "implementing_unit"):
        if not getattr(record, path):
            yield Flag(field=path, reason=FlagReason.MISSING.value, message=f"{path} is empty")
    if not any(row.source == "年度资金总额" for row in record.funds):
        yield Flag(field="funds", reason=FlagReason.MISSING.value, message="no 年度资金总额 row was found")
    if not record.indicators:
        yield Flag(field="indicators", reason=FlagReason.MISSING.value, message="no indicator rows were found")
    for path in ("total_weight", "total_score"):
        if getattr(record, path) is None:
            yield Flag(field=path, reason=FlagReason.MISSING.value, message=f"{path} (总分) is empty")

    for i, row in enumerate(record.funds):
        if row.annual_budget and row.executed is not None and row.execution_rate is not None:
            expected = row.executed / row.annual_budget * 100
            if abs(expected - row.execution_rate) > RATE_TOLERANCE:
                message = (
                    f"执行率 {_fmt(row.execution_rate)}% but 全年执行数/全年预算数 = "
                    f"{_fmt(row.executed)}/{_fmt(row.annual_budget)} = {expected:.2f}%"
                )
                yield Flag(
                    field=f"funds[{i}].execution_rate",
                    reason=rule_reason("execution_rate"),
                    message=message,
                    proposal=f"{expected:.2f}",
                )
                # Any of the three may be the misread one: a reviewer sees all three.
                for key in ("annual_budget", "executed"):
                    yield Flag(field=f"funds[{i}].{key}", reason=rule_reason("execution_rate"), message=message)
        if row.source != "年度资金总额":
            # Only the 年度资金总额 row is weighted and scored; the form prints "—" below it.
            for key in ("weight", "score"):
                if getattr(row, key) is not None:
                    yield Flag(
                        field=f"funds[{i}].{key}",
                        reason=rule_reason("subrow_unscored"),
                        message=f"{row.source} has a {'分值' if key == 'weight' else '得分'}; the form prints — there",
                    )
        if row.score is not None and row.weight is not None and row.score > row.weight + SUM_TOLERANCE:
            yield Flag(
                field=f"funds[{i}].score",
                reason=rule_reason("score_le_weight"),
                message=f"得分 {_fmt(row.score)} exceeds 分值 {_fmt(row.weight)}",
            )

    for path in ("project_name", "department", "implementing_unit"):
        label = _embedded_label(getattr(record, path))
        if label:
            yield Flag(
                field=path,
                reason=rule_reason("label_in_value"),
                message=f"the value contains the label {label}: two cells may have been read as one",
            )

    for i, ind in enumerate(record.indicators):
        if ind.score is not None and ind.weight is not None and ind.score > ind.weight + SUM_TOLERANCE:
            yield Flag(
                field=f"indicators[{i}].score",
                reason=rule_reason("score_le_weight"),
                message=f"得分 {_fmt(ind.score)} exceeds 分值 {_fmt(ind.weight)}",
            )

    weights = [r.weight for r in record.funds[:1]] + [i.weight for i in record.indicators]
    scores = [r.score for r in record.funds[:1]] + [i.score for i in record.indicators]
    for path, parts, total, name in (
        ("total_weight", weights, record.total_weight, "weights_sum"),
        ("total_score", scores, record.total_score, "scores_sum"),
    ):
        if total is None:
            continue
        summed = sum(p for p in parts if p is not None)
        if abs(summed - total) > SUM_TOLERANCE:
            message = f"总分 {_fmt(total)} but the rows add up to {_fmt(summed)}"
            yield Flag(field=path, reason=rule_reason(name), message=message, proposal=_fmt(summed))
            # The misread term may be any of them: a reviewer sees every term of the sum.
            key = "weight" if name == "weights_sum" else "score"
            terms = ([f"funds[0].{key}"] if record.funds else []) + [
                f"indicators[{i}].{key}" for i in range(len(record.indicators))
            ]
            for term in terms:
                yield Flag(field=term, reason=rule_reason(name), message=message)


def confirmed_by_rules(record: FormRecord) -> set[str]:
    """Fields the form's arithmetic vouches for: a misread digit would break the equation.

    执行率 = 全年执行数 / 全年预算数 ties three readings together; the 分值 and 得分 columns
    must add up to 总分. Where an equation holds, each of its terms is confirmed even when
    the OCR engines disagreed about it.
    """
    confirmed: set[str] = set()
    for i, row in enumerate(record.funds):
        if row.annual_budget and row.executed is not None and row.execution_rate is not None:
            if abs(row.executed / row.annual_budget * 100 - row.execution_rate) <= RATE_TOLERANCE:
                confirmed.update(f"funds[{i}].{key}" for key in ("annual_budget", "executed", "execution_rate"))
    for key, total_path in (("weight", "total_weight"), ("score", "total_score")):
        total = getattr(record, total_path)
        head = getattr(record.funds[0], key) if record.funds else None
        parts = [head] + [getattr(ind, key) for ind in record.indicators]
        if total is None or any(p is None for p in parts):
            continue
        if abs(sum(parts) - total) <= SUM_TOLERANCE:
            confirmed.add(total_path)
            if record.funds:
                confirmed.add(f"funds[0].{key}")
            confirmed.update(f"indicators[{i}].{key}" for i in range(len(record.indicators)))
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
    by_rule = confirmed_by_rules(page.record)
    by_vocabulary = confirmed_by_vocabulary(page, lexicon or Lexicon.builtin())
    return {
        # A number that does not parse is flagged as such whatever the engines said: it is
        # kept out of the reading classes, whose confidence matters where nothing else flags.
        path: "unparseable" if path in page.unparseable else evidence_class(path, evidence.text, by_rule, by_vocabulary)
        for path, evidence in page.evidence.items()
    }


def confidence_flags(page: AssembledPage, classes: dict[str, str]) -> Iterator[Flag]:
    """Flags for fields whose calibrated confidence is below ``REVIEW_BELOW``: fields read
    differently by the two engines and confirmed neither by the form's arithmetic or
    vocabulary nor by a PP-OCR score that has proved right often enough."""
    for path, why in page.unmapped.items():
        yield Flag(field=path, reason=FlagReason.MISSING.value, message=why)
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


def validate(page: AssembledPage, lexicon: Lexicon | None = None) -> list[Flag]:
    """All flags of a page, one per (field, reason), in field order of discovery."""
    flags: dict[tuple[str, str], Flag] = {}
    for flag in (*confidence_flags(page, evidence_classes(page, lexicon)), *rule_flags(page.record)):
        flags.setdefault((flag.field, flag.reason), flag)
    return list(flags.values())

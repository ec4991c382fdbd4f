"""Field paths such as ``indicators[2].target``: read a record's value as text, set it from text.

A reviewer types text; numbers go through the pipeline's own number grammar, so
"99.55%", "223.86" and "—" mean what they mean on the form. Paths work on both record
kinds: the project form's ``FormRecord`` and a template's ``TemplateRecord``, whose
fields, sections and number grammars its template names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from models import FormRecord, TemplateRecord, parse_record
from pipeline.errors import FormscanError
from pipeline.numbers import NumberFormatError, parse_number
from pipeline.validate import template_of

Record = FormRecord | TemplateRecord

_PATH = re.compile(r"^(?P<list>funds|indicators)\[(?P<index>\d+)\]\.(?P<key>\w+)$|^(?P<top>\w+)$")
_TEMPLATE_PATH = re.compile(r"^(?P<list>\w+)\[(?P<index>\d+)\]\.(?P<key>\w+)$|^(?P<top>\w+)$")
_NUMBER_KEYS = {"initial_budget", "annual_budget", "executed", "weight", "execution_rate", "score",
                "total_weight", "total_score"}
_FIXED = {"form_type", "funds", "indicators", "source"}  # structure, not a value a reviewer types


class FieldValueError(FormscanError):
    """A correction names no field of the record, or its value does not fit the field."""

    kind = "bad_field"


class _ValueKind(StrEnum):
    """How typed text becomes a field's value."""

    TEXT = "text"
    YEAR = "year"
    NUMBER = "number"
    RATE = "rate"  # a number in percent points


@dataclass(frozen=True)
class _Slot:
    """Where a field's value is: the model or row dict holding it, under ``key``."""

    holder: Any
    key: str
    kind: _ValueKind

    def get(self) -> Any:
        return self.holder[self.key] if isinstance(self.holder, dict) else getattr(self.holder, self.key)

    def put(self, value: Any) -> None:
        if isinstance(self.holder, dict):
            self.holder[self.key] = value
        else:
            setattr(self.holder, self.key, value)


def _project_kind(key: str) -> _ValueKind:
    if key == "year":
        return _ValueKind.YEAR
    if key in _NUMBER_KEYS:
        return _ValueKind.RATE if key == "execution_rate" else _ValueKind.NUMBER
    return _ValueKind.TEXT


def _project_slot(record: FormRecord, path: str) -> _Slot:
    match = _PATH.match(path)
    if not match:
        raise FieldValueError(f"{path!r} is not a field path")
    if match["top"]:
        key = match["top"]
        if key in _FIXED or key not in FormRecord.model_fields:
            raise FieldValueError(f"{path!r} is not an editable field")
        return _Slot(record, key, _project_kind(key))
    rows = getattr(record, match["list"])
    index = int(match["index"])
    if index >= len(rows):
        raise FieldValueError(f"{path!r}: the record has {len(rows)} {match['list']} rows")
    row = rows[index]
    if match["key"] not in type(row).model_fields or match["key"] == "source":
        raise FieldValueError(f"{path!r} is not an editable field")
    return _Slot(row, match["key"], _project_kind(match["key"]))


def _is_section(value: Any) -> bool:
    """A template record's section: a list of row dicts (empty when the form printed no row)."""
    return isinstance(value, list) and all(isinstance(row, dict) for row in value)


def _template_kind(grammar: str | None) -> _ValueKind:
    if grammar is None:
        return _ValueKind.TEXT
    return _ValueKind.RATE if grammar == "rate" else _ValueKind.NUMBER


def _template_slot(record: TemplateRecord, path: str) -> _Slot:
    match = _TEMPLATE_PATH.match(path)
    if not match:
        raise FieldValueError(f"{path!r} is not a field path")
    values = dict(record)  # the record's own objects: a row found here is the record's row
    template = template_of(record)
    if match["top"]:
        key = match["top"]
        if key == "form_type" or key not in values or isinstance(values[key], (list, dict)):
            raise FieldValueError(f"{path!r} is not an editable field")
        kind = _ValueKind.YEAR if key == "year" else _template_kind(template.number_grammar(key))
        return _Slot(record, key, kind)
    name, key = match["list"], match["key"]
    if not _is_section(values.get(name)):
        raise FieldValueError(f"{path!r} is not a field path: the record has no {name} rows")
    rows = values[name]
    index = int(match["index"])
    if index >= len(rows):
        raise FieldValueError(f"{path!r}: the record has {len(rows)} {name} rows")
    section = template.sections.get(name)
    # A labelled section's row label (funds' source) is the row's place on the form, not a value.
    if key not in rows[index] or (section is not None and key == section.row_label):
        raise FieldValueError(f"{path!r} is not an editable field")
    return _Slot(rows[index], key, _template_kind(template.number_grammar(path)))


def _locate(record: Record, path: str) -> _Slot:
    return _project_slot(record, path) if isinstance(record, FormRecord) else _template_slot(record, path)


def is_editable(record: Record, path: str) -> bool:
    try:
        _locate(record, path)
    except FieldValueError:
        return False
    return True


def format_value(value: Any) -> str:
    """How a value shows in the input: numbers without a needless ".0", None as ""."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def get_text(record: Record, path: str) -> str:
    """The field's value as text; structural paths (``funds``, ``indicators``) give ""."""
    try:
        slot = _locate(record, path)
    except FieldValueError:
        return ""
    return format_value(slot.get())


def _typed(kind: _ValueKind, text: str, path: str) -> Any:
    """The value ``text`` stands for in a field of ``kind``; raises FieldValueError when it doesn't fit."""
    if kind in (_ValueKind.NUMBER, _ValueKind.RATE):
        try:
            return parse_number(text, percent=kind is _ValueKind.RATE)
        except NumberFormatError as exc:
            raise FieldValueError(f"{text!r} is not a number ({path})") from exc
    if kind is _ValueKind.YEAR:
        if not text:
            return None
        if re.fullmatch(r"(19|20)\d{2}", text):
            return int(text)
        raise FieldValueError(f"{text!r} is not a year")
    return text


def with_value(record: Record, path: str, text: str) -> Record:
    """A copy of ``record`` with ``path`` set from ``text``; raises FieldValueError when it doesn't fit."""
    updated = record.model_copy(deep=True)
    slot = _locate(updated, path)
    slot.put(_typed(slot.kind, text.strip(), path))
    # Validate the whole record again: the model is the contract, a typed value must fit it.
    return parse_record(updated.model_dump())

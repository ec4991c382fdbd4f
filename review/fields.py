"""Field paths such as ``indicators[2].target``: read a record's value as text, set it from text.

A reviewer types text; numbers go through the pipeline's own number grammar, so
"99.55%", "223.86" and "—" mean what they mean on the form.
"""

from __future__ import annotations

import re
from typing import Any

from models import FormRecord
from pipeline.errors import FormscanError
from pipeline.numbers import NumberFormatError, parse_number

_PATH = re.compile(r"^(?P<list>funds|indicators)\[(?P<index>\d+)\]\.(?P<key>\w+)$|^(?P<top>\w+)$")
_NUMBER_KEYS = {"initial_budget", "annual_budget", "executed", "weight", "execution_rate", "score",
                "total_weight", "total_score"}
_FIXED = {"form_type", "funds", "indicators", "source"}  # structure, not a value a reviewer types


class FieldValueError(FormscanError):
    """A correction names no field of the record, or its value does not fit the field."""

    kind = "bad_field"


def _locate(record: FormRecord, path: str) -> tuple[Any, str]:
    match = _PATH.match(path)
    if not match:
        raise FieldValueError(f"{path!r} is not a field path")
    if match["top"]:
        key = match["top"]
        if key in _FIXED or key not in FormRecord.model_fields:
            raise FieldValueError(f"{path!r} is not an editable field")
        return record, key
    rows = getattr(record, match["list"])
    index = int(match["index"])
    if index >= len(rows):
        raise FieldValueError(f"{path!r}: the record has {len(rows)} {match['list']} rows")
    row = rows[index]
    if match["key"] not in type(row).model_fields or match["key"] == "source":
        raise FieldValueError(f"{path!r} is not an editable field")
    return row, match["key"]


def is_editable(record: FormRecord, path: str) -> bool:
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


def get_text(record: FormRecord, path: str) -> str:
    """The field's value as text; structural paths (``funds``, ``indicators``) give ""."""
    try:
        owner, key = _locate(record, path)
    except FieldValueError:
        return ""
    return format_value(getattr(owner, key))


def with_value(record: FormRecord, path: str, text: str) -> FormRecord:
    """A copy of ``record`` with ``path`` set from ``text``; raises FieldValueError when it doesn't fit."""
    updated = record.model_copy(deep=True)
    owner, key = _locate(updated, path)
    text = text.strip()
    value: Any
    if key in _NUMBER_KEYS:
        try:
            value = parse_number(text, percent=key == "execution_rate")
        except NumberFormatError as exc:
            raise FieldValueError(f"{text!r} is not a number ({path})") from exc
    elif key == "year":
        if not text:
            value = None
        elif re.fullmatch(r"(19|20)\d{2}", text):
            value = int(text)
        else:
            raise FieldValueError(f"{text!r} is not a year")
    else:
        value = text
    setattr(owner, key, value)
    # Validate the whole record again: the model is the contract, a typed value must fit it.
    return FormRecord.model_validate(updated.model_dump())

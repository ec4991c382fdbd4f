"""Number grammars of the form's columns: amounts, percentages, scores."""

from __future__ import annotations

import re
import unicodedata

DASHES = {"—", "–", "-", "－", "一", "——", "/", "无"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d+)?|\.\d+)$")


class NumberFormatError(ValueError):
    pass


def parse_number(text: str, *, percent: bool = False) -> float | None:
    """"223.86" -> 223.86; "99.55%" -> 99.55 (percent points); blank or "—" -> None.

    Raises NumberFormatError for text that is neither a number nor a dash.
    """
    cleaned = "".join(unicodedata.normalize("NFKC", text).split()).replace(",", "")
    if not cleaned or cleaned in DASHES or set(cleaned) <= {"—", "-", "–"}:
        return None
    if percent or cleaned.endswith("%"):
        cleaned = cleaned.rstrip("%")
    if not _NUMBER.match(cleaned):
        raise NumberFormatError(f"{text!r} is not a number")
    return float(cleaned)

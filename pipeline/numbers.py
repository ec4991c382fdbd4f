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


# How each kind of number is printed on the form; a reading outside its grammar (88.429 for
# 88.42%: the % read as a digit) is not trusted on one engine's word. Amounts are whole or
# carry both decimals (343.10, never 343.1): a lone decimal is a last digit lost (398.0 for
# 398.05 under a seal), which the 执行率 equation is too coarse to notice.
PRINTED = {
    "amount": re.compile(r"^\d{1,3}(,\d{3})*(\.\d{2})?$|^\d+(\.\d{2})?$"),
    "rate": re.compile(r"^\d{1,3}(\.\d{1,2})?%$"),
    "score": re.compile(r"^\d{1,3}(\.\d{1,2})?$"),
}


def printed_as(kind: str, text: str) -> bool:
    """Is ``text`` exactly how the form prints a number of ``kind`` (amount, rate, score)?"""
    return bool(PRINTED[kind].match("".join(unicodedata.normalize("NFKC", text).split())))

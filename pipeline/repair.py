"""Repair the text of a cell: undo line wrapping and OCR's ASCII look-alikes.

Narrow columns wrap "执行率" into "执行/率" and "78.12%" into "78.12%/%"; vertical
labels print one character a line. Chinese is written without spaces, so a cell's
lines join with no separator, and punctuation in Chinese text is full width.
"""

from __future__ import annotations

import re

_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_HAS_CJK = re.compile(f"[{_CJK}]")
_SPACE_NOT_BETWEEN_LATIN = re.compile(r"(?<![A-Za-z])\s+|\s+(?![A-Za-z])")
_DEGREE_AFTER_DIGIT = re.compile(r"(\d)[°º˚]")
_QUOTES = re.compile(r"[\"“”〝〞]")
_FULL_WIDTH = {",": "，", ":": "：", ";": "；", "(": "（", ")": "）", "!": "！", "?": "？", "[": "【", "]": "】"}
# Brackets first: a full-width bracket is itself Chinese text for the punctuation next to it.
# Whole runs (",," or "!?") convert together, so a second repair finds nothing left to change.
_ASCII_BRACKET = re.compile(r"[()\[\]]")
_ASCII_PUNCT_NEAR_CJK = re.compile(f"(?<=[{_CJK}])[,:;!?]+|[,:;!?]+(?=[{_CJK}])")


def join_lines(text: str) -> str:
    """Join a cell's printed lines; a line that only repeats the previous line's "%" is a wrap artifact."""
    out = ""
    for line in (part.strip() for part in text.splitlines()):
        if not line:
            continue
        if line == "%" and out.endswith("%"):
            continue
        out += line
    return out


def _pair_quotes(text: str) -> str:
    count = 0

    def swap(_: re.Match) -> str:
        nonlocal count
        count += 1
        return "“" if count % 2 else "”"

    return _QUOTES.sub(swap, text)


def repair_text(text: str) -> str:
    """Wrap-free, space-free text with Chinese punctuation where the text is Chinese."""
    text = join_lines(text)
    text = _SPACE_NOT_BETWEEN_LATIN.sub("", text)
    text = text.replace(">=", "≥").replace("<=", "≤")
    # A small "%" after digits is read as a degree sign; this form has no angles or temperatures.
    text = _DEGREE_AFTER_DIGIT.sub(r"\1%", text)
    if _HAS_CJK.search(text):
        text = _pair_quotes(text)
        text = _ASCII_BRACKET.sub(lambda m: _FULL_WIDTH[m.group(0)], text)
        text = _ASCII_PUNCT_NEAR_CJK.sub(lambda m: "".join(_FULL_WIDTH[c] for c in m.group(0)), text)
    return text

"""What a field's evidence says about its chance of being right, calibrated on data.

Each field's evidence falls in one class (both engines agreed; the form's arithmetic
or vocabulary confirms it; PP-OCR alone at some score; ...). ``bench/calibrate.py``
measures on a calibration set, generated apart from the evaluation set, how often
fields of each class were right, and writes ``calibration.json`` beside this module;
a field's confidence is that rate, so a field given confidence c is wrong about
(1 - c) of the time. Fields below ``REVIEW_BELOW`` go to a human.
"""

from __future__ import annotations

import json
import re
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

from pipeline.numbers import printed_as
from pipeline.ocr import CellText, comparable

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
REVIEW_BELOW = 0.98

# Before calibration: conservative guesses, so an uncalibrated install flags more, not less.
PRIOR = {
    "agreed": 0.999,
    "agreed_but_trap": 0.995,
    "agreed_on_retry": 0.98,
    "vocabulary": 0.995,
    "agreed_lowres_cmp": 0.9,
    "comparator_glyph": 0.9,
    "confirmed_by_rule": 0.999,
    "confirmed_by_vocabulary": 0.999,
    "blank": 0.999,
    "dash": 0.999,
    "paddle_near_tesseract": 0.98,
    "paddle_lacks_tesseract": 0.5,
    "paddle>=0.999": 0.995,
    "paddle>=0.99": 0.98,
    "paddle>=0.95": 0.9,
    "paddle<0.95": 0.7,
    "tesseract_only": 0.3,
    "tesseract_views": 0.9,
    "paddle_malformed": 0.3,
    "paddle_under_seal": 0.9,
    "unparseable": 0.0,
}


def evidence_class(
    path: str, text: CellText, confirmed_by_rule: set[str], confirmed_by_vocabulary: set[str],
    number_grammar: str | None = None, under_seal: bool = False,
) -> str:
    """``number_grammar``: how the form prints the field's number (amount, rate, score), if it is one;
    ``under_seal``: a grey seal's erasure changed the field's cell."""
    if text.source in (
        "agreed", "agreed_but_trap", "agreed_on_retry", "agreed_lowres_cmp", "comparator_glyph", "vocabulary", "blank", "dash",
        "tesseract_views",
    ):
        return text.source
    if path in confirmed_by_rule:
        return "confirmed_by_rule"
    if path in confirmed_by_vocabulary:
        return "confirmed_by_vocabulary"
    if text.source == "tesseract":
        return "tesseract_only"
    if number_grammar and not printed_as(number_grammar, text.text):
        return "paddle_malformed"  # PP-OCR alone, and not how the form prints such a number (a speck's "1" as 执行率)
    if _MALFORMED_VALUE.search(comparable(text.text)) and path.rsplit(".", 1)[-1] in ("target", "actual"):
        return "paddle_malformed"
    nearness = near_tesseract(text, number=bool(number_grammar))
    if nearness == "conflict":
        return "paddle_lacks_tesseract"
    if text.confidence >= 0.95 and nearness == "near":
        return "paddle_near_tesseract"  # Tesseract saw the same glyphs, but for a few it garbled
    if under_seal:
        # PP-OCR alone, sure of a cell a grey seal's erasure cut into, and Tesseract no help: the
        # erasure takes the thin strokes of faint print with the seal (430000 read, at 0.999, as 130000).
        return "paddle_under_seal"
    for floor in (0.999, 0.99, 0.95):
        if text.confidence >= floor:
            return f"paddle>={floor}"
    return "paddle<0.95"


NEAR_SIMILARITY = 0.75
_PUNCTUATION = re.compile(r"[，。、；：,;:]")  # after NFKC ，；： are ,;:
_SPECKS = "|丨!lI'\"`-_~[]"  # what rule remnants and specks read as; [ ] beside 【 】 is its edge read twice
# An indicator value is a word, or a number with its unit: anything after a "%" is debris
# (a seal's fragment read as 城) or a misread.
_MALFORMED_VALUE = re.compile(r"%.")


def near_tesseract(text: CellText, number: bool = False) -> str | None:
    """How PP-OCR's reading stands against a Tesseract reading close enough to align with it.

    "near": the two differ by a few characters (Tesseract alone is wrong where they differ
    almost every time), so the cell was cut and seen whole. "conflict": close, but Tesseract
    shows characters PP-OCR has not (PP-OCR drops a phrase or a full stop now and then, at a
    high score), they differ in punctuation (PP-OCR's · for ，), or PP-OCR's reading starts
    with >/< (the bar of ≥/≤ it may have lost, or ≥ itself). None: too far apart to tell.
    ``number``: the field is a number PP-OCR read as the form prints it, where a mark
    Tesseract has in PP-OCR's decimal point's place (95;35) is that point misread.
    """
    paddle, tesseract = comparable(text.readings.get("paddle", "")), comparable(text.readings.get("tesseract", ""))
    if not paddle or not tesseract:
        return None
    matcher = SequenceMatcher(None, paddle, tesseract)
    if matcher.ratio() < NEAR_SIMILARITY:
        return None
    if text.text[:1] in "<>":
        return "conflict"
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        theirs = tesseract[j1:j2]
        if op == "insert" and theirs.strip(_SPECKS):
            return "conflict"  # Tesseract saw something where PP-OCR saw nothing (specks aside)
        if op == "replace" and i2 - i1 < j2 - j1:
            return "conflict"
        if number and op == "replace" and paddle[i1:i2] == ".":
            continue
        if op != "equal" and set(_PUNCTUATION.findall(theirs)) - set(_PUNCTUATION.findall(paddle[i1:i2])):
            return "conflict"  # a mark Tesseract read that PP-OCR has not (。 dropped, · for ，)
    return "near"


@lru_cache(maxsize=1)
def calibration() -> dict[str, float]:
    table = dict(PRIOR)
    if CALIBRATION_FILE.is_file():
        fitted = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
        table.update({cls: entry["confidence"] for cls, entry in fitted["classes"].items()})
    return table


def calibrated_confidence(evidence_cls: str) -> float:
    return calibration().get(evidence_cls, 0.5)

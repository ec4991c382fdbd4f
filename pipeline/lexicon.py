"""The form's vocabulary, to snap near-miss readings onto words the form really uses.

A lexicon holds terms per field kind: the usual 一级/二级指标 names and target
words of the form (its template's vocabulary), and whatever reviewers have corrected
(the review queue keeps those and hands them to the pipeline for later pages).
A reading is snapped only when exactly one term is close and no other is nearly
as close, so a snap never guesses between two candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from pipeline.ocr import CellText, comparable, left_out
from pipeline.templates import Template, get_template

# The 指标 levels are a short, fixed list: a four-character level with one character misread
# (质北指标) is that level, unless both engines agreed on the reading as it is.
LEVEL_KINDS = ("level1", "level2")
LEVEL_SIMILARITY = 0.75

# Field kinds: which record fields draw on which list of terms.
FIELD_KINDS = {
    "level1": "level1",
    "level2": "level2",
    "name": "indicator_name",
    "target": "target",
    "actual": "target",
    "department": "unit",
    "implementing_unit": "unit",
}


def field_kind(path: str) -> str | None:
    """``indicators[2].level2`` -> ``level2``; fields with no vocabulary -> None."""
    return FIELD_KINDS.get(path.rsplit(".", 1)[-1])


@dataclass(frozen=True)
class Snap:
    text: str
    changed: bool
    similarity: float  # 1.0 for an exact term


@dataclass
class Lexicon:
    terms: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def builtin(cls, template: Template | None = None) -> Lexicon:
        """The template's fixed vocabulary (the project form's by default)."""
        return cls({kind: set(terms) for kind, terms in (template or get_template()).vocabulary.items()})

    def add(self, kind: str, terms: Iterable[str]) -> None:
        self.terms.setdefault(kind, set()).update(t for t in terms if t)

    def snap_reading(self, kind: str | None, reading: CellText) -> Snap:
        """``snap`` for a cell's reading: looser for the 指标 levels when the engines did not agree."""
        loose = kind in LEVEL_KINDS and not reading.source.startswith("agreed")
        if not loose:
            return self.snap(kind, reading.text)
        snap = self.snap(kind, reading.text, min_similarity=LEVEL_SIMILARITY)
        return snap if snap.changed else self._left_of_one_term(kind, reading.text) or snap

    def _left_of_one_term(self, kind: str | None, text: str) -> Snap | None:
        """The one term ``text`` is what is left of, characters dropped (质标 of 质量指标; 指标 is
        left of every term, so nothing), its first character kept; None if none or several."""
        key = comparable(text)
        if len(key) < 2:
            return None
        holding = [term for term in self.terms.get(kind or "", ()) if term[0] == key[0] and left_out(key, term) is not None]
        return Snap(holding[0], True, len(key) / len(holding[0])) if len(holding) == 1 else None

    def snap(self, kind: str | None, text: str, *, min_similarity: float = 0.8, margin: float = 0.1) -> Snap:
        """The one term within reach of ``text``, or ``text`` unchanged."""
        candidates = self.terms.get(kind or "", ())
        key = comparable(text)
        if not key or not candidates:
            return Snap(text, False, 0.0)
        scored = sorted(
            ((SequenceMatcher(None, key, comparable(term)).ratio(), term) for term in candidates), reverse=True
        )
        best_score, best = scored[0]
        if best_score == 1.0:
            return Snap(best, best != text, 1.0)
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        if best_score >= min_similarity and best_score - runner_up >= margin:
            return Snap(best, True, best_score)
        return Snap(text, False, best_score)

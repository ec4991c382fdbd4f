"""Which form a page shows, judged from its printed words rather than from its layout.

A page is a template's form when its title is printed above the table or most of the
form's printed words are found among its cells, each fuzzily and anywhere in a cell: a
table whose rules were missed holds several labels in one cell, and a form whose
layout could not be mapped must still become a record for review, not be lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from pipeline.assemble import label_key
from pipeline.templates import Template

TITLE_SIMILARITY = 0.85  # one misread character in the nine of 项目支出绩效自评表 still counts
WORD_SIMILARITY = 0.75  # a printed word counts as found at this similarity to a stretch of a cell
WORD_SHARE = 0.5  # "most of its labels": more than this share of the form's printed words
TITLE_LINE_EXTRA = 8  # a title line may add this many characters (财政, 2020年度) to the title itself


def _best_window(needle: str, haystack: str) -> float:
    """The best similarity of ``needle`` to a stretch of ``haystack`` of about its length."""
    if not needle or not haystack:
        return 0.0
    if needle in haystack:
        return 1.0
    n = len(needle)
    if len(haystack) <= n + 1:
        return SequenceMatcher(None, needle, haystack).ratio()
    wanted = set(needle)
    best = 0.0
    for width in (n - 1, n, n + 1):
        for start in range(len(haystack) - width + 1):
            window = haystack[start : start + width]
            if sum(ch in wanted for ch in window) < WORD_SIMILARITY * n - 1:
                continue  # too few shared characters to reach the threshold: skip the matcher
            best = max(best, SequenceMatcher(None, needle, window).ratio())
    return best


@dataclass(frozen=True)
class FormEvidence:
    """How much of ``template``'s form a page shows."""

    template: str
    title: float  # best similarity of the title to a stretch of the text above the table
    word_share: float  # share of the form's printed words found among the cells

    @property
    def shown(self) -> bool:
        return self.title >= TITLE_SIMILARITY or self.word_share > WORD_SHARE

    @property
    def strength(self) -> float:
        return max(self.title if self.title >= TITLE_SIMILARITY else 0.0, self.word_share)


def title_similarity(title: str, header: str) -> float:
    """The best similarity of ``title`` to a stretch of one line of ``header`` that is not much
    longer than the title: a letter's sentence naming the form (关于报送……绩效自评材料的函) is no title."""
    needle = label_key(title)
    lines = [label_key(line) for line in header.splitlines()]
    return max((_best_window(needle, line) for line in lines if len(line) <= len(needle) + TITLE_LINE_EXTRA),
               default=0.0)


def form_evidence(template: Template, header: str, cell_texts: Iterable[str]) -> FormEvidence:
    """What the page's header and cells show of ``template``'s form."""
    keys = [k for k in (label_key(text) for text in cell_texts) if k]
    words = {label_key(word) for word in template.printed_words()} - {""}
    found = sum(any(_best_window(word, k) >= WORD_SIMILARITY for k in keys) for word in words)
    return FormEvidence(
        template=template.name,
        title=title_similarity(template.title, header),
        word_share=found / len(words) if words else 0.0,
    )


def shown_form(templates: Sequence[Template], header: str, cell_texts: Sequence[str]) -> FormEvidence | None:
    """The form among ``templates`` the page shows best, or None when it shows none of them."""
    shown = [e for e in (form_evidence(t, header, cell_texts) for t in templates) if e.shown]
    return max(shown, key=lambda e: e.strength, default=None)

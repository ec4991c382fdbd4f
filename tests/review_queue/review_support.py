"""Constants and helpers the review-queue tests share (conftest.py holds the fixtures)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.cell_image import CellImage
from pipeline.ocr import CellReader, CellText, Reading
from review.store import ReviewStore

ROOT = Path(__file__).resolve().parents[2]
SCANS = ROOT / "fixtures" / "scans"
FLAGGED_PDF = SCANS / "seed-1.pdf"  # stored with two misreadings, see conftest.flagged_extraction
CLEAN_PDF = SCANS / "seed-2.pdf"  # auto_accepted; same 主管部门 as seed-1 (the same archive)
MISREAD_RATE, MISREAD_TOTAL = 95.5, 90.0  # what the flagged page's 执行率 and 总分 得分 are "read" as
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-2"}


def _cell_key(cell: CellImage) -> str:
    digest = hashlib.sha256(cell.kind.encode())
    digest.update(repr((cell.image.shape, cell.line_spans)).encode())
    digest.update(cell.image.tobytes())
    return digest.hexdigest()


class _CachingEngine:
    def __init__(self, engine) -> None:
        self.engine, self.memo, self.name = engine, {}, engine.name

    def read(self, cell: CellImage, *view) -> Reading:
        """``view``: the engine's own reading options (Tesseract's line height, binarising)."""
        key = (_cell_key(cell), *view) if view else _cell_key(cell)
        if key not in self.memo:
            self.memo[key] = self.engine.read(cell, *view)
        return self.memo[key]

    def read_many(self, cells: list[CellImage]) -> list[Reading]:
        keys = [_cell_key(cell) for cell in cells]
        new = {key: cell for key, cell in zip(keys, cells) if key not in self.memo}
        if new and hasattr(self.engine, "read_many"):
            self.memo.update(zip(new, self.engine.read_many(list(new.values()))))
        return [self.memo[key] if key in self.memo else self.read(cell) for key, cell in zip(keys, cells)]


class CachingReader(CellReader):
    """The real ``CellReader``'s logic over its engines, each distinct cell image read only once."""

    def __init__(self, reader: CellReader) -> None:  # noqa: D107 - the engines are shared, not loaded again
        self.tesseract = _CachingEngine(reader.tesseract)
        self.paddle = _CachingEngine(reader.paddle)

    def close(self) -> None:
        pass


@dataclass
class Queue:
    """A queue with the two fixture pages, reviewers alice and bob, and an API token for alice."""

    store: ReviewStore
    flagged_id: int
    clean_id: int  # in the audit sample (audit rate 1)
    token: str

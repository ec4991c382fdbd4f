"""What page tasks share within one process: OCR engines per thread, the queue per database.

Loading both OCR engines takes seconds, so each worker thread keeps its own reader
for every page it runs (tesserocr and onnxruntime release the GIL: threads give real
parallelism). A queue store (SQLAlchemy engine, thread-safe) is opened once per
database and store folder, and its migrations run once.
"""

from __future__ import annotations

import os
import threading

from pipeline.ocr import CellReader
from review.store import ReviewStore, database_url, open_store

_engines = threading.local()
_stores: dict[tuple[str, str | None], ReviewStore] = {}
_stores_lock = threading.Lock()


def thread_reader() -> CellReader:
    """This thread's OCR engines, loaded on first use."""
    if getattr(_engines, "reader", None) is None:
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract's own threads only compete with ours
        _engines.reader = CellReader()
    return _engines.reader


def queue_store(db: str | None, store_dir: str | None) -> ReviewStore:
    """The open queue for this database URL (None: $FORMSCAN_DATABASE_URL or the SQLite default)."""
    key = (database_url(db), store_dir)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = open_store(*key)
        return _stores[key]

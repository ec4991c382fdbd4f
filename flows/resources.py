"""What a flow's tasks share within one process: the queue, opened once per database.

A queue store (SQLAlchemy engine, thread-safe) is opened once per database and store
folder, and its migrations run once.
"""

from __future__ import annotations

import threading

from review.store import ReviewStore, database_url, open_store

_stores: dict[tuple[str, str | None], ReviewStore] = {}
_stores_lock = threading.Lock()


def queue_store(db: str | None, store_dir: str | None) -> ReviewStore:
    """The open queue for this database URL (None: $FORMSCAN_DATABASE_URL or the SQLite default)."""
    key = (database_url(db), store_dir)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = open_store(*key)
        return _stores[key]

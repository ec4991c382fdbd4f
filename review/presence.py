"""Who else has a page open: the reviewers' heartbeats, kept in this review server's memory.

Per process: each ``formscan review`` process (each worker, if a server runs several) keeps
its own registry, so reviewers served by different processes do not see each other, and a
restart forgets everyone. Nothing is stored in the database: being there is not a record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

PRESENCE_WINDOW_SECONDS = 60.0  # a reviewer counts as there this long after their last heartbeat


class PresenceRegistry:
    """page id -> reviewer name -> when their last heartbeat came (``clock`` seconds)."""

    def __init__(self, window_seconds: float = PRESENCE_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_seconds = window_seconds
        self.clock = clock
        self._last_seen: dict[int, dict[str, float]] = {}
        self._lock = threading.Lock()  # the API's sync routes run in a thread pool

    def seen(self, page_id: int, reviewer: str) -> None:
        """Record a heartbeat of ``reviewer`` on ``page_id``."""
        with self._lock:
            now = self.clock()
            self._forget_older_than(now - self.window_seconds)
            self._last_seen.setdefault(page_id, {})[reviewer] = now

    def others(self, page_id: int, reviewer: str) -> list[str]:
        """The other reviewers seen on ``page_id`` within the window, by name."""
        with self._lock:
            since = self.clock() - self.window_seconds
            seen = self._last_seen.get(page_id, {})
            return sorted(name for name, at in seen.items() if name != reviewer and at >= since)

    def _forget_older_than(self, since: float) -> None:
        # pruned on every heartbeat, so the registry holds only the pages open in the last minute
        for page_id in list(self._last_seen):
            still = {name: at for name, at in self._last_seen[page_id].items() if at >= since}
            if still:
                self._last_seen[page_id] = still
            else:
                del self._last_seen[page_id]

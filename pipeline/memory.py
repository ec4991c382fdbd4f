"""Hand the heap's freed memory back to the system between pages.

A 300-dpi page passes through ~100 MB of short-lived arrays (rule masks, label images,
crops, the engines' buffers). glibc keeps what is freed in its arenas for reuse, and a
worker's resident size after a page crept from 455 to 590 MB over 25 such pages, so that
its peak went to ~650 MB (detection of the grid alone takes ~110 MB more for a moment).
Trimmed before the grid, before reading and after the page, a worker peaked at 600 MB on those pages
(with the grid's masks let go as soon as they are used: 575 MB in one process). A trim takes
well under a millisecond. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: no malloc_trim
        return None


def release_freed_memory() -> None:
    """Return the freed parts of the heap to the system (glibc's ``malloc_trim``; a few ms)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

"""Is a page blank? Separator sheets between forms are, give or take scanner dust.

Only the page's inner area counts: scanners leave dark borders, shadows and punch
holes along the edges of an empty sheet. Isolated dark pixels (noise, dust) are
removed before ink is counted.
"""

from __future__ import annotations

import cv2
import numpy as np

MARGIN_FRACTION = 0.06  # of the width/height, on each side, ignored
MAX_INK_FRACTION = 0.0005  # of the inner area; a short printed page number stays below, a line of text does not
WORK_LONG_SIDE_PX = 1200  # the test runs on a reduced copy: fast, and it averages sensor noise away


def ink_fraction(image: np.ndarray) -> float:
    """Share of the inner area covered by ink (dark marks), for a greyscale uint8 page (255 = paper)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = image.shape[:2]
    my, mx = int(h * MARGIN_FRACTION), int(w * MARGIN_FRACTION)
    inner = image[my : h - my, mx : w - mx]
    if inner.size == 0:
        return 0.0
    scale = min(1.0, WORK_LONG_SIDE_PX / max(inner.shape))
    if scale < 1.0:
        inner = cv2.resize(inner, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    inner = cv2.medianBlur(inner, 3)
    paper = float(np.percentile(inner, 90))
    # Ink is clearly darker than this sheet's own paper; grey recycled paper is not ink.
    ink = inner < min(160.0, paper - 60.0)
    return float(ink.mean())


def is_blank(image: np.ndarray) -> bool:
    return ink_fraction(image) < MAX_INK_FRACTION

"""Phone photos of a ruled form: turned further than a scan, seen at an angle, unevenly lit.

Tried only where the scan path finds no table (``pipeline.tables``), since each step undoes
an assumption that scans keep and photos break:

1. skew: up to 45 deg, from the long straight lines themselves (a scan's projection search
   looks for short straight strokes, which a rule turned by more than a few degrees no
   longer has);
2. perspective: the table's outline is mapped to a rectangle. A camera held at an angle
   turns the table into a trapezoid whose side rules lean several degrees against each
   other, which no single rotation straightens. The outline is the largest quadrilateral
   whose four sides are straight dark lines with the same paper on both sides: a rule has
   paper either side, while the edge of the sheet or of a photo's background is a step
   from one brightness to another;
3. lighting: each channel divided by its background (a closing wipes out the thin ink), so
   faint rules in a shadow or a crease keep the contrast they have in the light, then the
   ink stretched until the outline's own rules are as dark as a scan's.

The rules of a creased sheet still bend a little: ``detect_tables(..., rules_bend=True)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.deskew import rotate

MIN_SIDE_MM = 30.0  # the shortest outline side looked for (a table smaller than 3 cm is no form)
MAX_GAP_MM = 2.0  # a side's line may break this long (creases, faint print)
MERGE_MM = 1.5  # pieces of one line lie this close to each other
MAX_LINES = 12  # longest lines kept per direction: the outline is among the long ones
MIN_COVER = 0.6  # each side of the outline has ink along this much of it
SIDE_PROBE_MM = 2.0  # paper is compared this far either side of a side
MAX_STEP = 30.0  # grey levels between the two sides' paper: more is an edge, not a rule
LIGHT_MM = 3.5  # the closing that takes ink out to leave the paper's lighting
PAPER = 235.0  # paper's level after the lighting is evened out
RULE_LEVEL = 60.0  # a scanned rule's grey: a photo's outline is stretched to it


@dataclass(frozen=True)
class StraightenedPhoto:
    image: np.ndarray  # upright, straightened, evenly lit; same size and scale as the input
    angle: float  # the rotation applied, degrees counter-clockwise
    outline: np.ndarray | None  # the table's corners (TL, TR, BR, BL) before perspective correction


def straighten_photo(image: np.ndarray, px_per_mm: float) -> StraightenedPhoto:
    """A photographed page (upright to a quarter turn) made to look like a flat scan."""
    angle = line_skew(image, px_per_mm)
    straight = rotate(image, angle, fill_edges=True) if abs(angle) >= 0.005 else image
    corners = find_outline(straight, px_per_mm)
    if corners is None:
        return StraightenedPhoto(even_lighting(straight, px_per_mm), angle, None)
    straight = correct_perspective(straight, corners)
    return StraightenedPhoto(even_lighting(straight, px_per_mm, _rectangle(corners)), angle, corners)


def line_skew(image: np.ndarray, px_per_mm: float) -> float:
    """The rotation (degrees, counter-clockwise) that makes the page's long lines upright:
    their length-weighted median angle, each taken to the nearest quarter turn."""
    gray = image.min(axis=2) if image.ndim == 3 else image
    segments = _long_lines(gray, _line_mask(gray, px_per_mm), px_per_mm)
    if not segments:
        return 0.0
    dx, dy = np.array([s[2] - s[0] for s in segments]), np.array([s[3] - s[1] for s in segments])
    angles = (np.degrees(np.arctan2(dy, dx)) + 45.0) % 90.0 - 45.0  # y down: a line falling to the right is > 0
    order = np.argsort(angles)
    weights = np.hypot(dx, dy)[order]
    median = angles[order][int(np.searchsorted(np.cumsum(weights), weights.sum() / 2))]
    return float(median)


def _long_lines(gray: np.ndarray, lines: np.ndarray, ppm: float) -> list[np.ndarray]:
    """Straight segments >= ``MIN_SIDE_MM`` (Hough), those hugging the image border left out."""
    found = cv2.HoughLinesP(lines, 1, np.pi / 720, threshold=int(20 * ppm),
                            minLineLength=int(MIN_SIDE_MM * ppm), maxLineGap=int(MAX_GAP_MM * ppm))
    if found is None:
        return []
    h, w = gray.shape
    edge = 0.015 * max(h, w)
    return [s for s in found.reshape(-1, 4).astype(np.float64) if not _along_image_edge(s, w, h, edge)]


def find_outline(image: np.ndarray, px_per_mm: float) -> np.ndarray | None:
    """Corners (TL, TR, BR, BL, float32 x/y) of the largest quadrilateral of rules, or None."""
    gray = image.min(axis=2) if image.ndim == 3 else image
    lines = _line_mask(gray, px_per_mm)
    near = cv2.dilate(lines, np.ones((3, 3), np.uint8))  # a side may run a pixel off its line
    segments = _long_lines(gray, lines, px_per_mm)
    h, w = gray.shape
    horizontal = _merge_lines([s for s in segments if abs(s[2] - s[0]) >= abs(s[3] - s[1])], True, px_per_mm)
    vertical = _merge_lines([s for s in segments if abs(s[2] - s[0]) < abs(s[3] - s[1])], False, px_per_mm)
    quads = []
    for top, bottom in itertools.combinations(horizontal, 2):
        for left, right in itertools.combinations(vertical, 2):
            corners = [_intersection(a, b) for a, b in ((top, left), (top, right), (bottom, right), (bottom, left))]
            if any(c is None for c in corners):
                continue
            quad = _ordered(np.float32(corners))
            if not ((quad[:, 0] >= 0) & (quad[:, 0] < w) & (quad[:, 1] >= 0) & (quad[:, 1] < h)).all():
                continue
            quads.append((float(cv2.contourArea(quad)), quad))
    min_side = MIN_SIDE_MM * px_per_mm
    for _area, quad in sorted(quads, key=lambda q: -q[0]):
        sides = [(quad[i], quad[(i + 1) % 4]) for i in range(4)]
        if not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
            continue
        if min(float(np.hypot(*(q - p))) for p, q in sides) < min_side:
            continue
        if min(_cover(near, p, q) for p, q in sides) < MIN_COVER:
            continue
        if max(_paper_step(gray, p, q, SIDE_PROBE_MM * px_per_mm) for p, q in sides) > MAX_STEP:
            continue
        return quad
    return None


def correct_perspective(image: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The page warped so that ``corners`` (TL, TR, BR, BL) become an upright rectangle of
    about the same place and size; the rest of the page follows. Same image size."""
    x0, y0, x1, y1 = _target(corners)
    target = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if float(np.abs(target - corners).max()) < 0.5:
        return image
    matrix = cv2.getPerspectiveTransform(np.float32(corners), target)
    h, w = image.shape[:2]
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def even_lighting(image: np.ndarray, px_per_mm: float, outline: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Each channel divided by its paper's lighting: paper at ``PAPER`` everywhere.

    With the table's ``outline`` (x0, y0, x1, y1) known, the ink is also stretched until the
    outline's rules are as dark as a scan's (``RULE_LEVEL``): a photo's faint print has a
    fraction of a scan's contrast, under what the rule finder takes for ink, and its own
    outline says by how much.
    """
    k = max(3, int(round(LIGHT_MM * px_per_mm)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    channels = cv2.split(image) if image.ndim == 3 else [image]
    flat = []
    for channel in channels:
        paper = cv2.GaussianBlur(cv2.morphologyEx(channel, cv2.MORPH_CLOSE, kernel), (0, 0), k / 3)
        flat.append(cv2.divide(channel, np.maximum(paper, 1), scale=PAPER).astype(np.float32))
    gain = 1.0
    if outline is not None:
        rule = _rule_level(np.minimum.reduce(flat), outline, px_per_mm)
        if rule < PAPER - 1.0:
            gain = max(1.0, (PAPER - RULE_LEVEL) / (PAPER - rule))
    out = [np.clip(PAPER - (PAPER - f) * gain, 0, 255).astype(np.uint8) for f in flat]
    return cv2.merge(out) if image.ndim == 3 else out[0]


def _target(corners: np.ndarray) -> tuple[float, float, float, float]:
    """Where ``correct_perspective`` puts the outline (TL, TR, BR, BL): (x0, y0, x1, y1),
    each side at the mean of the two corners it joins."""
    tl, tr, br, bl = corners
    return (tl[0] + bl[0]) / 2, (tl[1] + tr[1]) / 2, (tr[0] + br[0]) / 2, (bl[1] + br[1]) / 2


def _rectangle(corners: np.ndarray) -> tuple[int, int, int, int]:
    """``_target`` in whole pixels."""
    x0, y0, x1, y1 = (int(round(v)) for v in _target(corners))
    return x0, y0, x1, y1


def _rule_level(flat: np.ndarray, outline: tuple[int, int, int, int], ppm: float) -> float:
    """Median darkest grey across the outline's four rules (+-0.5 mm: a photo's rule bends)."""
    x0, y0, x1, y1 = outline
    h, w = flat.shape
    band = max(1, int(round(0.5 * ppm)))
    xs, ys = slice(max(x0, 0), min(x1, w)), slice(max(y0, 0), min(y1, h))
    darkest = [flat[max(y - band, 0) : y + band + 1, xs].min(axis=0) for y in (y0, y1) if 0 <= y < h]
    darkest += [flat[ys, max(x - band, 0) : x + band + 1].min(axis=1) for x in (x0, x1) if 0 <= x < w]
    if not darkest:
        return PAPER
    return float(np.median(np.concatenate(darkest)))


def _line_mask(gray: np.ndarray, ppm: float) -> np.ndarray:
    """Thin dark strokes (black-hat), thresholded above the paper's noise."""
    k = max(3, int(round(1.5 * ppm)) | 1)
    dark = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    sample = dark[::2, ::2].astype(np.float32)
    med = float(np.median(sample))
    mad = float(np.median(np.abs(sample - med)))
    return (dark >= med + 4.0 * 1.4826 * mad + 6.0).astype(np.uint8)


def _along_image_edge(s: np.ndarray, w: int, h: int, edge: float) -> bool:
    """A line hugging the image border: the photo's frame, not the form."""
    xs, ys = (s[0], s[2]), (s[1], s[3])
    return (all(x < edge for x in xs) or all(x > w - 1 - edge for x in xs)
            or all(y < edge for y in ys) or all(y > h - 1 - edge for y in ys))


def _merge_lines(segments: list[np.ndarray], horizontal: bool, ppm: float) -> list[tuple[float, float, float, float]]:
    """Collinear pieces joined into one line each, the ``MAX_LINES`` longest returned as
    (x1, y1, x2, y2). A line is ``across = a + b * along``."""
    pieces = []
    for x1, y1, x2, y2 in segments:
        t1, c1, t2, c2 = (x1, y1, x2, y2) if horizontal else (y1, x1, y2, x2)
        if t2 < t1:
            t1, c1, t2, c2 = t2, c2, t1, c1
        b = (c2 - c1) / max(t2 - t1, 1e-9)
        pieces.append([c1 - b * t1, b, t1, t2])
    lines: list[list[float]] = []
    for a, b, t1, t2 in sorted(pieces, key=lambda p: p[2] - p[3]):  # longest first
        mid = (t1 + t2) / 2
        for line in lines:
            if abs(line[1] - b) < 0.02 and abs(line[0] + line[1] * mid - (a + b * mid)) < MERGE_MM * ppm:
                line[2], line[3] = min(line[2], t1), max(line[3], t2)
                break
        else:
            lines.append([a, b, t1, t2])
    lines = sorted(lines, key=lambda l: l[2] - l[3])[:MAX_LINES]
    if horizontal:
        return [(t1, a + b * t1, t2, a + b * t2) for a, b, t1, t2 in lines]
    return [(a + b * t1, t1, a + b * t2, t2) for a, b, t1, t2 in lines]


def _intersection(p: tuple[float, ...], q: tuple[float, ...]) -> tuple[float, float] | None:
    x1, y1, x2, y2 = p
    x3, y3, x4, y4 = q
    d = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
    if abs(d) < 1e-9:
        return None
    a, b = x1 * y2 - y1 * x2, x3 * y4 - y3 * x4
    return (a * (x3 - x4) - (x1 - x2) * b) / d, (a * (y3 - y4) - (y1 - y2) * b) / d


def _ordered(quad: np.ndarray) -> np.ndarray:
    """Corners as TL, TR, BR, BL."""
    total, diff = quad.sum(axis=1), quad[:, 1] - quad[:, 0]
    return np.float32([quad[np.argmin(total)], quad[np.argmin(diff)], quad[np.argmax(total)], quad[np.argmax(diff)]])


def _points(p: np.ndarray, q: np.ndarray, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (x, y) every pixel along p -> q, shifted ``offset`` along its normal."""
    d = q - p
    length = float(np.hypot(*d))
    n = max(int(length), 1)
    t = np.linspace(0.0, 1.0, n)
    normal = np.array([-d[1], d[0]]) / max(length, 1e-9)
    xy = p[None, :] + t[:, None] * d[None, :] + offset * normal[None, :]
    return np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)


def _along(image: np.ndarray, p: np.ndarray, q: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """The pixels along p -> q (shifted ``offset`` along its normal), clipped to the image."""
    xs, ys = _points(p, q, offset)
    h, w = image.shape
    return image[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]


def _cover(mask: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    return float(_along(mask, p, q).mean())


def _paper_step(gray: np.ndarray, p: np.ndarray, q: np.ndarray, probe: float) -> float:
    """Median brightness difference between the two sides of p -> q, ``probe`` px out."""
    before, after = (_along(gray, p, q, offset).astype(np.float32) for offset in (-probe, probe))
    return float(np.median(np.abs(before - after)))

"""Page orientation (quarter turns) and fine skew of a scanned ruled form.

Skew: the angle whose shear makes the long straight strokes (table rules, and text
baselines, which are parallel) collapse into the sharpest projection profile,
horizontal and vertical strokes scored together. Coarse-to-fine search, exact for
straight lines (a rotated line is a sheared line), ~0.01 deg resolution.

Orientation, two questions:
* 0/180 vs 90/270: rules do not tell, text does. Chinese characters in a line nearly
  touch while lines sit further apart, so smearing the text mask along the true line
  direction fuses far more blobs than smearing across it.
* 0 vs 180: the PP-OCR text-direction classifier shipped inside the ``rapidocr`` wheel,
  run straight through onnxruntime on a dozen text-line crops (a few ms). Layout cues
  (title above the table) would break on pages that start mid-table; the classifier
  only needs some text.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import numpy as np

from pipeline.grid import estimate_px_per_mm, to_gray

MAX_SKEW_DEG = 4.0
STROKE_MM = 2.0  # shortest straight run used for skew; short enough to survive 2.5 deg
MAX_POINTS = 200_000  # stroke pixels sampled for the projection search


def _dark_mask(gray: np.ndarray, ppm: float) -> np.ndarray:
    k = max(3, int(round(1.6 * ppm)) | 1)
    paper = cv2.dilate(gray, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    dark = cv2.subtract(paper, gray)
    sample = dark[::4, ::4]
    med = float(np.median(sample))
    mad = float(np.median(np.abs(sample.astype(np.float32) - med)))
    thr = max(25.0, med + 8.0 * 1.4826 * mad + 8.0)
    return (dark >= thr).astype(np.uint8)


def _stroke_points(binary: np.ndarray, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) float arrays of pixels in horizontal runs and in vertical runs."""
    k = max(7, int(round(STROKE_MM * ppm)))
    rng = np.random.default_rng(0)
    out = []
    for shape in ((k, 1), (1, k)):
        m = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, shape))
        ys, xs = np.nonzero(m)
        if len(xs) > MAX_POINTS:
            pick = rng.choice(len(xs), MAX_POINTS, replace=False)
            xs, ys = xs[pick], ys[pick]
        out.append((xs.astype(np.float64), ys.astype(np.float64)))
    return out[0], out[1]


def _score(h: tuple[np.ndarray, np.ndarray], v: tuple[np.ndarray, np.ndarray], deg: float) -> float:
    # Content turned counter-clockwise (as viewed, y down) by deg: y + x*tan stays
    # constant along a horizontal rule and x - y*tan along a vertical one.
    t = math.tan(math.radians(deg))
    total = 0.0
    for (xs, ys), sign in ((h, 1.0), (v, -1.0)):
        if len(xs) == 0:
            continue
        p = (ys + sign * xs * t) if sign > 0 else (xs - ys * t)
        p = np.rint(p - p.min()).astype(np.int64)
        counts = np.bincount(p).astype(np.float64)
        total += float(np.dot(counts, counts))
    return total


def estimate_skew(image: np.ndarray, px_per_mm: float | None = None) -> float:
    """Rotation of the page content in degrees, counter-clockwise positive (as viewed)."""
    gray = to_gray(image)
    ppm = float(px_per_mm) if px_per_mm else estimate_px_per_mm(gray.shape)
    h, v = _stroke_points(_dark_mask(gray, ppm), ppm)
    if len(h[0]) + len(v[0]) < 50:
        return 0.0
    # The coarse pass only has to land within its step of the peak: a quarter of the points do.
    coarse = (h[0][::4], h[1][::4]), (v[0][::4], v[1][::4])
    best = 0.0
    for step, half in ((0.2, MAX_SKEW_DEG), (0.04, 0.24), (0.01, 0.05)):
        angles = np.arange(best - half, best + half + step / 2, step)
        points = coarse if step == 0.2 else (h, v)
        scores = [_score(*points, a) for a in angles]
        i = int(np.argmax(scores))
        best = float(angles[i])
        if step == 0.01 and 0 < i < len(angles) - 1:
            # Parabolic peak refinement between the grid points.
            s0, s1, s2 = scores[i - 1], scores[i], scores[i + 1]
            denom = s0 - 2 * s1 + s2
            if denom < 0:
                best += step * 0.5 * (s0 - s2) / denom
    return best


def rotate(image: np.ndarray, angle_deg: float, fill_edges: bool = False) -> np.ndarray:
    """Rotate about the page centre, counter-clockwise positive, same size, white fill.

    ``fill_edges`` repeats the edge pixels instead: on a photo, whose background is not
    paper-white, a white corner would leave a straight dark-to-white edge that reads as a rule.
    """
    h, w = image.shape[:2]
    mat = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, 1.0)
    if fill_edges:
        return cv2.warpAffine(image, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    fill = (255, 255, 255) if image.ndim == 3 else 255
    return cv2.warpAffine(image, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def deskew(image: np.ndarray, px_per_mm: float | None = None) -> tuple[np.ndarray, float]:
    """Straighten a page (grey uint8 with 255 = paper, or BGR).

    Returns (image, angle): ``angle`` is the rotation applied in degrees,
    counter-clockwise positive, i.e. minus the content's skew. A scan made with
    ``PIL.Image.rotate(s)`` gives about ``-s``.
    """
    angle = -estimate_skew(image, px_per_mm)
    if abs(angle) < 0.005:
        return image, 0.0
    return rotate(image, angle), angle


# --- orientation --------------------------------------------------------------------

_ROTATE_CODES = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
CLS_CROPS = 12
ORIENT_PPM = 5.0  # work scale for the text-direction test (~127 dpi)


def rotate_upright(image: np.ndarray, turns: int) -> np.ndarray:
    """Turn the page clockwise by ``turns`` degrees (0, 90, 180 or 270)."""
    turns %= 360
    if turns == 0:
        return image
    if turns not in _ROTATE_CODES:
        raise ValueError(f"turns must be a multiple of 90, got {turns}")
    return cv2.rotate(image, _ROTATE_CODES[turns])


def _text_mask(gray: np.ndarray, ppm: float) -> np.ndarray:
    """Ink that is not a long rule, at the given scale."""
    binary = _dark_mask(gray, ppm)
    k = max(9, int(round(6.0 * ppm)))
    rules = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    rules |= cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    rules = cv2.dilate(rules, np.ones((3, 3), np.uint8))
    return binary & (1 - rules)


def _line_blobs(mask: np.ndarray, kernel: tuple[int, int]) -> int:
    """The summed length of the blobs that, once ``mask`` is smeared along ``kernel``, are at
    least twice as long along it as across: the text lines that run that way."""
    merged = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
    n, _, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
    w, h = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    along, across = (w, h) if kernel[0] > kernel[1] else (h, w)
    return int(along[along >= 2 * across].sum())


def _text_is_horizontal(gray: np.ndarray, ppm: float) -> bool | None:
    """True if text lines run left-right, False if top-bottom, None if no text.

    Smeared along the text, glyphs join into long lines; smeared across it, lines set close
    together join into blocks that are not long that way. So the direction with more long
    blobs is the text's, however tight the line spacing; a few stacked short lines (a vertical
    label, a wrapped narrow header) weigh little against the page's lines."""
    text = _text_mask(gray, ppm)
    if int(text.sum()) < 200:
        return None
    k = max(3, int(round(1.2 * ppm)))
    n_h = _line_blobs(text, (k, 1))
    n_v = _line_blobs(text, (1, k))
    if n_h == n_v:
        return None
    return n_h > n_v


@functools.lru_cache(maxsize=1)
def _cls_session():
    import onnxruntime as ort
    import rapidocr

    path = Path(rapidocr.__file__).parent / "models" / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _line_crops(gray: np.ndarray, small: np.ndarray, scale: float, ppm_small: float) -> list[np.ndarray]:
    """Up to CLS_CROPS text-line crops (full resolution), the widest first."""
    text = _text_mask(small, ppm_small)
    k = max(3, int(round(1.2 * ppm_small)))
    lines = cv2.dilate(text, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    cands = []
    for i in range(1, n):
        x, y, w, h, _ = stats[i]
        hmm = h / ppm_small
        if 2.0 <= hmm <= 9.0 and w >= 2.5 * h:
            cands.append((w, x, y, w, h))
    cands.sort(reverse=True)
    crops = []
    for _, x, y, w, h in cands[:CLS_CROPS]:
        pad = max(1, int(h * 0.15))
        x0 = max(0, int((x - pad) / scale))
        y0 = max(0, int((y - pad) / scale))
        x1 = min(gray.shape[1], int((x + w + pad) / scale))
        y1 = min(gray.shape[0], int((y + h + pad) / scale))
        # The classifier sees 48x192; longer lines would be squashed, so keep ~4:1.
        x1 = min(x1, x0 + int(5 * (y1 - y0)))
        crops.append(gray[y0:y1, x0:x1])
    return crops


def _upside_down_votes(crops: list[np.ndarray]) -> float:
    """Sum over crops of P(180) - P(0): positive means the text is upside down."""
    if not crops:
        return 0.0
    batch = np.zeros((len(crops), 3, 48, 192), np.float32)
    for i, crop in enumerate(crops):
        h, w = crop.shape[:2]
        rw = min(192, max(1, int(math.ceil(48 * w / max(h, 1)))))
        resized = cv2.resize(crop, (rw, 48), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        batch[i, :, :, :rw] = (resized / 255.0 - 0.5) / 0.5
    session = _cls_session()
    probs = session.run(None, {session.get_inputs()[0].name: batch})[0]
    return float(np.sum(probs[:, 1] - probs[:, 0]))


def detect_orientation(image: np.ndarray, px_per_mm: float | None = None) -> int:
    """Clockwise quarter turns (0, 90, 180, 270) that make the page upright.

    Expects a page that is at most a few degrees off a quarter turn.
    """
    gray = to_gray(image)
    ppm = float(px_per_mm) if px_per_mm else estimate_px_per_mm(gray.shape)
    scale = min(1.0, ORIENT_PPM / ppm)
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    ppm_small = ppm * scale
    horizontal = _text_is_horizontal(small, ppm_small)
    turns = 0
    if horizontal is False:
        # Text runs top-bottom: a quarter turn either way; 90 here, 180 added below if wrong.
        turns = 90
        gray = rotate_upright(gray, 90)
        small = rotate_upright(small, 90)
    try:
        votes = _upside_down_votes(_line_crops(gray, small, scale, ppm_small))
    except ImportError:  # rapidocr/onnxruntime missing: trust the quarter-turn test only
        votes = 0.0
    if votes > 0:
        turns = (turns + 180) % 360
    return turns

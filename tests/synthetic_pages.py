"""Synthetic ruled form pages with known structure, for the grid and deskew tests."""

from __future__ import annotations

import math

import cv2
import numpy as np

# --- synthetic ruled form (for grid/deskew tests until, and besides, real fixtures) ---
# Fine grid in mm; labels give the merged cells (same label = same cell).
_COLS_MM = [15, 27, 45, 75, 100, 125, 150, 170, 195]
_ROW_H_MM = 9.0
_TOP_MM = 40.0
_LABELS = [
    "AAAAAAAA",
    "BBCCCCCC",
    "DDEEFFGG",
    "HIJKLMNO",
    "HPQRSTUV",
    "HWXYZabc",
    "defghijk",
    "lmnnoopq",
    "lrstuvwx",
    "lryz0123",
    "l4567899",
    "l4#$%&()",
    "@@!!?;::",
]


def synthetic_form(
    dpi: int = 200,
    skew_deg: float = 0.0,
    seal: bool = False,
    broken: bool = False,
    faded: bool = False,
    noise: float = 4.0,
    rule_px: int | None = None,
    colour: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """A4 page with a ruled table; returns (image, truth).

    ``skew_deg`` rotates the content counter-clockwise as seen on screen (cv2 convention).
    truth: {"n_rows", "n_cols", "cells": [(row, col, row_span, col_span), ...]}.
    """
    rng = np.random.default_rng(seed)
    ppm = dpi / 25.4
    h, w = int(round(297 * ppm)), int(round(210 * ppm))
    page = np.full((h, w, 3), 250, np.uint8)
    labels = np.array([list(row) for row in _LABELS])
    n_rows, n_cols = labels.shape
    xs = [int(round(c * ppm)) for c in _COLS_MM]
    ys = [int(round((_TOP_MM + r * _ROW_H_MM) * ppm)) for r in range(n_rows + 1)]
    ink = (190, 190, 190) if faded else (30, 30, 30)
    t = rule_px or max(1, int(round(0.25 * ppm)))

    def hline(y: int, x0: int, x1: int) -> None:
        cv2.line(page, (x0, y), (x1, y), ink, t)

    def vline(x: int, y0: int, y1: int) -> None:
        cv2.line(page, (x, y0), (x, y1), ink, t)

    for r in range(n_rows + 1):
        for c in range(n_cols):
            if r in (0, n_rows) or labels[r - 1, c] != labels[r, c]:
                hline(ys[r], xs[c], xs[c + 1])
    for c in range(n_cols + 1):
        for r in range(n_rows):
            if c in (0, n_cols) or labels[r, c - 1] != labels[r, c]:
                vline(xs[c], ys[r], ys[r + 1])

    # Title above the table, text in cells (some touching rules), vertical label.
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(page, "PROJECT SELF EVALUATION 2024", (int(40 * ppm), int(30 * ppm)), font, 0.06 * ppm, (20, 20, 20), max(1, int(0.5 * ppm)))
    cells = []
    for lab in dict.fromkeys(labels.ravel()):
        rr, cc = np.nonzero(labels == lab)
        r0, c0 = int(rr.min()), int(cc.min())
        rs, cs = int(rr.max() - r0 + 1), int(cc.max() - c0 + 1)
        cells.append((r0, c0, rs, cs))
        x0, x1, y0, y1 = xs[c0], xs[c0 + cs], ys[r0], ys[r0 + rs]
        if rs > 2 and cs == 1:
            for k in range(rs * 2 - 1):
                cy = y0 + int((3 + k * 4.2) * ppm)
                cv2.putText(page, "W", (x0 + int(3 * ppm), cy + int(3 * ppm)), font, 0.035 * ppm, (25, 25, 25), max(1, int(0.25 * ppm)))
        else:
            text = "".join(rng.choice(list("ABCDEFGH0123456789"), size=max(1, int((x1 - x0) / ppm / 4) - 1)))
            tx = x0 + int(rng.uniform(0.3, 1.5) * ppm)
            ty = y1 - int(rng.uniform(1.0, 3.0) * ppm)
            cv2.putText(page, text, (tx, ty), font, 0.035 * ppm, (25, 25, 25), max(1, int(0.25 * ppm)))
    cells.sort()

    if broken:
        # Same damage model as fixtures/generate.py: one gap of 1-6 mm in some rule pieces
        # between crossings, >= 1 mm from them, taking at most half the piece minus 2 mm.
        damaged = set()
        for _ in range(40):
            horizontal = rng.random() < 0.5
            if horizontal:
                r, c = int(rng.integers(0, n_rows + 1)), int(rng.integers(0, n_cols))
                a, b, fixed = _COLS_MM[c], _COLS_MM[c + 1], ys[r]
            else:
                r, c = int(rng.integers(0, n_rows)), int(rng.integers(0, n_cols + 1))
                a, b, fixed = _TOP_MM + r * _ROW_H_MM, _TOP_MM + (r + 1) * _ROW_H_MM, xs[c]
            longest = min(6.0, 0.5 * (b - a) - 2.0)
            if longest < 1.0 or (horizontal, r, c) in damaged:
                continue
            damaged.add((horizontal, r, c))
            length = rng.uniform(1.0, longest)
            g0 = rng.uniform(a + 1.0, b - 1.0 - length)
            p0, p1 = int(round(g0 * ppm)), int(round((g0 + length) * ppm))
            if horizontal:
                cv2.rectangle(page, (p0, fixed - t - 1), (p1, fixed + t + 1), (250, 250, 250), -1)
            else:
                cv2.rectangle(page, (fixed - t - 1, p0), (fixed + t + 1, p1), (250, 250, 250), -1)

    if seal:
        stamp = np.zeros_like(page)
        centre = (int(120 * ppm), int((_TOP_MM + 4.5 * _ROW_H_MM) * ppm))
        radius = int(20 * ppm)
        cv2.circle(stamp, centre, radius, (255, 255, 255), max(2, int(1.0 * ppm)))
        cv2.circle(stamp, centre, int(5 * ppm), (255, 255, 255), -1)
        for k in range(10):
            a = math.radians(200 + k * 14)
            p = (int(centre[0] + 0.7 * radius * math.cos(a)), int(centre[1] + 0.7 * radius * math.sin(a)))
            cv2.putText(stamp, "X", p, font, 0.05 * ppm, (255, 255, 255), max(1, int(0.5 * ppm)))
        m = stamp[:, :, 0] > 0
        red = np.array([40, 40, 220], np.float32)  # BGR
        mixed = page[m].astype(np.float32) * 0.45 + 0.55 * (page[m].astype(np.float32) * red / 255.0)
        page[m] = np.clip(mixed, 0, 255).astype(np.uint8)

    if skew_deg:
        mat = cv2.getRotationMatrix2D((w / 2, h / 2), skew_deg, 1.0)
        page = cv2.warpAffine(page, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=(250, 250, 250))
    if noise:
        page = np.clip(page.astype(np.float32) + rng.normal(0, noise, page.shape), 0, 255).astype(np.uint8)
    page = cv2.GaussianBlur(page, (3, 3), 0.6)
    ok, buf = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 80])
    page = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    image = page if colour else cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    return image, {"n_rows": n_rows, "n_cols": n_cols, "cells": cells}

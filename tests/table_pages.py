"""A scanned page with two ruled tables of known structure and text, for the tables tests."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fixtures.generate import FONTS


@dataclass(frozen=True)
class TrueCell:
    row: int
    col: int
    row_span: int
    col_span: int
    text: str  # as printed; "\n" where the line wraps


@dataclass(frozen=True)
class TrueTable:
    x_mm: tuple[float, ...]  # every vertical rule position, left to right
    y_mm: tuple[float, ...]  # every horizontal rule position, top to bottom
    cells: tuple[TrueCell, ...]


# A budget-like table: a header merged across two columns and one merged down two rows,
# a label merged down two body rows, a wrapped label.
BUDGET = TrueTable(
    x_mm=(20, 62, 104, 146, 188),
    y_mm=(40, 50, 60, 72, 82, 92),
    cells=(
        TrueCell(0, 0, 2, 1, "项目"), TrueCell(0, 1, 1, 2, "本年预算"), TrueCell(0, 3, 2, 1, "备注"),
        TrueCell(1, 1, 1, 1, "预算数"), TrueCell(1, 2, 1, 1, "执行数"),
        TrueCell(2, 0, 1, 1, "年度资金\n总额"), TrueCell(2, 1, 1, 1, "1,234.50"),
        TrueCell(2, 2, 1, 1, "1,200.00"), TrueCell(2, 3, 1, 1, ""),
        TrueCell(3, 0, 2, 1, "财政拨款"), TrueCell(3, 1, 1, 1, "980.00"), TrueCell(3, 2, 1, 1, "975.30"),
        TrueCell(3, 3, 1, 1, "按时完成"),
        TrueCell(4, 1, 1, 1, "254.50"), TrueCell(4, 2, 1, 1, "224.70"), TrueCell(4, 3, 1, 1, ""),
    ),
)

# A second table lower on the page: a total row merged across two columns.
CONTACTS = TrueTable(
    x_mm=(30, 80, 130, 180),
    y_mm=(130, 140, 150, 160),
    cells=(
        TrueCell(0, 0, 1, 1, "单位"), TrueCell(0, 1, 1, 1, "联系人"), TrueCell(0, 2, 1, 1, "电话"),
        TrueCell(1, 0, 1, 1, "普陀区司法局"), TrueCell(1, 1, 1, 1, "王明"), TrueCell(1, 2, 1, 1, "52564588"),
        TrueCell(2, 0, 1, 2, "合计"), TrueCell(2, 2, 1, 1, "2"),
    ),
)

TABLES = (BUDGET, CONTACTS)


def _font(px: int) -> ImageFont.FreeTypeFont:
    family = "Noto Sans CJK SC" if "Noto Sans CJK SC" in FONTS else sorted(FONTS)[0]
    path, index = FONTS[family]["regular"]
    return ImageFont.truetype(path, px, index=index)


def table_page(dpi: int = 200, seed: int = 0) -> np.ndarray:
    """An A4 page (greyscale, 255 = paper) with both tables, scanned: noise and a slight blur."""
    ppm = dpi / 25.4
    page = Image.new("L", (int(round(210 * ppm)), int(round(297 * ppm))), 250)
    draw = ImageDraw.Draw(page)
    font = _font(int(round(3.6 * ppm)))
    rule = max(1, int(round(0.25 * ppm)))
    for table in TABLES:
        xs = [x * ppm for x in table.x_mm]
        ys = [y * ppm for y in table.y_mm]
        for cell in table.cells:  # each cell's outline: neighbours share theirs, merged cells have none inside
            x0, x1 = xs[cell.col], xs[cell.col + cell.col_span]
            y0, y1 = ys[cell.row], ys[cell.row + cell.row_span]
            for a, b in (((x0, y0), (x1, y0)), ((x0, y1), (x1, y1)), ((x0, y0), (x0, y1)), ((x1, y0), (x1, y1))):
                draw.line([a, b], fill=20, width=rule)
        for cell in table.cells:
            if not cell.text:
                continue
            cx = (xs[cell.col] + xs[cell.col + cell.col_span]) / 2
            cy = (ys[cell.row] + ys[cell.row + cell.row_span]) / 2
            draw.multiline_text((cx, cy), cell.text, fill=25, font=font, anchor="mm", align="center", spacing=2)
    image = np.asarray(page, dtype=np.float32)
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(image, (3, 3), 0.6) + rng.normal(0, 5.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def photo_of_page(page: np.ndarray, dpi: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``page`` photographed as a phone would: the sheet on a dark desk, seen from below
    (a keystone: the far edge narrower), turned 9 degrees, lit unevenly, its print faded
    to a third of its contrast. Returns (photo, homography from page to photo pixels)."""
    rng = np.random.default_rng(seed)
    h, w = page.shape
    faded = 255.0 - (255.0 - page.astype(np.float32)) * 0.3
    margin = 0.08 * w
    out_w, out_h = int(w + 2 * margin), int(h + 2 * margin)
    shrink = 0.05 * w  # the far (top) edge is this much narrower each side
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[margin + shrink, margin], [margin + w - shrink, margin], [margin + w, margin + h], [margin, margin + h]])
    keystone = cv2.getPerspectiveTransform(src, dst)
    turn = np.vstack([cv2.getRotationMatrix2D((out_w / 2, out_h / 2), 9.0, 1.0), [0, 0, 1]])
    homography = turn @ keystone
    photo = cv2.warpPerspective(faded, homography, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=70.0)  # the desk
    light = np.linspace(1.0, 0.7, out_w, dtype=np.float32)[None, :] * np.linspace(1.0, 0.85, out_h, dtype=np.float32)[:, None]
    photo = photo * light + rng.normal(0, 3.0, photo.shape)
    return np.clip(photo, 0, 255).astype(np.uint8), homography

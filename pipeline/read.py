"""Read a document into pages, one page in memory at a time.

PDFs go through pdf2image (poppler) at the resolution of the scan embedded in
each page, so nothing is resampled; images (PNG, JPEG, TIFF, multi-page TIFF)
go through Pillow. A colour page is reduced to its red channel: black print
stays black there while a red official seal nearly vanishes, which is what
every later stage wants.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from pipeline.errors import (
    CorruptFileError,
    EncryptedFileError,
    MissingFileError,
    PageTooLargeError,
    UnreadableInputError,
    UnsupportedFileError,
)

DEFAULT_DPI = 300
MAX_DPI = 600
MAX_PIXELS = 200_000_000  # a 600-dpi A2 page; beyond this we refuse instead of allocating
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DOCUMENT_SUFFIXES = IMAGE_SUFFIXES | {".pdf"}
A4_WIDTH_INCHES = 8.27


@dataclass(frozen=True)
class Page:
    """One page of a document: a greyscale image (uint8, 255 = paper) and its resolution."""

    source: str  # the path as the user gave it
    number: int  # 1-based
    image: np.ndarray
    dpi: int
    was_colour: bool = False


def list_documents(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into the documents formscan can read, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
            )
        else:
            found.append(path)
    return found


def read_pages(path: str | Path, numbers: list[int] | None = None) -> Iterator[Page]:
    """Yield the pages of a PDF or image file (all, or the 1-based ``numbers``), rendering each only when asked for."""
    path = Path(path)
    if _is_pdf(path):
        yield from _read_pdf(path, numbers)
    else:
        yield from _read_image(path, numbers)


def count_pages(path: str | Path) -> int:
    """Number of pages without rendering any, for progress reporting."""
    path = Path(path)
    if _is_pdf(path):
        return int(_pdf_info(path)["Pages"])
    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise UnsupportedFileError(f"not a PDF or a readable image ({exc})", file=str(path)) from exc


def _is_pdf(path: Path) -> bool:
    """PDF or not by content, not by name; missing and empty files are errors here."""
    if not path.is_file():
        raise MissingFileError("no such file", file=str(path))
    with path.open("rb") as handle:
        magic = handle.read(1024)
    if not magic:
        raise CorruptFileError("the file is empty (0 bytes)", file=str(path))
    return b"%PDF" in magic


def _pdf_info(path: Path) -> dict:
    from pdf2image import pdfinfo_from_path
    from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError

    try:
        return pdfinfo_from_path(str(path))
    except PDFInfoNotInstalledError as exc:
        raise UnreadableInputError("poppler-utils (pdfinfo) is not installed", file=str(path)) from exc
    except (PDFPageCountError, PDFSyntaxError) as exc:
        text = str(exc)
        if "Incorrect password" in text or "encrypted" in text.lower():
            raise EncryptedFileError("the PDF is encrypted with a password", file=str(path)) from exc
        raise CorruptFileError(f"the PDF cannot be parsed: {text.strip()[:200]}", file=str(path)) from exc


def _embedded_scans(path: Path) -> dict[int, tuple[int, bool]]:
    """Per page: (dpi, is_colour) of the largest embedded image, from `pdfimages -list`."""
    try:
        out = subprocess.run(
            ["pdfimages", "-list", str(path)], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    best: dict[int, tuple[int, int, bool]] = {}
    for line in out.splitlines()[2:]:
        cols = line.split()
        # page num type width height color comp bpc enc interp object ID x-ppi y-ppi size ratio
        if len(cols) < 14 or not cols[0].isdigit() or cols[2] != "image":
            continue
        page, width, height = int(cols[0]), int(cols[3]), int(cols[4])
        try:
            ppi = round(float(cols[12]))
        except ValueError:
            continue
        area = width * height
        if page not in best or area > best[page][0]:
            best[page] = (area, ppi, cols[5] not in ("gray", "index"))
    return {page: (ppi, colour) for page, (_, ppi, colour) in best.items()}


def _read_pdf(path: Path, numbers: list[int] | None) -> Iterator[Page]:
    from pdf2image import convert_from_path

    info = _pdf_info(path)
    n_pages = int(info.get("Pages", 0))
    if n_pages < 1:
        raise CorruptFileError("the PDF has no pages", file=str(path))
    width_pt, height_pt = _page_size_points(info)
    scans = _embedded_scans(path)
    for number in numbers or range(1, n_pages + 1):
        if not 1 <= number <= n_pages:
            raise CorruptFileError(f"there is no page {number} (the PDF has {n_pages})", file=str(path))
        dpi, colour = scans.get(number, (DEFAULT_DPI, False))
        dpi = min(max(dpi, 72), MAX_DPI)
        if width_pt and height_pt and (width_pt * dpi / 72) * (height_pt * dpi / 72) > MAX_PIXELS:
            raise PageTooLargeError(
                f"page would be {width_pt * dpi / 72:.0f}x{height_pt * dpi / 72:.0f} px at {dpi} dpi",
                file=str(path),
                page=number,
            )
        try:
            rendered = convert_from_path(
                str(path), dpi=dpi, first_page=number, last_page=number, grayscale=not colour, timeout=120
            )
        except Exception as exc:  # poppler reports every failure as a generic error
            raise CorruptFileError(f"the page cannot be rendered: {exc}", file=str(path), page=number) from exc
        if not rendered:
            raise CorruptFileError("the page rendered to nothing", file=str(path), page=number)
        yield Page(str(path), number, _to_grey(rendered[0]), dpi, colour)


def _page_size_points(info: dict) -> tuple[float, float]:
    size = str(info.get("Page size", ""))  # "595.276 x 841.89 pts (A4)"
    try:
        width, _, height = size.split()[:3]
        return float(width), float(height)
    except ValueError:
        return 0.0, 0.0


def _read_image(path: Path, numbers: list[int] | None) -> Iterator[Page]:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise PageTooLargeError(str(exc), file=str(path)) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise UnsupportedFileError("not a PDF or a readable image", file=str(path)) from exc
    with img:
        for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
            if numbers is not None and number not in numbers:
                continue
            if frame.width * frame.height > MAX_PIXELS:
                raise PageTooLargeError(
                    f"page is {frame.width}x{frame.height} px", file=str(path), page=number
                )
            dpi = _image_dpi(frame)
            try:
                grey = _to_grey(frame)
            except OSError as exc:
                raise CorruptFileError(f"the image is truncated: {exc}", file=str(path), page=number) from exc
            yield Page(str(path), number, grey, dpi, frame.mode not in ("1", "L", "LA", "I", "I;16", "F"))


def _image_dpi(frame: Image.Image) -> int:
    dpi = frame.info.get("dpi")
    if dpi and dpi[0] and float(dpi[0]) >= 72:
        return int(round(float(dpi[0])))
    # No resolution recorded: assume an A4 portrait or landscape page.
    return max(72, int(round(min(frame.width, frame.height) / A4_WIDTH_INCHES)))


def _to_grey(img: Image.Image) -> np.ndarray:
    if img.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB"))[:, :, 0].copy()
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img).copy()

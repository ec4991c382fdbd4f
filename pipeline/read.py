"""Read a document into pages, one page in memory at a time.

PDFs go through pdf2image (poppler) at the resolution of the scan embedded in
each page, so nothing is resampled; images (PNG, JPEG, TIFF, multi-page TIFF)
go through Pillow. A colour page is reduced to its red channel: black print
stays black there while a red official seal nearly vanishes, which is what
every later stage wants.
"""

from __future__ import annotations

import hashlib
import re
import stat
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import (
    CorruptFileError,
    EncryptedFileError,
    MissingFileError,
    PageTimeoutError,
    PageTooLargeError,
    UnreadableInputError,
    UnsupportedFileError,
)

DEFAULT_DPI = 300
MAX_DPI = 600
MAX_PIXELS = 200_000_000  # a 600-dpi A2 page; beyond this we refuse instead of allocating (``--max-pixels``)
POPPLER_TIMEOUT_S = 120  # a hostile PDF can make pdfinfo or pdftoppm spin; they are killed after this
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DOCUMENT_SUFFIXES = IMAGE_SUFFIXES | {".pdf"}
# Pillow warns of images between its limit and twice it; we refuse those ourselves (PageTooLargeError).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
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
    """Expand files and folders (recursively) into the documents formscan can read, sorted.

    In a folder, every entry named like a document that is not itself a folder is listed, even a
    link to nothing or a pipe: reading it then gives an error line instead of it silently vanishing.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in DOCUMENT_SUFFIXES and not p.is_dir())
            )
        else:
            found.append(path)
    return found


def read_pages(
    path: str | Path, numbers: list[int] | None = None, *, max_pixels: int = MAX_PIXELS
) -> Iterator[Page]:
    """Yield the pages of a PDF or image file (all, or the 1-based ``numbers``), rendering each only when asked for.

    A page of more than ``max_pixels`` is refused with ``PageTooLargeError`` before it is rendered or decoded.
    """
    path = Path(path)
    if _is_pdf(path):
        yield from _read_pdf(path, numbers, max_pixels)
    else:
        yield from _read_image(path, numbers, max_pixels)


def count_pages(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> int:
    """Number of pages without rendering any, for progress reporting."""
    path = Path(path)
    if _is_pdf(path):
        return int(_pdf_info(path)["Pages"])
    Image.MAX_IMAGE_PIXELS = max_pixels  # as in _read_image: an image beyond twice this is refused here already
    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1)
    except Image.DecompressionBombError as exc:
        raise PageTooLargeError(str(exc), file=str(path)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedFileError(f"not a PDF or a readable image ({exc})", file=str(path)) from exc


def _is_pdf(path: Path) -> bool:
    """PDF or not by content, not by name; missing, empty and non-regular files are errors here."""
    _check_regular_file(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(1024)
    except FileNotFoundError as exc:  # it vanished since it was listed
        raise MissingFileError("no such file (it was removed while formscan ran)", file=str(path)) from exc
    except OSError as exc:
        raise UnreadableInputError(f"the file cannot be read: {exc.strerror or exc}", file=str(path)) from exc
    if not magic:
        raise CorruptFileError("the file is empty (0 bytes)", file=str(path))
    return b"%PDF" in magic


def _check_regular_file(path: Path) -> None:
    """Raise a named error unless ``path`` is a regular file: opening a pipe would wait forever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        if path.is_symlink():
            raise MissingFileError("the symbolic link points to a file that does not exist", file=str(path)) from exc
        raise MissingFileError("no such file", file=str(path)) from exc
    except OSError as exc:  # permission denied on a parent folder, a symbolic link loop, an I/O error
        raise UnreadableInputError(f"the file cannot be opened: {exc.strerror or exc}", file=str(path)) from exc
    if stat.S_ISDIR(mode):
        raise UnsupportedFileError("a folder, not a file", file=str(path))
    if not stat.S_ISREG(mode):
        raise UnsupportedFileError("not a regular file (a pipe, socket or device)", file=str(path))


def file_sha256(path: str | Path) -> str:
    """sha256 of the file's bytes, read in chunks (to recognise the same file under another name)."""
    path = Path(path)
    _check_regular_file(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError as exc:
        raise MissingFileError("no such file (it was removed while formscan ran)", file=str(path)) from exc
    except OSError as exc:
        raise UnreadableInputError(f"the file cannot be read: {exc.strerror or exc}", file=str(path)) from exc
    return digest.hexdigest()


def _pdf_info(path: Path, first_page: int | None = None, last_page: int | None = None) -> dict:
    """pdfinfo's fields; with a page range also each page's size (``Page    N size``)."""
    from pdf2image import pdfinfo_from_path
    from pdf2image.exceptions import (
        PDFInfoNotInstalledError,
        PDFPageCountError,
        PDFPopplerTimeoutError,
        PDFSyntaxError,
    )

    try:
        return pdfinfo_from_path(
            str(path), timeout=POPPLER_TIMEOUT_S, first_page=first_page, last_page=last_page
        )
    except PDFInfoNotInstalledError as exc:
        raise UnreadableInputError("poppler-utils (pdfinfo) is not installed", file=str(path)) from exc
    except PDFPopplerTimeoutError as exc:
        raise PageTimeoutError(f"pdfinfo took longer than {POPPLER_TIMEOUT_S} s", file=str(path)) from exc
    except (PDFPageCountError, PDFSyntaxError) as exc:
        text = str(exc)
        if "Incorrect password" in text or "encrypted" in text.lower():
            raise EncryptedFileError("the PDF is encrypted with a password", file=str(path)) from exc
        raise CorruptFileError(f"the PDF cannot be parsed: {text.strip()[:200]}", file=str(path)) from exc


def pdf_page_dpis(path: str | Path) -> dict[int, int]:
    """Per page of a PDF: the dpi it is rendered at (its embedded scan's, within 72..MAX_DPI; DEFAULT_DPI
    for a page without one), without rendering it."""
    path = Path(path)
    n_pages = int(_pdf_info(path).get("Pages", 0))
    scans = _embedded_scans(path)
    return {n: _rendering(scans, n)[0] for n in range(1, n_pages + 1)}


def _rendering(scans: dict[int, tuple[int, bool]], number: int) -> tuple[int, bool]:
    """(dpi, in colour) page ``number`` is rendered at, from its embedded scan (``_embedded_scans``)."""
    dpi, colour = scans.get(number, (DEFAULT_DPI, False))
    return min(max(dpi, 72), MAX_DPI), colour


def _embedded_scans(path: Path, first_page: int | None = None, last_page: int | None = None) -> dict[int, tuple[int, bool]]:
    """Per page (of all, or of ``first_page``..``last_page``): (dpi, is_colour) of the largest embedded
    image, from `pdfimages -list`. A worker reading page 900 of a 1,000-page PDF lists that page's
    images only: the whole list took 80 ms, for every page again."""
    pages = [*(["-f", str(first_page)] if first_page else []), *(["-l", str(last_page)] if last_page else [])]
    try:
        out = subprocess.run(
            ["pdfimages", "-list", *pages, str(path)], capture_output=True, text=True, timeout=60, check=False
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


def _read_pdf(path: Path, numbers: list[int] | None, max_pixels: int = MAX_PIXELS) -> Iterator[Page]:
    from pdf2image import convert_from_path
    from pdf2image.exceptions import PDFPopplerTimeoutError

    first, last = (min(numbers), max(numbers)) if numbers else (None, None)
    # One pdfinfo call gives the page count and every asked-for page's size (pages can differ).
    info = _pdf_info(path, first or 1, last or 1_000_000_000)
    n_pages = int(info.get("Pages", 0))
    if n_pages < 1:
        raise CorruptFileError("the PDF has no pages", file=str(path))
    sizes = _page_sizes_points(info)
    scans = _embedded_scans(path, first, last)
    for number in numbers or range(1, n_pages + 1):
        if not 1 <= number <= n_pages:
            raise CorruptFileError(f"there is no page {number} (the PDF has {n_pages})", file=str(path))
        dpi, colour = _rendering(scans, number)
        width_pt, height_pt = sizes.get(number) or _page_size_points(info)
        if (width_pt * dpi / 72) * (height_pt * dpi / 72) > max_pixels:
            raise PageTooLargeError(
                f"page would be {width_pt * dpi / 72:.0f}x{height_pt * dpi / 72:.0f} px at {dpi} dpi, "
                f"more than the limit of {max_pixels} pixels",
                file=str(path),
                page=number,
            )
        try:
            rendered = convert_from_path(
                str(path), dpi=dpi, first_page=number, last_page=number, grayscale=not colour,
                timeout=POPPLER_TIMEOUT_S,
            )
        except PDFPopplerTimeoutError as exc:
            raise PageTimeoutError(
                f"pdftoppm took longer than {POPPLER_TIMEOUT_S} s", file=str(path), page=number
            ) from exc
        except Exception as exc:  # poppler reports every failure as a generic error
            raise CorruptFileError(f"the page cannot be rendered: {exc}", file=str(path), page=number) from exc
        if not rendered:
            raise CorruptFileError("the page rendered to nothing", file=str(path), page=number)
        yield Page(str(path), number, _to_grey(rendered[0]), dpi, colour)


def _page_sizes_points(info: dict) -> dict[int, tuple[float, float]]:
    """Per-page sizes from pdfinfo run with a page range (keys like ``Page    3 size``)."""
    sizes = {}
    for key, value in info.items():
        match = re.fullmatch(r"Page\s+(\d+) size", key)
        if match:
            size = _page_size_points({"Page size": value})
            if size != (0.0, 0.0):
                sizes[int(match.group(1))] = size
    return sizes


def _page_size_points(info: dict) -> tuple[float, float]:
    size = str(info.get("Page size", ""))  # "595.276 x 841.89 pts (A4)"
    try:
        width, _, height = size.split()[:3]
        return float(width), float(height)
    except ValueError:
        return 0.0, 0.0


def _read_image(path: Path, numbers: list[int] | None, max_pixels: int = MAX_PIXELS) -> Iterator[Page]:
    # Pillow refuses at open (before decoding) beyond twice this; between, our own check below does.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise PageTooLargeError(str(exc), file=str(path)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedFileError("not a PDF or a readable image", file=str(path)) from exc
    with img:
        try:
            n_frames = getattr(img, "n_frames", 1)
        except Exception as exc:  # a damaged multi-page TIFF fails while its frames are counted
            raise CorruptFileError(f"the image's pages cannot be counted: {exc}", file=str(path)) from exc
        for number in range(1, n_frames + 1):
            if numbers is not None and number not in numbers:
                continue
            try:
                img.seek(number - 1)
            except Exception as exc:
                raise CorruptFileError(f"the page cannot be found: {exc}", file=str(path), page=number) from exc
            frame = img
            if frame.width * frame.height > max_pixels:
                raise PageTooLargeError(
                    f"page is {frame.width}x{frame.height} px, more than the limit of {max_pixels} pixels",
                    file=str(path),
                    page=number,
                )
            dpi = _image_dpi(frame)
            try:
                grey = _to_grey(frame)
            except MemoryError as exc:
                raise PageTooLargeError("not enough memory to decode the page", file=str(path), page=number) from exc
            except Exception as exc:  # decoders fail with OSError, ValueError, SyntaxError, struct.error, ...
                raise CorruptFileError(
                    f"the image cannot be decoded: {exc}", file=str(path), page=number
                ) from exc
            yield Page(str(path), number, grey, dpi, frame.mode not in ("1", "L", "LA", "I", "I;16", "F"))


def _image_dpi(frame: Image.Image) -> int:
    dpi = frame.info.get("dpi")
    if dpi and dpi[0] and float(dpi[0]) >= 72:
        return int(round(float(dpi[0])))
    # No resolution recorded: assume an A4 portrait or landscape page.
    return max(72, int(round(min(frame.width, frame.height) / A4_WIDTH_INCHES)))


def _to_grey(img: Image.Image) -> np.ndarray:
    """The page as one uint8 channel: a colour page's red channel (a red seal nearly vanishes in it)."""
    if img.mode in ("P", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    if img.mode in ("RGB", "RGBA"):
        # The channel alone: converting, then taking it from a three-channel array, made three
        # page-sized copies of three channels each (at 300 dpi, 26 MB apiece).
        img = img.getchannel("R")
    elif img.mode != "L":
        img = img.convert("L")
    return np.asarray(img).copy()

"""Read a document into pages, one page in memory at a time.

PDFs go through pdf2image (poppler) at the resolution of the scan embedded in
each page, so nothing is resampled. A page that is nothing but its scan is not
rendered at all: the scan's own pixels are taken out of the PDF (``pdfimages``)
and checked against a thumbnail rendering (``_scan_as_rendered``). Images (PNG,
JPEG, TIFF, multi-page TIFF) go through Pillow. A colour page is reduced to its red channel: black print
stays black there while a red official seal nearly vanishes, which is what
every later stage wants.
"""

from __future__ import annotations

import hashlib
import re
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
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


@dataclass(frozen=True)
class EmbeddedScan:
    """The largest image on a PDF page, as ``pdfimages -list`` describes it."""

    dpi: int
    colour: bool
    width: int  # pixels
    height: int
    alone: bool  # the page's only image (no mask, no second image), 8-bit grey or RGB, JPEG- or Flate-coded,
    # at one resolution both ways: a candidate for taking its pixels as they are (``_scan_pixels``)


def _rendering(scans: dict[int, EmbeddedScan], number: int) -> tuple[int, bool]:
    """(dpi, in colour) page ``number`` is rendered at, from its embedded scan (``_embedded_scans``)."""
    scan = scans.get(number)
    dpi, colour = (scan.dpi, scan.colour) if scan else (DEFAULT_DPI, False)
    return min(max(dpi, 72), MAX_DPI), colour


def _embedded_scans(path: Path) -> dict[int, EmbeddedScan]:
    """Per page: its largest embedded image, from `pdfimages -list`."""
    try:
        out = subprocess.run(
            ["pdfimages", "-list", str(path)], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    best: dict[int, EmbeddedScan] = {}
    rows: dict[int, int] = {}  # images, masks and stencils on each page
    for line in out.splitlines()[2:]:
        cols = line.split()
        # page num type width height color comp bpc enc interp object ID x-ppi y-ppi size ratio
        if len(cols) < 14 or not cols[0].isdigit():
            continue
        page = int(cols[0])
        rows[page] = rows.get(page, 0) + 1
        if cols[2] != "image":
            continue
        width, height, colour_space, components, bits, encoding = int(cols[3]), int(cols[4]), *cols[5:9]
        try:
            x_ppi, y_ppi = float(cols[12]), float(cols[13])
        except ValueError:
            continue
        if page in best and width * height <= best[page].width * best[page].height:
            continue
        plain = (
            colour_space in ("gray", "rgb", "icc") and components in ("1", "3") and bits == "8"
            and encoding in ("jpeg", "image") and round(x_ppi) == round(y_ppi)
        )
        best[page] = EmbeddedScan(round(x_ppi), colour_space not in ("gray", "index"), width, height, plain)
    return {
        page: EmbeddedScan(s.dpi, s.colour, s.width, s.height, s.alone and rows[page] == 1)
        for page, s in best.items()
    }


# The thumbnail a scan's own pixels are checked against, and how far they may differ from it. Both are
# smoothed first (3x3): rendering may drop or repeat a pixel row where the page's size in points does not
# give the scan's pixels exactly, and a sharp edge then moves a quarter of a thumbnail pixel. So smoothed,
# no thumbnail pixel of 570 generated pages differed from their scan's by more than 24 grey levels; their
# scans mirrored, at least 5.5 % of them did.
THUMBNAIL_DPI = 24
THUMBNAIL_MAX_DIFFERING = 0.002


def _scan_pixels(
    path: Path, number: int, scan: EmbeddedScan, dpi: int, colour: bool, page_points: tuple[float, float],
    rotation: int | None,
) -> np.ndarray | None:
    """The page as rendering it at ``dpi`` would give it, straight from its scan's bytes; None where that
    cannot be vouched for (the page is then rendered).

    Rendering a page that is only its scan at the scan's own resolution gives at best the scan's pixels
    back, at ~5x the cost: at 280 dpi pdftoppm took 0.23 s a page, taking the JPEG out and decoding it
    0.03 s, the thumbnail check 0.04 s. At worst it resamples them: a row dropped or repeated where the
    page's size in points does not give the scan's pixels exactly, a colour scan shifted half a pixel.

    Taken only when the scan is the page's only image, fills the page exactly, the page is not turned,
    and a thumbnail rendering of the page agrees: a scan placed mirrored or inverted, or anything drawn
    over it large enough to show at THUMBNAIL_DPI, shows there.
    """
    width_pt, height_pt = page_points
    if not scan.alone or rotation is None or rotation % 360 or scan.dpi != dpi:
        return None
    if abs(scan.width - width_pt * dpi / 72) > 1 or abs(scan.height - height_pt * dpi / 72) > 1:
        return None
    with tempfile.TemporaryDirectory(prefix="formscan-scan-") as folder:
        try:
            subprocess.run(
                ["pdfimages", "-j", "-f", str(number), "-l", str(number), str(path), f"{folder}/scan"],
                capture_output=True, timeout=POPPLER_TIMEOUT_S, check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        files = list(Path(folder).iterdir())
        if len(files) != 1:
            return None
        # A JPEG's EXIF orientation means nothing inside a PDF.
        flags = (cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE) | cv2.IMREAD_IGNORE_ORIENTATION
        pixels = cv2.imread(str(files[0]), flags)
    if pixels is None or pixels.shape[:2] != (scan.height, scan.width):
        return None
    grey = np.ascontiguousarray(pixels[:, :, 2]) if colour else pixels  # the red channel, as _to_grey keeps
    return grey if _scan_as_rendered(path, number, grey, colour) else None


def _scan_as_rendered(path: Path, number: int, grey: np.ndarray, colour: bool) -> bool:
    """Does a thumbnail rendering of the page look like ``grey`` shrunk to its size?"""
    from pdf2image import convert_from_path

    try:
        (thumbnail,) = convert_from_path(
            str(path), dpi=THUMBNAIL_DPI, first_page=number, last_page=number, grayscale=not colour,
            timeout=POPPLER_TIMEOUT_S,
        )
    except Exception:  # poppler's failures come as generic errors; rendering the page will name it
        return False
    expected = _to_grey(thumbnail)
    shrunk = cv2.resize(grey, (expected.shape[1], expected.shape[0]), interpolation=cv2.INTER_AREA)
    difference = cv2.absdiff(cv2.blur(shrunk, (3, 3)), cv2.blur(expected, (3, 3)))
    return float(np.mean(difference > 24)) <= THUMBNAIL_MAX_DIFFERING


def _read_pdf(path: Path, numbers: list[int] | None, max_pixels: int = MAX_PIXELS) -> Iterator[Page]:
    from pdf2image import convert_from_path
    from pdf2image.exceptions import PDFPopplerTimeoutError

    # One pdfinfo call gives the page count and every asked-for page's size (pages can differ).
    info = _pdf_info(path, min(numbers) if numbers else 1, max(numbers) if numbers else 1_000_000_000)
    n_pages = int(info.get("Pages", 0))
    if n_pages < 1:
        raise CorruptFileError("the PDF has no pages", file=str(path))
    sizes = _page_sizes_points(info)
    rotations = _page_rotations(info)
    scans = _embedded_scans(path)
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
        if number in scans:
            pixels = _scan_pixels(
                path, number, scans[number], dpi, colour, (width_pt, height_pt), rotations.get(number)
            )
            if pixels is not None:
                yield Page(str(path), number, pixels, dpi, colour)
                continue
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


def _page_rotations(info: dict) -> dict[int, int]:
    """Per-page /Rotate from pdfinfo run with a page range (keys like ``Page    3 rot``)."""
    rotations = {}
    for key, value in info.items():
        match = re.fullmatch(r"Page\s+(\d+) rot", key)
        if match and str(value).strip().lstrip("-").isdigit():
            rotations[int(match.group(1))] = int(str(value).strip())
    return rotations


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
    if img.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB"))[:, :, 0].copy()
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img).copy()

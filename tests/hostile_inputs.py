"""Generators of hostile input files for the tests: small, written into a test's tmp_path.

Nothing here is committed as a binary; every file is made in well under a second,
including the ones that claim to be huge (they are all-white and compress to kilobytes).
"""

from __future__ import annotations

import os
import re
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pypdf import PageObject, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

ROOT = Path(__file__).parent.parent
SCANS = ROOT / "fixtures" / "scans"
TRUTH = ROOT / "fixtures" / "truth"
CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
A4_MM = (210, 297)


def a4(dpi: int, value: int = 250) -> Image.Image:
    return Image.new("L", (round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi)), value)


def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(CJK_FONT, px, index=2)  # the SC face


def blank_sheet(dpi: int = 100, seed: int = 0) -> Image.Image:
    """An empty separator sheet as scanned: paper noise, a little dust, a dark scanner edge."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(245, 4, (round(297 / 25.4 * dpi), round(210 / 25.4 * dpi))), 0, 255)
    for y, x in rng.integers(0, pixels.shape, size=(8, 2)):
        pixels[y, x] = 40  # dust specks
    pixels[:, :4] = 30  # the scanner lid's shadow along one edge
    return Image.fromarray(pixels.astype(np.uint8))


def cover_letter(dpi: int = 100) -> Image.Image:
    """A scanned cover letter: lines of Chinese text and a signature, no table."""
    page = a4(dpi)
    draw = ImageDraw.Draw(page)
    font = _font(round(4.2 / 25.4 * dpi))
    lines = ["关于报送2020年度项目支出绩效自评表的函", "", "区财政局：",
             "根据《关于开展2020年度项目支出绩效自评工作的通知》要求，",
             "现将我单位2020年度项目支出绩效自评表报送给你们，",
             "共计两份，请审阅。", "", "附件：项目支出绩效自评表", "", "上海市宝山区行政服务中心",
             "2021年3月15日"]
    y = round(30 / 25.4 * dpi)
    for line in lines:
        draw.text((round(25 / 25.4 * dpi), y), line, fill=20, font=font)
        y += round(9 / 25.4 * dpi)
    return page


def drawing_without_table(dpi: int = 100) -> Image.Image:
    """A page with a figure and a caption but no ruled table (a site photo printout, say)."""
    page = a4(dpi)
    draw = ImageDraw.Draw(page)
    mm = dpi / 25.4
    for k in range(6):
        r = (10 + 8 * k) * mm
        draw.ellipse((105 * mm - r, 120 * mm - r, 105 * mm + r, 120 * mm + r), outline=40, width=2)
    draw.line((30 * mm, 60 * mm, 180 * mm, 190 * mm), fill=40, width=3)
    draw.text((60 * mm, 220 * mm), "图1 项目现场照片", fill=20, font=_font(round(5 * mm)))
    return page


def other_table(dpi: int = 100) -> Image.Image:
    """A ruled table that is not a 自评表: a contact list."""
    page = a4(dpi)
    draw = ImageDraw.Draw(page)
    mm = dpi / 25.4
    rows = [("姓名", "单位", "电话"), ("张伟", "财政局", "56781234"), ("李娜", "审计局", "56785678"),
            ("王强", "统计局", "56789012")]
    xs, y0, row_h = [20, 60, 130, 190], 50, 14
    draw.text((70 * mm, 35 * mm), "联系人名单", fill=20, font=_font(round(6 * mm)))
    for r in range(len(rows) + 1):
        draw.line((xs[0] * mm, (y0 + r * row_h) * mm, xs[-1] * mm, (y0 + r * row_h) * mm), fill=20, width=2)
    for x in xs:
        draw.line((x * mm, y0 * mm, x * mm, (y0 + len(rows) * row_h) * mm), fill=20, width=2)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            draw.text(((xs[c] + 4) * mm, (y0 + r * row_h + 4) * mm), text, fill=20, font=_font(round(5 * mm)))
    return page


def save_pdf(path: Path, pages: list[Image.Image], dpi: int = 100) -> Path:
    """A scanned PDF: one JPEG image per page at ``dpi`` (what Pillow writes for greyscale)."""
    pages[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=pages[1:], quality=90)
    return path


def truncated_pdf(path: Path, source: Path) -> Path:
    """The first half of a PDF, as an old disk or a broken download leaves it."""
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def broken_xref_pdf(path: Path, source: Path) -> Path:
    """Every cross-reference offset zeroed and ``startxref`` pointing past the end of the file."""
    data = source.read_bytes()
    start = data.rindex(b"\nxref\n") + 1
    table = re.sub(rb"\d{10} 00000 n", b"0000000000 00000 n", data[start:])
    table = re.sub(rb"startxref\s+\d+", b"startxref\n99999999", table)
    path.write_bytes(data[:start] + table)
    return path


def encrypted_pdf(path: Path, source: Path, user_password: str) -> Path:
    """AES-256 encrypted; with ``user_password=""`` it opens without one (only an owner password)."""
    writer = PdfWriter(clone_from=str(source))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def rotated_pdf(path: Path, source: Path, degrees: int) -> Path:
    """The scan turned a quarter (or half) turn as the scanner delivered it (the page's /Rotate)."""
    writer = PdfWriter(clone_from=str(source))
    for page in writer.pages:
        page.rotate(degrees)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def combined_pdf(path: Path, parts: list[Path | None]) -> Path:
    """The pages of several PDFs in one file; ``None`` inserts an empty A4 page (no image at all)."""
    writer = PdfWriter()
    for part in parts:
        if part is None:
            writer.add_blank_page(width=595.28, height=841.89)
        else:
            writer.append(str(part))
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def _text_overlay(width: float, height: float, lines: list[str], invisible: bool) -> PageObject:
    overlay = PageObject.create_blank_page(width=width, height=height)
    font = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    })
    overlay[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
    )
    ops = [f"BT /F1 12 Tf {3 if invisible else 0} Tr 72 {float(height) - 90:.0f} Td 16 TL"]
    ops += [f"({line}) '" for line in lines]
    ops.append("ET")
    content = DecodedStreamObject()
    content.set_data("\n".join(ops).encode("latin-1"))
    overlay[NameObject("/Contents")] = content
    return overlay


def with_text_layer(path: Path, source: Path, lines: list[str]) -> Path:
    """The scan with an invisible text layer over it, as OCR software leaves one (the text may be wrong)."""
    writer = PdfWriter(clone_from=str(source))
    for page in writer.pages:
        page.merge_page(_text_overlay(page.mediabox.width, page.mediabox.height, lines, invisible=True))
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def text_only_pdf(path: Path, lines: list[str]) -> Path:
    """A born-digital letter: visible text, no image, no table."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=595.28, height=841.89)
    page.merge_page(_text_overlay(595.28, 841.89, lines, invisible=False))
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def huge_page_pdf(path: Path, side_px: int = 20_000, dpi: int = 100) -> Path:
    """One page holding a ``side_px``² one-bit scan at ``dpi`` (a 200-inch sheet): ~50 KB on disk."""
    row = b"\xff" * ((side_px + 7) // 8)
    squeeze = zlib.compressobj(9)
    stream = b"".join(squeeze.compress(row) for _ in range(side_px)) + squeeze.flush()
    points = side_px * 72 / dpi
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {points:.0f} {points:.0f}] "
        f"/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>".encode(),
        f"<< /Type /XObject /Subtype /Image /Width {side_px} /Height {side_px} /ColorSpace /DeviceGray "
        f"/BitsPerComponent 1 /Filter /FlateDecode /Length {len(stream)} >>\nstream\n".encode()
        + stream + b"\nendstream",
    ]
    draw = f"q {points:.0f} 0 0 {points:.0f} 0 0 cm /Im0 Do Q".encode()
    objects.append(f"<< /Length {len(draw)} >>\nstream\n".encode() + draw + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def png_bomb(path: Path, side_px: int = 40_000) -> Path:
    """A valid one-bit PNG of ``side_px``² white pixels: ~200 KB that would decode to gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((side_px + 7) // 8)  # filter byte, then the row's bits
    squeeze = zlib.compressobj(9)
    idat = b"".join(squeeze.compress(row) for _ in range(side_px)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", side_px, side_px, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def fixture_page_image(name: str) -> tuple[Image.Image, int]:
    """The first page of a committed fixture scan as it is read (greyscale), and its dpi."""
    from pipeline.read import read_pages

    page = next(read_pages(SCANS / name))
    return Image.fromarray(page.image), page.dpi


def make_unreadable_entries(folder):
    """What a folder can hold that cannot be read, even by root (for whom chmod 000 is no barrier):
    a link to a deleted file, a link loop, a named pipe and a socket, all named like scans."""
    folder.mkdir()
    (folder / "gone.pdf").symlink_to(folder / "deleted-long-ago.pdf")
    (folder / "loop-a.pdf").symlink_to(folder / "loop-b.pdf")
    (folder / "loop-b.pdf").symlink_to(folder / "loop-a.pdf")
    os.mkfifo(folder / "pipe.pdf")  # opening it would wait forever for a writer
    sock, cwd = socket.socket(socket.AF_UNIX), os.getcwd()
    try:
        os.chdir(folder)  # a socket's path is limited to ~107 bytes: bind it by its short relative name
        sock.bind("socket.png")
    finally:
        os.chdir(cwd)
        sock.close()
    return {"gone.pdf": "not_found", "loop-a.pdf": "unreadable", "loop-b.pdf": "unreadable",
            "pipe.pdf": "unsupported", "socket.png": "unsupported"}

"""A value a false rule cut in two is read again whole, across the rule (pipeline.extract)."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from fixtures.generate import FONTS
from pipeline.assemble import form_vocabulary
from pipeline.cell_image import prepare_cell
from pipeline.extract import read_across_cuts
from pipeline.grid import Box, Cell, Grid
from pipeline.lexicon import Lexicon
from pipeline.ocr import CellReader
from pipeline.templates import get_template

DPI = 230
PRINTED = "河道水质达标率"


@pytest.fixture(scope="module")
def reader() -> CellReader:
    return CellReader()


def tight_row() -> tuple[np.ndarray, int]:
    """A row two cells wide, its first cell's text touching the rules above and below; and the
    x of 标's upright stroke, where a glyph's stroke is taken for a column line."""
    path, index = FONTS["Noto Sans CJK SC"]["regular"]
    font = ImageFont.truetype(path, 40, index=index)
    image = Image.new("L", (700, 100), 245)
    draw = ImageDraw.Draw(image)
    for x in (10, 420, 690):
        draw.line([(x, 30), (x, 76)], fill=20, width=2)
    draw.line([(10, 30), (690, 30)], fill=20, width=2)
    draw.line([(10, 76), (690, 76)], fill=20, width=2)
    draw.text((16, 33), PRINTED, font=font, fill=25)
    draw.text((430, 33), "≥85%", font=font, fill=25)
    stroke = 16 + int(font.getlength(PRINTED[:5])) + 9  # 木's upright, a quarter into 标
    return np.asarray(image), stroke


def test_a_value_cut_at_a_glyph_s_stroke_is_read_whole_as_one_cell(reader):
    image, stroke = tight_row()
    left = Cell(0, 0, 1, 1, Box(12, 32, stroke - 1, 75))
    right = Cell(0, 1, 1, 1, Box(stroke + 2, 32, 419, 75))
    other = Cell(0, 2, 1, 1, Box(422, 32, 689, 75))
    grid = Grid((30, 76), (10, stroke, 420, 690), (left, right, other))
    texts = {cell: reader.read(image_of(image, cell)) for cell in grid.cells}
    vocabulary = form_vocabulary(Lexicon.builtin(), get_template())

    again, read = read_across_cuts(image, DPI, grid, texts, [(left, right)], reader, vocabulary)

    whole = Cell(0, 0, 1, 2, Box(12, 32, 419, 75))
    assert again.cells == (whole, other)
    assert read[whole].text == PRINTED
    assert read[other] == texts[other] and set(read) == {whole, other}


def image_of(image, cell):
    return prepare_cell(image, cell.box, DPI)

"""Cell reading and mapping alone: run every stage after the grid on the generator's true grid.

    python -m bench.ocr_on_true_grid [fixtures/truth] -o OUT.jsonl

Separates reading errors from layout errors: the page is straightened by the
truth's own skew and cut by the truth's cell boxes, so whatever is still wrong
in ``bench.accuracy OUT.jsonl`` comes from cell preparation, OCR, repair,
mapping or validation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models import SourceRef
from pipeline.assemble import assemble_record
from pipeline.cell_image import prepare_cell
from pipeline.deskew import rotate
from pipeline.extract import judge, read_header
from pipeline.grid import Box, Cell, Grid
from pipeline.ocr import CellReader
from pipeline.read import read_pages
from pipeline.seal import erase_seals


def true_grid(page_truth: dict, dpi: int) -> Grid:
    px = dpi / 25.4
    cells = []
    for c in page_truth["grid"]["cells"]:
        x0, y0, x1, y1 = (round(v * px) for v in c["box_mm"])
        cells.append(Cell(c["row"], c["col"], c["row_span"], c["col_span"], Box(x0, y0, x1, y1)))
    n_rows, n_cols = page_truth["grid"]["n_rows"], page_truth["grid"]["n_cols"]
    row_edges = [0] * (n_rows + 1)
    col_edges = [0] * (n_cols + 1)
    for cell in cells:
        row_edges[cell.row], row_edges[cell.row + cell.row_span] = cell.box.y0, cell.box.y1
        col_edges[cell.col], col_edges[cell.col + cell.col_span] = cell.box.x0, cell.box.x1
    return Grid(tuple(row_edges), tuple(col_edges), tuple(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", nargs="?", type=Path, default=Path("fixtures/truth"))
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    reader = CellReader()
    with args.output.open("w", encoding="utf-8") as out:
        for truth_file in sorted(args.truth.glob("*.json")):
            truth = json.loads(truth_file.read_text(encoding="utf-8"))
            scan_path = args.truth.parent / truth["file"]
            for page, page_truth in zip(read_pages(scan_path), truth["pages"]):
                image = rotate(page.image, -page_truth["scan"]["skew_deg"])
                image = erase_seals(image, page.dpi, ghost=page.was_colour)
                grid = true_grid(page_truth, page.dpi)
                texts = {cell: reader.read(prepare_cell(image, cell.box, page.dpi)) for cell in grid.cells}
                assembled = assemble_record(grid, texts, read_header(image, grid.row_edges[0], page.dpi, reader))
                result = judge(SourceRef(file=str(scan_path), page=page.number), assembled)
                out.write(result.to_json_line() + "\n")


if __name__ == "__main__":
    main()

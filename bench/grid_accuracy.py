"""Grid structure alone, against the generator's truth, per damage kind.

    python -m bench.grid_accuracy [TRUTH_DIR ...]

A page's grid is right when the detected fine grid has the truth's rows and
columns and exactly its set of cells (row, column, row span, column span).
Cell recall counts the truth's cells found with the right span, over all pages.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from bench.accuracy import damage_kinds
from pipeline.deskew import deskew, detect_orientation, rotate_upright
from pipeline.errors import FormscanError
from pipeline.grid import detect_grid
from pipeline.read import read_pages


def cell_set(cells) -> set[tuple[int, int, int, int]]:
    return {(c["row"], c["col"], c["row_span"], c["col_span"]) if isinstance(c, dict)
            else (c.row, c.col, c.row_span, c.col_span) for c in cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", nargs="*", type=Path, default=[Path("fixtures/truth")])
    args = parser.parse_args()
    groups: dict[str, list[tuple[bool, int, int]]] = defaultdict(list)
    wrong: list[str] = []
    seconds = 0.0
    for truth_dir in args.truth:
        for truth_file in sorted(truth_dir.glob("*.json")):
            truth = json.loads(truth_file.read_text(encoding="utf-8"))
            for page, page_truth in zip(read_pages(truth_dir.parent / truth["file"]), truth["pages"]):
                expected = cell_set(page_truth["grid"]["cells"])
                start = time.perf_counter()
                try:
                    image, _ = deskew(rotate_upright(page.image, detect_orientation(page.image)))
                    found = cell_set(detect_grid(image).cells)
                except FormscanError:
                    found = set()
                seconds += time.perf_counter() - start
                exact = found == expected
                if not exact:
                    wrong.append(f"{truth_file.stem} p{page.number}: missing {sorted(expected - found)[:4]} "
                                 f"extra {sorted(found - expected)[:4]}")
                for kind in damage_kinds(page_truth.get("scan", {})):
                    groups[kind].append((exact, len(expected & found), len(expected)))
    print(f"{'pages':<22}{'n':>4}{'exact':>8}{'cell recall':>13}")
    for kind, rows in sorted(groups.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        exact = sum(r[0] for r in rows) / len(rows)
        recall = sum(r[1] for r in rows) / max(1, sum(r[2] for r in rows))
        print(f"{kind:<22}{len(rows):>4}{exact:>8.3f}{recall:>13.4f}")
    print(f"orientation + deskew + grid: {seconds / max(1, len(groups['all'])):.2f} s a page")
    for line in wrong:
        print("wrong:", line)


if __name__ == "__main__":
    main()

"""img2table at its best setting on page images, each timed: bench/speed.py's img2table contender.

    .venv-img2table/bin/python bench/img2table_worker.py OUT.json PAGE.png [PAGE.png ...]

Runs in .venv-img2table (bench/img2table_env.sh makes it), never in formscan's venv, so it
imports nothing of formscan. Writes OUT.json (not stdout: img2table lets `tesseract --version`
print there): one list, per image in the given order, the seconds its extraction took, how
many tables were found and the text of every cell found; where img2table itself failed on a
page (it raises on some words whose text it lost), the error instead of tables.
"""

from __future__ import annotations

import json
import sys
import time

from img2table.document import Image
from img2table.ocr import TesseractOCR


def extract(path: str, ocr: TesseractOCR) -> dict:
    start = time.perf_counter()
    try:
        # detect_rotation=True: without it, a page skewed by half a degree loses its rules and no table is found.
        tables = Image(path, detect_rotation=True).extract_tables(
            ocr=ocr, implicit_rows=False, borderless_tables=False, min_confidence=1
        )
    except Exception as exc:  # img2table's own failure on this page: it read nothing, its time still counts
        error = f"{type(exc).__name__}: {exc}"
        return {"image": path, "seconds": time.perf_counter() - start, "tables": 0, "cells": [], "error": error}
    seconds = time.perf_counter() - start
    cells = [cell.value for table in tables for row in table.content.values() for cell in row if cell.value]
    return {"image": path, "seconds": seconds, "tables": len(tables), "cells": cells}


def main(out: str, paths: list[str]) -> None:
    ocr = TesseractOCR(lang="chi_sim")  # one instance for the run, as a user's script would hold it
    results = [extract(path, ocr) for path in paths]
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(results, handle, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

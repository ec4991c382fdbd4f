"""Fit per-field confidence on a calibration set; report its reliability on another set.

    python -m bench.calibrate fit data/calibration/truth data/calc-cal/truth   # writes pipeline/calibration.json
    python -m bench.calibrate report data/eval/truth                           # reliability table

Every field read from a cell falls in an evidence class (see pipeline/confidence.py).
``fit`` runs the pipeline on the calibration sets (one per fitted style) and sets each
class's confidence to its observed rate of right fields, with Jeffreys' half a right and half a wrong reading
added so that a small class is not trusted blindly. Pages whose layout is in doubt are left
out: every field on them is flagged whatever its class (``pipeline.validate.layout_doubt``).
``report`` runs on a different set and prints,
per class and per confidence band, the confidence given against the rate observed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.accuracy import leaf_fields, same_value
from pipeline.confidence import CALIBRATION_FILE, calibrated_confidence

_READER = None


def _init() -> None:
    global _READER
    from pipeline.ocr import CellReader

    _READER = CellReader()


def _classify(job: tuple[str, int]) -> tuple[dict | None, dict[str, str]]:
    """The page's record and, per field read from a cell, its evidence class."""
    from pipeline.assemble import AssembledPage
    from pipeline.extract import extract_page_full
    from pipeline.read import read_pages
    from pipeline.validate import evidence_classes

    path, number = job
    (page,) = read_pages(path, [number])
    extraction = extract_page_full(page, _READER)
    if extraction.result.record is None or extraction.layout_doubt is not None:
        # Every field of a page whose layout is in doubt is flagged whatever its evidence: such
        # pages say nothing about how far a reading class can be trusted on a recognised layout.
        return None, {}
    page = AssembledPage(extraction.result.record, extraction.evidence, under_seal=extraction.under_seal)
    page.unparseable.update((f.field, "") for f in extraction.result.flags if f.reason == "unparseable")
    classes = evidence_classes(page)
    return extraction.result.record.model_dump(mode="json"), classes


def pages_of(truth_dirs: list[Path]) -> tuple[list[tuple[str, int]], list[dict]]:
    """(scan file, page number) and the page's true leaf fields, for every page of the sets."""
    jobs, truths = [], []
    for truth_file in sorted(f for truth_dir in truth_dirs for f in truth_dir.glob("*.json")):
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        for page in truth["pages"]:
            jobs.append((str(truth_file.parent.parent / truth["file"]), page["page"]))
            truths.append(leaf_fields(page["record"]))
    return jobs, truths


def observe(truth_dirs: list[Path], workers: int, wrong: list[str] | None = None) -> list[tuple[str, bool]]:
    """(evidence class, right?) for every field read from a cell on every page of the sets.

    ``wrong``: if given, gets one line per wrong field (page, field, class, truth, reading).
    """
    jobs, truths = pages_of(truth_dirs)
    observations, left_out = [], []
    with ProcessPoolExecutor(max_workers=workers, initializer=_init) as pool:
        for job, truth, (record, classes) in zip(jobs, truths, pool.map(_classify, jobs)):
            if record is None:
                left_out.append(f"{Path(job[0]).name} p{job[1]}")
                continue
            got = leaf_fields(record)
            for field, cls in classes.items():
                if field in truth:
                    right = field in got and same_value(truth[field], got[field])
                    observations.append((cls, right))
                    if not right and wrong is not None:
                        wrong.append(f"{Path(job[0]).name} p{job[1]} {field} [{cls}]: "
                                     f"truth={truth[field]!r} got={got.get(field)!r}")
    if left_out:
        print(f"left out {len(left_out)} page(s) with no record or a layout in doubt (every field flagged): "
              + ", ".join(left_out), file=sys.stderr)
    return observations


def fit(observations: list[tuple[str, bool]]) -> dict:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for cls, right in observations:
        counts[cls][0] += 1
        counts[cls][1] += right
    return {
        "classes": {
            cls: {"fields": n, "right": right, "confidence": round((right + 0.5) / (n + 1), 5)}
            for cls, (n, right) in sorted(counts.items())
        }
    }


def report(observations: list[tuple[str, bool]]) -> None:
    by_class: dict[str, list[bool]] = defaultdict(list)
    for cls, right in observations:
        by_class[cls].append(right)
    print(f"{'evidence class':<26}{'fields':>8}{'confidence':>12}{'observed':>10}")
    for cls, rights in sorted(by_class.items(), key=lambda kv: -len(kv[1])):
        print(f"{cls:<26}{len(rights):>8}{calibrated_confidence(cls):>12.4f}{sum(rights) / len(rights):>10.4f}")
    bands = [(0.0, 0.9), (0.9, 0.99), (0.99, 0.995), (0.995, 0.999), (0.999, 1.01)]
    print(f"\n{'confidence band':<26}{'fields':>8}{'mean given':>12}{'observed':>10}")
    for low, high in bands:
        members = [(calibrated_confidence(c), r) for c, r in observations if low <= calibrated_confidence(c) < high]
        if members:
            given = sum(c for c, _ in members) / len(members)
            seen = sum(r for _, r in members) / len(members)
            print(f"[{low:.3f}, {min(high, 1):.3f}){'':<10}{len(members):>8}{given:>12.4f}{seen:>10.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("fit", "report"))
    parser.add_argument("truth", type=Path, nargs="+", help="truth folders of one or more sets")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--wrong", action="store_true", help="list every wrong field with its evidence class")
    args = parser.parse_args()
    wrong: list[str] = []
    observations = observe(args.truth, args.workers, wrong)
    if args.mode == "fit":
        table = fit(observations)
        table["fitted_on"] = [str(t) for t in args.truth]
        CALIBRATION_FILE.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION_FILE} from {len(observations)} fields")
    report(observations)
    if args.wrong:
        print("\nwrong fields:", *wrong, sep="\n  ")


if __name__ == "__main__":
    main()

"""The ``formscan`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

from models import PageResult

DESCRIPTION = """\
formscan reads scanned 财政项目支出绩效自评表 (fiscal project performance
self-evaluation tables) and writes one validated JSON record per form page.

Every text cell is read by two OCR engines (Tesseract chi_sim and PP-OCR);
fields they do not agree on, or that break a rule of the form (执行率 =
全年执行数/全年预算数, 得分 <= 分值, the 总分 sums, ...), are flagged for review.
"""

EXTRACT_HELP = """\
Read PDFs and images (PNG, JPEG, TIFF; folders are searched recursively) and
write one JSON line per page to OUT:

  {"source": {"file": ..., "page": 1}, "record": {...}, "flags": [...],
   "status": "auto_accepted" | "needs_review"}

A page that is not such a form, or a file that cannot be read, gives a line
with "error": {"kind": ..., "message": ...} instead, and the run goes on.
Kinds: not_found, unreadable, corrupt, encrypted, unsupported, too_large,
too_many_pages, duplicate (the same bytes as a file listed before it),
blank_page, no_table, not_a_form, timeout, crashed, internal.
Exit status: 0 when at least one page was read, 1 when none could be, 2 on
bad arguments. No database or server is used.
"""


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self.start = time.monotonic()

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        rate = self.done / max(1e-6, time.monotonic() - self.start) * 60
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} pages  {rate:.1f}/min")
        sys.stderr.flush()
        if self.done == self.total:
            sys.stderr.write("\n")


def run_extract(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from formscan.pool import PagePool
    from pipeline.extract import plan_pages

    items, failed = plan_pages(
        args.paths, max_pages_per_file=args.max_pages_per_file or None, max_pixels=args.max_pixels
    )
    if not items and not failed:
        print("formscan: no PDF or image files found in the given paths", file=sys.stderr)
        return 1
    workers = max(1, min(args.workers or os.cpu_count() or 1, len(items) or 1))
    progress = Progress(len(items), sys.stderr.isatty() and not args.quiet)
    counts: Counter[str] = Counter()
    flagged = 0
    start = time.monotonic()
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        for result in failed:
            out.write(result.to_json_line() + "\n")
            counts["error"] += 1
        pool = PagePool(workers, max_pixels=args.max_pixels, page_timeout=args.page_timeout or None)
        for _item, block in pool.run(items):
            for line in block.splitlines():
                out.write(line + "\n")
                out.flush()
                result = PageResult.model_validate_json(line)
                counts[result.status.value if result.status else "error"] += 1
                flagged += len(result.flags)
            progress.step()
    finally:
        if out is not sys.stdout:
            out.close()
    elapsed = time.monotonic() - start
    records = counts["auto_accepted"] + counts["needs_review"]
    if not args.quiet:
        print(
            f"formscan: {len(items)} pages in {elapsed:.1f} s ({len(items) / max(elapsed, 1e-6) * 60:.1f} pages/min, "
            f"{workers} worker{'s' if workers > 1 else ''}): {records} records "
            f"({counts['auto_accepted']} auto-accepted, {counts['needs_review']} need review, "
            f"{flagged} flagged fields), {counts['error']} errors -> {args.output}",
            file=sys.stderr,
        )
    return 0 if records or (counts["error"] == 0 and items) else 1


MAX_PIXELS_DEFAULT = 200_000_000  # pipeline.read.MAX_PIXELS, not imported so that --help stays fast
DEFAULT_PAGE_TIMEOUT_S = 300.0  # a page normally takes seconds; this only catches a stuck one


def _count_arg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return value


def _positive_int_arg(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds_arg(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 for no limit")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="formscan", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    extract = sub.add_parser(
        "extract",
        help="scanned forms in, JSONL records out (no database, no server)",
        description=EXTRACT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extract.add_argument("paths", nargs="+", metavar="PATH", help="PDF or image files, or folders of them")
    extract.add_argument("-o", "--output", required=True, metavar="OUT", help="JSONL file to write ('-' for stdout)")
    extract.add_argument(
        "--workers", type=int, default=0, metavar="N", help="pages read in parallel (default: the machine's cores)"
    )
    extract.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    extract.add_argument(
        "--max-pages-per-file", type=_count_arg, default=0, metavar="N",
        help="refuse a file of more than N pages with a too_many_pages line (default: no limit)",
    )
    extract.add_argument(
        "--max-pixels", type=_positive_int_arg, default=MAX_PIXELS_DEFAULT, metavar="N",
        help=f"refuse a page of more than N pixels, before rendering it, as too_large (default: {MAX_PIXELS_DEFAULT})",
    )
    extract.add_argument(
        "--page-timeout", type=_seconds_arg, default=DEFAULT_PAGE_TIMEOUT_S, metavar="SECONDS",
        help="stop a page that takes longer (its worker is replaced) and report it as timeout; "
        f"0 for no limit (default: {DEFAULT_PAGE_TIMEOUT_S:g})",
    )
    extract.set_defaults(func=run_extract)
    __import__("formscan.flow_commands").flow_commands.register(sub)  # ingest, schedule, deploy (Prefect flows)
    __import__("review.commands").commands.register(sub)  # review, export, user, token (issue 4)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (getattr(args, "workers", 0) or 0) < 0:
        print("formscan: --workers must be at least 1", file=sys.stderr)
        return 2
    return args.func(args)

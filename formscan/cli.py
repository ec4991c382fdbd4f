"""The ``formscan`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

from formscan import flow_commands
from formscan.options import Progress, add_read_options, add_template_option, read_settings, templates_known
from review import commands as review_commands

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

Each page's form is detected among the installed templates (the project
form's record above; a 部门整体支出绩效自评表 gives its template's record,
with "form_type": "department_performance_self_evaluation"), or given with
--template NAME.

A page that is not such a form, or a file that cannot be read, gives a line
with "error": {"kind": ..., "message": ...} instead, and the run goes on.
Kinds: not_found, unreadable, corrupt, encrypted, unsupported, too_large,
too_many_pages, duplicate (the same bytes as a file listed before it),
blank_page, no_table, not_a_form, timeout, crashed, internal.
Exit status: 0 when at least one page was read, 1 when none could be, 2 on
bad arguments. No database or server is used.
"""


def run_extract(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from formscan.pool import PagePool, PageWork
    from pipeline.errors import NotAFormError
    from pipeline.extract import plan_pages
    from pipeline.validate import LAYOUT_FAILED

    settings = read_settings(args)
    if not templates_known(settings):
        return 2
    items, failed = plan_pages(
        args.paths, max_pages_per_file=settings.max_pages_per_file, max_pixels=settings.max_pixels
    )
    if not items and not failed:
        print("formscan: no PDF or image files found in the given paths", file=sys.stderr)
        return 1
    workers = settings.worker_count(len(items))
    progress = Progress(len(items), sys.stderr.isatty() and not args.quiet)
    counts: Counter[str] = Counter()
    flagged = 0
    start = time.monotonic()
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        for result in failed:
            out.write(result.to_json_line() + "\n")
            counts["error"] += 1
        for _item, extraction in PagePool(PageWork.RECORD, settings).run(items):
            result = extraction.result
            out.write(result.to_json_line() + "\n")
            out.flush()
            counts[result.status.value if result.status else "error"] += 1
            counts["layout_failed"] += any(flag.reason == LAYOUT_FAILED for flag in result.flags)
            counts["not_a_form"] += result.error is not None and result.error.kind == NotAFormError.kind
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
            f"{counts['layout_failed']} of them forms whose layout failed, {flagged} flagged fields), "
            f"{counts['error']} errors ({counts['not_a_form']} pages not a form) -> {args.output}",
            file=sys.stderr,
        )
    return 0 if records or (counts["error"] == 0 and items) else 1


TABLES_HELP = """\
Find every ruled table on every page of PDFs and images (PNG, JPEG, TIFF;
folders are searched recursively), read every cell with both OCR engines and
write the tables to OUT, merged cells intact:

  html  one <table> per table, rowspan/colspan for merged cells; cells under
        confidence 0.98 shaded, each cell's confidence in its tooltip
  xlsx  one sheet per table with merged ranges, each cell's confidence (and
        both engines' readings) as a comment, cells under 0.98 shaded; an
        "index" sheet lists every page, its tables and the pages not read
  json  {"pages": [{"source", "tables": [{"cells": [{"row", "col",
        "row_span", "col_span", "text", "confidence", "evidence",
        "readings", "box"}]}], "error"}]}

The format is taken from OUT's suffix unless --format is given. A page with no
table, or a file that cannot be read, is reported (on stderr and in OUT) and the
run goes on. Exit status: 0 when a table was found, 1 when none was, 2 on bad
arguments.
"""


def _tables_format(args: argparse.Namespace) -> str | None:
    if args.format:
        return args.format
    suffix = os.path.splitext(args.output)[1].lower().lstrip(".")
    return {"htm": "html", "html": "html", "json": "json", "xlsx": "xlsx"}.get(suffix)


def run_tables(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    fmt = _tables_format(args)
    if fmt is None:
        print("formscan tables: give --format html|xlsx|json, or an OUT ending in .html, .xlsx or .json",
              file=sys.stderr)
        return 2
    if fmt == "xlsx" and args.output == "-":
        print("formscan tables: an XLSX workbook cannot go to stdout; name a file", file=sys.stderr)
        return 2
    from formscan.pool import PagePool, PageWork
    from models import PageTables
    from pipeline.extract import plan_pages
    from pipeline.read import list_documents
    from pipeline.table_export import to_html, to_json, write

    settings = read_settings(args)
    items, failed = plan_pages(args.paths, max_pages_per_file=settings.max_pages_per_file,
                               max_pixels=settings.max_pixels)
    if not items and not failed:
        print("formscan tables: no PDF or image files found in the given paths", file=sys.stderr)
        return 1
    pages: list[PageTables] = []
    start = time.monotonic()

    def report(page: PageTables) -> None:
        pages.append(page)
        if args.quiet:
            return
        where = page.source.file + (f", page {page.source.page}" if page.source.page is not None else "")
        if page.error is not None:
            what = f"{page.error.kind}: {page.error.message}"
        else:
            what = f"{len(page.tables)} table{'s' if len(page.tables) != 1 else ''} " \
                   f"({sum(len(t.cells) for t in page.tables)} cells)"
        print(f"formscan tables: [{len(pages)}] {where}: {what}", file=sys.stderr, flush=True)

    for result in failed:
        report(PageTables(source=result.source, error=result.error))
    for _item, page in PagePool(PageWork.TABLES, settings).run(items):
        report(page)
    order = {str(path): i for i, path in enumerate(list_documents(args.paths))}
    pages.sort(key=lambda page: order.get(page.source.file, len(order)))  # as the files were given
    if args.output == "-":
        sys.stdout.write(to_json(pages) + "\n" if fmt == "json" else to_html(pages))
    else:
        write(pages, args.output, fmt)
    n_tables = sum(len(p.tables) for p in pages)
    if not args.quiet:
        print(
            f"formscan tables: {len(pages)} pages in {time.monotonic() - start:.1f} s: {n_tables} tables, "
            f"{sum(1 for p in pages if p.error)} pages or files not read (no table, or an error) "
            f"-> {args.output} ({fmt})",
            file=sys.stderr,
        )
    return 0 if n_tables else 1


def _page_command(sub, name: str, summary: str, description: str, output_help: str) -> argparse.ArgumentParser:
    """A command that reads PATHs of scans and writes OUT."""
    command = sub.add_parser(name, help=summary, description=description,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("paths", nargs="+", metavar="PATH", help="PDF or image files, or folders of them")
    command.add_argument("-o", "--output", required=True, metavar="OUT", help=output_help)
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="formscan", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    extract = _page_command(sub, "extract", "scanned forms in, JSONL records out (no database, no server)",
                            EXTRACT_HELP, "JSONL file to write ('-' for stdout)")
    extract.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    add_read_options(extract)
    add_template_option(extract)
    extract.set_defaults(func=run_extract)
    tables = _page_command(sub, "tables", "every ruled table on any page, as HTML, XLSX or JSON with merged cells",
                           TABLES_HELP, "file to write ('-' for stdout, html or json only)")
    tables.add_argument("--format", choices=("html", "xlsx", "json"), help="default: from OUT's suffix")
    tables.add_argument("-q", "--quiet", action="store_true", help="no progress lines and no summary")
    add_read_options(tables)
    tables.set_defaults(func=run_tables)
    flow_commands.register(sub)  # ingest, schedule, deploy (Prefect flows)
    review_commands.register(sub)  # review, export, user, token
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)

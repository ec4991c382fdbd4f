"""The options and progress bar every command that reads pages shares: one module the
commands import, so none imports another.

It imports nothing heavy at module level: ``formscan --help`` stays fast."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from formscan.pool import ReadSettings


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


MAX_PIXELS_DEFAULT = 200_000_000  # pipeline.read.MAX_PIXELS, not imported so that --help stays fast
DEFAULT_PAGE_TIMEOUT_S = 300.0  # formscan.pool.DEFAULT_PAGE_TIMEOUT_S, likewise


def count_arg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return value


def positive_int_arg(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def seconds_arg(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 for no limit")
    return value


def add_read_options(command: argparse.ArgumentParser) -> None:
    """How pages are read (``formscan.pool.ReadSettings``): the same options, with the same
    defaults, on every command that reads pages."""
    command.add_argument(
        "--workers", type=count_arg, default=0, metavar="N",
        help="pages read at once, each in its own process (default 0: one per core)",
    )
    command.add_argument(
        "--page-timeout", type=seconds_arg, default=DEFAULT_PAGE_TIMEOUT_S, metavar="SECONDS",
        help="stop a page that takes longer (its worker is replaced) and report it as timeout; "
        f"0 for no limit (default: {DEFAULT_PAGE_TIMEOUT_S:g})",
    )
    command.add_argument(
        "--max-pixels", type=positive_int_arg, default=MAX_PIXELS_DEFAULT, metavar="N",
        help=f"refuse a page of more than N pixels, before rendering it, as too_large (default: {MAX_PIXELS_DEFAULT})",
    )
    command.add_argument(
        "--max-pages-per-file", type=count_arg, default=0, metavar="N",
        help="refuse a file of more than N pages as too_many_pages (default 0: no limit)",
    )


def add_template_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--template", metavar="NAME",
        help="read every page as this form: a template's name, the stem of a file in pipeline/templates "
        "(project_self_evaluation, department_self_evaluation, ...); default: detect each page's form "
        "by the labels that identify it",
    )


def read_settings(args: argparse.Namespace) -> ReadSettings:
    """The page-reading options every command that reads pages takes, as one object."""
    from formscan.pool import ReadSettings

    return ReadSettings(
        workers=args.workers or 0, page_timeout=args.page_timeout or None, max_pixels=args.max_pixels,
        max_pages_per_file=args.max_pages_per_file or None,
        templates=(args.template,) if getattr(args, "template", None) else (),
    )


def templates_known(settings: ReadSettings) -> bool:
    """Whether every template named exists; says why not on stderr."""
    from pipeline.errors import TemplateError
    from pipeline.templates import get_template

    try:
        for name in settings.templates:
            get_template(name)
    except TemplateError as exc:
        print(f"formscan: {exc}", file=sys.stderr)
        return False
    return True

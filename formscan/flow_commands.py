"""The subcommands that run Prefect flows: ingest, schedule, deploy.

``formscan.cli.build_parser`` calls ``register``. Prefect is imported only when one of them
runs, after ``flows.environment.configure_prefect`` has set its defaults (it reads them then):
with no ``PREFECT_API_URL``, flows run on Prefect's local server (started and stopped by the
command, its database under ``data/prefect``); nothing has to be started first.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from formscan.options import Progress, add_read_options, add_template_option, read_settings, templates_known
from review.commands import add_db_options

DATABASE_URL_ENV = "FORMSCAN_DATABASE_URL"  # review.store.DATABASE_URL_ENV, not imported: --help stays fast
DEFAULT_AUDIT_RATE = 0.02  # review.ingest.DEFAULT_AUDIT_RATE, likewise


class IngestProgressBar:
    """A bar on a terminal, else a line a page; nothing with --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar = quiet, None

    def planned(self, pages: int) -> None:
        self.bar = Progress(pages, sys.stderr.isatty() and not self.quiet)

    def finished(self, outcome) -> None:
        if self.bar and self.bar.enabled:
            self.bar.step()
        elif not self.quiet:
            what = outcome.status if outcome.added else outcome.error_kind or "already in the queue"
            print(f"{outcome.file} page {outcome.number}: {what}", file=sys.stderr)


def _audit_rate_ok(rate: float) -> bool:
    if 0.0 <= rate <= 1.0:
        return True
    print("formscan: --audit-rate must be between 0 and 1", file=sys.stderr)
    return False


def _print_failures(summary) -> None:
    for failure in summary.failures:
        print(f"formscan: {failure.where}: {failure.error_kind}: {failure.error_message}", file=sys.stderr)


@contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """Inside, SIGTERM ends a run as Ctrl-C does: the pages being read are dropped (their
    workers killed) and left for the next run; the pages stored stay."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_abandoned(runs: list[str]) -> None:
    for name in runs:
        print(f"formscan: flow run {name} was left running by a process that is gone; marked Crashed",
              file=sys.stderr)


def _interrupted() -> int:
    print("formscan: stopped; the pages stored so far stay, run the same command again for the rest",
          file=sys.stderr)
    return 130


def run_ingest(args: argparse.Namespace) -> int:
    settings = read_settings(args)
    if not _audit_rate_ok(args.audit_rate) or not templates_known(settings):
        return 2
    from flows.environment import configure_prefect, stop_local_server_with_this_process

    configure_prefect()
    stop_local_server_with_this_process()
    from flows.ingest import ingest_batch, reporting_progress, this_process_runs

    try:
        with _stopped_by_sigterm(), reporting_progress(IngestProgressBar(args.quiet)), \
                this_process_runs() as abandoned:
            _print_abandoned(abandoned)
            summary = ingest_batch([str(p) for p in args.paths], db=args.db, store=args.store,
                                   audit_rate=args.audit_rate, batch_name=args.batch, settings=settings,
                                   retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        return _interrupted()
    _print_failures(summary)
    if not args.quiet or summary.missing:
        print(f"formscan: {summary.text()}", file=sys.stderr)
    return 0 if summary.pages and not summary.missing else 1


def run_schedule(args: argparse.Namespace) -> int:
    settings = read_settings(args)
    if not _audit_rate_ok(args.audit_rate) or not templates_known(settings):
        return 2
    if not os.path.isdir(args.inbox):
        print(f"formscan: {args.inbox}: no such folder", file=sys.stderr)
        return 2
    if args.db:  # the flow runs read it from the environment: a parameter would show the password in the UI
        os.environ[DATABASE_URL_ENV] = args.db
    from flows.environment import configure_prefect

    configure_prefect()
    if args.once:
        from flows.environment import stop_local_server_with_this_process
        from flows.ingest import ingest_inbox, this_process_runs

        stop_local_server_with_this_process()
        try:
            with _stopped_by_sigterm(), this_process_runs() as abandoned:
                _print_abandoned(abandoned)
                report = ingest_inbox(args.inbox, store=args.store, audit_rate=args.audit_rate,
                                      min_age_seconds=args.min_age, settings=settings,
                                      retry_failed=args.retry_failed)
        except KeyboardInterrupt:
            return _interrupted()
        for move in report.moves:
            print(f"formscan: {move.file} -> {move.destination or 'stays'}: {move.reason}", file=sys.stderr)
        if report.summary:
            _print_failures(report.summary)
            print(f"formscan: {report.summary.text()}", file=sys.stderr)
        if report.report_file:
            print(f"formscan: report in {report.report_file}", file=sys.stderr)
        return 0
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        print("formscan: schedules need a Prefect server: start one (`prefect server start`) and set "
              "PREFECT_API_URL=http://127.0.0.1:4200/api (or run one pass now with --once)", file=sys.stderr)
        return 2
    from flows.deployments import inbox_deployment

    deployment = inbox_deployment(args.inbox, args.cron, name=args.name, timezone=args.timezone,
                                  store=args.store, audit_rate=args.audit_rate, min_age_seconds=args.min_age,
                                  settings=settings, retry_failed=args.retry_failed)
    print(f"formscan: serving formscan-inbox/{args.name} ({args.cron}) on {PREFECT_API_URL.value()}; "
          "Ctrl-C stops it", file=sys.stderr)
    serve(deployment, limit=1, print_starting_message=False)  # one pass at a time: two would share files
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    settings = read_settings(args)
    if not templates_known(settings):
        return 2
    from flows.environment import configure_prefect

    configure_prefect()
    from flows.deployments import PROJECT_DIR, deploy_ingest

    deployment_id = deploy_ingest(args.pool, args.name, args.source or PROJECT_DIR, settings)
    print(f"formscan: deployment formscan-ingest/{args.name} ({deployment_id}) on work pool {args.pool}; run it with\n"
          f"  prefect deployment run formscan-ingest/{args.name} --param 'paths=[\"/data/inbox/a.pdf\"]'",
          file=sys.stderr)
    return 0


def _reading_options(parser: argparse.ArgumentParser) -> None:
    add_read_options(parser)
    add_template_option(parser)
    parser.add_argument("--retry-failed", action="store_true",
                        help="read again the pages earlier runs recorded as crashed or timeout (default: leave them)")


def _queue_options(parser: argparse.ArgumentParser) -> None:
    add_db_options(parser)
    parser.add_argument("--audit-rate", type=float, default=DEFAULT_AUDIT_RATE, metavar="SHARE",
                        help=f"share of auto-accepted pages sent to review as 'audit' (default {DEFAULT_AUDIT_RATE})")
    _reading_options(parser)


def register(sub: argparse._SubParsersAction) -> None:
    ingest = sub.add_parser(
        "ingest", help="put scanned pages in the review queue (a Prefect flow)",
        description="Read PDFs and images into the review queue database. Pages are read in worker "
        "processes as by extract (a page that crashes its worker or passes --page-timeout is recorded as "
        "crashed or timeout, and the run goes on); each is stored by one Prefect task. Pages already there "
        "(same file content, same page) are skipped, so a stopped run (Ctrl-C, SIGTERM, a crash) is finished "
        "by running it again. A bad page or file is kept in the queue with its error and the run goes on. "
        "Without PREFECT_API_URL, Prefect runs locally (nothing to start). Exit status 1 when a page "
        "could not be stored (run again) or nothing could be read.")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="PDF or image files, or folders of them")
    _queue_options(ingest)
    ingest.add_argument("--batch", metavar="NAME", help="name of this batch in the queue")
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    ingest.set_defaults(func=run_ingest)

    schedule = sub.add_parser(
        "schedule", help="ingest an inbox folder on a schedule (a served Prefect deployment)",
        description="Serve a Prefect deployment that ingests the new files of INBOX on a cron schedule and "
        "moves each to INBOX/done/ or INBOX/failed/, with a report in INBOX/reports/ and in the run's "
        "artifacts. Needs a Prefect server (PREFECT_API_URL, e.g. `prefect server start`); --once runs one "
        "pass now without one.")
    schedule.add_argument("--inbox", required=True, metavar="DIR", help="the folder new scans are dropped into")
    schedule.add_argument("--cron", default="0 2 * * *", help='when (default "0 2 * * *": 02:00 every night)')
    schedule.add_argument("--timezone", metavar="ZONE", help="the cron's time zone (default: this machine's)")
    schedule.add_argument("--name", default="inbox", help="the deployment's name (default inbox)")
    schedule.add_argument("--min-age", type=float, default=60.0, metavar="SECONDS",
                          help="leave files modified more recently for the next pass (default 60)")
    schedule.add_argument("--once", action="store_true", help="run one pass now and exit")
    _queue_options(schedule)
    schedule.set_defaults(func=run_schedule)

    deploy = sub.add_parser(
        "deploy", help="register the ingest flow on a Prefect work pool (for `prefect worker`s)",
        description="Register the deployment formscan-ingest/NAME on work pool POOL of the Prefect server at "
        "PREFECT_API_URL. Workers (`prefect worker start --pool POOL`) run its flow runs from SOURCE, which "
        "must hold this project at the same path on every worker; they take the queue from "
        "$FORMSCAN_DATABASE_URL.")
    deploy.add_argument("--pool", required=True, help="the work pool")
    deploy.add_argument("--name", default="ingest", help="the deployment's name (default ingest)")
    deploy.add_argument("--source", metavar="DIR", help="the project folder the workers run (default: this one)")
    _reading_options(deploy)
    deploy.set_defaults(func=run_deploy)

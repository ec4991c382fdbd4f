"""The queue's subcommands: review, export, user add, token create (ingest is in ``formscan.flow_commands``).

``formscan.cli.build_parser`` calls ``register``; everything heavy (SQLAlchemy,
FastAPI, the OCR engines) is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import getpass
import sys

DB_HELP = "database URL (default: $FORMSCAN_DATABASE_URL or sqlite:///data/formscan.db)"
STORE_HELP = "folder of page images (default: next to a SQLite file, else $FORMSCAN_STORE_DIR or data/store)"


def _open(args: argparse.Namespace):
    from review.store import open_store

    return open_store(args.db, args.store)


def run_review(args: argparse.Namespace) -> int:
    import uvicorn

    from review.app import create_app

    store = _open(args)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"formscan: serving on {args.host}: reachable from other machines", file=sys.stderr)
    print(f"formscan: review at http://{args.host}:{args.port}/ (API docs at /docs)", file=sys.stderr)
    uvicorn.run(create_app(store), host=args.host, port=args.port, log_level="warning")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from review.export import export

    statuses = [s for value in args.status or [] for s in value.split(",") if s] or None
    store = _open(args)
    try:
        count = export(store, args.format, args.output, statuses, args.audit_trail, headers=args.headers)
    except ValueError as exc:
        print(f"formscan: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"formscan: {count} pages -> {args.output}", file=sys.stderr)
    return 0


def run_user_add(args: argparse.Namespace) -> int:
    from review.auth import AuthError, set_password

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if password != getpass.getpass("again: "):
            print("formscan: the passwords differ", file=sys.stderr)
            return 2
    store = _open(args)
    try:
        with store.transaction() as session:
            set_password(session, args.name, password)
    except AuthError as exc:
        print(f"formscan: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"formscan: user {args.name} can log in", file=sys.stderr)
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    from review.auth import AuthError, create_api_token

    store = _open(args)
    try:
        with store.transaction() as session:
            token = create_api_token(session, args.name)
    except AuthError as exc:
        print(f"formscan: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(token)  # shown once: only its hash is kept
    return 0


def add_db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help=DB_HELP)
    parser.add_argument("--store", metavar="DIR", help=STORE_HELP)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the review queue's subcommands to ``formscan``'s parser."""
    review = sub.add_parser("review", help="serve the review UI and JSON API",
                            description="Serve the review UI (log in with a user from `formscan user add`) "
                            "and the JSON API (bearer tokens from `formscan token create`; docs at /docs).")
    add_db_options(review)
    review.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    review.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    review.set_defaults(func=run_review)

    export = sub.add_parser("export", help="write the queue's records (corrected) to JSONL, CSV or XLSX",
                            description="JSONL lines have `formscan extract`'s shape with corrected values and "
                            "the flags still open; CSV has one row per field; XLSX has sheets 页面, 资金, 绩效指标, "
                            "待核字段 and 修改记录 (pages, funds, indicators, flags and audit with --headers en).")
    export.add_argument("--format", required=True, choices=("jsonl", "csv", "xlsx"))
    export.add_argument("--status", action="append", metavar="STATUS",
                        help="only pages with this status (repeat or comma-separate): needs_review, audit, "
                        "corrected, auto_accepted, rejected, error")
    export.add_argument("-o", "--output", required=True, metavar="FILE")
    export.add_argument("--audit-trail", metavar="CSV", help="also write the audit trail of these pages to CSV")
    export.add_argument("--headers", choices=("zh", "en"), default="zh",
                        help="CSV and XLSX column headers and sheet names: zh, the form's own labels (default), "
                        "or en, the records' field names")
    add_db_options(export)
    export.set_defaults(func=run_export)

    user = sub.add_parser("user", help="manage reviewers").add_subparsers(dest="user_command", required=True)
    add = user.add_parser("add", help="add a reviewer or set a reviewer's password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add_db_options(add)
    add.set_defaults(func=run_user_add)

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="print a new bearer token for a reviewer")
    create.add_argument("name")
    add_db_options(create)
    create.set_defaults(func=run_token_create)

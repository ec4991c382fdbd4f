"""The ingest flow's pure parts, without a Prefect server: the summary, what is retried, settings."""

from __future__ import annotations

from pathlib import Path

from prefect.states import Completed, Failed
from sqlalchemy.exc import OperationalError

from flows.environment import prefect_defaults
from flows.ingest import NOT_STORED, IngestSummary, PageOutcome, is_transient


def test_the_summary_counts_this_runs_pages_and_lists_every_failure():
    outcomes = [
        PageOutcome("a.pdf", 1, added=True, status="needs_review", flagged=3),
        PageOutcome("a.pdf", 2, added=True, status="error", error_kind="blank_page", error_message="blank"),
        PageOutcome("b.pdf", 1, added=False),  # in the queue already
        PageOutcome("c|d.pdf", None, added=True, status="error", error_kind="corrupt", error_message="no\ntrailer"),
        PageOutcome("e.pdf", 1, added=False, error_kind=NOT_STORED, error_message="OperationalError: locked"),
    ]
    summary = IngestSummary(pages=4, outcomes=outcomes, missing=[("e.pdf", 1)], seconds=60.0)
    assert (summary.added, summary.already, summary.forms, summary.flagged) == (2, 1, 1, 3)
    assert summary.statuses == {"error": 1, "needs_review": 1}
    assert [o.where for o in summary.failures] == ["a.pdf page 2", "c|d.pdf", "e.pdf page 1"]
    assert summary.pages_per_minute == 2.0
    assert "1 pages NOT in the queue: run the same command again" in summary.text()
    assert "1 forms (0 whose layout failed)" in summary.text()
    markdown = summary.markdown()
    assert "| 4 | 2 | 1 | 1 | 3 | 3 | 1 | 2.0 |" in markdown
    assert "| c\\|d.pdf | — | corrupt | no trailer |" in markdown  # a table cell stays one cell


def test_the_summary_counts_forms_whose_layout_failed_apart():
    outcomes = [
        PageOutcome("a.pdf", 1, added=True, status="needs_review", flagged=40, layout_failed=True),
        PageOutcome("a.pdf", 2, added=True, status="auto_accepted"),
        PageOutcome("a.pdf", 3, added=True, status="error", error_kind="not_a_form", error_message="a letter"),
    ]
    summary = IngestSummary(pages=3, outcomes=outcomes, missing=[], seconds=60.0)
    assert (summary.forms, summary.layout_failed, len(summary.failures)) == (2, 1, 1)
    assert "2 forms (1 whose layout failed)" in summary.text()


def test_only_disk_and_database_errors_are_retried():
    locked = OperationalError("INSERT ...", {}, Exception("database is locked"))
    assert is_transient(None, None, Failed(data=OSError("NFS went away")))
    assert is_transient(None, None, Failed(data=locked))
    assert not is_transient(None, None, Failed(data=ValueError("a bug")))
    assert not is_transient(None, None, Completed(data=1))


def test_prefect_keeps_its_home_in_the_data_folder_and_waits_long_enough_for_its_server(tmp_path):
    settings = prefect_defaults(tmp_path / "data")
    assert Path(settings["PREFECT_HOME"]) == (tmp_path / "data" / "prefect").resolve()
    assert int(settings["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]) >= 60
    assert settings["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and settings["DO_NOT_TRACK"] == "1"


def test_the_command_line_imports_prefect_only_after_setting_its_defaults():
    import subprocess
    import sys

    code = ("import sys, formscan.cli as cli; cli.build_parser(); "
            "print(any(m.split('.')[0] == 'prefect' for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr

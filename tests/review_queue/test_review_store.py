"""The queue's storage and operations, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from models import PageResult
from pipeline.extract import PageExtraction, extract_page_full
from pipeline.ocr import CellText
from review.export import export
from review.fields import FieldValueError
from pipeline.read import read_pages
from review.ingest import file_sha256, in_audit_sample, new_batch, queue_lexicon, store_extraction
from review.queue import OCR_REASONS, audit_stats, finish_page, queue_fields, reject_page, save_field
from review.store import (
    CellRow,
    Correction,
    Document,
    FieldEvidenceRow,
    LexiconTerm,
    PageRow,
    ReviewStateError,
    StaleVersionError,
    open_store,
)
from review_queue.review_support import CLEAN_PDF, FLAGGED_PDF, Queue

EXTRACT_KEYS = {"source", "record", "flags", "status"}


def page(queue: Queue, page_id: int) -> PageRow:
    with queue.store.transaction() as session:
        return session.get(PageRow, page_id)


def test_migrations_make_the_schema_and_reopening_changes_nothing(db_url, tmp_path):
    first = open_store(db_url, tmp_path / "store")
    first.close()
    again = open_store(db_url, tmp_path / "store")
    with again.transaction() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        assert session.scalar(select(func.count()).select_from(PageRow)) == 0
    again.close()


def test_a_store_made_by_the_first_release_is_upgraded_on_open(db_url, tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    import review.store

    engine = review.store._engine(review.store.database_url(db_url))
    config = Config()
    config.set_main_option("script_location", str(Path(review.store.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert "notices" not in {c["name"] for c in inspect(engine).get_columns("pages")}
    engine.dispose()
    store = open_store(db_url, tmp_path / "store")
    assert "notices" in {c["name"] for c in inspect(store.engine).get_columns("pages")}
    assert "names" in {c["name"] for c in inspect(store.engine).get_columns("documents")}
    store.close()


def test_a_stored_page_keeps_image_cells_readings_record_and_flags(queue: Queue, flagged_extraction):
    flagged: PageExtraction = flagged_extraction
    stored = page(queue, queue.flagged_id)
    assert stored.status == "needs_review" and stored.version == 1 and not stored.audit_sample
    assert stored.record == flagged.result.record.model_dump(mode="json")
    assert [f["field"] for f in stored.machine_flags] == [f.field for f in flagged.result.flags]
    assert (stored.image_height, stored.image_width) == flagged.image.shape
    assert queue.store.image_file(stored.image_path) is not None
    with queue.store.transaction() as session:
        cells = session.scalar(select(func.count()).where(CellRow.page_id == queue.flagged_id))
        evidence = session.get(FieldEvidenceRow, (queue.flagged_id, "project_name"))
        cell = session.get(CellRow, evidence.cell_id)
    assert cells == len(flagged.cells)
    truth = flagged.evidence["project_name"]
    assert (cell.x0, cell.y0, cell.x1, cell.y1) == (truth.cell.box.x0, truth.cell.box.y0, truth.cell.box.x1,
                                                    truth.cell.box.y1)
    assert evidence.readings == truth.text.readings and set(evidence.readings) >= {"paddle", "tesseract"}
    assert page(queue, queue.clean_id).status == "audit"  # audit rate 1: every auto-accepted page is sampled


def test_storing_the_same_page_again_is_a_no_op(queue: Queue, extractions):
    again = store_extraction(queue.store, 1, "elsewhere/seed-1.pdf", file_sha256(FLAGGED_PDF), 1,
                             extractions["flagged"])
    assert again is None
    with queue.store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PageRow)) == 2


def test_saves_revalidate_and_a_page_without_flags_is_corrected(queue: Queue):
    with queue.store.transaction() as session:
        entries = queue_fields(session, status="needs_review")
    values = {e["field"]: e["value"] for e in entries}
    assert "rule:execution_rate" in {e["reason"] for e in entries if e["field"] == "funds[0].execution_rate"}
    assert (values["funds[0].execution_rate"], values["total_score"]) == ("95.5", "90")
    with queue.store.transaction() as session:
        typed = save_field(session, queue.flagged_id, "funds[0].execution_rate", "99.55%", 1, "alice")
    assert typed.version == 2 and typed.status == "needs_review" and typed.record.funds[0].execution_rate == 99.55
    still = {(f.field, f.reason): f for f in typed.flags}
    assert not [key for key in still if key[1] == "rule:execution_rate"]
    assert still[("total_score", "rule:scores_sum")].proposal == "100"
    with queue.store.transaction() as session:
        accepted = save_field(session, queue.flagged_id, "total_score", "100", 2, "bob", action="proposal")
    assert accepted.record.total_score == 100.0 and not [f for f in accepted.flags if f.reason.startswith("rule:")]
    version, last = 3, accepted
    for field in dict.fromkeys(f.field for f in accepted.flags):  # OCR flags only now: the readings are right
        with queue.store.transaction() as session:
            last = save_field(session, queue.flagged_id, field, values[field], version, "alice")
        version += 1
    assert last.flags == [] and last.status == "corrected"
    with queue.store.transaction() as session:
        trail = session.scalars(select(Correction).where(Correction.page_id == queue.flagged_id)
                                .order_by(Correction.id)).all()
    assert [(c.field, c.old_value, c.new_value, c.action, c.user_name) for c in trail[:2]] == [
        ("funds[0].execution_rate", "95.5", "99.55", "edit", "alice"), ("total_score", "90", "100", "proposal", "bob")]
    assert {c.action for c in trail[2:]} <= {"confirm"}


def test_a_rule_broken_on_purpose_can_be_confirmed_and_bad_values_are_refused(queue: Queue):
    with queue.store.transaction() as session:
        other = save_field(session, queue.flagged_id, "funds[0].execution_rate", "97%", 1, "alice")
    rule = next(f for f in other.flags if f.reason == "rule:execution_rate")
    assert rule.proposal == "99.55" and other.record.funds[0].execution_rate == 97.0
    with queue.store.transaction() as session:  # Enter on the unchanged value: the form really says so
        confirmed = save_field(session, queue.flagged_id, "funds[0].execution_rate", "97", 2, "alice")
    assert ("funds[0].execution_rate", "rule:execution_rate") not in {(f.field, f.reason) for f in confirmed.flags}
    with pytest.raises(FieldValueError), queue.store.transaction() as session:
        save_field(session, queue.flagged_id, "funds[0].executed", "twelve", 3, "alice")
    with pytest.raises(FieldValueError), queue.store.transaction() as session:
        save_field(session, queue.flagged_id, "funds[9].executed", "1", 3, "alice")
    assert page(queue, queue.flagged_id).version == 3  # refused saves change nothing


def test_two_reviewers_saving_the_same_version_one_wins_the_other_gets_409_nothing_lost(queue: Queue):
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def reviewer(name: str, value: str) -> None:
        barrier.wait()
        try:
            with queue.store.transaction() as session:
                outcomes[name] = save_field(session, queue.flagged_id, "project_name", value, 1, name)
        except StaleVersionError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=reviewer, args=(n, f"项目{n}")) for n in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [n for n, o in outcomes.items() if not isinstance(o, StaleVersionError)]
    losers = [n for n, o in outcomes.items() if isinstance(o, StaleVersionError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    stale = outcomes[losers[0]]
    assert stale.current == {**stale.current, "version": 2, "value": f"项目{winners[0]}", "by": winners[0]}
    # The loser saw the other value and saves again on the new version: both edits are in the trail.
    with queue.store.transaction() as session:
        save_field(session, queue.flagged_id, "project_name", f"项目{losers[0]}", 2, losers[0])
    with queue.store.transaction() as session:
        trail = session.scalars(select(Correction).where(Correction.page_id == queue.flagged_id)
                                .order_by(Correction.id)).all()
    assert [(c.user_name, c.old_value, c.new_value) for c in trail] == [
        (winners[0], "网络系统运营经费（宝信息委【2019】53号）", f"项目{winners[0]}"),
        (losers[0], f"项目{winners[0]}", f"项目{losers[0]}"),
    ]
    assert page(queue, queue.flagged_id).version == 3


def test_done_needs_every_flag_closed_and_reject_always_works(queue: Queue):
    with pytest.raises(ReviewStateError), queue.store.transaction() as session:
        finish_page(session, queue.flagged_id, 1, "alice")
    with queue.store.transaction() as session:
        rejected = reject_page(session, queue.flagged_id, 1, "alice", "not usable: the form is cut off")
    assert rejected.status == "rejected" and page(queue, queue.flagged_id).reviewed_by == "alice"


def test_audit_sample_is_deterministic_settable_and_measures_the_error_rate(queue: Queue):
    picks = [in_audit_sample(f"{i:064x}", 1, 0.02) for i in range(20_000)]
    assert 0.015 < sum(picks) / len(picks) < 0.025
    assert picks == [in_audit_sample(f"{i:064x}", 1, 0.02) for i in range(20_000)]
    assert not any(in_audit_sample(f"{i:064x}", 1, 0.0) for i in range(1000))
    assert all(in_audit_sample(f"{i:064x}", 1, 1.0) for i in range(1000))
    with queue.store.transaction() as session:
        assert audit_stats(session)["sampled"] == 1 and audit_stats(session)["error_rate"] is None
        done = finish_page(session, queue.clean_id, 1, "bob")  # checked, nothing was wrong
    assert done.status == "auto_accepted"
    with queue.store.transaction() as session:
        stats = audit_stats(session)
    assert (stats["checked"], stats["wrong"], stats["error_rate"]) == (1, 0, 0.0)


def test_export_has_extracts_shape_with_corrections_remaining_flags_and_the_audit_trail(queue: Queue, tmp_path,
                                                                                        flagged_extraction):
    with queue.store.transaction() as session:
        save_field(session, queue.flagged_id, "project_name", "网络系统运营经费（更正）", 1, "alice")
    out = tmp_path / "records.jsonl"
    assert export(queue.store, "jsonl", out, audit_out=tmp_path / "trail.csv") == 2
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(line) == EXTRACT_KEYS for line in lines)
    results = [PageResult.model_validate(line) for line in lines]
    flagged = next(r for r in results if r.source.file.endswith("seed-1.pdf"))
    assert flagged.record.project_name == "网络系统运营经费（更正）"
    expected = [(f.field, f.reason) for f in flagged_extraction.result.flags
                if not (f.field == "project_name" and f.reason in OCR_REASONS)]
    assert sorted((f.field, f.reason) for f in flagged.flags) == sorted(expected)
    assert flagged.status.value == "needs_review"
    clean = next(r for r in results if r.source.file.endswith("seed-2.pdf"))
    assert clean.status.value == "auto_accepted" and clean.flags == []
    trail = list(csv.DictReader((tmp_path / "trail.csv").open(encoding="utf-8-sig")))
    assert [(t["field"], t["to"], t["by"]) for t in trail] == [("project_name", "网络系统运营经费（更正）", "alice")]

    assert export(queue.store, "csv", tmp_path / "fields.csv", ["needs_review"]) == 1
    rows = list(csv.DictReader((tmp_path / "fields.csv").open(encoding="utf-8-sig")))
    assert {"field": "project_name", "value": "网络系统运营经费（更正）"}.items() <= next(
        r for r in rows if r["field"] == "project_name").items()
    assert next(r for r in rows if r["field"] == "funds[0].execution_rate")["flags"] == "rule:execution_rate"

    assert export(queue.store, "xlsx", tmp_path / "records.xlsx") == 2
    book = load_workbook(tmp_path / "records.xlsx")
    assert book.sheetnames == ["pages", "funds", "indicators", "flags", "audit"]
    assert "网络系统运营经费（更正）" in [c.value for c in book["pages"]["E"]]
    assert [c.value for c in book["audit"][2]][2:5] == ["project_name", "网络系统运营经费（宝信息委【2019】53号）",
                                                     "网络系统运营经费（更正）"]


# --- corrections teach ------------------------------------------------------------------

UNIT = "上海市宝山区行政服务中心"  # 主管部门 and 实施单位 of both seed-1 and seed-2
MISREAD = "上海市宝山区行政服务中七"  # the kind of near miss PP-OCR makes on a faint last glyph


class MisreadingReader:
    """The real (memoised) engines, except that this archive's unit name is misread on every page."""

    def __init__(self, reader) -> None:
        self.reader, self.paddle, self.tesseract = reader, reader.paddle, reader.tesseract

    def first_reading(self, cell, vocabulary=frozenset()):
        return self.reader.first_reading(cell, vocabulary)

    def second_opinions(self, cells):
        return [
            CellText(MISREAD, 0.93, "paddle", {"paddle": MISREAD, "tesseract": "上海市宝山区行政服务中"})
            if result.text == UNIT else result
            for result in self.reader.second_opinions(cells)
        ]


def read_and_store(store, pdf, reader, audit_rate: float = 0.0) -> PageRow | None:
    """A page as ingest reads it: with the queue's lexicon as it is now (``queue_lexicon``,
    what the flow hands the page pool for each page), then stored."""
    (page,) = read_pages(pdf, [1])
    extraction = extract_page_full(page, reader, queue_lexicon(store))
    batch = new_batch(store, None, [str(pdf)])
    return store_extraction(store, batch, str(pdf), file_sha256(pdf), 1, extraction, audit_rate)


def test_a_misreading_corrected_once_is_right_on_the_next_page(db_url, tmp_path, ocr_reader, extractions):
    reader = MisreadingReader(ocr_reader)
    # Without the correction the next page keeps the misreading: the lexicon is what fixes it.
    control = open_store(f"sqlite:///{tmp_path / 'control.db'}", tmp_path / "control-store")
    read_and_store(control, CLEAN_PDF, reader)
    with control.transaction() as session:
        assert session.scalars(select(PageRow)).one().record["department"] == MISREAD
    control.close()

    store = open_store(db_url, tmp_path / "store")
    read_and_store(store, FLAGGED_PDF, reader)
    with store.transaction() as session:
        first = session.scalars(select(PageRow)).one()
        assert first.record["department"] == MISREAD
        assert {"department", "implementing_unit"} <= {f.field for f in first.flags}
        save_field(session, first.id, "department", UNIT, first.version, "alice")
    with store.transaction() as session:
        assert session.scalars(select(LexiconTerm.term).where(LexiconTerm.kind == "unit")).all() == [UNIT]

    read_and_store(store, CLEAN_PDF, reader)
    with store.transaction() as session:
        second = session.scalars(select(PageRow).order_by(PageRow.id.desc()).limit(1)).one()
        evidence = session.get(FieldEvidenceRow, (second.id, "department"))
    assert second.record["department"] == UNIT and second.record["implementing_unit"] == UNIT
    assert evidence.readings["lexicon"] == UNIT and evidence.readings["paddle"] == MISREAD
    store.close()


def test_a_page_is_stored_once_and_a_new_files_pages_stored_at_once_all_land(db_url, tmp_path, extractions):
    """Two pages of a file new to the queue, stored at the same moment: both make the file's
    row, one of them finds the other's, and both pages land; storing a page again adds nothing."""
    store = open_store(db_url, tmp_path / "store")
    batch = new_batch(store, None, ["two-page.pdf"])
    sha = "ab" * 32
    start, stored = threading.Barrier(2), {}

    def store_page(number: int) -> None:
        start.wait()
        for _ in range(5):  # what the ingest task's retries do for a busy database
            try:
                stored[number] = store_extraction(store, batch, "two-page.pdf", sha, number, extractions["clean"])
                return
            except OperationalError:
                time.sleep(0.2)

    threads = [threading.Thread(target=store_page, args=(number,)) for number in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stored[1] is not None and stored[2] is not None
    assert store_extraction(store, batch, "again.pdf", sha, 1, extractions["clean"]) is None
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 1
        assert sorted(session.scalars(select(PageRow.number))) == [1, 2]
    store.close()


def test_images_outside_the_store_are_refused(queue: Queue, tmp_path: Path):
    (tmp_path / "secret.txt").write_text("secret")
    assert queue.store.image_file("../secret.txt") is None
    assert queue.store.image_file("../../etc/passwd") is None
    assert queue.store.image_file("/etc/passwd") is None
    assert queue.store.image_file(page(queue, queue.flagged_id).image_path) is not None


def test_every_reading_source_fits_the_cells_source_column():
    # PostgreSQL enforces the column's width (SQLite does not): a longer source name would
    # make every ingest of such a cell fail there only.
    from typing import get_args

    from pipeline.ocr import Source
    from review.store import CellRow

    width = CellRow.__table__.c.source.type.length
    assert max(len(name) for name in get_args(Source)) <= width


def test_the_batch_counts_forms_whose_layout_failed_apart_from_pages_that_are_no_form(queue: Queue):
    from models import PageError, SourceRef
    from pipeline.extract import judge, unmapped_form
    from pipeline.templates import get_template
    from review.queue import batch_summaries
    from review.store import Batch

    failed = judge(SourceRef(file="archive.pdf", page=2),
                   unmapped_form(get_template(), "财政项目支出绩效自评表", "no ruled table was found"))
    letter = PageResult(source=SourceRef(file="archive.pdf", page=3),
                        error=PageError(kind="not_a_form", message="no 项目名称 / 三级指标 label"))
    with queue.store.transaction() as session:
        batch_id = session.scalar(select(Batch.id))
    for number, result in ((2, failed), (3, letter)):
        store_extraction(queue.store, batch_id, "archive.pdf", "ab" * 32, number, PageExtraction(result), audit_rate=0.0)
    with queue.store.transaction() as session:
        [summary] = batch_summaries(session)
    assert (summary.layout_failed, summary.not_a_form) == (1, 1)
    assert summary.counts["needs_review"] >= 2  # the layout-failed form is a review task like any flagged page

"""The queue's safety and the exports a finance team opens as they are, on SQLite and on PostgreSQL:
log-ins throttled after repeated wrong passwords, spreadsheet formulas never smuggled into an
export, bad store paths answered with 404, and CSV/XLSX headed with the form's own labels.
"""

from __future__ import annotations

import csv
import logging
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import select, update

from formscan.cli import main as formscan
from review import auth
from review.app import create_app
from review.export import export
from review.queue import save_field
from review.store import Document, FailedLogin, FlagRow, PageRow, open_store
from review_queue.review_support import PASSWORDS, Queue

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Text a reviewer may type, and what a spreadsheet would run if it began a cell as it is.
INJECTIONS = {
    "project_name": '=HYPERLINK("http://x","y")',
    "department": "+1",
    "implementing_unit": "-1+1",
    "goal_expected": "@SUM(A1)",
}
TAB_TEXT = "\t=1+1"  # what an OCR reading may hold; a typed value is stripped before it is saved
FILE_NAME = "=cmd|' /C calc'!A0.pdf"
NEGATIVE = "-5"  # typed into a number field: a number, which must stay one


@pytest.fixture
def client(queue: Queue) -> TestClient:
    return TestClient(create_app(queue.store), base_url="http://127.0.0.1:8000", follow_redirects=False,
                      raise_server_exceptions=False)


def log_in(client: TestClient, name: str, password: str):
    return client.post("/login", data={"name": name, "password": password, "next": "/"})


def age_failed_logins(queue: Queue, by: timedelta) -> None:
    """Move every recorded failure ``by`` into the past, as if that time had gone by."""
    with queue.store.transaction() as session:
        for row in session.scalars(select(FailedLogin)):
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
            row.at = at - by


# --- log-in throttling ------------------------------------------------------------------

def test_wrong_passwords_in_a_row_lock_the_name_even_for_the_right_password_until_the_lockout_ends(
        client: TestClient, queue: Queue, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="formscan.review.auth")
    answers = [log_in(client, "alice", f"wrong-{i}") for i in range(25)]
    assert [a.status_code for a in answers[:4]] == [303] * 4  # a few typos: just "wrong password"
    assert all("failed=1" in a.headers["location"] for a in answers[:4])
    assert {a.status_code for a in answers[4:]} == {429}

    twenty_sixth = log_in(client, "alice", "wrong-25")
    assert twenty_sixth.status_code == 429
    assert 0 < int(twenty_sixth.headers["retry-after"]) <= 15 * 60
    right = log_in(client, "alice", PASSWORDS["alice"])
    assert right.status_code == 429 and "formscan_session" not in right.cookies
    assert "Too many failed log-ins" in right.text  # the login page, saying why
    assert any("alice" in r.getMessage() and "locked" in r.getMessage() for r in caplog.records)

    with queue.store.transaction() as session:
        wait = auth.login_lockout(session, "alice", "testclient", datetime.now(UTC))
    age_failed_logins(queue, wait + timedelta(seconds=1))
    after = log_in(client, "alice", PASSWORDS["alice"])
    assert after.status_code == 303 and after.headers["location"] == "/" and "formscan_session" in after.cookies
    with queue.store.transaction() as session:
        assert session.scalars(select(FailedLogin).where(FailedLogin.name == "alice")).all() == []
    assert log_in(client, "alice", "one-typo").headers["location"].startswith("/login?failed=1")


def test_wrong_passwords_from_one_address_lock_that_address_for_every_name(queue: Queue):
    app = create_app(queue.store)
    guesser = TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False, client=("192.0.2.9", 5000))
    colleague = TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False, client=("192.0.2.10", 5000))
    for name in ("root", "admin", "test", "user", "guest"):
        log_in(guesser, name, "123456")
    refused = log_in(guesser, "bob", PASSWORDS["bob"])
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert log_in(colleague, "bob", PASSWORDS["bob"]).status_code == 303  # bob's name was never guessed


def test_the_lockout_doubles_with_each_further_failure_up_to_fifteen_minutes(db_url: str, tmp_path: Path):
    store = open_store(db_url, tmp_path / "store")
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with store.transaction() as session:
        waits = [auth.record_login_failure(session, "carol", "192.0.2.7", start).total_seconds() for _ in range(11)]
        assert waits == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]
        # The name is locked from any address, and the address for any name.
        assert auth.login_lockout(session, "carol", "198.51.100.1", start + timedelta(seconds=899)) == timedelta(
            seconds=1)
        assert auth.login_lockout(session, "dave", "192.0.2.7", start + timedelta(seconds=600)) == timedelta(
            seconds=300)
        assert auth.login_lockout(session, "dave", "198.51.100.1", start) == timedelta(0)
        assert auth.login_lockout(session, "carol", "192.0.2.7", start + timedelta(minutes=15)) == timedelta(0)
        auth.clear_login_failures(session, "carol")
        assert auth.login_lockout(session, "carol", "192.0.2.7", start) == timedelta(0)
    store.close()


# --- formulas never leave as formulas ---------------------------------------------------

def read_typed_csv(path: Path) -> list[list[Any]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, quoting=csv.QUOTE_NONNUMERIC))


def store_injections(queue: Queue) -> None:
    """Reviewers' text that a spreadsheet would run, in text fields, a file name and a flag's message."""
    with queue.store.transaction() as session:
        version = 1
        for field, value in {**INJECTIONS, "funds[0].executed": NEGATIVE}.items():
            version = save_field(session, queue.flagged_id, field, value, version, "alice").version
        page = session.get(PageRow, queue.flagged_id)
        record = dict(page.record)
        record["indicators"] = [{**record["indicators"][0], "deviation_reason": TAB_TEXT}, *record["indicators"][1:]]
        page.record = record
        session.execute(update(Document).where(Document.id == page.document_id).values(name=FILE_NAME))
        session.execute(update(FlagRow).where(FlagRow.page_id == queue.flagged_id).values(message="@evil()"))


def test_text_that_starts_a_formula_leaves_in_xlsx_as_inert_text_and_numbers_stay_numbers(queue: Queue, tmp_path):
    store_injections(queue)
    assert export(queue.store, "xlsx", tmp_path / "records.xlsx", headers="zh") == 2
    book = load_workbook(tmp_path / "records.xlsx")
    cells = [cell for sheet in book for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = [c for c in cells if isinstance(c.value, str)]
    assert all(c.data_type == "s" for c in texts)
    assert not [c.value for c in texts if c.value.startswith(FORMULA_STARTS)]
    values = {c.value for c in texts}
    assert {"'" + text for text in [*INJECTIONS.values(), TAB_TEXT, FILE_NAME, "@evil()"]} <= values

    funds = book["资金"]
    first_row = next(row for row in funds.iter_rows(min_row=2) if row[0].value == "'" + FILE_NAME)
    executed = first_row[header(funds).index("全年执行数")]
    assert (executed.value, executed.data_type) == (-5, "n")
    audit = [[c.value for c in row] for row in book["修改记录"].iter_rows(min_row=2)]
    assert ["project_name", "'" + INJECTIONS["project_name"]] in [row[2:5:2] for row in audit]


def test_text_that_starts_a_formula_leaves_in_csv_as_quoted_inert_text(queue: Queue, tmp_path):
    store_injections(queue)
    export(queue.store, "csv", tmp_path / "fields.csv", audit_out=tmp_path / "trail.csv", headers="zh")
    # Read as spreadsheets told to do so read it: a quoted cell is text, a bare one a number.
    rows = read_typed_csv(tmp_path / "fields.csv")
    texts = [cell for row in rows for cell in row if isinstance(cell, str)]
    assert not [text for text in texts if text.startswith(FORMULA_STARTS)]
    by_field = {row[3]: row for row in rows if row[0] == "'" + FILE_NAME}
    assert by_field["project_name"][4] == "'" + INJECTIONS["project_name"]
    assert (by_field["department"][4], by_field["implementing_unit"][4]) == ("'+1", "'-1+1")
    assert by_field["goal_expected"][4] == "'@SUM(A1)"
    assert by_field["indicators[0].deviation_reason"][4] == "'" + TAB_TEXT
    assert by_field["funds[0].executed"][4] == -5.0 and by_field["funds[0].weight"][4] == 10.0  # numbers
    trail = read_typed_csv(tmp_path / "trail.csv")
    assert not [cell for row in trail for cell in row if isinstance(cell, str) and cell.startswith(FORMULA_STARTS)]
    assert ["project_name", "'" + INJECTIONS["project_name"]] in [row[2:5:2] for row in trail]


# --- paths ------------------------------------------------------------------------------

def test_bad_store_paths_get_404_without_a_traceback(client: TestClient, queue: Queue):
    headers = {"Authorization": f"Bearer {queue.token}"}
    for path in ("/store/a%00b", "/store/%00", "/store/pages/%00%2F..", "/store/" + "x" * 5000,
                 "/store/" + "x/" * 3000, "/store/..%2F..%2Fqueue.db", "/store/..%2F",
                 "/store/pages/..%2F..%2F..%2Fetc%2Fpasswd"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path[:40]
        assert "Traceback" not in response.text and "Error" not in response.text, path[:40]
    with queue.store.transaction() as session:  # a database path too long for the filesystem
        session.execute(update(PageRow).where(PageRow.id == queue.flagged_id).values(image_path="x" * 5000))
    assert client.get(f"/pages/{queue.flagged_id}/image", headers=headers).status_code == 404


# --- exports a finance team opens as they are -------------------------------------------

def run_export(queue: Queue, fmt: str, out: Path, *options: str) -> None:
    db = ["--db", queue.store.url, "--store", str(queue.store.store_dir)]
    assert formscan(["export", "--format", fmt, "-o", str(out), *db, *options]) == 0


def header(sheet) -> list[Any]:
    return [cell.value for cell in sheet[1]]


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def test_exports_are_headed_in_chinese_by_default_and_in_english_on_request(queue: Queue, tmp_path):
    run_export(queue, "csv", tmp_path / "zh.csv")
    run_export(queue, "csv", tmp_path / "en.csv", "--headers", "en")
    assert next(csv.reader((tmp_path / "zh.csv").open(encoding="utf-8-sig"))) == [
        "文件", "页", "状态", "字段", "值", "待核原因", "错误", "项目名称", "主管部门"]
    assert next(csv.reader((tmp_path / "en.csv").open(encoding="utf-8-sig"))) == [
        "file", "page", "status", "field", "value", "flags", "error", "project_name", "department"]

    run_export(queue, "xlsx", tmp_path / "zh.xlsx")
    book = load_workbook(tmp_path / "zh.xlsx")
    assert book.sheetnames == ["页面", "资金", "绩效指标", "待核字段", "修改记录"]
    assert header(book["页面"])[:12] == ["文件", "页", "状态", "年度", "项目名称", "主管部门", "实施单位", "资金单位",
                                        "预期目标", "实际完成情况", "总分值", "总得分"]
    assert header(book["资金"]) == ["文件", "页", "项目名称", "主管部门", "资金来源", "年初预算数", "全年预算数",
                                   "全年执行数", "分值", "执行率", "得分"]
    assert header(book["绩效指标"]) == ["文件", "页", "项目名称", "主管部门", "一级指标", "二级指标", "三级指标",
                                     "年度指标值", "实际完成值", "分值", "得分", "偏差原因分析及改进措施"]
    assert header(book["待核字段"]) == ["文件", "页", "字段", "原因", "置信度", "说明", "建议值"]
    assert header(book["修改记录"]) == ["文件", "页", "字段", "原值", "新值", "操作", "操作人", "时间"]

    run_export(queue, "xlsx", tmp_path / "en.xlsx", "--headers", "en")
    book = load_workbook(tmp_path / "en.xlsx")
    assert book.sheetnames == ["pages", "funds", "indicators", "flags", "audit"]
    assert header(book["funds"]) == ["file", "page", "project_name", "department", "source", "initial_budget",
                                     "annual_budget", "executed", "weight", "execution_rate", "score"]

    run_export(queue, "jsonl", tmp_path / "zh.jsonl")  # JSONL keeps `formscan extract`'s shape either way
    run_export(queue, "jsonl", tmp_path / "en.jsonl", "--headers", "en")
    assert (tmp_path / "zh.jsonl").read_bytes() == (tmp_path / "en.jsonl").read_bytes()


def test_every_funds_and_indicator_row_names_its_project_and_department(queue: Queue, tmp_path):
    with queue.store.transaction() as session:
        record = session.get(PageRow, queue.flagged_id).record
        file = session.get(PageRow, queue.flagged_id).document.name
    project = (record["project_name"], record["department"])
    assert all(project)

    run_export(queue, "xlsx", tmp_path / "records.xlsx")
    book = load_workbook(tmp_path / "records.xlsx")
    for name, count in (("资金", len(record["funds"])), ("绩效指标", len(record["indicators"]))):
        rows = [dict(zip(header(book[name]), row)) for row in book[name].iter_rows(min_row=2, values_only=True)]
        mine = [row for row in rows if row["文件"] == file]
        assert len(mine) == count and {(row["项目名称"], row["主管部门"]) for row in mine} == {project}

    run_export(queue, "csv", tmp_path / "fields.csv")
    rows = [row for row in csv.DictReader((tmp_path / "fields.csv").open(encoding="utf-8-sig")) if row["文件"] == file]
    section_rows = [row for row in rows if row["字段"].startswith(("funds[", "indicators["))]
    assert section_rows and {(row["项目名称"], row["主管部门"]) for row in section_rows} == {project}


def test_xlsx_has_a_frozen_filtered_header_columns_that_fit_and_numbers_as_numbers(queue: Queue, tmp_path):
    run_export(queue, "xlsx", tmp_path / "records.xlsx")
    book = load_workbook(tmp_path / "records.xlsx")
    for sheet in book:
        assert sheet.freeze_panes == "A2", sheet.title
        assert sheet.auto_filter.ref == f"A1:{get_column_letter(sheet.max_column)}{sheet.max_row}", sheet.title

    funds = book["资金"]
    columns = header(funds)
    rows = list(funds.iter_rows(min_row=2))
    assert rows and all(isinstance(row[columns.index("页")].value, int) for row in rows)
    amounts = [row[columns.index(name)] for row in rows for name in ("年初预算数", "全年预算数", "执行率")]
    filled = [cell for cell in amounts if cell.value is not None]  # a "—" on the form is a blank cell
    assert filled and all(c.data_type == "n" and isinstance(c.value, (int, float)) for c in filled)
    pages = book["页面"]
    years = [row[header(pages).index("年度")] for row in pages.iter_rows(min_row=2, values_only=True)]
    assert years and all(isinstance(year, int) for year in years)

    width = {name: funds.column_dimensions[get_column_letter(i)].width for i, name in enumerate(columns, start=1)}
    longest_name = max(display_width(c.value) for c in funds["C"][1:])  # 项目名称: CJK counts double
    assert width["项目名称"] >= longest_name and width["页"] < 10

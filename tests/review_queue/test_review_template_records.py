"""Records of forms read by a template other than the project form's (a TemplateRecord) go
through the queue as the project form's do: reviewed, corrected, re-validated by their
template's rules and exported, keeping their form_type. On SQLite and on PostgreSQL.

The department page's record is the committed ground truth of a department fixture, not
an OCR reading: these tests are about the queue, not about how well the page is read.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from models import FORM_TYPE, Flag, FormRecord, PageResult, PageStatus, SourceRef, TemplateRecord, parse_record
from pipeline.extract import PageExtraction
from review import auth
from review.app import create_app
from review.export import export
from review.fields import FieldValueError, get_text, is_editable, with_value
from review.ingest import new_batch, store_extraction
from review.queue import finish_page, queue_fields, save_field
from review.store import PageRow, ReviewStore, open_store
from review_queue.review_support import PASSWORDS, ROOT

DEPARTMENT_TRUTH = ROOT / "fixtures" / "department" / "truth" / "department-1.json"
PROJECT_TRUTH = ROOT / "fixtures" / "truth" / "seed-2.json"
DEPARTMENT_FORM_TYPE = "department_performance_self_evaluation"
UNIT_NAME = "上海市宝山区教育局"
# What the engines are made to have doubted on the department page: two OCR flags, no rule broken.
OCR_FLAGS = [
    Flag(field="unit_name", reason="low_confidence", confidence=0.41, message="the two OCR engines disagree",
         readings={"paddle": UNIT_NAME, "tesseract": "上海市宝山区教肓局"}),
    Flag(field="tasks[1].executed", reason="low_confidence", confidence=0.52, message="the two OCR engines disagree",
         readings={"paddle": "518.46", "tesseract": "518.45"}),
]


def truth_page(path: Path) -> dict[str, Any]:
    truth = json.loads(path.read_text(encoding="utf-8"))
    return {"file": truth["file"], **truth["pages"][0]}


def department_record() -> TemplateRecord:
    record = parse_record(truth_page(DEPARTMENT_TRUTH)["record"])
    assert isinstance(record, TemplateRecord)
    return record


@dataclass
class MixedQueue:
    """A queue holding one department page (two OCR flags) and one project page (auto-accepted)."""

    store: ReviewStore
    department_id: int
    project_id: int
    department_file: str
    project_file: str
    department_result: PageResult
    token: str


@pytest.fixture
def mixed_queue(db_url: str, tmp_path: Path) -> Iterator[MixedQueue]:
    store = open_store(db_url, tmp_path / "store")
    with store.transaction() as session:
        auth.set_password(session, "alice", PASSWORDS["alice"])
        token = auth.create_api_token(session, "alice")
    batch_id = new_batch(store, "forms of two kinds", [])
    department, project = truth_page(DEPARTMENT_TRUTH), truth_page(PROJECT_TRUTH)
    department_result = PageResult(source=SourceRef(file=department["file"], page=1), record=department_record(),
                                   flags=OCR_FLAGS, status=PageStatus.NEEDS_REVIEW)
    project_record = FormRecord.model_validate(
        {key: value for key, value in project["record"].items() if key in FormRecord.model_fields})
    project_result = PageResult(source=SourceRef(file=project["file"], page=1), record=project_record,
                                status=PageStatus.AUTO_ACCEPTED)
    stored_department = store_extraction(store, batch_id, department["file"], "d" * 64, 1,
                                         PageExtraction(department_result), audit_rate=0.0)
    stored_project = store_extraction(store, batch_id, project["file"], "e" * 64, 1,
                                      PageExtraction(project_result), audit_rate=0.0)
    yield MixedQueue(store, stored_department.id, stored_project.id, department["file"], project["file"],
                     department_result, token)
    store.close()


def stored(queue: MixedQueue, page_id: int) -> PageRow:
    with queue.store.transaction() as session:
        return session.get(PageRow, page_id)


def open_flag_keys(flags: list[Flag]) -> set[tuple[str, str]]:
    return {(flag.field, flag.reason) for flag in flags}


def leaf_paths(record: dict[str, Any]) -> list[str]:
    """The record's fields in its order: a section's rows as ``section[i].key``."""
    paths = []
    for key, value in record.items():
        if isinstance(value, list):
            paths += [f"{key}[{i}].{column}" for i, row in enumerate(value) for column in row]
        else:
            paths.append(key)
    return paths


# --- field paths of a template record ---------------------------------------------------

def test_a_department_records_fields_follow_its_template():
    record = department_record()
    for path in ("unit_name", "year", "funds_unit", "total_score", "tasks[0].task", "tasks[1].budget",
                 "funds[0].executed", "indicators[0].name", "indicators[4].target"):
        assert is_editable(record, path), path
    # structure: the form type, the sections, the labelled rows' labels; and what the record lacks
    for path in ("form_type", "tasks", "funds", "funds[0].source", "funds[1].source", "tasks[2].task",
                 "tasks[0].nope", "project_name", "nope[0].task", "funds[0]"):
        assert not is_editable(record, path), path
        assert get_text(record, path) == "", path
    assert (get_text(record, "unit_name"), get_text(record, "tasks[1].executed")) == (UNIT_NAME, "518.46")
    assert get_text(record, "funds[0].weight") == "10"


def test_a_department_value_is_typed_by_its_templates_number_grammar():
    record = department_record()
    budget = with_value(record, "tasks[1].budget", "1,540.00")  # 预算数: an amount only the template says is one
    assert isinstance(budget, TemplateRecord) and budget.form_type == DEPARTMENT_FORM_TYPE
    assert budget.tasks[1]["budget"] == 1540.0 and record.tasks[1]["budget"] == 540.0
    assert with_value(record, "funds[0].execution_rate", "98.5%").funds[0]["execution_rate"] == 98.5
    assert with_value(record, "funds[0].weight", "—").funds[0]["weight"] is None
    assert with_value(record, "total_weight", " 100 ").total_weight == 100.0
    assert with_value(record, "year", "2022").year == 2022
    # a text column keeps what was typed, however much it looks like a number
    assert with_value(record, "indicators[4].target", "≥95%").indicators[4]["target"] == "≥95%"
    assert with_value(record, "tasks[0].task", " 义务教育保障（更正） ").tasks[0]["task"] == "义务教育保障（更正）"
    corrected = with_value(record, "unit_name", "上海市宝山区教育局（更正）")
    assert list(corrected.model_dump()) == list(record.model_dump())  # the record's order is kept
    for path, text in (("funds[0].executed", "abc"), ("tasks[0].budget", "540元x"), ("total_score", "九十"),
                       ("year", "1850")):
        with pytest.raises(FieldValueError):
            with_value(record, path, text)
    with pytest.raises(FieldValueError):
        with_value(record, "funds[0].source", "其他资金")


# --- through the queue ------------------------------------------------------------------

def test_department_text_and_number_corrections_are_saved_keeping_the_form_type(mixed_queue: MixedQueue):
    q = mixed_queue
    with q.store.transaction() as session:
        text = save_field(session, q.department_id, "unit_name", "上海市宝山区教育局（更正）", 1, "alice")
    assert isinstance(text.record, TemplateRecord) and text.record.form_type == DEPARTMENT_FORM_TYPE
    assert text.record.unit_name == "上海市宝山区教育局（更正）"
    assert open_flag_keys(text.flags) == {("tasks[1].executed", "low_confidence")}
    assert text.as_json()["record"]["form_type"] == DEPARTMENT_FORM_TYPE

    with q.store.transaction() as session:
        number = save_field(session, q.department_id, "tasks[1].executed", "520.50", 2, "alice")
    assert number.record.tasks[1]["executed"] == 520.5
    assert (number.flags, number.status, number.version) == ([], "corrected", 3)

    for path, value in (("funds[0].executed", "1552.3x"), ("total_score", "abc"), ("funds[0].source", "其他资金"),
                        ("form_type", FORM_TYPE), ("tasks", "x"), ("tasks[7].task", "x")):
        with pytest.raises(FieldValueError), q.store.transaction() as session:
            save_field(session, q.department_id, path, value, 3, "alice")

    page = stored(q, q.department_id)
    assert page.version == 3 and page.status == "corrected"  # a refused value changed nothing
    record = parse_record(page.record)
    assert isinstance(record, TemplateRecord) and record.form_type == DEPARTMENT_FORM_TYPE
    assert (record.unit_name, record.tasks[1]["executed"], record.funds[0]["executed"]) == (
        "上海市宝山区教育局（更正）", 520.5, 1552.36)


def test_a_department_pages_open_flags_come_from_its_templates_rules(mixed_queue: MixedQueue):
    q = mixed_queue
    with q.store.transaction() as session:  # 年度资金总额's 全年执行数 no longer 基本支出 + 项目支出
        broken = save_field(session, q.department_id, "funds[0].executed", "518.46", 1, "alice")
    flags = {(flag.field, flag.reason): flag for flag in broken.flags}
    assert broken.record.funds[0]["executed"] == 518.46 and broken.status == "needs_review"
    assert flags[("funds[0].executed", "rule:rows_sum")].proposal == "1552.36"
    assert {("funds[1].executed", "rule:rows_sum"), ("funds[0].execution_rate", "rule:execution_rate"),
            *((f.field, f.reason) for f in OCR_FLAGS)} <= set(flags)
    with q.store.transaction() as session:
        entries = queue_fields(session)
    entry = next(e for e in entries if (e["field"], e["reason"]) == ("funds[0].executed", "rule:rows_sum"))
    assert (entry["page_id"], entry["value"], entry["proposal"], entry["version"]) == (
        q.department_id, "518.46", "1552.36", 2)

    with q.store.transaction() as session:
        fixed = save_field(session, q.department_id, "funds[0].executed", "1552.36", 2, "alice", action="proposal")
        total = save_field(session, q.department_id, "total_score", "90", 3, "alice")
    assert not any(f.field.startswith("funds") for f in fixed.flags)
    score = next(f for f in total.flags if f.field == "total_score")
    assert (score.reason, score.proposal) == ("rule:scores_sum", "97.82")

    with q.store.transaction() as session:
        save_field(session, q.department_id, "total_score", "97.82", 4, "alice", action="proposal")
        save_field(session, q.department_id, "unit_name", UNIT_NAME, 5, "alice")  # confirmed as read
        last = save_field(session, q.department_id, "tasks[1].executed", "518.46", 6, "alice")
        assert (last.flags, last.status) == ([], "corrected")
        done = finish_page(session, q.department_id, 7, "alice")
    assert done.status == "corrected" and done.record.form_type == DEPARTMENT_FORM_TYPE
    assert parse_record(stored(q, q.department_id).record) == department_record()


def test_export_gives_a_department_record_as_stored_next_to_a_project_one(mixed_queue: MixedQueue, tmp_path):
    q = mixed_queue
    truth = truth_page(DEPARTMENT_TRUTH)["record"]
    assert export(q.store, "jsonl", tmp_path / "records.jsonl") == 2
    lines = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    by_file = {line["source"]["file"]: line for line in lines}
    department = by_file[q.department_file]
    assert department == json.loads(q.department_result.to_json_line())  # `formscan extract`'s line
    assert department["record"] == truth and list(department["record"]) == list(truth)
    assert department["record"]["form_type"] == DEPARTMENT_FORM_TYPE
    assert by_file[q.project_file]["record"]["form_type"] == FORM_TYPE

    assert export(q.store, "csv", tmp_path / "fields.csv") == 2
    rows = list(csv.DictReader((tmp_path / "fields.csv").open(encoding="utf-8-sig")))
    fields = [row for row in rows if row["file"] == q.department_file]
    assert [row["field"] for row in fields] == leaf_paths(truth)
    values = {row["field"]: row for row in fields}
    assert values["form_type"]["value"] == DEPARTMENT_FORM_TYPE
    assert (values["unit_name"]["value"], values["unit_name"]["flags"]) == (UNIT_NAME, "low_confidence")
    assert values["tasks[0].task"]["value"] == "义务教育保障" and values["funds[1].source"]["value"] == "基本支出"
    assert values["funds[1].weight"]["value"] == "" and values["total_score"]["value"] == "97.82"
    assert {row["status"] for row in fields} == {"needs_review"}
    assert [row["field"] for row in rows if row["file"] == q.project_file][:2] == ["year", "project_name"]

    assert export(q.store, "xlsx", tmp_path / "records.xlsx") == 2
    book = load_workbook(tmp_path / "records.xlsx")
    assert book.sheetnames == ["pages", "funds", "indicators", "flags", "template_fields", "audit"]

    def sheet_rows(name: str, file: str) -> list[dict[str, Any]]:
        header, *body = book[name].iter_rows(values_only=True)
        return [dict(zip(header, row)) for row in body if row[0] == file]

    [page] = sheet_rows("pages", q.department_file)
    assert page["form_type"] == DEPARTMENT_FORM_TYPE and page["status"] == "needs_review"
    assert (page["goal_expected"], page["funds_unit"], page["total_score"]) == (
        truth["goal_expected"], "万元", 97.82)
    assert (page["project_name"], page["department"], page["open_flags"]) == (None, None, 2)
    assert sheet_rows("pages", q.project_file)[0]["form_type"] == FORM_TYPE
    funds = sheet_rows("funds", q.department_file)
    sheet_columns = ("file", "page", "project_name", "department")  # this form has neither 项目名称 nor 主管部门
    assert [{k: v for k, v in row.items() if k not in sheet_columns} for row in funds] == truth["funds"]
    assert {(row["project_name"], row["department"]) for row in funds} == {(None, None)}
    indicators = sheet_rows("indicators", q.department_file)
    assert [row["name"] for row in indicators] == [row["name"] for row in truth["indicators"]]
    assert indicators[2]["deviation_reason"] == "雨季延误"
    template_fields = {row["field"]: row["value"] for row in sheet_rows("template_fields", q.department_file)}
    assert (template_fields["unit_name"], template_fields["tasks[0].task"]) == (UNIT_NAME, "义务教育保障")
    assert sheet_rows("template_fields", q.project_file) == []


def test_a_department_page_opens_and_is_corrected_in_the_web_ui(mixed_queue: MixedQueue):
    q = mixed_queue
    client = TestClient(create_app(q.store), base_url="http://127.0.0.1:8000", follow_redirects=False)
    headers = {"Authorization": f"Bearer {q.token}"}
    detail = client.get(f"/api/pages/{q.department_id}", headers=headers).json()
    assert detail["record"]["form_type"] == DEPARTMENT_FORM_TYPE
    items = {item["field"]: item for item in detail["items"]}
    assert {"value": UNIT_NAME, "editable": True}.items() <= items["unit_name"].items()
    assert {"value": "518.46", "editable": True}.items() <= items["tasks[1].executed"].items()
    queued = client.get("/api/queue", headers=headers).json()
    assert {(e["page_id"], e["field"], e["value"]) for e in queued} == {
        (q.department_id, "unit_name", UNIT_NAME), (q.department_id, "tasks[1].executed", "518.46")}

    url = f"/api/pages/{q.department_id}/fields"
    saved = client.post(url, json={"field": "tasks[1].executed", "value": 520.5, "version": 1}, headers=headers)
    assert saved.status_code == 200
    assert saved.json()["record"]["form_type"] == DEPARTMENT_FORM_TYPE
    assert saved.json()["record"]["tasks"][1]["executed"] == 520.5
    refused = client.post(url, json={"field": "funds[0].executed", "value": "abc", "version": 2}, headers=headers)
    assert refused.status_code == 422 and "not a number" in refused.json()["detail"]

    login = client.post("/login", data={"name": "alice", "password": PASSWORDS["alice"], "next": "/"})
    assert login.status_code == 303
    assert client.get("/").status_code == 200
    review = client.get(f"/pages/{q.department_id}")
    assert review.status_code == 200
    embedded = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', review.text, re.DOTALL)
    page_data = json.loads(embedded.group(1))
    assert page_data["record"]["unit_name"] == UNIT_NAME
    assert [(item["field"], item["editable"]) for item in page_data["items"]] == [("unit_name", True)]

    confirmed = client.post(url, json={"field": "unit_name", "value": UNIT_NAME, "version": 2}, headers=headers)
    assert confirmed.status_code == 200 and confirmed.json()["flags"] == []
    done = client.post(f"/api/pages/{q.department_id}/done", json={"version": 3}, headers=headers)
    assert done.status_code == 200 and done.json()["status"] == "corrected"
    assert done.json()["record"]["form_type"] == DEPARTMENT_FORM_TYPE

"""review/labels.py: every field path of a stored record gets the form's own (Chinese) label, English when
asked; every flag the pipeline raises is said in a clerk's words, with the rule's numbers. No database."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models import FormRecord, parse_record
from pipeline.validate import RECORD_RULES, ROW_RULES, rule_flags
from review.form_view import form_layout, layout_order
from review.labels import (
    REASONS,
    field_label,
    field_labels,
    field_paths,
    reason_name,
    reason_text,
    status_name,
)
from review_queue.review_support import ROOT

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")
TRUTHS = sorted((ROOT / "fixtures" / "truth").glob("*.json")) + sorted(
    (ROOT / "fixtures" / "department" / "truth").glob("*.json"))
MISSING_RULES = {"required", "required_row", "required_rows", "row_filled"}  # their flags' reason is "missing"


def records(path: Path):
    for page in json.loads(path.read_text(encoding="utf-8"))["pages"]:
        if page.get("record"):
            yield parse_record(page["record"])


def project_record() -> FormRecord:
    record = next(records(ROOT / "fixtures" / "truth" / "seed-1.json"))
    assert isinstance(record, FormRecord)
    return record


@pytest.mark.parametrize("truth", TRUTHS, ids=lambda p: p.stem)
def test_every_field_path_of_a_stored_record_gets_its_printed_chinese_label(truth: Path):
    found = list(records(truth))
    assert found
    for record in found:
        labels = field_labels(record)
        assert set(field_paths(record)) <= set(labels)
        for path, label in labels.items():
            assert CJK.search(label) and not LATIN.search(label), (path, label)
        # two fields never share a label: a clerk can tell every cell by its name
        paths = field_paths(record)
        assert len({labels[p] for p in paths}) == len(paths)
        english = field_labels(record, "en")
        for path in paths:
            assert not CJK.search(english[path]) or path.startswith(("funds", "tasks")), (path, english[path])


def test_the_project_forms_labels_are_its_printed_words():
    record = project_record()
    expected = {
        "project_name": "项目名称", "department": "主管部门", "implementing_unit": "实施单位", "year": "年度",
        "funds[0].executed": "年度资金总额 全年执行数", "funds[1].initial_budget": "当年财政拨款 年初预算数",
        "funds[0].execution_rate": "年度资金总额 执行率", "funds_unit": "项目资金 单位",
        "goal_expected": "年度总体目标 预期目标", "goal_actual": "年度总体目标 实际完成情况",
        "indicators[6].target": "绩效指标 第7行 年度指标值", "indicators[0].deviation_reason":
            "绩效指标 第1行 偏差原因分析及改进措施", "indicators[2].level2": "绩效指标 第3行 二级指标",
        "total_weight": "总分 分值", "total_score": "总分 得分", "indicators": "绩效指标", "funds": "项目资金",
    }
    assert {path: field_label(path, record) for path in expected} == expected
    assert field_label("funds[0].executed") == "年度资金总额 全年执行数"  # without a record: the project form's rows
    english = {
        "project_name": "Project name", "funds[0].executed": "Total annual funds, Executed in the year",
        "indicators[6].target": "Performance indicators, row 7, Annual target", "total_score": "Total, Score",
    }
    assert {path: field_label(path, record, "en") for path in english} == english
    assert field_label("project_name", record, "fr") == "项目名称"  # an unknown language: the default


def test_a_template_record_gets_its_own_templates_labels_and_layout():
    record = next(records(ROOT / "fixtures" / "department" / "truth" / "department-1.json"))
    assert record.form_type == "department_performance_self_evaluation"
    assert field_label("unit_name", record) == "部门（单位）名称"
    assert field_label("tasks[1].executed", record) == "年度主要任务 第2行 执行数"
    assert field_label("funds[2].annual_budget", record) == "项目支出 全年预算数"
    assert field_label("funds_unit", record) == "年度资金 单位"
    blocks = form_layout(record, "zh")
    tables = [(b["title"], b["headers"][:2]) for b in blocks if b["kind"] == "table"]
    assert tables == [("年度主要任务", ["任务名称", "主要内容"]), ("年度资金", ["年初预算数", "全年预算数"]),
                      ("绩效指标", ["一级指标", "二级指标"])]
    editable = [p for p in field_paths(record) if p != "form_type" and not p.endswith(".source")]
    assert sorted(layout_order(blocks)) == sorted(editable)  # every value of the record is on the form view


def broken_records() -> list:
    """Records that break every rule of the project and department templates, each with numbers."""
    project = project_record()
    data = project.model_dump()
    data["funds"][0]["execution_rate"] = 95.5  # 执行率 222.85/223.86 = 99.55
    data["total_score"], data["total_weight"] = 90.0, 95.0  # the rows add up to 105 and 90 (below)
    data["funds"][1]["weight"] = 5.0  # 当年财政拨款 prints — there
    data["funds"][2]["execution_rate"] = 1.0  # a rate in a row with no amount
    data["indicators"][0]["score"] = 25.0  # over its 分值 20
    data["indicators"][1]["weight"] = None  # 得分 10 with no 分值
    data["indicators"][2]["level1"] = ""  # printed on every row
    data["department"] = "上海市宝山区行政服务中心 实施单位"  # a label read into the value
    data["goal_expected"] = "确保“一网通办正常运行。"  # a mark with no partner
    data["implementing_unit"] = ""
    no_rows = project.model_dump() | {"indicators": [], "funds": []}
    department = next(records(ROOT / "fixtures" / "department" / "truth" / "department-1.json")).model_dump()
    department["funds"][1]["executed"] = (department["funds"][1]["executed"] or 0) + 10  # 基本支出 + 项目支出 ≠ 总额
    department["tasks"] = []
    return [parse_record(data), parse_record(no_rows), parse_record(department)]


def department_total_executed() -> float:
    return next(records(ROOT / "fixtures" / "department" / "truth" / "department-1.json")).model_dump()["funds"][0][
        "executed"]


def test_every_rule_flag_is_said_in_a_clerks_chinese_words_with_its_numbers():
    flags = [flag for record in broken_records() for flag in rule_flags(record)]
    said = {}
    for flag in flags:
        text = reason_text(flag.reason, flag.message)
        assert CJK.search(text) and not LATIN.search(text), (flag, text)
        said.setdefault(flag.reason, set()).add(text)
    rules = {reason.removeprefix("rule:") for reason in said if reason.startswith("rule:")}
    assert set(RECORD_RULES) | set(ROW_RULES) <= rules | MISSING_RULES  # every rule of validate.py was broken
    assert {"rule:" + name for name in (set(RECORD_RULES) | set(ROW_RULES)) - MISSING_RULES} <= {
        entry["reason"] for entry in REASONS}
    assert "执行率与预算、执行数不符（应为 99.55）" in said["rule:execution_rate"]
    assert "这一行没有预算数和执行数，却有执行率 1%" in said["rule:execution_rate"]
    assert "得分合计 105，与总分 90 不符" in said["rule:scores_sum"]
    assert "分值合计 90，与总分 95 不符" in said["rule:weights_sum"]
    assert "“当年财政拨款”这一行不应有分值（表上印的是 —）" in said["rule:subrow_unscored"]
    assert {"得分 25 超过分值 20", "有得分 10，却没有分值"} <= said["rule:score_le_weight"]
    assert said["rule:label_in_value"] == {"内容里有表头“实施单位”：可能把两格读成了一格"}
    total = department_total_executed()
    assert said["rule:rows_sum"] == {f"基本支出 + 项目支出 合计 {total + 10:g}，与年度资金总额 {total:g} 不符"}
    assert {"未读到", "未读到（每一行都应填写）", "未读到任何绩效指标行", "未找到“年度资金总额”行",
            "未读到任何年度主要任务行"} <= said["missing"]


def test_reading_and_layout_flags_in_words_engine_names_left_out():
    assert reason_text("low_confidence", "the two OCR engines disagree") == "两次识别结果不一致"
    assert reason_text("low_confidence", "low OCR confidence") == "识别把握不大"
    assert reason_text("engines_disagree") == "两次识别结果不一致"
    assert reason_text("unparseable", "'9O.5' is not a number") == "无法识别为数字"
    assert reason_text("rule:layout", "a cell reaches under two headers") == "表格结构存疑，请核对"
    assert reason_text("rule:layout_doubt", "the page's layout is in doubt (...)") == "表格结构存疑，请核对"
    assert reason_text("rule:layout_failed", "no 三级指标 header") == "表格结构无法识别，请核对"
    assert reason_text("low_confidence", "the two OCR engines disagree", "en") == "The two readings disagree"
    assert reason_text("rule:scores_sum", "总分 90 but the rows add up to 100", "en") == \
        "The scores add up to 100, not the total 90"
    assert reason_text("rule:new_rule", "what it says") == "rule:new_rule: what it says"  # unknown: as it is
    assert (reason_name("rule:execution_rate"), reason_name("missing", "en")) == ("执行率不符", "not read")
    assert (status_name("needs_review"), status_name("rejected", "en")) == ("待核对", "rejected")

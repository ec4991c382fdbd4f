"""Form templates: loading, mapping both forms' printed cells to their true records,
detection of which form a page is, and `formscan extract` on the 部门整体支出绩效自评表 scans."""

import json
import os
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from test_assemble import perfect_reading

from bench.accuracy import load_truth, score, summarise
from fixtures.template_pages import render_described
from models import FormRecord, TemplateRecord
from pipeline.assemble import assemble_record
from pipeline.errors import NotAFormError, TemplateError
from pipeline.extract import matching_templates, require_form_shown
from pipeline.grid import Box, Cell, Grid
from pipeline.lexicon import Lexicon
from pipeline.ocr import CellText
from pipeline.templates import TEMPLATES_DIR, all_templates, get_template, parse_template, template_names
from pipeline.validate import NOTICES, RECORD_RULES, ROW_RULES, rule_flags

ROOT = Path(__file__).parent.parent
PROJECT_TRUTH = sorted((ROOT / "fixtures" / "truth").glob("*.json"))
DEPARTMENT = ROOT / "fixtures" / "department"
DEPARTMENT_TRUTH = sorted((DEPARTMENT / "truth").glob("*.json"))


def pages(paths):
    for path in paths:
        for page in json.loads(path.read_text(encoding="utf-8"))["pages"]:
            yield pytest.param(page, id=f"{path.stem}-p{page['page']}")


def test_both_templates_are_installed_and_shipped_as_package_data():
    assert template_names() == ["project_self_evaluation", "department_self_evaluation"]
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    for path in TEMPLATES_DIR.glob("*.toml"):
        assert any(fnmatch(f"templates/{path.name}", pattern) for pattern in globs["pipeline"]), path.name


@pytest.mark.parametrize("template", all_templates(), ids=lambda t: t.name)
def test_every_rule_a_template_names_is_a_rule_of_validate(template):
    for rule in template.rules:
        assert rule["rule"] in RECORD_RULES or rule["rule"] in ROW_RULES
    for notice in template.notices:
        assert notice["rule"] in NOTICES


def test_a_malformed_template_is_refused_naming_its_file():
    text = (TEMPLATES_DIR / "department_self_evaluation.toml").read_text(encoding="utf-8")
    with pytest.raises(TemplateError, match="broken.toml.*percent"):
        parse_template(text.replace('number = "rate"', 'number = "percent"'), "broken", Path("broken.toml"))
    with pytest.raises(TemplateError, match="no template 'nonexistent'"):
        get_template("nonexistent")


@pytest.mark.parametrize("page", list(pages(DEPARTMENT_TRUTH)))
def test_printed_department_cells_map_to_the_true_record(page):
    grid, texts = perfect_reading(page)
    template = get_template("department_self_evaluation")
    assembled = assemble_record(grid, texts, f"部门整体支出绩效自评表\n{page['header']['year_text']}",
                                Lexicon.builtin(template), template)
    assert isinstance(assembled.record, TemplateRecord)
    assert assembled.record.model_dump(mode="json") == page["record"]
    assert assembled.unmapped == {} and assembled.misaligned == {} and assembled.unparseable == {}
    assert list(rule_flags(assembled.record)) == []


@pytest.mark.parametrize(("paths", "expected"), [
    (PROJECT_TRUTH, "project_self_evaluation"), (DEPARTMENT_TRUTH, "department_self_evaluation"),
], ids=["project", "department"])
def test_each_form_is_detected_by_its_identifying_labels(paths, expected):
    for page in [p.values[0] for p in pages(paths)]:
        grid, texts = perfect_reading(page)
        assert [t.name for t in matching_templates(all_templates(), grid, texts)] == [expected], page["form_id"]


def test_a_page_read_as_the_other_form_is_not_that_form():
    project_page = json.loads(PROJECT_TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    department_page = json.loads(DEPARTMENT_TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    department = get_template("department_self_evaluation")
    for page, template, header, other in [
        (project_page, department, "财政项目支出绩效自评表", "项目支出绩效自评表"),
        (department_page, get_template(), "部门整体支出绩效自评表", "部门整体支出绩效自评表"),
    ]:
        grid, texts = perfect_reading(page)
        assembled = assemble_record(grid, texts, header, template=template)
        assert assembled.layout_failed
        with pytest.raises(NotAFormError, match=f"it shows the {other}"):
            require_form_shown(template, header, [t.text for t in texts.values()], assembled.layout_failed)


def test_a_table_of_other_labels_matches_no_template():
    cells = [Cell(r, c, 1, 1, Box(c, r, c + 1, r + 1)) for r in range(3) for c in range(3)]
    words = ["姓名", "电话", "部门", "张三", "123", "财务科", "李四", "456", "办公室"]
    texts = {cell: CellText(word, 1.0, "agreed") for cell, word in zip(cells, words)}
    assert matching_templates(all_templates(), Grid((0, 1, 2, 3), (0, 1, 2, 3), tuple(cells)), texts) == []


def test_the_department_subrows_must_add_up_to_the_total():
    page = json.loads(DEPARTMENT_TRUTH[-1].read_text(encoding="utf-8"))["pages"][0]
    record = TemplateRecord.model_validate(page["record"])
    # 865.40 misread as 865.1 in both 全年预算数 and 全年执行数: 执行率 still holds, the sum does not.
    record.funds[0]["annual_budget"] = record.funds[0]["executed"] = 865.1
    flags = [(f.field, f.proposal) for f in rule_flags(record) if f.reason == "rule:rows_sum"]
    assert ("funds[0].annual_budget", "865.4") in flags and ("funds[0].executed", "865.4") in flags
    assert ("funds[1].executed", None) in flags and ("funds[2].executed", None) in flags


def test_the_project_record_is_still_a_form_record():
    page = json.loads(PROJECT_TRUTH[0].read_text(encoding="utf-8"))["pages"][0]
    assert isinstance(assemble_record(*perfect_reading(page)).record, FormRecord)


def test_department_fixtures_are_what_their_description_renders():
    description = tomllib.loads((DEPARTMENT / "pages.toml").read_text(encoding="utf-8"))
    for page, truth_path in zip(description["pages"], DEPARTMENT_TRUTH):
        _, _, truth = render_described(description, page)
        committed = json.loads(truth_path.read_text(encoding="utf-8"))["pages"][0]
        assert {**truth, "page": 1} == committed


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> list[dict]:
    """`formscan extract` (form detected per page) over the department scans and one project scan."""
    out = tmp_path_factory.mktemp("templates") / "out.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "formscan", "extract", str(DEPARTMENT / "scans"),
         str(ROOT / "fixtures" / "scans" / "seed-2.pdf"), "-o", str(out), "--workers", "1", "-q"],
        capture_output=True, text=True, env=dict(os.environ, OMP_THREAD_LIMIT="1"), timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_extract_detects_each_pages_form(extracted):
    forms = {Path(line["source"]["file"]).stem: line["record"]["form_type"] for line in extracted}
    assert forms == {
        "department-1": "department_performance_self_evaluation",
        "department-2": "department_performance_self_evaluation",
        "department-3": "department_performance_self_evaluation",
        "seed-2": "project_performance_self_evaluation",
    }


def test_department_scans_are_read_right_and_no_wrong_field_goes_unflagged(extracted):
    department = [line for line in extracted if "department" in line["source"]["file"]]
    scored = score(department, load_truth(DEPARTMENT / "truth"))
    assert len(scored) == 3 and all(page.error is None for page in scored)
    assert summarise(scored)["all"]["field_accuracy"] >= 0.97, [w for p in scored for w in p.wrong]
    assert [(p.file, w) for p in scored for w in p.wrong if not w[3]] == []


def test_a_forced_template_reads_a_page_of_the_other_form_as_not_a_form(tmp_path):
    out = tmp_path / "out.jsonl"
    scan = DEPARTMENT / "scans" / "department-1.pdf"
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    done = subprocess.run(
        [sys.executable, "-m", "formscan", "extract", str(scan), "-o", str(out), "--workers", "1", "-q",
         "--template", "project_self_evaluation"], capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 1
    assert json.loads(out.read_text(encoding="utf-8"))["error"]["kind"] == "not_a_form"
    refused = subprocess.run(
        [sys.executable, "-m", "formscan", "extract", str(scan), "-o", str(out), "--template", "nonexistent"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert refused.returncode == 2 and "no template 'nonexistent'" in refused.stderr

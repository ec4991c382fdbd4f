"""审核页的表格视图，在真的 Chromium 里（Debian 的 chromium，经 Playwright），对 127.0.0.1 上的 `formscan review`：
中文的表格标签和核对原因，任一格可点可改，草稿不丢（Tab、刷新），退回要写原因、可撤销，按项目名称搜索队列，
抽查页显示每个值。On SQLite and on PostgreSQL (the ``queue`` fixture).

Set FORMSCAN_FORM_VIEW_SCREENSHOTS=1 to also write docs/images/review-form-view.png and review-queue.png.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from models import Flag, PageResult, PageStatus, SourceRef, parse_record
from pipeline.extract import PageExtraction
from review import auth
from review.app import create_app
from review.fields import get_text
from review.form_view import field_cells
from review.ingest import new_batch, store_extraction
from review.labels import LANG_COOKIE, field_paths
from review.queue import finish_page, page_detail, reject_page, save_field
from review.store import Batch, Document, PageRow, open_store
from review_queue import test_review_browser as browser
from review_queue.review_support import PASSWORDS, ROOT, Queue

# the fixtures of the keyboard test: the server on 127.0.0.1 (stopped by its PID) and Chromium
server = browser.server
browser_page = browser.browser_page
log_in = browser.log_in

SCREENSHOTS = ROOT / "docs" / "images"


def cell(page: Page, field: str):
    return page.locator(f'.f[data-field="{field}"]')


def stored(queue: Queue, page_id: int) -> dict[str, Any]:
    with queue.store.transaction() as session:
        row = session.get(PageRow, page_id)
        return {"status": row.status, "record": row.record, "version": row.version}


def open_page(page: Page, base: str, page_id: int) -> None:
    page.goto(f"{base}/pages/{page_id}")
    page.wait_for_load_state("networkidle")  # the page image is drawn, the outline placed


def test_the_form_view_shows_the_forms_chinese_labels_and_reasons(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    log_in(page, server)
    open_page(page, server, queue.flagged_id)
    form = page.locator("#form")
    for printed in ("项目名称", "主管部门", "实施单位", "项目资金", "年初预算数", "全年预算数", "全年执行数", "执行率",
                    "年度资金总额", "当年财政拨款", "上年结转资金", "其他资金", "年度总体目标", "预期目标", "实际完成情况",
                    "绩效指标", "一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "偏差原因分析及改进措施",
                    "总分"):
        expect(form.locator("th", has_text=printed).first).to_be_visible()
    expect(cell(page, "project_name").locator(".v")).to_have_text("网络系统运营经费（宝信息委【2019】53号）")
    # the misread 执行率 and 总分 are highlighted; a field no rule or reading doubts is not
    expect(cell(page, "funds[0].execution_rate")).to_have_class(re.compile(r"\bflagged\b"))
    expect(cell(page, "total_score")).to_have_class(re.compile(r"\bflagged\b"))
    expect(cell(page, "project_name")).not_to_have_class(re.compile(r"\bflagged\b"))

    cell(page, "funds[0].execution_rate").click()
    expect(page.locator("#label")).to_have_text("年度资金总额 执行率")
    expect(page.locator("#reasons")).to_contain_text("执行率与预算、执行数不符（应为 99.55）")
    expect(page.locator("#proposal")).to_have_text("建议值 99.55 （Alt+A 采用）")
    expect(page.locator("#value")).to_have_value("95.5")
    cell(page, "total_score").click()
    expect(page.locator("#label")).to_have_text("总分 得分")
    expect(page.locator("#reasons")).to_contain_text("得分合计 100，与总分 90 不符")
    expect(page.locator("#flags")).to_contain_text("绩效指标 第7行 得分 — 得分合计 100，与总分 90 不符")
    # engine names and evidence classes only behind 详情 / details
    readings = page.locator("#readings")
    expect(readings).to_be_hidden()
    page.locator("#details summary").click()
    expect(readings).to_be_visible()
    expect(readings).to_contain_text("tesseract")
    expect(page.locator("#field")).to_have_text("total_score")

    if os.environ.get("FORMSCAN_FORM_VIEW_SCREENSHOTS"):
        page.locator("#details summary").click()
        cell(page, "funds[0].execution_rate").click()
        page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "review-form-view.png")

    # English as the reviewer's option, kept for the next page too
    page.locator("#lang-en").click()
    expect(page).to_have_url(f"{server}/pages/{queue.flagged_id}")
    expect(form.locator("th", has_text="Project name")).to_be_visible()
    cell(page, "funds[0].execution_rate").click()
    expect(page.locator("#label")).to_have_text("Total annual funds, Execution rate")
    expect(page.locator("#reasons")).to_contain_text("The execution rate does not match the budget")
    page.goto(server + "/")
    expect(page.locator("#start")).to_have_text("Start reviewing ⏎")
    page.locator("#lang-zh").click()
    expect(page.locator("#start")).to_have_text("开始核对 ⏎")


def test_an_unflagged_field_is_clicked_typed_and_saved_with_enter(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    log_in(page, server)
    open_page(page, server, queue.flagged_id)
    with queue.store.transaction() as session:
        box = field_cells(session, queue.flagged_id)["implementing_unit"]
    assert "implementing_unit" not in {item["field"] for item in page_detail_items(queue)}

    cell(page, "implementing_unit").click()
    expect(page.locator("#label")).to_have_text("实施单位")
    expect(page.locator("#value")).to_be_focused()
    expect(page.locator("#value")).to_have_value("上海市宝山区行政服务中心")
    # its cell lights up on the page image, where the field was read
    outline, image = page.locator("#outline"), page.locator("#page-image")
    expect(outline).to_be_visible()
    natural = image.evaluate("i => i.naturalWidth")
    shown, lit = image.bounding_box(), outline.bounding_box()
    scale = shown["width"] / natural
    assert abs(lit["x"] - (shown["x"] + box["x0"] * scale)) < 6 and abs(lit["y"] - (shown["y"] + box["y0"] * scale)) < 6
    assert abs(lit["width"] - (box["x1"] - box["x0"]) * scale) < 8
    page.locator("#zoom-in").click()  # zoomed in, the outline stays on its cell
    expect(page.locator("#zoom-level")).to_have_text("125%")
    zoomed, lit = image.bounding_box(), outline.bounding_box()
    assert abs(zoomed["width"] - shown["width"] * 1.25) < 2
    scale = zoomed["width"] / natural
    assert abs(lit["x"] - (zoomed["x"] + box["x0"] * scale)) < 6 and abs(lit["y"] - (zoomed["y"] + box["y0"] * scale)) < 6
    page.locator("#sheet").hover()
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)  # Ctrl + wheel zooms too
    page.keyboard.up("Control")
    expect(page.locator("#zoom-level")).to_have_text("144%")
    page.locator("#zoom-fit").click()
    expect(page.locator("#zoom-level")).to_have_text("100%")
    expect(page.locator("#original")).to_have_attribute("href", f"/pages/{queue.flagged_id}/image")
    cell(page, "implementing_unit").click()

    page.keyboard.type("上海市宝山区行政服务中心信息科")  # the value is selected: typing replaces it
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("已保存 实施单位。")
    expect(cell(page, "implementing_unit").locator(".v")).to_have_text("上海市宝山区行政服务中心信息科")
    expect(cell(page, "implementing_unit")).not_to_have_class(re.compile(r"\bdraft\b"))
    expect(page.locator("#trail")).to_contain_text("上海市宝山区行政服务中心信息科")
    expect(page.locator("#label")).not_to_have_text("实施单位")  # Enter moved on to a flagged field
    assert stored(queue, queue.flagged_id)["record"]["implementing_unit"] == "上海市宝山区行政服务中心信息科"

    # a sentence is edited in a multi-line box: Enter is a new line there, Ctrl+Enter saves
    cell(page, "goal_expected").click()
    text = page.locator("#value-long")
    expect(text).to_be_focused()
    expect(page.locator("#value")).to_be_hidden()
    page.keyboard.press("Control+End")
    page.keyboard.type("（已核）")
    page.keyboard.press("Enter")
    assert stored(queue, queue.flagged_id)["record"]["goal_expected"].endswith("正常运行。")
    page.keyboard.press("Backspace")  # the new line Enter made
    page.keyboard.press("Control+Enter")
    expect(page.locator("#message")).to_contain_text("已保存 年度总体目标 预期目标。")
    assert stored(queue, queue.flagged_id)["record"]["goal_expected"].endswith("正常运行。（已核）")


def page_detail_items(queue: Queue) -> list[dict[str, Any]]:
    with queue.store.transaction() as session:
        return page_detail(session, queue.flagged_id)["items"]


def test_a_draft_is_kept_on_tab_marked_unsaved_and_survives_a_reload(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    log_in(page, server)
    open_page(page, server, queue.flagged_id)
    first = page.locator("#field").text_content()  # the first flagged field, whichever it is
    before = stored(queue, queue.flagged_id)
    original = page.locator("#value").input_value()

    page.keyboard.type("123.45")
    page.keyboard.press("Tab")  # away: to the next flagged field
    expect(page.locator("#field")).not_to_have_text(first)
    draft = cell(page, first)
    expect(draft).to_have_class(re.compile(r"\bdraft\b"))
    expect(draft.locator(".v")).to_have_text("123.45")
    expect(draft.locator(".mark")).to_have_text("未保存")
    expect(draft.locator(".mark")).to_be_visible()
    page.keyboard.press("Shift+Tab")  # and back: the draft is in the box
    expect(page.locator("#field")).to_have_text(first)
    expect(page.locator("#value")).to_have_value("123.45")
    expect(page.locator("#draft-mark")).to_be_visible()
    cell(page, "department").click()  # clicking elsewhere keeps it too
    expect(draft.locator(".v")).to_have_text("123.45")
    assert stored(queue, queue.flagged_id) == before  # nothing saved yet

    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#message")).to_have_text("已恢复 1 处未保存的修改。")
    expect(cell(page, first).locator(".v")).to_have_text("123.45")
    expect(cell(page, first).locator(".mark")).to_be_visible()
    expect(page.locator("#field")).to_have_text(first)  # the draft is where Tab's round starts
    expect(page.locator("#value")).to_have_value("123.45")
    page.keyboard.press("Enter")  # saved now: no longer a draft, not even after a reload
    expect(page.locator("#message")).to_contain_text("已保存")
    assert get_text(parse_record(stored(queue, queue.flagged_id)["record"]), first) == "123.45"
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(cell(page, first)).not_to_have_class(re.compile(r"\bdraft\b"))
    expect(cell(page, first).locator(".v")).to_have_text("123.45")
    assert original != "123.45"


def test_reject_asks_for_a_reason_and_undo_restores_the_page(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    log_in(page, server)
    open_page(page, server, queue.flagged_id)
    dialog = page.locator("#reject-dialog")
    page.keyboard.press("Alt+R")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("退回这一页？")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.locator("#reject-confirm").click()  # no reason: nothing happens but a word
    expect(page.locator("#reject-error")).to_have_text("请写明退回的原因。")
    assert stored(queue, queue.flagged_id)["status"] == "needs_review"
    page.locator("#reject-cancel").click()
    expect(dialog).to_be_hidden()
    assert stored(queue, queue.flagged_id)["status"] == "needs_review"

    page.locator("#reject-button").click()
    page.keyboard.type("扫描缺页，需重新扫描")
    page.locator("#reject-confirm").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#status")).to_have_text("已退回")
    expect(page.locator("#rejected")).to_contain_text("本页已退回。 原因：扫描缺页，需重新扫描")
    assert stored(queue, queue.flagged_id)["status"] == "rejected"
    expect(page.locator("#trail")).to_contain_text("扫描缺页，需重新扫描")

    page.locator("#undo-reject").click()
    expect(page.locator("#message")).to_have_text("已撤销退回。")
    expect(page.locator("#status")).to_have_text("待核对")
    expect(page.locator("#rejected")).to_be_hidden()
    assert stored(queue, queue.flagged_id)["status"] == "needs_review"
    expect(page.locator("#value")).to_be_focused()  # back to work, on the first flagged field


def test_search_the_queue_by_project_name_department_or_file(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    log_in(page, server)
    rows = page.locator("#pages tbody tr")
    expect(rows).to_have_count(2)
    page.locator("#q").fill("运营经费")  # part of seed-1's 项目名称
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-page", str(queue.flagged_id))
    expect(rows.first).to_contain_text("网络系统运营经费（宝信息委【2019】53号）")
    expect(page.locator("#search-count")).to_have_text("搜索“运营经费”：1 页")
    page.locator("#q").fill("宝山区行政服务中心")  # the 主管部门 of both pages
    page.keyboard.press("Enter")
    expect(rows).to_have_count(2)
    page.locator("#q").fill("SEED-2")  # a file's name, in any case
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-page", str(queue.clean_id))
    page.locator("#q").fill("没有这个项目")
    page.keyboard.press("Enter")
    expect(rows).to_have_text(["没有符合条件的页面。"])
    found = httpx.get(server + "/api/search", params={"q": "运营经费"},
                      headers={"Authorization": f"Bearer {queue.token}"}).json()
    assert [(p["page_id"], p["project_name"]) for p in found] == [
        (queue.flagged_id, "网络系统运营经费（宝信息委【2019】53号）")]


def test_the_queue_counts_what_is_left_and_points_to_the_next_batch(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    with queue.store.transaction() as session:
        batch_id = session.get(PageRow, queue.flagged_id).document.batch_id
        open_fields = len({item["field"] for item in page_detail(session, queue.flagged_id)["items"]})
        later = Batch(name="第二批")
        session.add(later)
        session.flush()
        document = Document(sha256="0" * 64, name="scans/later.pdf", batch_id=later.id, names=[])
        session.add(document)
        session.flush()
        session.add(PageRow(document_id=document.id, number=1, status="needs_review", machine_flags=[], notices=[]))
    log_in(page, server)
    expect(page.locator("#left")).to_contain_text(f"共剩 3 页、{open_fields} 处待核对")
    expect(page.locator("#eta")).to_have_text("还没有保存记录，无法估计剩余时间。")
    fixtures = page.locator(f'#batches tr[data-batch="{batch_id}"]')
    expect(fixtures.locator(".pages-left")).to_have_text("2")
    expect(fixtures.locator(".fields-left")).to_have_text(str(open_fields))

    with queue.store.transaction() as session:  # the reviewers get to work: a pace to go by
        save_field(session, queue.flagged_id, "project_name", "网络系统运营经费", 1, "bob")
        save_field(session, queue.flagged_id, "department", "上海市宝山区行政服务中心", 2, "bob")
    page.reload()
    expect(page.locator("#eta")).to_contain_text("按最近的速度")
    expect(page.locator("#eta")).to_contain_text("约需")

    with queue.store.transaction() as session:  # the batch is finished
        version = session.get(PageRow, queue.flagged_id).version
        reject_page(session, queue.flagged_id, version, "bob", "不是本年度的表")
        finish_page(session, queue.clean_id, session.get(PageRow, queue.clean_id).version, "bob")
    page.goto(f"{server}/?batch={batch_id}")
    expect(page.locator("#batch-done")).to_contain_text("“fixtures”这一批已全部核对完毕。")
    expect(page.locator("#next-batch")).to_have_text("下一批：第二批（还剩 1 页）")
    expect(fixtures.locator(".finished")).to_contain_text("已完成")
    expect(page.locator("#left")).to_contain_text("共剩 1 页、0 处待核对")
    page.locator("#next-batch").click()
    expect(page.locator("#start")).to_be_visible()


def test_an_audit_page_shows_every_value(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    log_in(page, server)
    if os.environ.get("FORMSCAN_FORM_VIEW_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "review-queue.png")
    open_page(page, server, queue.clean_id)
    assert stored(queue, queue.clean_id)["status"] == "audit"
    record = parse_record(stored(queue, queue.clean_id)["record"])
    expect(page.locator("#message")).to_have_text("没有待核对的字段了 —— 按 Alt+D 完成本页。")
    paths = [path for path in field_paths(record) if path != "form_type" and not path.endswith(".source")]
    expect(page.locator("#form .f")).to_have_count(len(paths))
    values = 0
    for path in paths:
        expect(cell(page, path).locator(".v")).to_have_text(get_text(record, path))
        values += bool(get_text(record, path))
    assert values > 40  # the page is read: 项目名称 to 总分, each shown
    for source in ("年度资金总额", "当年财政拨款"):  # a funds row's source is its printed label
        expect(page.locator("#form th", has_text=source)).to_be_visible()
    # any value of it can be opened: the audit checks what went straight through
    cell(page, "indicators[0].target").click()
    expect(page.locator("#label")).to_have_text("绩效指标 第1行 年度指标值")
    expect(page.locator("#value")).to_have_value(get_text(record, "indicators[0].target"))
    expect(page.locator("#crop")).to_be_visible()


def test_a_template_records_form_view_has_its_templates_labels(db_url: str, tmp_path):
    """A 部门整体支出绩效自评表 (a TemplateRecord) is laid out and labelled by its own template."""
    truth = (ROOT / "fixtures" / "department" / "truth" / "department-1.json").read_text(encoding="utf-8")
    page_truth = json.loads(truth)["pages"][0]
    record = parse_record(page_truth["record"])
    store = open_store(db_url, tmp_path / "store")
    with store.transaction() as session:
        auth.set_password(session, "alice", PASSWORDS["alice"])
    flag = Flag(field="tasks[1].executed", reason="low_confidence", confidence=0.5,
                message="the two OCR engines disagree", readings={"paddle": "518.46", "tesseract": "518.45"})
    result = PageResult(source=SourceRef(file="department-1.pdf", page=1), record=record, flags=[flag],
                        status=PageStatus.NEEDS_REVIEW)
    stored_page = store_extraction(store, new_batch(store, "部门", []), "department-1.pdf", "d" * 64, 1,
                                   PageExtraction(result), audit_rate=0.0)
    try:
        client = TestClient(create_app(store), base_url="http://127.0.0.1:8000")
        client.post("/login", data={"name": "alice", "password": PASSWORDS["alice"], "next": "/"})
        html = client.get(f"/pages/{stored_page.id}").text
        for printed in ("部门（单位）名称", "年度主要任务", "任务名称", "主要内容", "对应项目", "预算数", "年度资金",
                        "基本支出", "项目支出", "年度总体目标", "绩效指标", "偏差原因分析及改进措施", "总分"):
            assert f">{printed}" in html, printed
        assert re.search(r'class="f flagged"\s+data-field="tasks\[1\]\.executed"', html)
        assert get_text(record, "unit_name") in html
        queue_page = client.get("/?q=" + get_text(record, "unit_name")).text  # found by its 部门（单位）名称
        assert f'data-page="{stored_page.id}"' in queue_page
    finally:
        store.close()


def test_the_language_is_the_reviewers_own_on_any_browser(queue: Queue):
    """English chosen once by alice follows her to a browser that never chose; bob keeps Chinese."""
    def logged_in(name: str) -> TestClient:
        client = TestClient(create_app(queue.store), base_url="http://127.0.0.1:8000", follow_redirects=False)
        response = client.post("/login", data={"name": name, "password": PASSWORDS[name], "next": "/"})
        assert response.status_code == 303
        return client

    first = logged_in("alice")
    assert 'lang="zh' in first.get("/").text  # Chinese by default
    assert first.get("/lang/en?next=/").status_code == 303
    elsewhere = logged_in("alice")  # a new browser: no language cookie
    assert LANG_COOKIE not in elsewhere.cookies and 'lang="en"' in elsewhere.get("/").text
    assert 'lang="zh' in logged_in("bob").get("/").text

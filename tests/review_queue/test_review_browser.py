"""The real UI in headless Chromium (Debian's, through Playwright), against `formscan review` on 127.0.0.1.

Set FORMSCAN_SCREENSHOT=1 to also write the review page screenshot to docs/images/review-form-view.png.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from review.queue import page_detail, save_field
from review_queue.review_support import PASSWORDS, ROOT, Queue

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(queue: Queue) -> Iterator[str]:
    """`formscan review` on the queue's database, on 127.0.0.1; stopped by its PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "formscan", "review", "--db", queue.store.url, "--store", str(queue.store.store_dir),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def browser_page() -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
        yield page
        browser.close()


def log_in(page: Page, base: str, name: str = "alice") -> None:
    page.goto(base + "/")
    expect(page).to_have_url(f"{base}/login?next=/")
    page.keyboard.type(name)  # the name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[name])
    page.keyboard.press("Enter")
    expect(page).to_have_url(base + "/")


def test_a_whole_batch_reviewed_with_the_keyboard_then_exported(server: str, browser_page: Page, queue: Queue,
                                                                 tmp_path: Path):
    with queue.store.transaction() as session:
        fields = [item["field"] for item in page_detail(session, queue.flagged_id)["items"]]
    assert {"funds[0].execution_rate", "total_score"} <= set(fields)  # in reading order, OCR flags among them
    page = browser_page
    log_in(page, server)
    expect(page.locator("#audit")).to_contain_text("抽查：1 页")
    with page.expect_response(lambda response: response.url.endswith("/crop")) as crop:
        page.keyboard.press("Enter")  # "Start reviewing" has the focus
    expect(page).to_have_url(f"{server}/pages/{queue.flagged_id}")
    assert crop.value.status == 200

    field, value = page.locator("#field"), page.locator("#value")
    expect(field).to_have_text(fields[0])
    expect(value).to_be_focused()
    page.keyboard.press("Tab")
    expect(field).to_have_text(fields[1])
    page.keyboard.press("Shift+Tab")
    expect(field).to_have_text(fields[0])
    for _ in range(fields.index("funds[0].execution_rate")):
        page.keyboard.press("Tab")
    expect(field).to_have_text("funds[0].execution_rate")
    expect(value).to_have_value("95.5")
    expect(page.locator("#proposal")).to_contain_text("99.55")
    expect(page.locator("#readings")).to_contain_text("paddle:")
    expect(page.locator("#outline")).to_be_visible()
    page.wait_for_load_state("networkidle")  # page image and crop drawn (no eval: the CSP forbids it)
    page.screenshot(path=tmp_path / "review-page.png")
    if os.environ.get("FORMSCAN_SCREENSHOT"):
        page.screenshot(path=ROOT / "docs" / "images" / "review-form-view.png")

    page.keyboard.type("99.55%")  # the value is selected: typing replaces it
    page.keyboard.press("Enter")  # save, re-validate, move on to the next flagged field
    message = page.locator("#message")
    expect(message).to_contain_text("已保存 年度资金总额 执行率。仍不符合：得分合计 100，与总分 90 不符")
    expect(page.locator("#trail")).to_contain_text("99.55")
    expect(page.locator("#version")).to_have_text("2")

    while page.locator("#field").text_content() != "total_score":
        page.keyboard.press("Tab")
    page.keyboard.press("Alt+A")  # accept the proposal: the rows add up to 100
    expect(message).to_contain_text("已保存 总分 得分。各项规则都已符合。")
    expect(page.locator("#version")).to_have_text("3")
    version = 3
    while "没有待核对的字段了" not in message.text_content():  # the OCR-flagged readings are right: Enter confirms
        assert version < 3 + len(fields)
        page.keyboard.press("Enter")
        version += 1
        expect(page.locator("#version")).to_have_text(str(version))
    expect(message).to_contain_text("没有待核对的字段了")
    expect(page.locator("#status")).to_have_text("已更正")
    page.keyboard.press("Alt+D")  # page done: on to the next page waiting (the audit sample)
    expect(page).to_have_url(f"{server}/pages/{queue.clean_id}")
    expect(message).to_contain_text("没有待核对的字段了")
    page.keyboard.press("Alt+D")
    expect(page).to_have_url(server + "/")
    expect(page.locator(".done")).to_have_text("没有待核对的页面了。")
    expect(page.locator("#audit")).to_contain_text("已查 1 页")

    out = tmp_path / "export.jsonl"
    done = subprocess.run([sys.executable, "-m", "formscan", "export", "--format", "jsonl", "--db", queue.store.url,
                           "--store", str(queue.store.store_dir), "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = {Path(line["source"]["file"]).name: line
             for line in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    record = lines["seed-1.pdf"]["record"]
    assert (record["funds"][0]["execution_rate"], record["total_score"]) == (99.55, 100.0)
    assert (lines["seed-1.pdf"]["status"], lines["seed-1.pdf"]["flags"]) == ("corrected", [])
    assert lines["seed-2.pdf"]["status"] == "auto_accepted"


def test_a_stale_save_shows_the_other_persons_value_as_text(server: str, browser_page: Page, queue: Queue):
    page = browser_page
    log_in(page, server)
    page.goto(f"{server}/pages/{queue.flagged_id}")
    expect(page.locator("#value")).to_be_focused()
    field = page.locator("#field").text_content()  # the first flagged field, whichever OCR flagged
    label = page.locator("#label").text_content()  # as the form prints it, e.g. 年度资金总额 全年预算数
    numeric = field.rsplit(".", 1)[-1] in {"initial_budget", "annual_budget", "executed", "weight",
                                           "execution_rate", "score", "total_weight", "total_score"}
    other = "12.34" if numeric else "<script>alert(1)</script>"  # markup must show as text
    mine = "45.6" if numeric else "alice的值"
    with queue.store.transaction() as session:  # bob saves first, on the version alice is looking at
        save_field(session, queue.flagged_id, field, other, 1, "bob")

    page.keyboard.type(mine)
    page.keyboard.press("Enter")
    conflict = page.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text(f"bob 先改了{label}：现在是“{other}”")
    expect(page.locator("#value")).to_have_value(mine)  # her typing is not lost
    page.locator("#conflict-mine").click()  # having seen bob's value, she chooses to save hers over it
    expect(conflict).to_be_hidden()
    expect(page.locator("#trail")).to_contain_text(other)
    expect(page.locator("#trail")).to_contain_text(mine)

"""Two review flows in headless Chromium against `formscan review` on 127.0.0.1, on SQLite and PostgreSQL:
a page whose layout is in doubt is closed field by field, and two reviewers work on one page at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from models import FormRecord
from review.fields import get_text
from review.queue import page_detail
from review.store import Correction, FlagRow, PageRow
from review_queue.review_support import Queue
from review_queue.test_review_browser import CHROMIUM, CHROMIUM_ARGS, log_in, server  # noqa: F401 - fixture
from review_queue.test_review_versions import LAYOUT_FIELDS, layout_page  # noqa: F401 - fixture


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def new_page(browser: Browser) -> Page:
    """A page in a context of its own (own cookies, own drafts); any dialog fails the test."""
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    return page


def open_flags(queue: Queue, page_id: int) -> set[tuple[str, str]]:
    with queue.store.transaction() as session:
        return set(session.execute(select(FlagRow.field, FlagRow.reason).where(FlagRow.page_id == page_id)))


def layout_flags(queue: Queue, page_id: int) -> set[str]:
    return {field for field, reason in open_flags(queue, page_id) if reason.startswith("rule:layout")}


def stored_value(queue: Queue, page_id: int, field: str) -> str:
    with queue.store.transaction() as session:
        return get_text(FormRecord.model_validate(session.get(PageRow, page_id).record), field)


def trail(queue: Queue, page_id: int) -> list[tuple[str, str, str]]:
    with queue.store.transaction() as session:
        rows = session.scalars(select(Correction).where(Correction.page_id == page_id).order_by(Correction.id))
        return [(c.field, c.new_value, c.user_name) for c in rows]


def edit(page: Page, field: str, value: str) -> int:
    """Click the field in the form, type over its value (selected on focus), press Enter: the save's status."""
    page.locator(f'.f[data-field="{field}"]').first.click()
    expect(page.locator("#field")).to_have_text(field)
    expect(page.locator("#value")).to_be_focused()
    page.keyboard.type(value)
    return press_enter(page)


def press_enter(page: Page) -> int:
    with page.expect_response(lambda r: r.url.endswith("/fields") and r.request.method == "POST") as saved:
        page.keyboard.press("Enter")
    return saved.value.status


def test_a_layout_doubt_page_closes_only_field_by_field(server: str, browser: Browser,  # noqa: F811
                                                        queue: Queue, layout_page: int):  # noqa: F811
    with queue.store.transaction() as session:
        items = [item["field"] for item in page_detail(session, layout_page)["items"]]
    in_doubt = layout_flags(queue, layout_page)
    assert in_doubt == set(LAYOUT_FIELDS)
    first, second = items[0], items[1]
    assert {first, second} <= in_doubt, items  # the walk starts on layout-flagged fields

    page = new_page(browser)
    log_in(page, server)
    page.goto(f"{server}/pages/{layout_page}")
    counter, field, message = page.locator("#flag-count"), page.locator("#field"), page.locator("#message")
    expect(page.locator("#flag-list summary")).to_contain_text(f"待核对 {len(items)}")
    expect(field).to_have_text(first)
    expect(page.locator("#value")).to_be_focused()

    page.keyboard.press("Alt+D")  # done, with every flag open: refused, the page stays
    expect(message).to_contain_text("处待核对：逐一保存或确认后才能完成本页")
    expect(message).not_to_contain_text("别人改过")
    assert stored_status(queue, layout_page) == "needs_review"

    page.keyboard.press("Enter")  # confirmed as read: that field's layout flag closes, and only it
    expect(counter).to_have_text(str(len(items) - 1))
    expect(field).to_have_text(second)
    assert layout_flags(queue, layout_page) == in_doubt - {first}
    assert [(f, who) for f, _, who in trail(queue, layout_page)] == [(first, "alice")]

    page.keyboard.press("Enter")
    expect(counter).to_have_text(str(len(items) - 2))
    expect(page.locator("#flag-list summary")).to_contain_text(f"待核对 {len(items) - 2}")
    assert layout_flags(queue, layout_page) == in_doubt - {first, second}
    assert [f for f, _, _ in trail(queue, layout_page)] == [first, second]

    page.keyboard.press("Alt+D")  # still refused: the other layout flags are open
    expect(message).to_contain_text("处待核对：逐一保存或确认后才能完成本页")
    expect(page).to_have_url(f"{server}/pages/{layout_page}")
    assert stored_status(queue, layout_page) == "needs_review"
    assert layout_flags(queue, layout_page) == in_doubt - {first, second}


def stored_status(queue: Queue, page_id: int) -> str:
    with queue.store.transaction() as session:
        return session.get(PageRow, page_id).status


def test_two_reviewers_on_one_page(server: str, browser: Browser, queue: Queue):  # noqa: F811
    alice, bob = new_page(browser), new_page(browser)
    log_in(alice, server, "alice")
    log_in(bob, server, "bob")
    url = f"{server}/pages/{queue.flagged_id}"
    alice.goto(url)
    bob.goto(url)  # both from the same state
    for page in (alice, bob):
        expect(page.locator("#value")).to_be_focused()
        expect(page.locator("#version")).to_have_text("1")

    # different fields from the same load: both saved
    assert edit(alice, "funds[0].execution_rate", "99.55") == 200
    expect(alice.locator("#message")).to_contain_text("已保存")
    assert edit(bob, "total_score", "100") == 200
    expect(bob.locator("#message")).to_contain_text("已保存")
    expect(bob.locator("#conflict")).to_be_hidden()
    assert stored_value(queue, queue.flagged_id, "funds[0].execution_rate") == "99.55"
    assert stored_value(queue, queue.flagged_id, "total_score") == "100"

    # the same field, both from the same state: alice first, bob's save is refused and shows both values
    same = "funds[0].initial_budget"
    before = trail(queue, queue.flagged_id)
    assert edit(alice, same, "111") == 200
    theirs = stored_value(queue, queue.flagged_id, same)
    assert theirs == "111"
    assert edit(bob, same, "222") == 409
    conflict = bob.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text(f"alice 先改了{bob.locator('#label').text_content()}：现在是“{theirs}”，你的是“222”")
    expect(bob.locator("#value")).to_have_value("222")  # bob's typing is not lost
    assert stored_value(queue, queue.flagged_id, same) == "111"  # and alice's value is not overwritten
    assert trail(queue, queue.flagged_id)[len(before):] == [(same, "111", "alice")]

    # A bare Enter again is not a choice: refused again, alice's value stays.
    assert press_enter(bob) == 409
    expect(conflict).to_be_visible()
    assert stored_value(queue, queue.flagged_id, same) == "111"
    # Choosing his own value saves it over hers, on purpose.
    with bob.expect_response(lambda r: r.url.endswith("/fields") and r.request.method == "POST") as saved:
        bob.locator("#conflict-mine").click()
    assert saved.value.status == 200
    expect(conflict).to_be_hidden()
    assert stored_value(queue, queue.flagged_id, same) == "222"
    assert trail(queue, queue.flagged_id)[len(before):] == [(same, "111", "alice"), (same, "222", "bob")]
    expect(bob.locator("#trail")).to_contain_text("111")
    expect(bob.locator("#trail")).to_contain_text("222")

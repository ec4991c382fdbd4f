"""Reviewing the way a finance clerk checks a form, through the JSON API on SQLite and PostgreSQL:
layout flags close only by a person's decision, saves carry the field's version, a rejection
says why and can be undone, and a reviewer sees who else has the page open."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models import Flag, PageStatus
from pipeline.extract import READ_ACROSS_CUT, PageExtraction
from pipeline.validate import LAYOUT_DOUBT
from review import auth
from review.app import create_app
from review.ingest import store_extraction
from review.queue import save_field
from review.store import Batch, Correction, StaleVersionError
from review_queue.review_support import Queue

HEADER_IN_DOUBT = ("project_name", "department", "implementing_unit")
FUNDS_IN_DOUBT = ("funds", "funds[0].annual_budget", "funds[0].executed", "funds[1].annual_budget")
INDICATORS_IN_DOUBT = ("indicators[0].target", "total_score")
FUNDS_READ_ACROSS_A_CUT = "funds[1].executed"  # rule:layout: a layout flag too, closed the same ways
FUNDS_LOW_CONFIDENCE = "funds[0].initial_budget"  # an OCR flag: a section confirmation leaves it open
LAYOUT_FIELDS = (*HEADER_IN_DOUBT, *FUNDS_IN_DOUBT, *INDICATORS_IN_DOUBT, FUNDS_READ_ACROSS_A_CUT)


@pytest.fixture
def client(queue: Queue) -> TestClient:
    return TestClient(create_app(queue.store), base_url="http://127.0.0.1:8000", follow_redirects=False)


@pytest.fixture
def bob_token(queue: Queue) -> str:
    with queue.store.transaction() as session:
        return auth.create_api_token(session, "bob")


def alice(queue: Queue) -> dict[str, str]:
    return {"Authorization": f"Bearer {queue.token}"}


def bob(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def layout_page(queue: Queue, extractions: dict[str, PageExtraction]) -> int:
    """seed-2's record (no rule broken) stored as a page whose layout was in doubt: every field
    listed flagged ``rule:layout_doubt`` as pipeline.validate does, one read across a cut rule
    (``rule:layout``) and one with low OCR confidence."""
    clean = extractions["clean"]
    doubt = "the page's layout is in doubt: every field is to be checked"
    flags = [Flag(field=field, reason=LAYOUT_DOUBT, message=doubt)
             for field in (*HEADER_IN_DOUBT, *FUNDS_IN_DOUBT, *INDICATORS_IN_DOUBT)]
    flags.append(Flag(field=FUNDS_READ_ACROSS_A_CUT, reason="rule:layout", message=READ_ACROSS_CUT))
    flags.append(Flag(field=FUNDS_LOW_CONFIDENCE, reason="low_confidence", confidence=0.4,
                      message="low OCR confidence", readings={"tesseract": "0", "paddle": "O"}))
    result = clean.result.model_copy(update={"flags": flags, "status": PageStatus.NEEDS_REVIEW})
    with queue.store.transaction() as session:
        batch_id = session.scalar(select(Batch.id))
    sha256 = hashlib.sha256(b"a page whose layout is in doubt").hexdigest()
    stored = store_extraction(queue.store, batch_id, "fixtures/scans/layout-doubt.pdf", sha256, 1,
                              replace(clean, result=result), audit_rate=0.0)
    return stored.id


def open_flags(response_json: dict) -> set[tuple[str, str]]:
    return {(flag["field"], flag["reason"]) for flag in response_json["flags"]}


def layout_flags(response_json: dict) -> set[str]:
    return {field for field, reason in open_flags(response_json) if reason.startswith("rule:layout")}


def save(client: TestClient, headers: dict[str, str], page_id: int, field: str, value: str, field_version: int):
    return client.post(f"/api/pages/{page_id}/fields", json={"field": field, "value": value,
                                                             "field_version": field_version}, headers=headers)


# --- layout flags -----------------------------------------------------------------------

def test_a_save_closes_only_its_own_layout_flag(client: TestClient, queue: Queue, layout_page: int):
    page = client.get(f"/api/pages/{layout_page}", headers=alice(queue)).json()
    assert {item["field"] for item in page["items"]} == {*LAYOUT_FIELDS, FUNDS_LOW_CONFIDENCE}
    assert all(item["field_version"] == 0 for item in page["items"]) and page["field_versions"] == {}
    value = {item["field"]: item["value"] for item in page["items"]}

    typed = save(client, alice(queue), layout_page, "project_name", "宝山区一网通办深化项目", 0)
    assert typed.status_code == 200, typed.text
    assert layout_flags(typed.json()) == set(LAYOUT_FIELDS) - {"project_name"}
    assert (FUNDS_LOW_CONFIDENCE, "low_confidence") in open_flags(typed.json())
    assert typed.json()["status"] == "needs_review"

    left = set(LAYOUT_FIELDS) - {"project_name"}
    for field in ("department", "funds[0].executed", FUNDS_READ_ACROSS_A_CUT, "funds"):  # Enter: confirmed as read
        confirmed = save(client, alice(queue), layout_page, field, value[field], 0)
        assert confirmed.status_code == 200, confirmed.text
        left.discard(field)
        assert layout_flags(confirmed.json()) == left  # one closed, every other still open
    trail = client.get(f"/api/pages/{layout_page}", headers=alice(queue)).json()["corrections"]
    assert [(c["field"], c["action"]) for c in trail] == [
        ("project_name", "edit"), ("department", "confirm"), ("funds[0].executed", "confirm"),
        (FUNDS_READ_ACROSS_A_CUT, "confirm"), ("funds", "confirm")]


def test_a_section_confirmation_closes_the_layout_flags_of_that_section(client: TestClient, queue: Queue,
                                                                         layout_page: int):
    url = f"/api/pages/{layout_page}/sections/confirm"
    funds = client.post(url, json={"section": "funds", "version": 1}, headers=alice(queue))
    assert funds.status_code == 200, funds.text
    body = funds.json()
    in_funds = {*FUNDS_IN_DOUBT, FUNDS_READ_ACROSS_A_CUT}
    assert set(body["saved_fields"]) == in_funds and body["version"] == 2
    assert layout_flags(body) == set(LAYOUT_FIELDS) - in_funds
    assert (FUNDS_LOW_CONFIDENCE, "low_confidence") in open_flags(body)  # checked on its own
    assert set(body["field_versions"]) == in_funds

    trail = client.get(f"/api/pages/{layout_page}", headers=alice(queue)).json()["corrections"]
    assert {(c["field"], c["action"], c["by"]) for c in trail} == {(f, "confirm", "alice") for f in in_funds}
    assert all(c["from"] == c["to"] for c in trail)  # confirmed as they are

    assert client.post(url, json={"section": "funds", "version": 1}, headers=alice(queue)).status_code == 409
    assert client.post(url, json={"section": "funds", "version": 2}, headers=alice(queue)).status_code == 409
    assert client.post(url, json={"section": "tables", "version": 2}, headers=alice(queue)).status_code == 422
    assert client.post(url, json={"section": "funds"}, headers=alice(queue)).status_code == 422
    for version, section in ((2, "header"), (3, "indicators")):
        done = client.post(url, json={"section": section, "version": version}, headers=alice(queue))
        assert done.status_code == 200, done.text
    assert open_flags(done.json()) == {(FUNDS_LOW_CONFIDENCE, "low_confidence")}
    items = client.get(f"/api/pages/{layout_page}", headers=alice(queue)).json()["items"]
    as_read = next(item["value"] for item in items if item["field"] == FUNDS_LOW_CONFIDENCE)
    last = save(client, alice(queue), layout_page, FUNDS_LOW_CONFIDENCE, as_read, 0)
    assert last.status_code == 200 and last.json()["flags"] == [] and last.json()["status"] == "corrected"


# --- field versions ---------------------------------------------------------------------

def test_two_reviewers_correct_two_fields_of_one_page_from_the_same_read(client: TestClient, queue: Queue,
                                                                          bob_token: str):
    page_id = queue.flagged_id
    read = client.get(f"/api/pages/{page_id}", headers=alice(queue)).json()
    versions = read["field_versions"]
    assert versions == {}
    first = save(client, alice(queue), page_id, "project_name", "项目甲", versions.get("project_name", 0))
    second = save(client, bob(bob_token), page_id, "department", "部门乙", versions.get("department", 0))
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json()["field_version"] > 0 and second.json()["field_version"] > first.json()["field_version"]
    record = client.get(f"/api/pages/{page_id}", headers=bob(bob_token)).json()["record"]
    assert (record["project_name"], record["department"]) == ("项目甲", "部门乙")


def test_the_same_field_from_the_same_read_gets_409_until_the_new_version_is_sent(client: TestClient, queue: Queue,
                                                                                   bob_token: str):
    page_id, field = queue.flagged_id, "implementing_unit"
    read = client.get(f"/api/pages/{page_id}", headers=bob(bob_token)).json()
    seen = read["field_versions"].get(field, 0)
    theirs = save(client, alice(queue), page_id, field, "上海市宝山区甲单位", seen)
    assert theirs.status_code == 200

    for _enter in range(2):  # a bare Enter again changes nothing: still refused
        refused = save(client, bob(bob_token), page_id, field, "上海市宝山区乙单位", seen)
        assert refused.status_code == 409
        current = refused.json()["current"]
        assert {"field": field, "yours": "上海市宝山区乙单位", "theirs": "上海市宝山区甲单位", "by": "alice",
                "field_version": theirs.json()["field_version"]}.items() <= current.items()
        assert current["at"]
    page = client.get(f"/api/pages/{page_id}", headers=bob(bob_token)).json()
    assert page["record"][field] == "上海市宝山区甲单位"

    chosen = save(client, bob(bob_token), page_id, field, "上海市宝山区乙单位", current["field_version"])
    assert chosen.status_code == 200 and chosen.json()["record"][field] == "上海市宝山区乙单位"
    trail = [(c["field"], c["to"], c["by"]) for c in
             client.get(f"/api/pages/{page_id}", headers=bob(bob_token)).json()["corrections"]]
    assert trail == [(field, "上海市宝山区甲单位", "alice"), (field, "上海市宝山区乙单位", "bob")]


def test_field_versions_hold_when_saves_run_at_the_same_moment(queue: Queue):
    """Saves race on the page's row lock: different fields both win, the same field only once."""

    def race(fields: dict[str, str]) -> dict[str, object]:
        barrier, outcomes = threading.Barrier(len(fields)), {}

        def reviewer(name: str, field: str) -> None:
            barrier.wait()
            try:
                with queue.store.transaction() as session:
                    outcomes[name] = save_field(session, queue.flagged_id, field, f"{name}的值", None, name,
                                                field_version=0)
            except StaleVersionError as exc:
                outcomes[name] = exc

        threads = [threading.Thread(target=reviewer, args=item) for item in fields.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return outcomes

    apart = race({"alice": "project_name", "bob": "department"})
    assert not [o for o in apart.values() if isinstance(o, StaleVersionError)], apart
    same = race({"alice": "implementing_unit", "bob": "implementing_unit"})
    losers = [name for name, o in same.items() if isinstance(o, StaleVersionError)]
    assert len(losers) == 1, same
    with queue.store.transaction() as session:
        trail = session.execute(select(Correction.field, Correction.user_name).order_by(Correction.id)).all()
    assert sorted(trail[:2]) == [("department", "bob"), ("project_name", "alice")]
    assert len(trail) == 3 and trail[2][1] != losers[0]


# --- reject -----------------------------------------------------------------------------

def test_a_rejection_needs_a_reason_and_can_be_undone(client: TestClient, queue: Queue):
    page_id = queue.flagged_id
    url = f"/api/pages/{page_id}/reject"
    assert client.post(url, json={"version": 1}, headers=alice(queue)).status_code == 422
    assert client.post(url, json={"version": 1, "reason": "  "}, headers=alice(queue)).status_code == 422
    rejected = client.post(url, json={"version": 1, "reason": "第2页缺失，表格不完整"}, headers=alice(queue))
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    trail = client.get(f"/api/pages/{page_id}", headers=alice(queue)).json()["corrections"]
    assert [(c["action"], c["from"], c["to"], c["by"]) for c in trail] == [
        ("reject", "needs_review", "第2页缺失，表格不完整", "alice")]
    refused = save(client, alice(queue), page_id, "project_name", "项目", 0)
    assert refused.status_code == 409  # a rejected page is not corrected

    undo = f"/api/pages/{page_id}/undo-reject"
    assert client.post(undo, json={"version": 1}, headers=alice(queue)).status_code == 409  # stale
    restored = client.post(undo, json={"version": 2}, headers=alice(queue))
    assert restored.status_code == 200 and restored.json()["status"] == "needs_review"
    page = client.get(f"/api/pages/{page_id}", headers=alice(queue)).json()
    assert page["status"] == "needs_review" and page["items"]  # its flags wait as before
    assert [(c["action"], c["from"], c["to"]) for c in page["corrections"]][-1] == (
        "undo_reject", "rejected", "needs_review")
    assert client.post(undo, json={"version": 3}, headers=alice(queue)).status_code == 409  # not rejected now
    assert save(client, alice(queue), page_id, "project_name", "项目", 0).status_code == 200
    # waiting for a person again, as before the rejection: the next page offered after another
    following = client.post(f"/api/pages/{queue.clean_id}/reject", json={"version": 1, "reason": "空白页"},
                            headers=alice(queue)).json()
    assert following["next_page_id"] == page_id


# --- presence ---------------------------------------------------------------------------

def test_presence_shows_the_other_reviewer_within_60_seconds_and_not_oneself(client: TestClient, queue: Queue,
                                                                             bob_token: str):
    page_id = queue.flagged_id
    url = f"/api/pages/{page_id}/presence"
    assert client.get(f"/api/pages/{page_id}", headers=alice(queue)).json()["others"] == []
    assert client.post(url, headers=alice(queue)).json()["others"] == []
    assert client.post(url, headers=bob(bob_token)).json()["others"] == ["alice"]
    assert client.get(f"/api/pages/{page_id}", headers=alice(queue)).json()["others"] == ["bob"]
    assert client.get(f"/api/pages/{page_id}", headers=bob(bob_token)).json()["others"] == ["alice"]
    assert client.get(f"/api/pages/{queue.clean_id}", headers=alice(queue)).json()["others"] == []
    assert client.post(url).status_code == 401
    assert client.post("/api/pages/999999/presence", headers=alice(queue)).status_code == 404

    registry = client.app.state.presence
    real_clock = registry.clock
    registry.clock = lambda: real_clock() + 61  # a minute without bob's heartbeat
    assert client.get(f"/api/pages/{page_id}", headers=alice(queue)).json()["others"] == []

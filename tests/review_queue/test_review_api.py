"""The JSON API and the HTML routes through FastAPI's test client, on SQLite and on PostgreSQL."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from review.app import create_app
from review.store import PageRow
from review_queue.review_support import PASSWORDS, Queue

XSS = "<script>alert(1)</script>"


@pytest.fixture
def client(queue: Queue) -> TestClient:
    return TestClient(create_app(queue.store), base_url="http://127.0.0.1:8000", follow_redirects=False)


def bearer(queue: Queue) -> dict[str, str]:
    return {"Authorization": f"Bearer {queue.token}"}


def log_in(client: TestClient, name: str = "alice") -> str:
    """Log in through the form; returns the session's CSRF token as the review page embeds it."""
    response = client.post("/login", data={"name": name, "password": PASSWORDS[name], "next": "/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text).group(1)


def test_health_and_docs_need_no_login(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/queue", "/api/pages/{page_id}/fields", "/healthz"} <= set(paths)


def test_queue_lists_flagged_fields_for_a_token_holder_only(client: TestClient, queue: Queue):
    assert client.get("/api/queue").status_code == 401
    assert client.get("/api/queue", headers={"Authorization": "Bearer nope"}).status_code == 401
    entries = client.get("/api/queue?status=needs_review", headers=bearer(queue)).json()
    assert {(e["page_id"], e["version"]) for e in entries} == {(queue.flagged_id, 1)}
    by_flag = {(e["field"], e["reason"]): e for e in entries}
    assert {"value": "95.5", "proposal": "99.55"}.items() <= by_flag[
        ("funds[0].execution_rate", "rule:execution_rate")].items()
    assert {"value": "90", "proposal": "100"}.items() <= by_flag[("total_score", "rule:scores_sum")].items()
    assert all(set(e) >= {"page_id", "field", "value", "confidence", "reason", "version"} for e in entries)
    ocr = [e for e in entries if e["reason"] == "low_confidence"]
    assert all(0 < e["confidence"] < 1 for e in ocr)
    assert client.get("/api/queue?status=audit", headers=bearer(queue)).json() == []  # audit pages have no flags
    assert client.get("/api/queue?status=bogus", headers=bearer(queue)).status_code == 422


def test_a_correction_returns_the_revalidated_record_and_a_stale_one_gets_409(client: TestClient, queue: Queue):
    url = f"/api/pages/{queue.flagged_id}/fields"
    saved = client.post(url, json={"field": "funds[0].execution_rate", "value": "90%", "version": 1},
                        headers=bearer(queue))
    assert saved.status_code == 200
    body = saved.json()
    assert body["version"] == 2 and body["record"]["funds"][0]["execution_rate"] == 90.0
    assert {"field": "funds[0].execution_rate", "reason": "rule:execution_rate"}.items() <= next(
        f for f in body["flags"] if f["reason"] == "rule:execution_rate").items()

    stale = client.post(url, json={"field": "funds[0].execution_rate", "value": "80%", "version": 1},
                        headers=bearer(queue))
    assert stale.status_code == 409
    assert {"version": 2, "value": "90", "by": "alice"}.items() <= stale.json()["current"].items()

    unauthenticated = client.post(url, json={"field": "funds[0].execution_rate", "value": "99.55%", "version": 2})
    assert unauthenticated.status_code == 401
    for malformed in ({"field": "project_name"}, {"field": "project_name", "value": "x", "version": "two"},
                      {"field": "project_name", "value": "x", "version": 2, "extra": 1}):
        assert client.post(url, json=malformed, headers=bearer(queue)).status_code == 422
    not_a_number = client.post(url, json={"field": "funds[0].executed", "value": "abc", "version": 2},
                               headers=bearer(queue))
    assert not_a_number.status_code == 422 and "not a number" in not_a_number.json()["detail"]
    assert client.post("/api/pages/999999/fields", json={"field": "year", "value": "2020", "version": 1},
                       headers=bearer(queue)).status_code == 404


def test_browser_writes_need_a_session_and_its_csrf_token_from_this_site(client: TestClient, queue: Queue):
    url = f"/api/pages/{queue.flagged_id}/fields"
    body = {"field": "project_name", "value": "项目", "version": 1}
    assert client.post(url, json=body).status_code == 401  # no session at all
    csrf = log_in(client)
    assert client.post(url, json=body).status_code == 403  # session cookie alone: a forged request
    assert client.post(url, json=body, headers={"X-CSRF-Token": "guess"}).status_code == 403
    cross_site = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert client.post(url, json=body, headers=cross_site).status_code == 403
    assert client.post("/login", data={"name": "alice", "password": PASSWORDS["alice"]},
                       headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post(url, json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.post("/logout", data={"csrf_token": "guess"}).status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.post(url, json={**body, "version": 2}, headers={"X-CSRF-Token": csrf}).status_code == 401


def test_pages_need_a_login_and_a_wrong_password_gets_none(client: TestClient, queue: Queue):
    assert client.get("/").headers["location"].startswith("/login")
    assert client.get(f"/pages/{queue.flagged_id}").status_code == 303
    failed = client.post("/login", data={"name": "alice", "password": "wrong", "next": "/"})
    assert "failed=1" in failed.headers["location"] and "formscan_session" not in failed.cookies
    assert client.post("/login", data={"name": "alice", "password": PASSWORDS["alice"],
                                       "next": "//evil.example/"}).headers["location"] == "/"


def test_ocr_text_is_always_escaped(client: TestClient, queue: Queue):
    saved = client.post(f"/api/pages/{queue.flagged_id}/fields",
                        json={"field": "project_name", "value": XSS, "version": 1}, headers=bearer(queue))
    assert saved.status_code == 200
    log_in(client)
    for path in (f"/pages/{queue.flagged_id}", "/"):
        page = client.get(path)
        assert XSS not in page.text and "<script>alert" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
    review = client.get(f"/pages/{queue.flagged_id}").text
    assert html.escape(XSS, quote=False) in review  # the audit trail shows it, as text


def test_image_routes_never_read_outside_the_store(client: TestClient, queue: Queue):
    headers = bearer(queue)
    assert client.get(f"/pages/{queue.flagged_id}/image").status_code == 401
    image = client.get(f"/pages/{queue.flagged_id}/image", headers=headers)
    assert image.status_code == 200 and image.headers["content-type"] == "image/webp"
    for path in ("/store/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/store/%2Fetc%2Fpasswd",
                 "/store/pages/..%2F..%2F..%2Fqueue.db", "/store/../../etc/passwd"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404 and "root:" not in response.text, path
    with queue.store.transaction() as session:  # even a tampered database cannot point outside
        session.execute(update(PageRow).where(PageRow.id == queue.flagged_id).values(image_path="../../etc/passwd"))
    assert client.get(f"/pages/{queue.flagged_id}/image", headers=headers).status_code == 404
    detail = client.get(f"/api/pages/{queue.clean_id}", headers=headers).json()
    assert detail["status"] == "audit" and detail["items"] == []


def test_cell_crops_come_from_the_page_image(client: TestClient, queue: Queue):
    detail = client.get(f"/api/pages/{queue.flagged_id}", headers=bearer(queue)).json()
    cell = detail["items"][0]["cell"]
    crop = client.get(f"/pages/{queue.flagged_id}/cells/{cell['id']}/crop", headers=bearer(queue))
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    assert client.get(f"/pages/{queue.clean_id}/cells/{cell['id']}/crop", headers=bearer(queue)).status_code == 404

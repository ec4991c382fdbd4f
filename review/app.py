"""The review UI and JSON API (FastAPI; server-rendered Jinja2 pages, one small script).

Reads need a login (browser session) or a bearer token; every write needs a bearer
token, or a session plus its CSRF token in ``X-CSRF-Token``. Templates autoescape,
so OCR text is always text; data for the script goes through ``tojson``.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from PIL import Image
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import select, text, update

from review import auth, form_view, labels, overview
from review.fields import FieldValueError
from review.presence import PresenceRegistry
from review.queue import (
    STATUSES,
    audit_stats,
    batch_summaries,
    confirm_section,
    finish_page,
    next_page_to_review,
    page_detail,
    queue_fields,
    queue_pages,
    reject_page,
    save_field,
    undo_reject,
)
from review.store import (
    CellRow,
    FlagRow,
    PageNotFoundError,
    PageRow,
    ReviewStateError,
    ReviewStore,
    StaleVersionError,
    User,
)
from review.store import now as current_time

HERE = Path(__file__).parent
SESSION_COOKIE = "formscan_session"
CROP_MARGIN = 12  # px of the page around a cell crop, so a cut-off stroke is still visible
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class FieldCorrection(BaseModel):
    """One correction: the field path, the value as the reviewer typed it, the version it was made on:
    the field's (``field_version``, from GET /api/pages/{id}), or else the page's (``version``)."""

    model_config = ConfigDict(extra="forbid")
    field: str
    value: str | int | float | None
    field_version: int | None = None  # the id of the field's last correction as read; 0 when it had none
    version: int | None = None  # the page's version: clients that send no field_version are checked on it
    action: Literal["edit", "proposal"] = "edit"

    @model_validator(mode="after")
    def _made_on_a_version(self) -> FieldCorrection:
        if self.field_version is None and self.version is None:
            raise ValueError("send the field's version (field_version) or the page's (version)")
        return self


class PageAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int


class Rejection(BaseModel):
    """Reject a page made on ``version``, saying why (kept in the audit trail)."""

    model_config = ConfigDict(extra="forbid")
    version: int
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class SectionConfirmation(BaseModel):
    """Confirm a section as it reads: ``header``, ``goals`` or a table (``funds``, ``indicators``, ...)."""

    model_config = ConfigDict(extra="forbid")
    section: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    version: int


class Reviewer(BaseModel):
    name: str
    csrf: str | None = None  # set for browser sessions


# --- authentication ---------------------------------------------------------------------

def _store(request: Request) -> ReviewStore:
    return request.app.state.store


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _session_reviewer(request: Request) -> Reviewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with _store(request).transaction() as session:
        found = auth.find_session(session, token)
        return Reviewer(name=found.user.name, csrf=found.csrf_token) if found else None


def _same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


def reader(request: Request) -> Reviewer:
    """Who may read: a bearer token's user or a logged-in reviewer."""
    token = _bearer(request)
    if token:
        with _store(request).transaction() as session:
            user = auth.user_for_api_token(session, token)
            if user is None:
                raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
            return Reviewer(name=user.name)
    reviewer = _session_reviewer(request)
    if reviewer is None:
        raise HTTPException(401, "log in or send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    return reviewer


def writer(request: Request) -> Reviewer:
    """Who may write: a bearer token's user, or a session whose CSRF token came along from this site."""
    reviewer = reader(request)
    if reviewer.csrf is not None:
        given = request.headers.get("x-csrf-token")
        if not _same_origin(request) or not auth.csrf_matches(reviewer.csrf, given):
            raise HTTPException(403, "missing or wrong CSRF token")
    return reviewer


class _LoginRequired(Exception):
    pass


def page_viewer(request: Request) -> Reviewer:
    reviewer = _session_reviewer(request)
    if reviewer is None:
        raise _LoginRequired()
    return reviewer


ReaderDep = Annotated[Reviewer, Depends(reader)]
WriterDep = Annotated[Reviewer, Depends(writer)]
ViewerDep = Annotated[Reviewer, Depends(page_viewer)]


# --- the app ----------------------------------------------------------------------------

def create_app(store: ReviewStore) -> FastAPI:
    app = FastAPI(
        title="formscan review",
        description="The review queue of scanned 财政项目支出绩效自评表: flagged fields in, corrections out. "
        "Send `Authorization: Bearer <token>` (`formscan token create NAME`).",
        version="1",
    )
    app.state.store = store
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html") and not request.url.path.startswith(
            ("/docs", "/redoc")
        ):
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.exception_handler(_LoginRequired)
    async def to_login(request: Request, _exc: _LoginRequired):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(PageNotFoundError)
    async def not_found(_request: Request, exc: PageNotFoundError):
        return JSONResponse({"detail": exc.detail}, status_code=404)

    @app.exception_handler(StaleVersionError)
    async def stale(_request: Request, exc: StaleVersionError):
        return JSONResponse({"detail": exc.detail, "current": exc.current}, status_code=409)

    @app.exception_handler(FieldValueError)
    async def bad_value(_request: Request, exc: FieldValueError):
        return JSONResponse({"detail": exc.detail}, status_code=422)

    @app.exception_handler(ReviewStateError)
    async def bad_state(_request: Request, exc: ReviewStateError):
        return JSONResponse({"detail": exc.detail}, status_code=409)

    # --- health and login ---------------------------------------------------------------

    @app.get("/healthz", tags=["api"])
    def healthz() -> dict[str, str]:
        with store.transaction() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/", failed: bool = False):
        return templates.TemplateResponse(request, "login.html", {"next": _local(next), "failed": failed})

    @app.post("/login", include_in_schema=False)
    def login(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()],
              next: Annotated[str, Form()] = "/"):
        if not _same_origin(request):
            raise HTTPException(403, "cross-site login refused")
        address, at, token = _client_address(request), current_time(), None
        with store.transaction() as session:
            # A locked name or address gets no password check at all, right or wrong.
            wait = auth.login_lockout(session, name, address, at)
            user = None if wait else auth.authenticate(session, name, password)
            if user is not None:
                auth.clear_login_failures(session, name)
                token, _csrf = auth.start_session(session, user)
            elif not wait:
                wait = auth.record_login_failure(session, name, address, at)
        if wait:
            seconds = auth.whole_seconds(wait)
            return templates.TemplateResponse(request, "login.html",
                                              {"next": _local(next), "failed": False, "locked_seconds": seconds},
                                              status_code=429, headers={"Retry-After": str(seconds)})
        if token is None:
            return RedirectResponse(f"/login?failed=1&next={_local(next)}", status_code=303)
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=int(auth.SESSION_LIFETIME.total_seconds()))
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf_token: Annotated[str, Form()] = ""):
        reviewer = _session_reviewer(request)
        if reviewer is None or not _same_origin(request) or not auth.csrf_matches(reviewer.csrf or "", csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token")
        with store.transaction() as session:
            auth.end_session(session, request.cookies[SESSION_COOKIE])
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # --- HTML pages ---------------------------------------------------------------------

    def _words(request: Request) -> dict[str, Any]:
        """The reviewer's language (their own setting, else the browser's cookie; Chinese by
        default) and the templates' words in it."""
        reviewer = _session_reviewer(request)
        chosen = None
        if reviewer is not None:
            with store.transaction() as session:
                chosen = session.scalar(select(User.language).where(User.name == reviewer.name))
        lang = labels.lang_of(chosen or request.cookies.get(labels.LANG_COOKIE))
        return {"lang": lang, "t": labels.ui_text(lang),
                "status_name": lambda s: labels.status_name(s, lang),
                "reason_name": lambda r: labels.reason_name(r, lang)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def queue_page(request: Request, viewer: ViewerDep, status: str = "", reason: str = "", batch: str = "",
                   q: str = ""):
        batch_id = int(batch) if batch.isdigit() else None
        words = _words(request)
        with store.transaction() as session:
            pages = queue_pages(session, status=status or None, reason=reason or None, batch=batch_id)
            if q.strip():
                found = set(overview.search_pages(session, q))
                pages = [p for p in pages if p["id"] in found]
            reasons = sorted(set(session.scalars(select(FlagRow.reason).distinct())))
            batches = batch_summaries(session)
            left = overview.overview(session)
            chosen = left["batches"].get(batch_id) if batch_id else None
            finished = chosen if chosen is not None and chosen.finished else None
            context = {
                "viewer": viewer, "pages": pages, "batches": batches, "audit": audit_stats(session),
                "statuses": STATUSES, "reasons": reasons, "q": q.strip(),
                "filters": {"status": status, "reason": reason, "batch": batch_id},
                "next_page": next_page_to_review(session, None, batch_id),
                "texts": overview.page_texts(session, [p["id"] for p in pages]),
                "overview": left, "totals": {s: sum(b.counts.get(s, 0) for b in batches) for s in STATUSES},
                "eta": overview.duration_text(left["seconds_left"], words["t"]) if left["seconds_left"] else "",
                "finished_batch": finished,
                "next_batch": overview.next_batch_with_pages(left["progress"], batch_id) if finished else None,
                **words,
            }
        return templates.TemplateResponse(request, "queue.html", context)

    @app.get("/pages/{page_id}", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, page_id: int, viewer: ViewerDep):
        words = _words(request)
        with store.transaction() as session:
            detail = page_detail(session, page_id)
            form = form_view.review_context(session, detail, words["lang"])
        flagged = {item["field"] for item in detail["items"]}
        return templates.TemplateResponse(request, "review.html",
                                          {"viewer": viewer, "page": detail, "flagged": flagged, **form, **words})

    @app.get("/lang/{code}", include_in_schema=False)
    def choose_language(request: Request, code: str, next: str = "/") -> RedirectResponse:
        """The reviewer's language (中文 / English): their setting when logged in, and a cookie
        for a year (the login page's)."""
        lang = labels.lang_of(code)
        reviewer = _session_reviewer(request)
        if reviewer is not None:
            with store.transaction() as session:
                session.execute(update(User).where(User.name == reviewer.name).values(language=lang))
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(labels.LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
        return response

    @app.get("/api/search", tags=["api"])
    def api_search(_who: ReaderDep, q: str, batch: int | None = None) -> list[dict[str, Any]]:
        """Pages whose file name, 主管部门, 实施单位 or 项目名称 contains ``q`` (any case)."""
        with store.transaction() as session:
            found = set(overview.search_pages(session, q))
            pages = [p for p in queue_pages(session, batch=batch) if p["id"] in found]
            texts = overview.page_texts(session, [p["id"] for p in pages])
        return [{"page_id": p["id"], "file": p["file"], "page": p["number"], "batch": p["batch"],
                 "status": p["status"], "flags": p["flags"], **texts.get(p["id"], {})} for p in pages]

    @app.get("/pages/{page_id}/image", include_in_schema=False)
    def page_image(page_id: int, _who: ReaderDep) -> FileResponse:
        return FileResponse(_image_path(store, page_id), headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/pages/{page_id}/cells/{cell_id}/crop", include_in_schema=False)
    def cell_crop(page_id: int, cell_id: int, _who: ReaderDep) -> Response:
        with store.transaction() as session:
            cell = session.get(CellRow, cell_id)
            if cell is None or cell.page_id != page_id:
                raise HTTPException(404, "no such cell on this page")
            box = (cell.x0, cell.y0, cell.x1, cell.y1)
        return Response(_crop_png(str(_image_path(store, page_id)), box), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/store/{relative:path}", include_in_schema=False)
    def stored_file(relative: str, _who: ReaderDep) -> FileResponse:
        path = store.image_file(relative)
        if path is None:
            raise HTTPException(404, "not in the store")
        return FileResponse(path)

    # --- JSON API -----------------------------------------------------------------------

    @app.get("/api/queue", tags=["api"])
    def api_queue(_who: ReaderDep, status: Annotated[str, Query()] = "needs_review", reason: str | None = None,
                  batch: int | None = None) -> list[dict[str, Any]]:
        """Open flags of the pages with this status: page_id, field, value, confidence, reason, version, ..."""
        if status not in STATUSES:
            raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
        with store.transaction() as session:
            return queue_fields(session, status=status, reason=reason, batch=batch)

    # Who has which page open, from heartbeats: in this process's memory only (review/presence.py).
    presence = app.state.presence = PresenceRegistry()

    @app.get("/api/pages/{page_id}", tags=["api"])
    def api_page(page_id: int, who: ReaderDep) -> dict[str, Any]:
        """A page: record, open flags grouped by field with their cell, readings and ``field_version``,
        the audit trail, ``field_versions``, and ``others``: who else sent a presence heartbeat in the
        last 60 s (to this server process)."""
        with store.transaction() as session:
            detail = page_detail(session, page_id)
        return {**detail, "others": presence.others(page_id, who.name)}

    @app.post("/api/pages/{page_id}/fields", tags=["api"])
    def api_save_field(page_id: int, body: FieldCorrection, who: WriterDep) -> dict[str, Any]:
        """Save one correction made on the field's ``field_version`` (or, without it, on the page's
        ``version``); returns the re-validated record, open flags and the field's new version.
        409 with both values (``current.yours``, ``current.theirs``, who, when) and the field's
        current version when someone saved the field since."""
        value = "" if body.value is None else str(body.value)
        with store.transaction() as session:
            outcome = save_field(session, page_id, body.field, value, body.version, who.name, action=body.action,
                                 field_version=body.field_version)
        return {**outcome.as_json(), "field": body.field, "field_version": outcome.field_versions[body.field]}

    @app.post("/api/pages/{page_id}/sections/confirm", tags=["api"])
    def api_confirm_section(page_id: int, body: SectionConfirmation, who: WriterDep) -> dict[str, Any]:
        """Confirm a section as it reads (made on the page's ``version``): closes the layout flags of
        its fields that have no other flag open; ``saved_fields`` lists them."""
        with store.transaction() as session:
            outcome = confirm_section(session, page_id, body.section, body.version, who.name)
        return outcome.as_json()

    @app.post("/api/pages/{page_id}/done", tags=["api"])
    def api_done(page_id: int, body: PageAction, who: WriterDep) -> dict[str, Any]:
        """Mark the page reviewed (409 while flags remain); returns the next page waiting for review."""
        with store.transaction() as session:
            outcome = finish_page(session, page_id, body.version, who.name)
        return _finish(page_id, outcome.as_json())

    @app.post("/api/pages/{page_id}/reject", tags=["api"])
    def api_reject(page_id: int, body: Rejection, who: WriterDep) -> dict[str, Any]:
        """Reject the page, saying why (422 without a reason): it is not usable as a record."""
        with store.transaction() as session:
            outcome = reject_page(session, page_id, body.version, who.name, body.reason)
        return _finish(page_id, outcome.as_json())

    @app.post("/api/pages/{page_id}/undo-reject", tags=["api"])
    def api_undo_reject(page_id: int, body: PageAction, who: WriterDep) -> dict[str, Any]:
        """Take a rejection back: the page gets the status it had before (409 if it is not rejected)."""
        with store.transaction() as session:
            outcome = undo_reject(session, page_id, body.version, who.name)
        return outcome.as_json()

    @app.post("/api/pages/{page_id}/presence", tags=["api"])
    def api_presence(page_id: int, who: WriterDep) -> dict[str, Any]:
        """A heartbeat: the caller has the page open. Returns ``others`` as GET /api/pages/{id} does."""
        with store.transaction() as session:
            if session.get(PageRow, page_id) is None:
                raise PageNotFoundError(f"no page {page_id}")
        presence.seen(page_id, who.name)
        return {"page_id": page_id, "others": presence.others(page_id, who.name),
                "window_seconds": presence.window_seconds}

    def _finish(page_id: int, outcome: dict[str, Any]) -> dict[str, Any]:
        """A page action's outcome, with the next page waiting in the page's batch."""
        with store.transaction() as session:
            batch = session.scalar(select(PageRow).where(PageRow.id == page_id)).document.batch_id
            following = next_page_to_review(session, page_id, batch)
        return {**outcome, "next_page_id": following}

    return app


def _client_address(request: Request) -> str:
    """The client's IP address (behind a local proxy, the one uvicorn takes from X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


def _local(target: str) -> str:
    """Only same-site paths as redirect targets (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _image_path(store: ReviewStore, page_id: int) -> Path:
    with store.transaction() as session:
        page = session.get(PageRow, page_id)
        relative = page.image_path if page else None
    path = store.image_file(relative)  # refuses anything outside the store, whatever the DB says
    if path is None:
        raise HTTPException(404, "no image for this page")
    return path


@lru_cache(maxsize=4)
def _page_image(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("L")


def _crop_png(path: str, box: tuple[int, int, int, int]) -> bytes:
    image = _page_image(path)
    x0, y0, x1, y1 = box
    crop = image.crop((max(0, x0 - CROP_MARGIN), max(0, y0 - CROP_MARGIN),
                       min(image.width, x1 + CROP_MARGIN), min(image.height, y1 + CROP_MARGIN)))
    buffer = io.BytesIO()
    crop.save(buffer, "PNG")
    return buffer.getvalue()

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
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text

from review import auth
from review.fields import FieldValueError
from review.queue import (
    STATUSES,
    audit_stats,
    batch_summaries,
    finish_page,
    next_page_to_review,
    page_detail,
    queue_fields,
    queue_pages,
    save_field,
)
from review.store import CellRow, FlagRow, PageNotFoundError, PageRow, ReviewStateError, ReviewStore, StaleVersionError

HERE = Path(__file__).parent
SESSION_COOKIE = "formscan_session"
CROP_MARGIN = 12  # px of the page around a cell crop, so a cut-off stroke is still visible
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class FieldCorrection(BaseModel):
    """One correction: the field path, the value as the reviewer typed it, the version it was made on."""

    model_config = ConfigDict(extra="forbid")
    field: str
    value: str | int | float | None
    version: int
    action: Literal["edit", "proposal"] = "edit"


class PageAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
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
        with store.transaction() as session:
            user = auth.authenticate(session, name, password)
            if user is None:
                return RedirectResponse(f"/login?failed=1&next={_local(next)}", status_code=303)
            token, _csrf = auth.start_session(session, user)
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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def queue_page(request: Request, viewer: ViewerDep, status: str = "", reason: str = "", batch: str = ""):
        batch_id = int(batch) if batch.isdigit() else None
        with store.transaction() as session:
            pages = queue_pages(session, status=status or None, reason=reason or None, batch=batch_id)
            reasons = sorted(set(session.scalars(select(FlagRow.reason).distinct())))
            context = {
                "viewer": viewer, "pages": pages, "batches": batch_summaries(session), "audit": audit_stats(session),
                "statuses": STATUSES, "reasons": reasons,
                "filters": {"status": status, "reason": reason, "batch": batch_id},
                "next_page": next_page_to_review(session, None, batch_id),
            }
        return templates.TemplateResponse(request, "queue.html", context)

    @app.get("/pages/{page_id}", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, page_id: int, viewer: ViewerDep):
        with store.transaction() as session:
            detail = page_detail(session, page_id)
        return templates.TemplateResponse(request, "review.html", {"viewer": viewer, "page": detail})

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

    @app.get("/api/pages/{page_id}", tags=["api"])
    def api_page(page_id: int, _who: ReaderDep) -> dict[str, Any]:
        """A page: record, open flags grouped by field with their cell and readings, the audit trail."""
        with store.transaction() as session:
            return page_detail(session, page_id)

    @app.post("/api/pages/{page_id}/fields", tags=["api"])
    def api_save_field(page_id: int, body: FieldCorrection, who: WriterDep) -> dict[str, Any]:
        """Save one correction made on ``version``; returns the re-validated record and open flags.
        409 with the current value when the page changed since that version."""
        value = "" if body.value is None else str(body.value)
        with store.transaction() as session:
            outcome = save_field(session, page_id, body.field, value, body.version, who.name, action=body.action)
            return outcome.as_json()

    @app.post("/api/pages/{page_id}/done", tags=["api"])
    def api_done(page_id: int, body: PageAction, who: WriterDep) -> dict[str, Any]:
        """Mark the page reviewed (409 while flags remain); returns the next page waiting for review."""
        return _finish(page_id, body.version, who.name, reject=False)

    @app.post("/api/pages/{page_id}/reject", tags=["api"])
    def api_reject(page_id: int, body: PageAction, who: WriterDep) -> dict[str, Any]:
        """Reject the page: it is not usable as a record."""
        return _finish(page_id, body.version, who.name, reject=True)

    def _finish(page_id: int, version: int, user: str, *, reject: bool) -> dict[str, Any]:
        with store.transaction() as session:
            outcome = finish_page(session, page_id, version, user, reject=reject)
        with store.transaction() as session:
            batch = session.scalar(select(PageRow).where(PageRow.id == page_id)).document.batch_id
            following = next_page_to_review(session, page_id, batch)
        return {**outcome.as_json(), "next_page_id": following}

    return app


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

"""The queue's operations: save a correction, finish a page, list what needs a human.

Every write bumps the page's version with ``UPDATE ... WHERE version = :seen`` as
its first statement: the row lock (PostgreSQL) or write lock (SQLite) is taken
before anything is read, so of two saves made on the same version exactly one
wins and the other gets a StaleVersionError carrying what the winner left.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Flag, FlagReason, FormRecord, parse_record
from pipeline.lexicon import Lexicon, field_kind
from pipeline.errors import NotAFormError
from pipeline.validate import LAYOUT_FAILED, rule_flags
from review.fields import FieldValueError, Record, get_text, is_editable, with_value
from review.store import (
    Batch,
    CellRow,
    Correction,
    Document,
    FieldEvidenceRow,
    FlagRow,
    LexiconTerm,
    PageNotFoundError,
    PageRow,
    ReviewStateError,
    StaleVersionError,
    now,
)

STATUSES = ("needs_review", "audit", "corrected", "auto_accepted", "rejected", "error")
REVIEWABLE = ("needs_review", "audit", "corrected", "auto_accepted")
OCR_REASONS = {FlagReason.LOW_CONFIDENCE.value, FlagReason.ENGINES_DISAGREE.value, FlagReason.UNPARSEABLE.value}
PAGE_FIELD = "(page)"  # the audit trail's field for page actions (done, reject)
EDIT_ACTIONS = ("edit", "proposal")  # actions that changed a value; "confirm" kept it


# --- flags ------------------------------------------------------------------------------

def open_flags(record: Record, machine_flags: list[dict], corrections: list[Correction]) -> list[Flag]:
    """The flags still open after the reviewers' corrections.

    An OCR flag closes once a human has saved that field (typed or confirmed). Rules are
    re-run on the corrected record; a rule flag stays open unless a reviewer confirmed
    the field's current value as it is (Enter on an unchanged value), because a human
    has the last word on a form that really does break its own arithmetic.
    """
    last: dict[str, Correction] = {}
    for correction in sorted(corrections, key=lambda c: c.id or 0):
        last[correction.field] = correction
    flags: dict[tuple[str, str], Flag] = {}
    for raw in machine_flags:
        flag = Flag.model_validate(raw)
        if flag.reason in OCR_REASONS and flag.field not in last:
            flags.setdefault((flag.field, flag.reason), flag)
    for flag in rule_flags(record):
        confirmed = last.get(flag.field)
        if confirmed and confirmed.action == "confirm" and confirmed.new_value == get_text(record, flag.field):
            continue
        flags.setdefault((flag.field, flag.reason), flag)
    return list(flags.values())


def _flag_rows(flags: list[Flag]) -> list[FlagRow]:
    return [FlagRow(field=f.field, reason=f.reason, confidence=f.confidence, message=f.message,
                    readings=dict(f.readings), proposal=f.proposal) for f in flags]


def flag_from_row(row: FlagRow) -> Flag:
    return Flag(field=row.field, reason=row.reason, confidence=row.confidence, message=row.message,
                readings=dict(row.readings or {}), proposal=row.proposal)


# --- lexicon ----------------------------------------------------------------------------

def learnable(term: str) -> bool:
    """Only words teach: a learned number ("100.5%") would snap its near neighbours onto itself."""
    cjk = sum(1 for ch in term if "\u4e00" <= ch <= "\u9fff")
    return cjk >= 2 and not any(ch.isdigit() for ch in term)


def learn(session: Session, field: str, term: str, page_id: int) -> None:
    kind = field_kind(field)
    if kind is None or not learnable(term):
        return
    exists = session.scalar(select(LexiconTerm.id).where(LexiconTerm.kind == kind, LexiconTerm.term == term))
    if exists:
        return
    try:
        with session.begin_nested():  # another save may teach the same term at the same moment
            session.add(LexiconTerm(kind=kind, term=term, page_id=page_id))
    except IntegrityError:
        pass


def lexicon_from_db(session: Session) -> Lexicon:
    """The builtin vocabulary plus every term the reviewers taught."""
    lexicon = Lexicon.builtin()
    terms: dict[str, list[str]] = defaultdict(list)
    for kind, term in session.execute(select(LexiconTerm.kind, LexiconTerm.term)):
        terms[kind].append(term)
    for kind, words in terms.items():
        lexicon.add(kind, words)
    return lexicon


# --- writes -----------------------------------------------------------------------------

@dataclass
class SaveOutcome:
    page_id: int
    version: int
    status: str
    record: Record
    flags: list[Flag]

    def as_json(self) -> dict[str, Any]:
        return {"page_id": self.page_id, "version": self.version, "status": self.status,
                "record": self.record.model_dump(mode="json"),
                "flags": [f.model_dump(mode="json") for f in self.flags]}


def _claim_version(session: Session, page_id: int, version: int, field: str) -> PageRow:
    """Bump the version if it is still ``version``; else raise with what the other person left."""
    claimed = session.execute(
        update(PageRow).where(PageRow.id == page_id, PageRow.version == version).values(version=PageRow.version + 1)
    ).rowcount
    page = session.execute(
        select(PageRow).where(PageRow.id == page_id).execution_options(populate_existing=True)
    ).scalar()
    if page is None:
        raise PageNotFoundError(f"no page {page_id}")
    if claimed != 1:
        last = session.scalar(
            select(Correction).where(Correction.page_id == page_id, Correction.field == field)
            .order_by(Correction.id.desc()).limit(1)
        )
        record = parse_record(page.record) if page.record else None
        raise StaleVersionError(
            f"page {page_id} is at version {page.version}, the save was made on version {version}",
            current={
                "version": page.version,
                "status": page.status,
                "field": field,
                "value": get_text(record, field) if record else "",
                "by": last.user_name if last else None,
                "at": last.at.isoformat() if last else None,
            },
        )
    return page


def _corrections(session: Session, page_id: int) -> list[Correction]:
    return list(session.scalars(select(Correction).where(Correction.page_id == page_id).order_by(Correction.id)))


def save_field(session: Session, page_id: int, field: str, value: str, version: int, user: str,
               *, action: str = "edit") -> SaveOutcome:
    """Save one reviewer's value for one field, re-validate, and return the new state.

    ``action`` is "edit" (typed) or "proposal" (accepted the rule's proposal); saving the
    value the field already holds is recorded as "confirm".
    """
    page = _claim_version(session, page_id, version, field)
    if page.record is None or page.status in ("rejected", "error"):
        raise ReviewStateError(f"page {page_id} is {page.status}: it has no record to correct")
    record = parse_record(page.record)
    old = get_text(record, field)
    if is_editable(record, field):
        record = with_value(record, field, value)
    elif field not in {f["field"] for f in page.machine_flags} | {f.field for f in page.flags}:
        raise FieldValueError(f"{field!r} is not a field of this record")
    new = get_text(record, field)
    if new == old:
        action = "confirm"
    session.add(Correction(page_id=page_id, field=field, old_value=old, new_value=new, action=action, user_name=user))
    session.flush()
    flags = open_flags(record, page.machine_flags, _corrections(session, page_id))
    page.record = record.model_dump(mode="json")
    page.flags = _flag_rows(flags)
    if page.status != "audit":
        page.status = "needs_review" if flags else "corrected"
    learn(session, field, new, page_id)  # a value a human typed or confirmed is a word of this archive
    return SaveOutcome(page_id, page.version, page.status, record, flags)


def finish_page(session: Session, page_id: int, version: int, user: str, *, reject: bool = False) -> SaveOutcome:
    """Mark a page done (every flag closed) or rejected (not usable as a record)."""
    page = _claim_version(session, page_id, version, PAGE_FIELD)
    record = parse_record(page.record) if page.record else FormRecord()
    corrections = _corrections(session, page_id)
    flags = [flag_from_row(row) for row in page.flags]
    if reject:
        new_status = "rejected"
    else:
        if flags:
            raise ReviewStateError(f"{len(flags)} flag(s) still open: correct or confirm them, or reject the page")
        edited = any(c.action in EDIT_ACTIONS for c in corrections)
        # An audit page nobody had to change stays what the machine said it was.
        new_status = "corrected" if edited or page.status != "audit" else "auto_accepted"
    session.add(Correction(page_id=page_id, field=PAGE_FIELD, old_value=page.status, new_value=new_status,
                           action="reject" if reject else "done", user_name=user))
    page.status = new_status
    page.reviewed_by, page.reviewed_at = user, now()
    return SaveOutcome(page_id, page.version, page.status, record, flags)


# --- reads ------------------------------------------------------------------------------

def _evidence(session: Session, page_id: int) -> dict[str, tuple[FieldEvidenceRow, CellRow]]:
    rows = session.execute(
        select(FieldEvidenceRow, CellRow).join(CellRow, CellRow.id == FieldEvidenceRow.cell_id)
        .where(FieldEvidenceRow.page_id == page_id)
    )
    return {evidence.field: (evidence, cell) for evidence, cell in rows}


def page_detail(session: Session, page_id: int) -> dict[str, Any]:
    """Everything the review page shows, as plain data (rendered escaped, or embedded as JSON)."""
    page = session.get(PageRow, page_id)
    if page is None:
        raise PageNotFoundError(f"no page {page_id}")
    record = parse_record(page.record) if page.record else None
    evidence = _evidence(session, page_id)
    grouped: dict[str, list[FlagRow]] = defaultdict(list)
    for row in page.flags:
        grouped[row.field].append(row)

    def reading_order(field: str) -> tuple[int, int, str]:
        cell = evidence.get(field, (None, None))[1]
        return (cell.row, cell.col, field) if cell else (10_000, 0, field)

    items = []
    for field in sorted(grouped, key=reading_order):
        rows = grouped[field]
        found = evidence.get(field)
        readings = {**(found[0].readings if found else {})}
        for row in rows:
            readings.update(row.readings or {})
        confidence = next((r.confidence for r in rows if r.confidence is not None),
                          found[0].confidence if found else None)
        items.append({
            "field": field,
            "value": get_text(record, field) if record else "",
            "editable": bool(record and is_editable(record, field)),
            "reasons": [r.reason for r in rows],
            "messages": [r.message for r in rows if r.message],
            "confidence": confidence,
            "readings": readings,
            "proposal": next((r.proposal for r in rows if r.proposal is not None), None),
            "cell": None if not found else {"id": found[1].id, "x0": found[1].x0, "y0": found[1].y0,
                                             "x1": found[1].x1, "y1": found[1].y1},
        })
    corrections = [
        {"field": c.field, "from": c.old_value, "to": c.new_value, "action": c.action, "by": c.user_name,
         "at": c.at.isoformat(timespec="seconds")}
        for c in _corrections(session, page_id)
    ]
    return {
        "id": page.id, "file": page.document.name, "number": page.number, "batch": page.document.batch.name,
        "status": page.status, "version": page.version, "audit_sample": page.audit_sample,
        "width": page.image_width, "height": page.image_height, "has_image": bool(page.image_path),
        "error": {"kind": page.error_kind, "message": page.error_message} if page.error_kind else None,
        "record": record.model_dump(mode="json") if record else None,
        "items": items, "corrections": corrections, "notices": page.notices or [],
    }


def _page_filter(statement, status: str | None, reason: str | None, batch: int | None):
    if status:
        statement = statement.where(PageRow.status == status)
    if batch:
        statement = statement.join(Document, Document.id == PageRow.document_id).where(Document.batch_id == batch)
    if reason:
        statement = statement.where(PageRow.id.in_(select(FlagRow.page_id).where(FlagRow.reason == reason)))
    return statement


def queue_fields(session: Session, *, status: str | None = "needs_review", reason: str | None = None,
                 batch: int | None = None) -> list[dict[str, Any]]:
    """Every open flag on the pages that match, one entry per (page, field, reason)."""
    pages = session.scalars(_page_filter(select(PageRow), status, reason, batch).order_by(PageRow.id))
    entries = []
    for page in pages:
        record = parse_record(page.record) if page.record else None
        for row in page.flags:
            if reason and row.reason != reason:
                continue
            entries.append({
                "page_id": page.id, "file": page.document.name, "page": page.number, "field": row.field,
                "value": get_text(record, row.field) if record else "", "confidence": row.confidence,
                "reason": row.reason, "message": row.message, "proposal": row.proposal, "version": page.version,
            })
    return entries


def queue_pages(session: Session, *, status: str | None = None, reason: str | None = None,
                batch: int | None = None) -> list[dict[str, Any]]:
    pages = session.scalars(_page_filter(select(PageRow), status, reason, batch).order_by(PageRow.id))
    return [
        {"id": p.id, "file": p.document.name, "number": p.number, "batch": p.document.batch.name,
         "batch_id": p.document.batch_id, "status": p.status, "flags": len(p.flags),
         "reasons": sorted({f.reason for f in p.flags}), "audit_sample": p.audit_sample,
         "error": p.error_kind}
        for p in pages
    ]


def next_page_to_review(session: Session, after: int | None = None, batch: int | None = None) -> int | None:
    """The next page (by id, wrapping) that still waits for a human."""
    waiting = _page_filter(select(PageRow.id), None, None, batch).where(
        PageRow.status.in_(("needs_review", "audit")), PageRow.reviewed_at.is_(None)
    ).order_by(PageRow.id)
    ids = list(session.scalars(waiting))
    later = [i for i in ids if after is None or i > after]
    return (later or [i for i in ids if i != after] or [None])[0]


@dataclass
class BatchSummary:
    id: int
    name: str
    created_at: datetime
    counts: dict[str, int]
    flags: int
    layout_failed: int = 0  # forms whose layout could not be mapped: records of what could be, flagged
    not_a_form: int = 0  # pages that show no form at all


def batch_summaries(session: Session) -> list[BatchSummary]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for batch_id, status, n in session.execute(
        select(Document.batch_id, PageRow.status, func.count()).join(Document, Document.id == PageRow.document_id)
        .group_by(Document.batch_id, PageRow.status)
    ):
        counts[batch_id][status] = n
    flags = dict(session.execute(
        select(Document.batch_id, func.count(FlagRow.id)).select_from(FlagRow)
        .join(PageRow, PageRow.id == FlagRow.page_id).join(Document, Document.id == PageRow.document_id)
        .group_by(Document.batch_id)
    ).all())
    def pages_where(condition) -> dict[int, int]:
        return dict(session.execute(
            select(Document.batch_id, func.count()).select_from(PageRow)
            .join(Document, Document.id == PageRow.document_id).where(condition).group_by(Document.batch_id)
        ).all())

    # counted in the database: a queue page shows every batch, and a batch holds thousands of pages
    layout_failed = pages_where(cast(PageRow.machine_flags, String).contains(f'"{LAYOUT_FAILED}"'))
    not_a_form = pages_where(PageRow.error_kind == NotAFormError.kind)
    return [BatchSummary(b.id, b.name, b.created_at, counts.get(b.id, {}), flags.get(b.id, 0),
                         layout_failed.get(b.id, 0), not_a_form.get(b.id, 0))
            for b in session.scalars(select(Batch).order_by(Batch.id))]


def audit_stats(session: Session) -> dict[str, Any]:
    """How often what went straight through was wrong, measured on the audit sample."""
    sampled = session.scalar(select(func.count()).where(PageRow.audit_sample.is_(True))) or 0
    checked_ids = list(session.scalars(
        select(PageRow.id).where(PageRow.audit_sample.is_(True), PageRow.reviewed_at.is_not(None))
    ))
    wrong = session.scalar(
        select(func.count(func.distinct(Correction.page_id)))
        .where(Correction.page_id.in_(checked_ids), Correction.action.in_(EDIT_ACTIONS))
    ) if checked_ids else 0
    auto = session.scalar(select(func.count()).where(PageRow.status.in_(("auto_accepted", "audit")))) or 0
    return {"sampled": sampled, "checked": len(checked_ids), "wrong": wrong or 0, "auto_accepted": auto,
            "error_rate": (wrong or 0) / len(checked_ids) if checked_ids else None}

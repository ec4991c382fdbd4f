"""The queue's operations: save a correction, finish a page, list what needs a human.

Every write's first statement is an ``UPDATE`` of the page's row: the row lock
(PostgreSQL) or write lock (SQLite) is taken before anything is read, and every write
bumps the page's version. Page actions (done, reject, a section confirmed) carry the
page version they were made on (``UPDATE ... WHERE version = :seen``). A field's save
carries that field's version instead: the id of its last correction, 0 when it has
none; under the page's lock it is compared with the field's last correction, so saves
of different fields of one page both win, and of two saves of one field made on the
same version exactly one wins. A loser gets a StaleVersionError carrying what the
winner left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Flag, FlagReason, FormRecord, parse_record
from models.result import rule_reason
from pipeline.errors import NotAFormError
from pipeline.lexicon import Lexicon, field_kind
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
PAGE_FIELD = "(page)"  # the audit trail's field for page actions (done, reject, undo_reject)
# pipeline.validate's flags on how the table was mapped: rule:layout (a value read across a cut
# rule, a cell under two headers), rule:layout_doubt (the whole page in doubt), rule:layout_failed
LAYOUT_REASON_PREFIX = rule_reason("layout")
HEADER_SECTION, GOALS_SECTION = "header", "goals"  # the parts of a form printed once, not as table rows
TOTALS = ("total_weight", "total_score")  # the 总分 row that closes the 绩效指标 table


class CorrectionAction(StrEnum):
    """What a row of the audit trail (``corrections.action``) records."""

    EDIT = "edit"  # a value typed
    PROPOSAL = "proposal"  # a rule's proposal accepted
    CONFIRM = "confirm"  # the value kept as it is: saved unchanged, or its section confirmed
    DONE = "done"  # the page reviewed (field PAGE_FIELD)
    REJECT = "reject"  # the page not usable; new_value is the reviewer's reason, old_value the status it had
    UNDO_REJECT = "undo_reject"  # the rejection taken back; new_value is the status restored


EDIT_ACTIONS = (CorrectionAction.EDIT.value, CorrectionAction.PROPOSAL.value)  # changed a value; a confirm kept it


# --- flags ------------------------------------------------------------------------------

def is_layout_reason(reason: str) -> bool:
    return reason.startswith(LAYOUT_REASON_PREFIX)


def _closed_by_a_save_of_its_field(reason: str) -> bool:
    """OCR and layout flags: no re-run of the rules can tell that a reading or the table's
    mapping was right, only a person who looked at that field."""
    return reason in OCR_REASONS or is_layout_reason(reason)


def open_flags(record: Record, machine_flags: list[dict], corrections: list[Correction]) -> list[Flag]:
    """The flags still open after the reviewers' corrections.

    An OCR or layout flag closes once a human has saved that very field (typed or
    confirmed it, or confirmed its whole section), and only then. Rules are re-run on the
    corrected record; a rule flag stays open unless a reviewer confirmed the field's
    current value as it is (Enter on an unchanged value), because a human has the last
    word on a form that really does break its own arithmetic.
    """
    last: dict[str, Correction] = {}
    for correction in sorted(corrections, key=lambda c: c.id or 0):
        last[correction.field] = correction
    flags: dict[tuple[str, str], Flag] = {}
    for raw in machine_flags:
        flag = Flag.model_validate(raw)
        if _closed_by_a_save_of_its_field(flag.reason) and flag.field not in last:
            flags.setdefault((flag.field, flag.reason), flag)
    for flag in rule_flags(record):
        confirmed = last.get(flag.field)
        if (confirmed and confirmed.action == CorrectionAction.CONFIRM
                and confirmed.new_value == get_text(record, flag.field)):
            continue
        flags.setdefault((flag.field, flag.reason), flag)
    return list(flags.values())


def _flag_rows(flags: list[Flag]) -> list[FlagRow]:
    return [FlagRow(field=f.field, reason=f.reason, confidence=f.confidence, message=f.message,
                    readings=dict(f.readings), proposal=f.proposal) for f in flags]


def flag_from_row(row: FlagRow) -> Flag:
    return Flag(field=row.field, reason=row.reason, confidence=row.confidence, message=row.message,
                readings=dict(row.readings or {}), proposal=row.proposal)


# --- versions and sections ---------------------------------------------------------------

def field_versions(corrections: Iterable[Correction]) -> dict[str, int]:
    """Each corrected field's version: the id of its last correction (a field never saved is at 0)."""
    versions: dict[str, int] = {}
    for correction in corrections:
        if correction.field != PAGE_FIELD:
            versions[correction.field] = max(versions.get(correction.field, 0), correction.id)
    return versions


def section_of(record: Record | None, field: str) -> str:
    """The part of the form a field path lies in: a table (``funds``, ``indicators``, a
    template's ``tasks``; the path of its rows or of the table itself), ``goals`` (年度总体目标)
    or ``header`` (every other value printed once)."""
    name = field.split("[", 1)[0]
    if "[" in field or (record is not None and isinstance(dict(record).get(name), list)):
        return name
    if name.startswith("goal_"):
        return GOALS_SECTION
    if name in TOTALS:
        return "indicators"
    return HEADER_SECTION


def sections(record: Record) -> list[str]:
    """The sections a record has: header, goals and each of its tables."""
    tables = [name for name, value in record if isinstance(value, list)]
    return [HEADER_SECTION, GOALS_SECTION, *tables]


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
    """A write's result: the page as it now is, and the fields the write recorded a correction for."""

    page_id: int
    version: int
    status: str
    record: Record
    flags: list[Flag]
    field_versions: dict[str, int]  # see ``field_versions``: what the next save of each field carries
    saved_fields: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"page_id": self.page_id, "version": self.version, "status": self.status,
                "record": self.record.model_dump(mode="json"),
                "flags": [f.model_dump(mode="json") for f in self.flags],
                "field_versions": self.field_versions, "saved_fields": self.saved_fields}


def _reload_page(session: Session, page_id: int) -> PageRow:
    page = session.execute(
        select(PageRow).where(PageRow.id == page_id).execution_options(populate_existing=True)
    ).scalar()
    if page is None:
        raise PageNotFoundError(f"no page {page_id}")
    return page


def _last_correction(session: Session, page_id: int, field: str) -> Correction | None:
    return session.scalar(
        select(Correction).where(Correction.page_id == page_id, Correction.field == field)
        .order_by(Correction.id.desc()).limit(1)
    )


def _stale(page: PageRow, field: str, last: Correction | None, detail: str, yours: str | None) -> StaleVersionError:
    """The refusal of a write made on an old version: both values, and who left theirs when."""
    record = parse_record(page.record) if page.record else None
    theirs = get_text(record, field) if record else ""
    return StaleVersionError(detail, current={
        "version": page.version,
        "status": page.status,
        "field": field,
        "field_version": last.id if last else 0,
        "value": theirs,
        "theirs": theirs,
        "yours": yours,
        "by": last.user_name if last else None,
        "at": last.at.isoformat() if last else None,
    })


def _claim_version(session: Session, page_id: int, version: int, field: str, yours: str | None = None) -> PageRow:
    """Bump the page's version if it is still ``version``; else raise with what the other person left."""
    claimed = session.execute(
        update(PageRow).where(PageRow.id == page_id, PageRow.version == version).values(version=PageRow.version + 1)
    ).rowcount
    page = _reload_page(session, page_id)
    if claimed != 1:
        raise _stale(page, field, _last_correction(session, page_id, field),
                     f"page {page_id} is at version {page.version}, the save was made on version {version}", yours)
    return page


def _claim_field_version(session: Session, page_id: int, field: str, field_version: int, yours: str) -> PageRow:
    """Lock the page, then bump its version if ``field`` is still at ``field_version``; else raise
    with what the other person left. Saves of the page's other fields since do not matter."""
    # An UPDATE first, as in _claim_version: the lock is held before the field's last correction is read.
    session.execute(update(PageRow).where(PageRow.id == page_id).values(version=PageRow.version))
    page = _reload_page(session, page_id)
    last = _last_correction(session, page_id, field)
    current = last.id if last else 0
    if current != field_version:
        raise _stale(page, field, last, f"{field} of page {page_id} is at version {current}, "
                                        f"the save was made on version {field_version}", yours)
    page.version += 1
    return page


def _corrections(session: Session, page_id: int) -> list[Correction]:
    return list(session.scalars(select(Correction).where(Correction.page_id == page_id).order_by(Correction.id)))


def _record_to_correct(page: PageRow) -> Record:
    if page.record is None or page.status in ("rejected", "error"):
        raise ReviewStateError(f"page {page.id} is {page.status}: it has no record to correct")
    return parse_record(page.record)


def _revalidate(session: Session, page: PageRow, record: Record) -> tuple[list[Flag], dict[str, int]]:
    """Store the corrected record and the flags still open; the status follows. Returns the
    flags and the fields' versions."""
    corrections = _corrections(session, page.id)
    flags = open_flags(record, page.machine_flags, corrections)
    page.record = record.model_dump(mode="json")
    page.flags = _flag_rows(flags)
    if page.status != "audit":
        page.status = "needs_review" if flags else "corrected"
    return flags, field_versions(corrections)


def save_field(session: Session, page_id: int, field: str, value: str, version: int | None, user: str,
               *, action: str = CorrectionAction.EDIT, field_version: int | None = None) -> SaveOutcome:
    """Save one reviewer's value for one field, re-validate, and return the new state.

    ``action`` is "edit" (typed) or "proposal" (accepted the rule's proposal); saving the
    value the field already holds is recorded as "confirm". ``field_version`` is the
    field's version the value was typed on (``field_versions``): refused when someone
    saved that field since, whatever happened to the page's other fields. Without it,
    ``version`` is the page's version and any write to the page since refuses the save
    (the contract of clients that send only the page's version).
    """
    if field_version is not None:
        page = _claim_field_version(session, page_id, field, field_version, value)
    elif version is not None:
        page = _claim_version(session, page_id, version, field, value)
    else:
        raise ValueError("a save carries the field's version or the page's")
    record = _record_to_correct(page)
    old = get_text(record, field)
    if is_editable(record, field):
        record = with_value(record, field, value)
    elif field not in {f["field"] for f in page.machine_flags} | {f.field for f in page.flags}:
        raise FieldValueError(f"{field!r} is not a field of this record")
    new = get_text(record, field)
    recorded = CorrectionAction.CONFIRM if new == old else CorrectionAction(action)
    session.add(Correction(page_id=page_id, field=field, old_value=old, new_value=new, action=recorded.value,
                           user_name=user))
    session.flush()
    flags, versions = _revalidate(session, page, record)
    learn(session, field, new, page_id)  # a value a human typed or confirmed is a word of this archive
    return SaveOutcome(page_id, page.version, page.status, record, flags, versions, [field])


def _fields_in_layout_doubt_only(page: PageRow, record: Record, section: str) -> list[str]:
    """The fields of ``section`` whose open flags are all layout flags, in flag order."""
    reasons: dict[str, list[str]] = defaultdict(list)
    for row in page.flags:
        reasons[row.field].append(row.reason)
    return [field for field, why in reasons.items()
            if section_of(record, field) == section and all(is_layout_reason(reason) for reason in why)]


def confirm_section(session: Session, page_id: int, section: str, version: int, user: str) -> SaveOutcome:
    """Confirm one section of the page as it reads, made on the page's ``version``: a person
    checked it against the scan. Records a "confirm" for each of its fields whose open flags
    are all layout flags, which closes them; a field with an OCR or rule flag open keeps it,
    to be checked on its own."""
    page = _claim_version(session, page_id, version, section)
    record = _record_to_correct(page)
    known = dict.fromkeys([*sections(record), *(section_of(record, row.field) for row in page.flags)])
    if section not in known:
        raise FieldValueError(f"{section!r} is not a section of this record: one of {', '.join(known)}")
    fields = _fields_in_layout_doubt_only(page, record, section)
    if not fields:
        raise ReviewStateError(f"no field of {section} on page {page_id} has only layout flags open")
    for field in fields:
        value = get_text(record, field)
        session.add(Correction(page_id=page_id, field=field, old_value=value, new_value=value,
                               action=CorrectionAction.CONFIRM.value, user_name=user))
    session.flush()
    flags, versions = _revalidate(session, page, record)
    # Nothing learned: a section confirmed at once vouches for its layout more than for each word.
    return SaveOutcome(page_id, page.version, page.status, record, flags, versions, fields)


def _page_outcome(session: Session, page: PageRow) -> SaveOutcome:
    record = parse_record(page.record) if page.record else FormRecord()
    flags = [flag_from_row(row) for row in page.flags]
    return SaveOutcome(page.id, page.version, page.status, record, flags,
                       field_versions(_corrections(session, page.id)), [])


def _record_page_action(session: Session, page: PageRow, action: CorrectionAction, old: str, new: str,
                        user: str) -> None:
    session.add(Correction(page_id=page.id, field=PAGE_FIELD, old_value=old, new_value=new, action=action.value,
                           user_name=user))


def finish_page(session: Session, page_id: int, version: int, user: str) -> SaveOutcome:
    """Mark a page done: every flag closed."""
    page = _claim_version(session, page_id, version, PAGE_FIELD)
    if page.flags:
        raise ReviewStateError(f"{len(page.flags)} flag(s) still open: correct or confirm them, or reject the page")
    edited = any(c.action in EDIT_ACTIONS for c in _corrections(session, page_id))
    # An audit page nobody had to change stays what the machine said it was.
    new_status = "corrected" if edited or page.status != "audit" else "auto_accepted"
    _record_page_action(session, page, CorrectionAction.DONE, page.status, new_status, user)
    page.status = new_status
    page.reviewed_by, page.reviewed_at = user, now()
    return _page_outcome(session, page)


def reject_page(session: Session, page_id: int, version: int, user: str, reason: str) -> SaveOutcome:
    """Reject a page (not usable as a record), saying why; ``undo_reject`` takes it back.
    The audit trail keeps the reason (new_value) and the status the page had (old_value)."""
    reason = reason.strip()
    if not reason:
        raise FieldValueError("a rejection needs a reason")
    page = _claim_version(session, page_id, version, PAGE_FIELD)
    if page.status == "rejected":
        raise ReviewStateError(f"page {page_id} is rejected already")
    _record_page_action(session, page, CorrectionAction.REJECT, page.status, reason, user)
    page.status = "rejected"
    page.reviewed_by, page.reviewed_at = user, now()
    return _page_outcome(session, page)


def undo_reject(session: Session, page_id: int, version: int, user: str) -> SaveOutcome:
    """Take a rejection back: the page gets the status it had before it, reviewed as it was then."""
    page = _claim_version(session, page_id, version, PAGE_FIELD)
    corrections = _corrections(session, page_id)
    # a rejection of a rejected page (possible before rejections were refused on one) restores nothing
    rejection = next((c for c in reversed(corrections)
                      if c.action == CorrectionAction.REJECT and c.old_value != "rejected"), None)
    if page.status != "rejected" or rejection is None:
        raise ReviewStateError(f"page {page_id} is {page.status}: there is no rejection to undo")
    done = next((c for c in reversed(corrections) if c.action == CorrectionAction.DONE and c.id < rejection.id), None)
    _record_page_action(session, page, CorrectionAction.UNDO_REJECT, page.status, rejection.old_value, user)
    page.status = rejection.old_value
    # reviewed by whoever marked it done before, or waiting for a person again (next_page_to_review)
    page.reviewed_by, page.reviewed_at = (done.user_name, done.at) if done else (None, None)
    return _page_outcome(session, page)


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

    trail = _corrections(session, page_id)
    versions = field_versions(trail)
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
            "field_version": versions.get(field, 0),
            "section": section_of(record, field),
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
        for c in trail
    ]
    return {
        "id": page.id, "file": page.document.name, "number": page.number, "batch": page.document.batch.name,
        "status": page.status, "version": page.version, "audit_sample": page.audit_sample,
        "width": page.image_width, "height": page.image_height, "has_image": bool(page.image_path),
        "error": {"kind": page.error_kind, "message": page.error_message} if page.error_kind else None,
        "record": record.model_dump(mode="json") if record else None,
        "items": items, "corrections": corrections, "notices": page.notices or [],
        "field_versions": versions,
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
    versions = {(page_id, field): version for page_id, field, version in session.execute(
        select(Correction.page_id, Correction.field, func.max(Correction.id))
        .where(Correction.page_id.in_(_page_filter(select(PageRow.id), status, reason, batch)))
        .group_by(Correction.page_id, Correction.field)
    )}
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
                "field_version": versions.get((page.id, row.field), 0),
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

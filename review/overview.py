"""The queue page's overview: search the stored records, what is left per batch and in all, and
how long it will take at the recent pace.

Search matches the file's name and the record's 主管部门, 实施单位 and 项目名称 (a template
record's 部门（单位）名称 too), case-insensitively, anywhere in the text. Those values are
taken out of the stored JSON by the database (SQLite's json_extract, PostgreSQL's ->>), so a
search reads a few short strings per page, not whole records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from review.store import Batch, Correction, Document, FlagRow, PageRow

SEARCHED = ("project_name", "department", "implementing_unit", "unit_name")  # record fields a search looks in
WAITING = ("needs_review", "audit")
PACE_SAVES = 60  # the recent pace: the last this many saves and page actions
BREAK_SECONDS = 300  # a longer gap between one reviewer's saves is a break, not work


def _waiting(statement):
    return statement.where(PageRow.status.in_(WAITING), PageRow.reviewed_at.is_(None))


def page_texts(session: Session, page_ids: list[int] | None = None) -> dict[int, dict[str, str]]:
    """Per page: its file and the searched record fields, as text ("" when absent)."""
    columns = [PageRow.record[key].as_string().label(key) for key in SEARCHED]
    statement = select(PageRow.id, Document.name, *columns).join(Document, Document.id == PageRow.document_id)
    if page_ids is not None:
        statement = statement.where(PageRow.id.in_(page_ids))
    return {row[0]: {"file": row[1], **{key: row[2 + i] or "" for i, key in enumerate(SEARCHED)}}
            for row in session.execute(statement)}


def search_pages(session: Session, query: str) -> list[int]:
    """The ids of the pages whose file or 主管部门 / 实施单位 / 项目名称 contains ``query``."""
    needle = query.strip().casefold()
    if not needle:
        return []
    return sorted(page_id for page_id, texts in page_texts(session).items()
                  if any(needle in value.casefold() for value in texts.values()))


@dataclass
class BatchProgress:
    id: int
    name: str
    pages_left: int
    fields_left: int

    @property
    def finished(self) -> bool:
        return self.pages_left == 0


def batch_progress(session: Session) -> list[BatchProgress]:
    """Per batch, the pages still waiting for a person and the flagged fields open on them."""
    pages = dict(session.execute(
        _waiting(select(Document.batch_id, func.count()).select_from(PageRow)
                 .join(Document, Document.id == PageRow.document_id)).group_by(Document.batch_id)
    ).all())
    flagged = _waiting(  # a field flagged for two reasons is one field to check
        select(Document.batch_id, FlagRow.page_id, FlagRow.field).select_from(FlagRow)
        .join(PageRow, PageRow.id == FlagRow.page_id).join(Document, Document.id == PageRow.document_id)
    ).distinct().subquery()
    fields = dict(session.execute(
        select(flagged.c.batch_id, func.count()).select_from(flagged).group_by(flagged.c.batch_id)
    ).all())
    return [BatchProgress(b.id, b.name, pages.get(b.id, 0), fields.get(b.id, 0))
            for b in session.scalars(select(Batch).order_by(Batch.id))]


def next_batch_with_pages(progress: list[BatchProgress], after: int | None) -> BatchProgress | None:
    """The batch after ``after`` (by id, wrapping) that still has pages waiting."""
    waiting = [b for b in progress if not b.finished and b.id != after]
    later = [b for b in waiting if after is None or b.id > after]
    return (later or waiting or [None])[0]


@dataclass
class Pace:
    saves: int  # how many recent saves the pace was measured on
    seconds_per_step: float  # a step: one field saved, or one page done or rejected


def recent_pace(session: Session, limit: int = PACE_SAVES) -> Pace | None:
    """How long a step takes, from the timestamps of the last ``limit`` corrections: the gaps
    between one reviewer's consecutive saves, breaks (over ``BREAK_SECONDS``) left out."""
    recent = session.execute(
        select(Correction.user_name, Correction.at).order_by(Correction.at.desc(), Correction.id.desc()).limit(limit)
    ).all()
    by_user: dict[str, list[datetime]] = {}
    for user, at in recent:
        by_user.setdefault(user, []).append(at)
    gaps = []
    for times in by_user.values():
        times.sort()
        gaps += [(b - a).total_seconds() for a, b in pairwise(times)]
    gaps = [gap for gap in gaps if 0 <= gap <= BREAK_SECONDS]
    if not gaps:
        return None
    return Pace(saves=len(recent), seconds_per_step=max(1.0, sum(gaps) / len(gaps)))


def overview(session: Session) -> dict[str, Any]:
    """What is left per batch and in all, and the time it will take at the recent pace."""
    progress = batch_progress(session)
    pages_left = sum(b.pages_left for b in progress)
    fields_left = sum(b.fields_left for b in progress)
    pace = recent_pace(session)
    # Every open field is one save, and every page waiting one more step (done, or checked whole).
    seconds_left = pace.seconds_per_step * (fields_left + pages_left) if pace else None
    return {"batches": {b.id: b for b in progress}, "progress": progress, "pages_left": pages_left,
            "fields_left": fields_left, "pace": pace, "seconds_left": seconds_left}


def duration_text(seconds: float, text: dict[str, str]) -> str:
    """``seconds`` in minutes (at least one), or hours and minutes, in the UI's words."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return text["minutes"].format(n=minutes)
    return text["hours"].format(h=minutes // 60, m=minutes % 60)

"""What the pipeline says about one page: provenance, record, flags, status or error."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from models.record import FormRecord, TemplateRecord, record_kind

# The project form's record, or a template's (by its form_type).
AnyRecord = Annotated[
    Annotated[FormRecord, Tag("project")] | Annotated[TemplateRecord, Tag("template")], Discriminator(record_kind)
]
_ANY_RECORD: TypeAdapter[FormRecord | TemplateRecord] = TypeAdapter(AnyRecord)


def parse_record(data: dict) -> FormRecord | TemplateRecord:
    """A record's JSON (as stored or exported) as its model: ``FormRecord`` for the project
    form, ``TemplateRecord`` for any other form_type; raises pydantic's ValidationError."""
    return _ANY_RECORD.validate_python(data)


class FlagReason(str, Enum):
    """Why a field needs a human. Rule flags are ``rule:<name>`` strings, see ``rule_reason``."""

    LOW_CONFIDENCE = "low_confidence"
    ENGINES_DISAGREE = "engines_disagree"
    MISSING = "missing"
    UNPARSEABLE = "unparseable"


def rule_reason(name: str) -> str:
    return f"rule:{name}"


class Flag(BaseModel):
    """A field the machine is unsure of. ``field`` is a path such as ``funds[0].executed``."""

    model_config = ConfigDict(extra="forbid")

    field: str
    reason: str
    confidence: float | None = None
    message: str = ""
    readings: dict[str, str] = Field(default_factory=dict)  # engine name -> raw text it read
    proposal: str | None = None  # a value a domain rule suggests, for one-key acceptance


class Notice(BaseModel):
    """Something true of the document that a user of its data should know.

    Not a review task: no cell correction changes it (the form prints 万元 over amounts
    in 元), so the page still goes straight through, carrying the notice to the export.
    """

    model_config = ConfigDict(extra="forbid")

    rule: str
    message: str


class PageStatus(str, Enum):
    AUTO_ACCEPTED = "auto_accepted"
    NEEDS_REVIEW = "needs_review"
    CORRECTED = "corrected"  # set by the review queue: a human closed every flag
    REJECTED = "rejected"  # set by the review queue: not usable as a record


class SourceRef(BaseModel):
    """Provenance: where a page came from. ``file`` is the path as the user gave it."""

    model_config = ConfigDict(extra="forbid")

    file: str
    page: int | None = None  # 1-based; None when the whole file could not be read


class PageError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str  # e.g. "corrupt", "encrypted", "not_a_form", "blank_page", "unreadable"
    message: str


class PageResult(BaseModel):
    """One line of ``formscan extract`` output: a record with flags, or an error."""

    model_config = ConfigDict(extra="forbid")

    source: SourceRef
    record: AnyRecord | None = None
    flags: list[Flag] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    status: PageStatus | None = None
    error: PageError | None = None

    def to_json_line(self) -> str:
        """One JSONL line: absent parts (record or error) are left out, nulls inside the record kept."""
        data = self.model_dump(mode="json")
        data = {key: value for key, value in data.items() if value is not None}
        if not data["flags"] and self.error is not None:
            del data["flags"]
        if not data["notices"]:
            del data["notices"]
        return json.dumps(data, ensure_ascii=False)

"""The pydantic models: the one contract between pipeline, queue, UI and export."""

from models.record import (
    FORM_TYPE,
    FUND_SOURCES,
    FormRecord,
    FundsRow,
    IndicatorRow,
    TemplateRecord,
)
from models.result import (
    Flag,
    FlagReason,
    Notice,
    PageError,
    PageResult,
    PageStatus,
    SourceRef,
    parse_record,
)
from models.table import PageTables, Table, TableCell

__all__ = [
    "FORM_TYPE",
    "FUND_SOURCES",
    "Flag",
    "FlagReason",
    "FormRecord",
    "FundsRow",
    "IndicatorRow",
    "Notice",
    "PageError",
    "PageResult",
    "PageStatus",
    "PageTables",
    "SourceRef",
    "Table",
    "TableCell",
    "TemplateRecord",
    "parse_record",
]

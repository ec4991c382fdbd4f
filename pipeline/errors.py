"""The one exception hierarchy. Every error names the file and, where known, the page."""

from __future__ import annotations


class FormscanError(Exception):
    """Base of every error formscan raises on purpose. ``kind`` is the machine-readable name."""

    kind = "error"

    def __init__(self, message: str, *, file: str | None = None, page: int | None = None):
        self.file = file
        self.page = page
        self.detail = message
        where = ""
        if file is not None:
            where = f"{file}" + (f", page {page}" if page is not None else "") + ": "
        super().__init__(where + message)


class UnreadableInputError(FormscanError):
    """The file cannot be opened or decoded (missing, corrupt, wrong type, encrypted)."""

    kind = "unreadable"


class MissingFileError(UnreadableInputError):
    kind = "not_found"


class CorruptFileError(UnreadableInputError):
    kind = "corrupt"


class EncryptedFileError(UnreadableInputError):
    kind = "encrypted"


class UnsupportedFileError(UnreadableInputError):
    kind = "unsupported"


class PageTooLargeError(UnreadableInputError):
    kind = "too_large"


class NoTableError(FormscanError):
    """The page holds no ruled table."""

    kind = "no_table"


class BlankPageError(NoTableError):
    kind = "blank_page"


class NotAFormError(FormscanError):
    """A table was found but it is not a form of any template read against (pipeline/templates)."""

    kind = "not_a_form"


class TooManyPagesError(UnreadableInputError):
    """The file has more pages than the user's limit (``--max-pages-per-file``); none is read."""

    kind = "too_many_pages"


class DuplicateFileError(FormscanError):
    """The same bytes (sha256) were already read in this run under another name."""

    kind = "duplicate"


class PageTimeoutError(FormscanError):
    """Rendering and reading the page took longer than the user's limit (``--page-timeout``)."""

    kind = "timeout"


class WorkerCrashError(FormscanError):
    """The process reading the page died (a crash in a native library, or the kernel's OOM killer)."""

    kind = "crashed"


class InternalError(FormscanError):
    """An unexpected exception while reading the page: a bug, reported instead of ending the batch."""

    kind = "internal"


class TemplateError(FormscanError):
    """A form template (``pipeline/templates/*.toml``) is missing or malformed; the message names its file."""

    kind = "template"

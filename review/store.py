"""The queue database: tables (SQLAlchemy 2) and the small repository API the UI, API and CLI share.

SQLite by default (a file, no server), PostgreSQL for teams; the schema is made
by the Alembic migrations in ``review/migrations`` (``upgrade head`` on open).
Page images live as files in a store directory; only their path relative to
it is in the database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from pipeline.errors import FormscanError

DEFAULT_DATABASE_URL = "sqlite:///data/formscan.db"
DATABASE_URL_ENV = "FORMSCAN_DATABASE_URL"
STORE_DIR_ENV = "FORMSCAN_STORE_DIR"
WHOLE_FILE = 0  # the page number of the row that records a file refused as a whole (corrupt, encrypted, ...)


class PageNotFoundError(FormscanError):
    kind = "page_not_found"


class StaleVersionError(FormscanError):
    """A write carried a version older than the page's: someone else saved first."""

    kind = "stale_version"

    def __init__(self, message: str, *, current: dict[str, Any]):
        super().__init__(message)
        self.current = current  # what the other person left: version, value, who, when


class ReviewStateError(FormscanError):
    """A page action that its state does not allow (e.g. done while flags remain)."""

    kind = "review_state"


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}


class Batch(Base):
    """One ``formscan ingest`` run (or a name given to it)."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=now)


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)  # where the file is now: as given to the last ingest, or moved to
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    # Every name it had, first first: {"name", "at" (ISO time), "how": "given" to an ingest, or "moved"}
    names: Mapped[list] = mapped_column(JSON, default=list)
    batch: Mapped[Batch] = relationship()


class PageRow(Base):
    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("document_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    number: Mapped[int] = mapped_column(Integer)
    image_path: Mapped[str | None] = mapped_column(Text)  # relative to the store directory
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    record: Mapped[dict | None] = mapped_column(JSON)  # FormRecord as JSON, corrections applied
    machine_flags: Mapped[list] = mapped_column(JSON, default=list)  # the pipeline's flags at ingest
    notices: Mapped[list] = mapped_column(JSON, default=list)  # models.Notice: about the document, not a task
    status: Mapped[str] = mapped_column(String(20), index=True)
    audit_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=now)
    document: Mapped[Document] = relationship()
    flags: Mapped[list[FlagRow]] = relationship(order_by="FlagRow.id", cascade="all, delete-orphan")


class CellRow(Base):
    __tablename__ = "cells"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    col: Mapped[int] = mapped_column(Integer)
    row_span: Mapped[int] = mapped_column(Integer)
    col_span: Mapped[int] = mapped_column(Integer)
    x0: Mapped[int] = mapped_column(Integer)
    y0: Mapped[int] = mapped_column(Integer)
    x1: Mapped[int] = mapped_column(Integer)
    y1: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(20))  # pipeline.ocr.Source: agreed / agreed_but_trap / paddle / ...
    readings: Mapped[dict] = mapped_column(JSON, default=dict)


class FieldEvidenceRow(Base):
    """Which cell a record field was read from, and the text the machine took (after lexicon snapping)."""

    __tablename__ = "field_evidence"
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), primary_key=True)
    field: Mapped[str] = mapped_column(String(100), primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("cells.id"))
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    readings: Mapped[dict] = mapped_column(JSON, default=dict)


class FlagRow(Base):
    """A flag that is still open on a page (rewritten on every save)."""

    __tablename__ = "flags"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    field: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(60), index=True)
    confidence: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text, default="")
    readings: Mapped[dict] = mapped_column(JSON, default=dict)
    proposal: Mapped[str | None] = mapped_column(Text)


class Correction(Base):
    """The audit trail: who changed which field from what to what, when."""

    __tablename__ = "corrections"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    field: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[str] = mapped_column(Text)
    new_value: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(20))  # review.queue.CorrectionAction: edit / confirm / ... / undo_reject
    user_name: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=now)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))  # the review UI's, once chosen (labels.LANGUAGES)
    created_at: Mapped[datetime] = mapped_column(default=now)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256: a leaked DB leaks no token
    created_at: Mapped[datetime] = mapped_column(default=now)
    user: Mapped[User] = relationship()


class WebSession(Base):
    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime] = mapped_column()
    user: Mapped[User] = relationship()


class FailedLogin(Base):
    """A wrong password (or unknown name) at the login form: for which name, from which address, when."""

    __tablename__ = "failed_logins"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)  # as typed, cut to the column's width
    address: Mapped[str] = mapped_column(String(100), index=True)  # the client's IP address
    at: Mapped[datetime] = mapped_column(index=True)


class LexiconTerm(Base):
    """A term reviewers taught: the corrected value of a recurring field, by field kind."""

    __tablename__ = "lexicon_terms"
    __table_args__ = (UniqueConstraint("kind", "term"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    term: Mapped[str] = mapped_column(Text)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)


def database_url(url: str | None = None) -> str:
    return url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def default_store_dir(url: str) -> Path:
    """Page images: next to a SQLite file (``data/formscan.db`` -> ``data/formscan.store``),
    else ``$FORMSCAN_STORE_DIR`` or ``data/store``."""
    if os.environ.get(STORE_DIR_ENV):
        return Path(os.environ[STORE_DIR_ENV])
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database).with_suffix(".store")
    return Path("data/store")


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers don't wait for the one writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """``alembic upgrade head`` on this engine."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Two processes opening a fresh database at once must not both create the tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@dataclass
class ReviewStore:
    """An open queue: the engine, a session factory and the image directory."""

    url: str
    engine: Engine
    store_dir: Path
    sessions: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed at the end, rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    def image_file(self, relative: str | None) -> Path | None:
        """The absolute path of a stored image, or None when it would lie outside the store."""
        if not relative:
            return None
        root = self.store_dir.resolve()
        try:
            candidate = (root / relative).resolve()
            inside = candidate.is_relative_to(root) and candidate.is_file()
        except (ValueError, OSError):  # a NUL byte, a name too long: no such file either
            return None
        return candidate if inside else None

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, store_dir: str | Path | None = None) -> ReviewStore:
    url = database_url(url)
    engine = _engine(url)
    migrate(engine)
    directory = Path(store_dir) if store_dir else default_store_dir(url)
    directory.mkdir(parents=True, exist_ok=True)
    return ReviewStore(url, engine, directory, sessionmaker(engine, expire_on_commit=False))

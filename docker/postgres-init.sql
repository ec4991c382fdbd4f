-- The Prefect server's own database, next to formscan's queue (POSTGRES_DB=formscan): both use
-- Alembic, so they cannot share one database (each keeps an alembic_version table).
CREATE DATABASE prefect;

"""Alembic environment: run on the connection ``review.store.migrate`` hands over (no ini file, no logging setup)."""

from alembic import context

from review.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

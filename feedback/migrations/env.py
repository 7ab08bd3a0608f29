"""Alembic's environment for the feedback store: feedback.store opens a connection, holds the
store's write lock, and hands it over in config.attributes["connection"]."""

from alembic import context

from feedback.tables import metadata

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it, which batch mode does for us.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

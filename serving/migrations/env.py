"""Alembic environment: runs on the connection handed in by ``serving.db.migrate``."""

from alembic import context

from serving.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()

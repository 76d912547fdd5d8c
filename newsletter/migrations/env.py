"""Alembic environment: runs on the connection `newsletter.db.upgrade` hands it."""
from alembic import context

from newsletter import models  # noqa: F401  (registers every table on Base.metadata)
from newsletter.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

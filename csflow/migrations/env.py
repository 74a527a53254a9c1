"""Alembic's environment for csflow: run on the connection csflow hands over.

Migrations are applied by `csflow migrate` (csflow.schema.upgrade), never by
the `alembic` command line: the connection, with its statement timeout, comes
from csflow's own warehouse settings. The version table lives in schema ops.
"""

from __future__ import annotations

from alembic import context

from csflow.schema import VERSION_SCHEMA, VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
connection.exec_driver_sql(f"create schema if not exists {VERSION_SCHEMA}")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    version_table_schema=VERSION_SCHEMA,
    include_schemas=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()

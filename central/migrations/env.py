"""Alembic's environment for the fleet store: runs on the connection `central.schema.migrate` hands it."""

from __future__ import annotations

from alembic import context

# An advisory lock taken by every migrating process (several collectors start at once): the second
# waits, then finds the schema at head.  SQLite's equivalent is BEGIN IMMEDIATE (central.schema).
_PG_LOCK = 0x636C6173  # "clas"

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=False)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
    context.run_migrations()

"""Alembic migrations of the fleet store (run by `central.schema.migrate`, never by hand)."""

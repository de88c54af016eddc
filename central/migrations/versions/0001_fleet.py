"""The fleet store as it was before migrations: created new, or brought up to it in place.

A fleet.db made before this revision has the tables already (each module created its own, and
added the columns it lacked on open); this revision creates what is missing and adds the columns
an older file lacks, so every store starts its history here with the same tables, columns and
indexes.  Columns are only ever added, never changed: a file from the last release without
migrations (which has them all) and one from long before (which has few) both end up alike.
On PostgreSQL text columns use the "C" collation (ordering and comparing timestamps as SQLite
does, byte by byte) and commands get a ``seq`` identity (SQLite orders them by rowid).

Revision ID: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def _text(name: str, *, null: bool = True, default: str | None = None, pk: bool = False) -> sa.Column[str]:
    kind = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
    fixed = sa.text(f"'{default}'") if default is not None else None
    return sa.Column(name, kind, nullable=null and not pk, server_default=fixed, primary_key=pk)


def _int(name: str, *, null: bool = True, default: int | None = None) -> sa.Column[int]:
    fixed = sa.text(str(default)) if default is not None else None
    return sa.Column(name, sa.BigInteger(), nullable=null, server_default=fixed)


def _id() -> sa.Column[int]:
    # SQLite: INTEGER PRIMARY KEY, the rowid itself; PostgreSQL: a bigint identity.
    return sa.Column("id", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), primary_key=True)


def _tables(meta: sa.MetaData, dialect: str) -> list[sa.Table]:
    text, num = _text, _int
    when: dict[str, Any] = {"sqlite_where": sa.text("event_id IS NOT NULL")}
    when["postgresql_where"] = when["sqlite_where"]
    seq = [sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False, unique=True)]
    seq = seq if dialect != "sqlite" else []
    return [
        sa.Table(
            "agents", meta, text("agent_id", pk=True), text("site", null=False), text("room", null=False, default=""),
            text("hostname", null=False, default=""), text("version", null=False, default=""),
            text("state", null=False, default="offline"), num("session", null=False, default=0), text("since"),
            text("last_seen"), sa.Column("telemetry_interval_s", sa.Float(), nullable=False, server_default="10"),
            text("telemetry"), num("dropped", null=False, default=0), text("dropped_reason", null=False, default=""),
            text("dropped_ts"), text("nics", null=False, default="[]"), text("wake", null=False, default="[]"),
            text("sources", null=False, default="[]"), text("hours", null=False, default="[]"),
        ),
        sa.Table(
            "devices", meta, text("agent_id", pk=True), text("device_id", pk=True),
            text("kind", null=False, default=""),
            text("profile", null=False, default=""), num("online"), text("state", null=False, default="{}"),
            text("error", null=False, default=""), text("ts"), text("name", null=False, default=""),
            text("inputs", null=False, default="[]"), text("code", null=False, default=""),
        ),
        sa.Table(
            "status_history", meta, _id(), text("agent_id", null=False), text("state", null=False),
            num("session", null=False), text("since"), text("ts", null=False),
            sa.Index("status_history_agent", "agent_id", "id"), sa.Index("status_history_ts", "ts"),
        ),
        sa.Table(
            "telemetry", meta, _id(), text("agent_id", null=False), text("ts", null=False),
            text("received", null=False), text("data", null=False),
            sa.Index("telemetry_agent", "agent_id", "id"), sa.Index("telemetry_received", "received"),
        ),
        sa.Table(
            "alarms", meta, _id(), text("agent_id", null=False), text("site", null=False), text("type", null=False),
            text("severity", null=False), text("device", null=False, default=""),
            text("message", null=False, default=""), text("raised_ts", null=False), text("cleared_ts"),
            text("acked_by"), text("acked_ts"), text("params", null=False, default="{}"),
            sa.Index("alarms_open", "agent_id", "type", "device", "cleared_ts"),
            sa.Index("alarms_cleared", "cleared_ts"),
        ),
        sa.Table(
            "events", meta, _id(), text("agent_id", null=False), text("site", null=False), text("type", null=False),
            text("severity", null=False), text("action", null=False), text("device", null=False, default=""),
            text("message", null=False, default=""), text("ts", null=False), text("received", null=False),
            text("data", null=False, default="{}"), text("event_id"),
            sa.Index("events_agent", "agent_id", "id"), sa.Index("events_received", "received"),
            sa.Index("events_identity", "agent_id", "event_id", unique=True, **when),
        ),
        sa.Table(
            "commands", meta, text("id", pk=True), text("agent_id", null=False), text("site", null=False),
            text("name", null=False), text("args", null=False, default="{}"), text("by", null=False, default=""),
            text("sent_ts", null=False), text("expires", null=False), text("status", null=False), text("result"),
            text("error", null=False, default=""), text("replied_ts"), text("code", null=False, default=""),
            text("params", null=False, default="{}"), *seq,
            sa.Index("commands_agent", "agent_id", "sent_ts"), sa.Index("commands_sent", "sent_ts"),
        ),
        sa.Table("meta", meta, text("key", pk=True), text("value", null=False)),
        sa.Table(
            "recordings", meta, _id(), text("agent_id", null=False), text("recording_id", null=False),
            text("lesson", null=False, default=""), text("started", null=False, default=""), num("size", null=False),
            text("sha256", null=False), text("file", null=False), text("received", null=False),
            sa.UniqueConstraint("agent_id", "recording_id"),
        ),
        sa.Table(
            "users", meta, text("username", pk=True), text("hash"), text("role"),
            num("generation", null=False, default=0),
        ),
        sa.Table(
            "upload_agents", meta, text("agent_id", pk=True), text("token_sha256", null=False),
            text("since", null=False),
        ),
        sa.Table(
            "uploads", meta, text("id", pk=True), text("agent_id", null=False), text("recording_id", null=False),
            text("lesson", null=False, default=""), text("started", null=False, default=""), num("size", null=False),
            text("sha256", null=False), num("offset", null=False, default=0),
            num("received_bytes", null=False, default=0),
            text("state", null=False), text("error", null=False, default=""), text("created", null=False),
            text("updated", null=False), num("resets", null=False, default=0),
            sa.UniqueConstraint("agent_id", "recording_id"),
        ),
    ]  # fmt: skip


def upgrade() -> None:
    """Create what is missing; add to an older fleet.db the columns and indexes it lacks."""
    bind = op.get_bind()
    seen = sa.inspect(bind)
    for table in _tables(sa.MetaData(), bind.dialect.name):
        if not seen.has_table(table.name):
            table.create(bind)
            continue
        have = {c["name"] for c in seen.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                default: Any = None
                if isinstance(column.server_default, sa.DefaultClause):
                    default = column.server_default.arg
                op.add_column(
                    table.name, sa.Column(column.name, column.type, nullable=column.nullable, server_default=default)
                )
        indexes = {i["name"] for i in seen.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    """No way down from the first revision: the data would go with it."""
    raise NotImplementedError("the fleet store's first revision has no downgrade")

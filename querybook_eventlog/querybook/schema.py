"""The DB logger's marker table, as part of the schema the operator owns.

The DB logger commits each batch together with one row in
``<table>_qbel_batches`` (batch id + commit time), so that after a
connection lost mid-COMMIT it can tell whether the batch landed and never
writes it twice.  The logger never creates the table itself at runtime
(Querybook's database user needs no DDL rights); the operator adds it once,
through Querybook's alembic migrations.  Without it every event is still
delivered, at least once, and the logger warns once.

``marker_table(metadata)`` declares it on Querybook's model metadata (so
``alembic revision --autogenerate`` proposes nothing), ``marker_table_ddl()``
is the one statement to run by hand, ``MIGRATION_TEMPLATE`` the migration.
"""

from __future__ import annotations

import re

MARKER_SUFFIX = "_qbel_batches"
BATCH_ID_LENGTH = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,50}\Z")


def marker_table_name(table: str = "event_log") -> str:
    """``<table>_qbel_batches``; ValueError for a table name the logger refuses."""
    if not isinstance(table, str) or not _IDENTIFIER.match(table):
        raise ValueError(f"table must be an identifier of at most 51 characters, not {table!r}")
    return table + MARKER_SUFFIX


def marker_index_name(table: str = "event_log") -> str:
    """The index on committed_at, named as the C core's DDL names it."""
    name = f"ix_{marker_table_name(table)}_committed_at"
    return name if len(name) <= 64 else "ix_qbel_batches_committed_at"


def marker_table_ddl(table: str = "event_log") -> str:
    """The CREATE TABLE statement for the marker table of `table` (the C core's own)."""
    from .. import DBEventLogger

    marker_table_name(table)  # the same ValueError for a bad name
    return DBEventLogger.marker_table_ddl(table)


def marker_table(metadata, table: str = "event_log"):
    """Declare the marker table of `table` on a SQLAlchemy MetaData (idempotent)."""
    import sqlalchemy as sql

    name = marker_table_name(table)
    if name in metadata.tables:
        return metadata.tables[name]
    return sql.Table(
        name,
        metadata,
        sql.Column("batch_id", sql.String(BATCH_ID_LENGTH), primary_key=True, nullable=False),
        sql.Column("committed_at", sql.DateTime, nullable=False),
        sql.Index(marker_index_name(table), "committed_at"),
        mysql_engine="InnoDB",
        mysql_charset="ascii",
        mysql_collate="ascii_bin",
    )


MIGRATION_TEMPLATE = '''"""Add event_log_qbel_batches (querybook_eventlog's batch markers)

Revision ID: {revision}
Revises: {down_revision}
Create Date: {create_date}

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "{revision}"
down_revision = {down_revision_literal}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "event_log_qbel_batches",
        sa.Column("batch_id", sa.String(length={batch_id_length}), nullable=False),
        sa.Column("committed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
        mysql_engine="InnoDB",
        mysql_charset="ascii",
        mysql_collate="ascii_bin",
    )
    op.create_index(
        "ix_event_log_qbel_batches_committed_at",
        "event_log_qbel_batches",
        ["committed_at"],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_event_log_qbel_batches_committed_at", table_name="event_log_qbel_batches")
    op.drop_table("event_log_qbel_batches")
'''

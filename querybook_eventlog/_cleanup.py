"""Retention: delete event_log rows older than N days in short transactions.

Upstream's task runs one ``DELETE FROM event_log WHERE created_at < …``: on a
big table that is one transaction holding locks on millions of rows (and
filling the undo log) while the web servers keep inserting.  Here the rows are
walked in primary-key order, ``chunk_rows`` ids at a time, each chunk one
autocommitted DELETE at READ COMMITTED (no gap locks), so a concurrent logger
only ever waits for one chunk and never at the end of the table where it
inserts: every chunk lies at or below the newest old row, found first.

Indexes: the chunks use the primary key only.  Finding the newest old row
(``MAX(id) … WHERE created_at < cutoff``) reads ix_event_log_created_at when
it exists, else it scans the table once (a consistent read: no locks).
"""

from __future__ import annotations

import datetime
from typing import Callable, Optional

from ._sqlclient import check_table_name, connect

DEFAULT_CHUNK_ROWS = 5000


def _check_days(days_to_keep) -> int:
    if isinstance(days_to_keep, bool) or not isinstance(days_to_keep, int):
        raise TypeError(f"days_to_keep must be an int, not {type(days_to_keep).__name__}")
    if days_to_keep < -1:
        raise ValueError(f"days_to_keep must be >= 0, or -1 to keep everything; got {days_to_keep}")
    return days_to_keep


def cutoff_for(days_to_keep: int, now: Optional[datetime.datetime] = None) -> datetime.datetime:
    """Rows created before this (UTC, as the loggers stamp created_at) are deleted."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return (now - datetime.timedelta(days=days_to_keep)).replace(microsecond=0)


def clean_up_event_logs(days_to_keep: int = 7, url: Optional[str] = None, *,
                        table: str = "event_log", chunk_rows: int = DEFAULT_CHUNK_ROWS,
                        progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Delete the rows of `table` whose created_at is more than `days_to_keep`
    days old, in chunks of at most `chunk_rows` rows by primary key, each its
    own short transaction; return how many were deleted.  `days_to_keep=-1`
    deletes nothing (Querybook's `days_to_keep_event_logs` convention).  `url`
    defaults to Querybook's DATABASE_CONN.  Rows with no created_at are kept.
    Safe while loggers write: new rows are never touched or waited on.
    `progress(done_ids, total_ids)` is called after each chunk."""
    if _check_days(days_to_keep) == -1:
        return 0
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, not {chunk_rows!r}")
    quoted = check_table_name(table)
    cutoff = cutoff_for(days_to_keep)
    with connect(url) as connection:
        connection.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        newest_old, oldest = connection.query(
            f"SELECT (SELECT MAX(id) FROM {quoted} WHERE created_at < %s), "
            f"(SELECT MIN(id) FROM {quoted})", (cutoff,))[0]
        if newest_old is None:
            return 0
        deleted = 0
        low = oldest
        while low <= newest_old:
            next_chunk = connection.query(
                f"SELECT id FROM {quoted} WHERE id >= %s ORDER BY id LIMIT 1 OFFSET %s",
                (low, chunk_rows))
            high = min(next_chunk[0][0] if next_chunk else newest_old + 1, newest_old + 1)
            deleted += connection.execute(
                f"DELETE FROM {quoted} WHERE id >= %s AND id < %s AND created_at < %s",
                (low, high, cutoff))
            if progress is not None:
                progress(high - oldest, newest_old + 1 - oldest)
            low = high
        return deleted

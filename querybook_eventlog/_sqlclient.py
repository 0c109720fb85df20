"""The read side: a PyMySQL connection to Querybook's database for `report`
and `cleanup` (the C core only writes).

PyMySQL because Querybook itself connects through it (its DATABASE_CONN is a
``mysql+pymysql://`` URL), so inside Querybook it is already installed, and
because it is pure Python: it installs wherever the package does.  The URL is
read by the same parser as the DB logger's (``_url.parse_database_url``), so
every URL the logger accepts works here too.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from . import _settings
from ._url import parse_database_url, redacted_url


class DatabaseError(RuntimeError):
    """Connecting or a statement failed (the message never holds the password)."""


def resolve_url(url: Optional[str] = None, url_file: Optional[str] = None) -> str:
    """The URL to use: `url`, else the first line of `url_file`, else
    Querybook's DATABASE_CONN (env, then Querybook's config yaml)."""
    if not url and url_file:
        try:
            with open(url_file, encoding="utf-8") as source:
                url = source.read().strip()
        except OSError as error:
            raise DatabaseError(f"cannot read the URL file: {error}") from None
    url = url or _settings.database_conn()
    if not url:
        raise DatabaseError("no database URL: set DATABASE_CONN, or pass --url-file (or --url)")
    return url


def _pymysql():
    try:
        import pymysql
    except ImportError:
        raise DatabaseError(
            "reading the event_log table needs PyMySQL: pip install PyMySQL "
            "(it is a dependency of querybook_eventlog; a --no-deps install lacks it)"
        ) from None
    return pymysql


class Connection:
    """One autocommit connection; `query` returns rows as tuples."""

    def __init__(self, url: str, *, read_timeout: float = 600.0):
        pymysql = _pymysql()
        parts = parse_database_url(url)
        self.shown_url = redacted_url(url)
        ssl = None
        if parts["ssl_ca"] or parts["ssl_cert"]:
            ssl = {key: parts[f"ssl_{key}"] for key in ("ca", "cert", "key") if parts[f"ssl_{key}"]}
            if parts["ssl_verify_cert"] is not None:
                ssl["check_hostname"] = parts["ssl_verify_cert"]
        # several hosts (a cluster): the first that answers
        for host, port in parts["hosts"] or ((parts["host"], parts["port"]),):
            try:
                self._connection = pymysql.connect(
                    host=host or "localhost", port=port or 3306,
                    user=parts["user"], password=parts["password"] or "",
                    database=parts["database"], unix_socket=parts["unix_socket"],
                    charset=parts["charset"], ssl=ssl, autocommit=True,
                    connect_timeout=10, read_timeout=read_timeout, write_timeout=read_timeout)
                break
            except pymysql.MySQLError as error:
                failure = error
        else:
            raise DatabaseError(f"cannot connect to {self.shown_url}: {failure}") from None
        self._errors = pymysql.MySQLError

    def query(self, statement: str, params: Optional[Sequence[Any]] = None) -> list:
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        except self._errors as error:
            raise DatabaseError(f"{self.shown_url}: {error}") from None

    def execute(self, statement: str, params: Optional[Sequence[Any]] = None) -> int:
        """Run one statement (its own transaction: autocommit); rows affected."""
        try:
            with self._connection.cursor() as cursor:
                return cursor.execute(statement, params)
        except self._errors as error:
            raise DatabaseError(f"{self.shown_url}: {error}") from None

    def close(self) -> None:
        try:
            self._connection.close()
        except self._errors:
            pass  # closing a broken connection: nothing left to release

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def connect(url: Optional[str] = None, url_file: Optional[str] = None) -> Connection:
    return Connection(resolve_url(url, url_file))


def check_table_name(table: str) -> str:
    """`table` quoted as an identifier; ValueError for anything but [A-Za-z0-9_$]."""
    if not isinstance(table, str) or not table or len(table) > 64 or not all(
            char.isascii() and (char.isalnum() or char in "_$") for char in table):
        raise ValueError(f"table name must be 1-64 characters of [A-Za-z0-9_$], not {table!r}")
    return f"`{table}`"

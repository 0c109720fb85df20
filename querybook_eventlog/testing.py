"""A throwaway MariaDB server for demos and tests: the machine's ``mariadbd``
started with ``--no-defaults`` on a temporary datadir, socket and port, with
Querybook's schema (the ``user`` and ``event_log`` tables as Querybook's
migrations create them, users 1..100, and the exactly-once marker table
``event_log_qbel_batches`` from ``DBEventLogger.marker_table_ddl()``).  Kill,
pause and restart it at will.  ``sql()`` runs the ``mariadb`` command-line
client, so no Python MySQL driver is needed to set it up.

Needs Debian's ``mariadb-server`` (which brings ``mariadb-client``); a
RuntimeError names the package when a binary is missing.

With env QBEL_TEST_MYSQL_URL set, ``MariaDBServer.from_environment()`` uses
that server instead; the methods that need a private server (kill, restart,
pause) then skip the calling test.

    server = MariaDBServer(); server.start()
    server.url  # mysql+pymysql://qbel:<pct-encoded>@127.0.0.1:<port>/querybook?charset=utf8mb4
    server.sql("SELECT COUNT(*) FROM event_log")  # [["0"]]
    server.stop()

The pytest plugin ``querybook_eventlog.pytest_plugin`` wraps it in fixtures.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

DATABASE = "querybook"
USER = "qbel"
# URL-special characters on purpose: the URL parser must percent-decode them.
PASSWORD = "p@ss:w/rd%?"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

CREATE_DATABASE = """
CREATE DATABASE IF NOT EXISTS `querybook` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE `querybook`;
"""
# Querybook's tables as its alembic migrations leave them: `user` from the
# initial commit plus is_group (1b8aba201c94) and properties (598d02b40642);
# `event_log` from 2dc4b2f93081 with WEBSOCKET added by 63bde0162416.  Unlike
# Querybook's model, the migration declares the foreign key on uid.
TABLES = """
CREATE TABLE IF NOT EXISTS `user` (
  id INT NOT NULL AUTO_INCREMENT,
  username VARCHAR(255) NULL,
  fullname VARCHAR(255) NULL,
  password VARCHAR(255) NULL,
  email VARCHAR(255) NULL,
  profile_img VARCHAR(2083) NULL,
  deleted BOOL NULL,
  is_group BOOL NULL,
  properties JSON NULL,
  PRIMARY KEY (id),
  UNIQUE KEY username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT IGNORE INTO `user` (id, username) VALUES {users};
CREATE TABLE IF NOT EXISTS `event_log` (
  id INT NOT NULL AUTO_INCREMENT,
  created_at DATETIME NULL,
  uid INT NULL,
  event_type ENUM('API','WEBSOCKET','VIEW','CLICK') NULL,
  event_data JSON NULL,
  PRIMARY KEY (id),
  KEY ix_event_log_event_type (event_type),
  CONSTRAINT event_log_ibfk_1 FOREIGN KEY (uid) REFERENCES `user` (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
""".format(users=", ".join(f"({i}, 'user{i}')" for i in range(1, 101)))


def marker_table_ddl(table: str = "event_log") -> str:
    """The exactly-once marker table, as the operator's schema holds it (the
    writer never creates it): the statement the C core exports."""
    from querybook_eventlog._core import DBEventLogger

    return DBEventLogger.marker_table_ddl(table)


def schema_statements() -> str:
    """Querybook's tables plus the marker table of `event_log`."""
    return TABLES + marker_table_ddl("event_log") + ";\n"

GRANTS = f"""
CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';
CREATE USER IF NOT EXISTS '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}';
GRANT ALL PRIVILEGES ON `querybook`.* TO '{USER}'@'%';
GRANT ALL PRIVILEGES ON `querybook`.* TO '{USER}'@'localhost';
FLUSH PRIVILEGES;
"""

# Every server this process started, stopped at exit even when a test run
# dies half-way (pytest's fixture finalizers are the first line; this is the
# second).
_live_servers: "set[MariaDBServer]" = set()
_template = {"dir": None}


def _binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    package = "mariadb-client" if name == "mariadb" else "mariadb-server"
    raise RuntimeError(
        f"MariaDB binary {name!r} not found: install the Debian package {package} "
        f"(apt-get install mariadb-server mariadb-client)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _unescape_batch_value(value: str):
    """The `mariadb -B` client escapes \\, tab, newline and NUL; NULL is
    printed as NULL (returned as None)."""
    if value == "NULL":
        return None
    if "\\" not in value:
        return value
    out = []
    chars = iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        out.append({"t": "\t", "n": "\n", "0": "\0", "\\": "\\"}.get(escaped, "\\" + escaped))
    return "".join(out)


def _skip(reason: str):
    try:
        import pytest
    except ImportError:  # used outside pytest (a bench script)
        raise RuntimeError(reason) from None
    pytest.skip(reason)


class MariaDBServerError(RuntimeError):
    """A statement run through the mariadb client failed."""


class MariaDBServer:
    """A private mariadbd (or, with `external_url`, an existing server)."""

    def __init__(self, external_url: str | None = None, base_dir: str | None = None,
                 extra_args: list | None = None):
        self.private = external_url is None
        self.extra_args = list(extra_args or [])  # more mariadbd options (e.g. TLS)
        self.process: subprocess.Popen | None = None
        self.paused = False
        self.base_dir = None
        if self.private:
            self._mariadbd = _binary("mariadbd")
            self._client = _binary("mariadb")
            self.base_dir = base_dir or tempfile.mkdtemp(prefix="qbel-mariadb-", dir="/tmp")
            self.datadir = os.path.join(self.base_dir, "data")
            self.socket = os.path.join(self.base_dir, "mysql.sock")
            self.pid_file = os.path.join(self.base_dir, "mariadbd.pid")
            self.error_log = os.path.join(self.base_dir, "error.log")
            self.host = "127.0.0.1"
            self.port = _free_port()
            self.user = USER
            self.password = PASSWORD
            self.database = DATABASE
        else:
            self._client = _binary("mariadb")
            parts = urllib.parse.urlsplit(external_url)
            query = dict(urllib.parse.parse_qsl(parts.query))
            self.host = parts.hostname or "127.0.0.1"
            self.port = parts.port or 3306
            self.user = urllib.parse.unquote(parts.username or "")
            self.password = urllib.parse.unquote(parts.password or "")
            self.database = parts.path.lstrip("/") or DATABASE
            self.socket = query.get("unix_socket")
            self.datadir = self.pid_file = self.error_log = None
        self.url = (
            f"mysql+pymysql://{urllib.parse.quote(self.user, safe='')}:"
            f"{urllib.parse.quote(self.password, safe='')}@{self.host}:{self.port}/"
            f"{self.database}?charset=utf8mb4"
        )
        _live_servers.add(self)

    @classmethod
    def from_environment(cls) -> "MariaDBServer":
        """The server QBEL_TEST_MYSQL_URL names, else a new private one."""
        url = os.environ.get("QBEL_TEST_MYSQL_URL")
        return cls(external_url=url) if url else cls()

    def __repr__(self):
        kind = "private" if self.private else "external"
        return f"<MariaDBServer {kind} {self.host}:{self.port} running={self.is_running()}>"

    # -- lifecycle -------------------------------------------------------

    def start(self) -> "MariaDBServer":
        """Start (creating the datadir and schema the first time); idempotent."""
        if not self.private:
            self._create_schema()
            return self
        if self.is_running():
            return self
        if not os.path.isdir(self.datadir):
            shutil.copytree(_template_datadir(), self.datadir, symlinks=True)
        self.process = _launch(
            self._mariadbd, self.datadir, self.socket, self.port, self.pid_file, self.error_log,
            self.extra_args,
        )
        self.paused = False
        _wait_ready(self.process, self._client, self.socket, self.error_log)
        return self

    def stop(self) -> None:
        """Clean shutdown (SIGTERM, SIGKILL after STOP_TIMEOUT_S)."""
        if not self.private or self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            if self.paused:
                os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.paused = False

    def kill(self) -> None:
        """SIGKILL the server and wait for it: a crash, as far as clients see."""
        self._require_private("kill")
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.kill()
        process.wait()
        self.paused = False

    def restart(self) -> "MariaDBServer":
        """Start again on the same datadir and port (after kill or stop)."""
        self._require_private("restart")
        self.stop()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets open but answers nothing."""
        self._require_private("pause")
        if self.process is not None and not self.paused:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            os.kill(self.process.pid, signal.SIGCONT)
            self.paused = False

    def ensure_running(self) -> "MariaDBServer":
        """Resume a paused server and restart a killed or stopped one."""
        if not self.private:
            return self
        self.resume()
        if not self.is_running():
            self.stop()  # reap a process that died by itself
            self.start()
        return self

    def is_running(self) -> bool:
        if not self.private:
            return True
        return self.process is not None and self.process.poll() is None

    def cleanup(self) -> None:
        """Stop and delete the temporary folder."""
        self.stop()
        _live_servers.discard(self)
        if self.private and self.base_dir and os.path.isdir(self.base_dir):
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()

    def _require_private(self, what: str) -> None:
        if not self.private:
            _skip(f"{what}() needs a private MariaDB server; QBEL_TEST_MYSQL_URL is set")

    # -- SQL ---------------------------------------------------------------

    def sql(self, statement: str, database: str | None = DATABASE, timeout: float = 60.0):
        """Run `statement` (one or more, `;`-separated) with the mariadb
        client, as root over the socket (private) or as the URL's user
        (external).  Rows as lists of strings (NULL -> None).  Raises
        MariaDBServerError with the client's message on failure."""
        command = [self._client, "--no-defaults", "-N", "-B", "--connect-timeout=10"]
        env = tool_environment()
        if self.private:
            command += ["-S", self.socket, "-u", "root"]
        elif self.socket:
            command += ["-S", self.socket, "-u", self.user]
            env["MYSQL_PWD"] = self.password
        else:
            command += ["-h", self.host, "-P", str(self.port), "--protocol=TCP", "-u", self.user]
            env["MYSQL_PWD"] = self.password
        if database is not None and self.private:
            command.append(f"--database={database}")
        elif database is not None:
            command.append(f"--database={self.database}")
        command += ["-e", statement]
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise MariaDBServerError(result.stderr.strip() or f"mariadb exited {result.returncode}")
        return [
            [_unescape_batch_value(value) for value in line.split("\t")]
            for line in result.stdout.splitlines()
        ]

    def dml_only_url(self, user: str = "qbel_dml", password: str = "dml:p@ss/w%rd") -> str:
        """A URL for a user that may only SELECT, INSERT, UPDATE and DELETE in
        the database (Querybook's production grants: no CREATE, no DROP)."""
        self._require_private("dml_only_url")
        for host in ("%", "localhost"):
            self.sql(
                f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}'; "
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{self.database}`.* TO '{user}'@'{host}'"
            )
        self.sql("FLUSH PRIVILEGES")
        return (
            f"mysql+pymysql://{urllib.parse.quote(user, safe='')}:"
            f"{urllib.parse.quote(password, safe='')}@{self.host}:{self.port}/"
            f"{self.database}?charset=utf8mb4"
        )

    def reset_events(self, table: str = "event_log") -> None:
        """Empty the event table and its exactly-once marker table."""
        existing = {row[0] for row in self.sql("SHOW TABLES")}
        statements = [
            f"TRUNCATE TABLE `{name}`"
            for name in (table, f"{table}_qbel_batches")
            if name in existing
        ]
        if statements:
            self.sql(";".join(statements))

    def add_users(self, count: int) -> None:
        """Make sure users 1..count exist (`event_log.uid` must name one)."""
        rows = ", ".join(f"({i}, 'user{i}', 'User {i}', 'user{i}@example.com', 0, 0)"
                         for i in range(1, count + 1))
        self.sql("INSERT IGNORE INTO `user` (id, username, fullname, email, deleted, is_group) "
                 f"VALUES {rows}")

    def add_report_columns(self, table: str = "event_log") -> None:
        """Add the report's generated columns and their index (the operator's
        optional migration, querybook_eventlog._report.generated_columns_ddl)."""
        from ._report import generated_columns_ddl

        self.sql(generated_columns_ddl(table), timeout=3600)

    def drop_report_columns(self, table: str = "event_log") -> None:
        """Undo add_report_columns."""
        from ._report import drop_generated_columns_ddl

        self.sql(drop_generated_columns_ddl(table), timeout=3600)

    def count_events(self, table: str = "event_log") -> int:
        return int(self.sql(f"SELECT COUNT(*) FROM `{table}`")[0][0])

    def _create_schema(self) -> None:
        """External server: the tables (the database must exist)."""
        self.sql(schema_statements())


def tool_environment() -> dict:
    """os.environ without the sanitizer runtime: the sanitizer test pass
    preloads libasan into Python, and the server and client must not get it."""
    return {key: value for key, value in os.environ.items()
            if key not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def _private_tmpdir(base: str) -> str:
    """A temporary directory of the server's own: servers of concurrent runs
    sharing /tmp have collided on its temporary-table files."""
    path = os.path.join(base, "tmp")
    os.makedirs(path, exist_ok=True)
    return path


def _launch(mariadbd, datadir, sock, port, pid_file, error_log, extra_args=()) -> subprocess.Popen:
    command = [
        mariadbd,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--tmpdir={_private_tmpdir(os.path.dirname(pid_file))}",
        f"--socket={sock}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--user=root",
        f"--pid-file={pid_file}",
        "--skip-log-bin",
        "--skip-name-resolve",
        "--local-infile=1",
        "--innodb-buffer-pool-size=256M",
        "--innodb-log-file-size=64M",
        "--innodb-flush-log-at-trx-commit=2",
        "--max-connections=200",
        f"--log-error={error_log}",
        *extra_args,
    ]
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=tool_environment(),
        start_new_session=True,  # a ^C to pytest must not hit the server first
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    """Runs in the forked child before exec: a test run killed with SIGKILL
    (no atexit) must not leave servers behind.  Linux only; best effort."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def _wait_ready(process, client, sock, error_log) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mariadbd exited with {process.returncode} while starting; "
                f"error log {error_log}:\n{_tail(error_log)}"
            )
        if os.path.exists(sock):
            probe = subprocess.run(
                [client, "--no-defaults", "-S", sock, "-u", "root", "-N", "-B", "-e", "SELECT 1"],
                env=tool_environment(),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if probe.returncode == 0:
                return
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(
        f"mariadbd did not accept connections within {START_TIMEOUT_S:.0f} s; "
        f"error log {error_log}:\n{_tail(error_log)}"
    )


def _tail(path, lines=30) -> str:
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError as error:
        return f"(cannot read: {error})"


def _template_datadir() -> str:
    """A datadir with the system tables, Querybook's schema and the qbel
    user, made once per process (mariadb-install-db takes seconds) and copied
    for every server."""
    if _template["dir"] is not None:
        return _template["dir"]
    mariadbd = _binary("mariadbd")
    install_db = _binary("mariadb-install-db")
    client = _binary("mariadb")
    base = tempfile.mkdtemp(prefix="qbel-mariadb-template-", dir="/tmp")
    datadir = os.path.join(base, "data")
    try:
        result = subprocess.run(
            [
                install_db,
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                f"--datadir={datadir}",
                f"--tmpdir={_private_tmpdir(base)}",
                "--user=root",
                "--skip-test-db",
                "--innodb-log-file-size=64M",
            ],
            env=tool_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"mariadb-install-db failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        sock = os.path.join(base, "mysql.sock")
        error_log = os.path.join(base, "error.log")
        process = _launch(
            mariadbd, datadir, sock, _free_port(), os.path.join(base, "pid"), error_log
        )
        try:
            _wait_ready(process, client, sock, error_log)
            setup = subprocess.run(
                [client, "--no-defaults", "-S", sock, "-u", "root",
                 "-e", CREATE_DATABASE + schema_statements() + GRANTS],
                env=tool_environment(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if setup.returncode != 0:
                raise RuntimeError(f"creating the Querybook schema failed: {setup.stderr}")
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"template server did not stop cleanly:\n{_tail(error_log)}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    _template["dir"] = datadir
    return datadir


@atexit.register
def _stop_everything() -> None:
    for server in list(_live_servers):
        try:
            server.cleanup()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    if _template["dir"] is not None:
        shutil.rmtree(os.path.dirname(_template["dir"]), ignore_errors=True)
        _template["dir"] = None

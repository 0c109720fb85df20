"""The private MariaDB fixture itself: schema, foreign key, crash and hang."""

import os
import socket
import subprocess
import sys
import threading
import urllib.parse

import pytest

from mariadb_server import MariaDBServerError


def test_schema_matches_querybook(db):
    tables = {row[0] for row in db.sql("SHOW TABLES")}
    assert {"user", "event_log"} <= tables
    columns = db.sql(
        "SELECT column_name, column_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name = 'event_log' ORDER BY ordinal_position"
    )
    assert columns == [
        ["id", "int(11)", "NO"],
        ["created_at", "datetime", "YES"],
        ["uid", "int(11)", "YES"],
        ["event_type", "enum('API','WEBSOCKET','VIEW','CLICK')", "YES"],
        ["event_data", "longtext", "YES"],
    ]
    indexes = {row[2] for row in db.sql("SHOW INDEX FROM event_log")}
    assert "ix_event_log_event_type" in indexes
    assert db.sql("SELECT COUNT(*), MIN(id), MAX(id) FROM user") == [["100", "1", "100"]]


def test_foreign_key_rejects_unknown_uid(db):
    with pytest.raises(MariaDBServerError, match="1452"):
        db.sql("INSERT INTO event_log (created_at, uid, event_type, event_data) "
               "VALUES (UTC_TIMESTAMP(), 999, 'API', '{}')")
    db.sql("INSERT INTO event_log (created_at, uid, event_type, event_data) "
           "VALUES (UTC_TIMESTAMP(), 1, 'API', '{}'), (UTC_TIMESTAMP(), NULL, 'CLICK', NULL)")
    assert db.count_events() == 2


def test_json_check_rejects_invalid_json(db):
    with pytest.raises(MariaDBServerError, match="4025"):
        db.sql("INSERT INTO event_log (event_data) VALUES ('{not json')")


def test_reset_events_empties_tables(db):
    db.sql("INSERT INTO event_log (uid) VALUES (1)")
    db.sql("CREATE TABLE IF NOT EXISTS event_log_qbel_batches "
           "(batch_id VARCHAR(64) PRIMARY KEY, committed_at DATETIME NOT NULL)")
    db.sql("INSERT INTO event_log_qbel_batches VALUES ('b1', UTC_TIMESTAMP())")
    db.reset_events()
    assert db.count_events() == 0
    assert db.sql("SELECT COUNT(*) FROM event_log_qbel_batches") == [["0"]]


def test_sql_round_trips_special_characters(db):
    value = "tab\there\nnewline back\\slash 'quote' \"dq\" ; -- NULL"
    db.sql("INSERT INTO event_log (uid, event_data) VALUES (NULL, JSON_OBJECT('v', {}))".format(
        "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        .replace("\t", "\\t") + "'"))
    assert db.sql("SELECT uid, JSON_VALUE(event_data, '$.v') FROM event_log") == [[None, value]]


def test_url_user_connects_over_tcp(db):
    parts = urllib.parse.urlsplit(db.url)
    assert parts.scheme == "mysql+pymysql"
    assert urllib.parse.unquote(parts.password) == db.password
    assert "@" in db.password and "/" in db.password  # the URL parser must decode them
    assert parts.hostname == db.host and parts.port == db.port and parts.path == "/querybook"
    result = subprocess.run(
        ["mariadb", "--no-defaults", "-h", parts.hostname, "-P", str(parts.port),
         "--protocol=TCP", "-u", urllib.parse.unquote(parts.username), "-N", "-B",
         "-e", "SELECT CURRENT_USER(), DATABASE()", "querybook"],
        capture_output=True, text=True, env={"MYSQL_PWD": db.password}, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\t")[1].strip() == "querybook"


def test_kill_and_restart_keep_committed_rows(fresh_mariadb):
    server = fresh_mariadb
    port = server.port
    server.sql("INSERT INTO event_log (uid, event_type) VALUES (1, 'VIEW'), (2, 'CLICK')")
    server.kill()
    assert not server.is_running()
    with pytest.raises(MariaDBServerError):
        server.sql("SELECT 1")
    server.restart()
    assert server.port == port
    assert server.count_events() == 2


def test_pause_hangs_and_resume_answers(fresh_mariadb):
    server = fresh_mariadb
    server.pause()
    try:
        # A paused server accepts TCP connections (the kernel's backlog) but
        # never sends its greeting.
        with socket.create_connection((server.host, server.port), timeout=5) as conn:
            conn.settimeout(0.5)
            with pytest.raises(socket.timeout):
                conn.recv(1)
    finally:
        server.resume()
    assert server.sql("SELECT 1") == [["1"]]


def test_shared_server_comes_back_after_kill(mariadb, request):
    if not mariadb.private:
        pytest.skip("needs a private MariaDB server; QBEL_TEST_MYSQL_URL is set")
    mariadb.kill()
    request.getfixturevalue("db")  # the `db` fixture restarts it
    assert mariadb.is_running()
    assert mariadb.sql("SELECT COUNT(*) FROM user") == [["100"]]


def test_stop_from_another_thread_is_clean(fresh_mariadb):
    server = fresh_mariadb
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(60)
    assert not server.is_running()
    assert "Shutdown complete" in open(server.error_log).read()


# ---- CI never skips the fault tests ------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEEDS_PRIVATE = [
    "tests/test_db_faults.py::test_hung_server_never_blocks_log",  # fresh_mariadb
    "tests/test_mariadb_fixture.py::test_shared_server_comes_back_after_kill",  # kill()
]


def run_pytest_child(env_changes, *node_ids):
    env = {key: value for key, value in os.environ.items()
           if key not in ("CI", "QBEL_NO_SKIPS", "QBEL_TEST_MYSQL_URL")}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-ra", *node_ids],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_ci_with_an_external_server_fails_the_fault_tests_instead_of_skipping(mariadb):
    """QBEL_TEST_MYSQL_URL (a real, reachable server: this run's own) turns
    the kill/pause tests into skips; with CI=true those skips fail the run,
    with a message naming the cause.  Without CI they stay skips (the control)."""
    mariadb.ensure_running()
    external = {"QBEL_TEST_MYSQL_URL": mariadb.url}
    control = run_pytest_child(external, *NEEDS_PRIVATE)
    assert control.returncode == 0, control.stdout + control.stderr
    assert "2 skipped" in control.stdout, control.stdout
    assert "QBEL_TEST_MYSQL_URL is set" in control.stdout

    ci = run_pytest_child({**external, "CI": "true"}, *NEEDS_PRIVATE)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "skipped" not in ci.stdout.splitlines()[-1], ci.stdout
    assert ci.stdout.count("SKIPPED, and skips fail this run (CI=true)") >= 2, ci.stdout
    assert "needs a private MariaDB server; QBEL_TEST_MYSQL_URL is set" in ci.stdout
    assert "no-skip policy (CI=true): 2 skip(s) failed the run" in ci.stdout
    for node_id in NEEDS_PRIVATE:
        assert node_id in ci.stdout

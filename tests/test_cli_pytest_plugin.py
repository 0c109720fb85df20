"""The pytest plugin a plugin author gets with the package: a real event_log
table in one fixture, in a pytest run of its own that knows nothing of this
repository's conftest."""

import os
import subprocess
import sys
import textwrap

from querybook_eventlog import testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

AUTHOR_TESTS = '''
from querybook_eventlog import EventType

def test_logger_writes_into_a_real_table(qbel_db_logger, qbel_event_log):
    for uid in (1, 2, 3):
        qbel_db_logger.log(uid=uid, event_type=EventType.CLICK,
                           event_data={"path": "/", "component": "LANDING_PAGE"})
    assert qbel_db_logger.flush(timeout=60)
    assert qbel_event_log.count_events() == 3
    assert qbel_event_log.sql(
        "SELECT uid, event_type, JSON_VALUE(event_data, '$.component') FROM event_log ORDER BY uid"
    ) == [["1", "CLICK", "LANDING_PAGE"], ["2", "CLICK", "LANDING_PAGE"],
          ["3", "CLICK", "LANDING_PAGE"]]

def test_each_test_starts_from_an_empty_table(qbel_event_log, qbel_event_log_url):
    assert qbel_event_log.count_events() == 0
    assert qbel_event_log_url == qbel_event_log.url
    assert qbel_event_log_url.startswith("mysql+pymysql://")

def test_the_foreign_key_of_querybook_is_there(qbel_event_log):
    import pytest
    from querybook_eventlog.testing import MariaDBServerError
    with pytest.raises(MariaDBServerError, match="1452"):
        qbel_event_log.sql("INSERT INTO event_log (uid) VALUES (1000)")
'''


def run_author_suite(tmp_path, *pytest_args):
    (tmp_path / "test_author.py").write_text(textwrap.dedent(AUTHOR_TESTS))
    env = {key: value for key, value in os.environ.items()
           if key not in ("QBEL_TEST_MYSQL_URL", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env["PYTHONPATH"] = REPO
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args,
         "test_author.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_fixtures_give_a_plugin_author_a_real_event_log(tmp_path):
    result = run_author_suite(tmp_path, "-p", "querybook_eventlog.pytest_plugin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_without_the_plugin_the_fixtures_do_not_exist(tmp_path):
    """The control: the fixtures come from the plugin, not from anywhere else."""
    result = run_author_suite(tmp_path, "-p", "no:querybook_eventlog")
    assert result.returncode != 0
    assert "fixture 'qbel_db_logger' not found" in result.stdout


def test_missing_mariadbd_names_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(testing.os, "access", lambda path, mode: False)
    try:
        testing.MariaDBServer()
    except RuntimeError as error:
        assert "mariadb-server" in str(error) and "mariadbd" in str(error)
    else:
        raise AssertionError("no error without mariadbd")


def test_old_import_path_is_the_package_module():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mariadb_server

    assert mariadb_server.MariaDBServer is testing.MariaDBServer
    assert mariadb_server.MariaDBServerError is testing.MariaDBServerError

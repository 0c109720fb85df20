"""Shared fixtures: a real MariaDB server started by the tests themselves
(see mariadb_server.py); QBEL_TEST_MYSQL_URL points them at another server.

    mariadb        session: the shared server (restarted/resumed if a test killed or paused it)
    db             function: `mariadb`, running, with event_log and its marker table emptied
    fresh_mariadb  function: a separate private server of its own, to kill, pause and restart
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mariadb_server import MariaDBServer  # noqa: E402


@pytest.fixture(scope="session")
def mariadb():
    server = MariaDBServer.from_environment()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def db(mariadb):
    mariadb.ensure_running()
    mariadb.reset_events()
    yield mariadb


@pytest.fixture
def fresh_mariadb():
    if os.environ.get("QBEL_TEST_MYSQL_URL"):
        pytest.skip("needs a private MariaDB server; QBEL_TEST_MYSQL_URL is set")
    server = MariaDBServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session", autouse=True)
def private_default_spool_dir(tmp_path_factory):
    """A logger made without spool_dir must not share the machine's default
    spool directory with other runs (it would replay their files)."""
    previous = os.environ.get("QBEL_SPOOL_DIR")
    os.environ["QBEL_SPOOL_DIR"] = str(tmp_path_factory.mktemp("default-spool"))
    yield
    if previous is None:
        os.environ.pop("QBEL_SPOOL_DIR", None)
    else:
        os.environ["QBEL_SPOOL_DIR"] = previous

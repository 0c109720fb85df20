"""pytest fixtures for plugin authors: a real Querybook ``event_log`` table.

Installed with the package (entry point ``pytest11``), so a test only names
the fixture::

    def test_my_plugin_writes_rows(qbel_event_log):
        logger = DBEventLogger(qbel_event_log.url, create_table=True)
        ...
        assert qbel_event_log.count_events() == 3

    qbel_mariadb        session: a throwaway MariaDB (querybook_eventlog.testing)
                        with Querybook's `user` (ids 1..100) and `event_log`
                        tables; QBEL_TEST_MYSQL_URL points it at a server of
                        your own instead
    qbel_event_log      function: that server, running, with event_log and its
                        marker table emptied (`.url`, `.sql()`, `.count_events()`)
    qbel_event_log_url  function: the URL of that emptied table's database
    qbel_db_logger      function: a DBEventLogger writing into it, with a spool
                        directory of its own, closed after the test

Every fixture name starts with ``qbel_`` so that it cannot shadow a
project's own ``db`` or ``mariadb`` fixtures.  Needs Debian's
``mariadb-server`` on the machine.
"""

from __future__ import annotations

import pytest

from .testing import MariaDBServer


@pytest.fixture(scope="session")
def qbel_mariadb():
    server = MariaDBServer.from_environment()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def qbel_event_log(qbel_mariadb):
    qbel_mariadb.ensure_running()
    qbel_mariadb.reset_events()
    return qbel_mariadb


@pytest.fixture
def qbel_event_log_url(qbel_event_log):
    return qbel_event_log.url


@pytest.fixture
def qbel_db_logger(qbel_event_log, tmp_path):
    from . import DBEventLogger

    logger = DBEventLogger(qbel_event_log.url, spool_dir=str(tmp_path / "spool"))
    try:
        yield logger
    finally:
        logger.close()

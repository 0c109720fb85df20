"""The private MariaDB server of the tests: it lives in the package now
(querybook_eventlog.testing, also behind the pytest plugin); this module keeps
the old import path working for every test and bench script."""

from querybook_eventlog.testing import (  # noqa: F401
    DATABASE,
    GRANTS,
    PASSWORD,
    TABLES,
    USER,
    MariaDBServer,
    MariaDBServerError,
    marker_table_ddl,
    schema_statements,
    tool_environment,
)

"""querybook_eventlog as a drop-in inside a Querybook checkout.

A fake Querybook (tests/querybook_fixture: upstream's layout, settings,
logger, plugin loading, original lib/event_logger/, models, alembic
migrations, Flask datasources and socket.io helper) is written to a temporary
folder twice: `original` keeps upstream's own event logging (the reference),
`adopted` gets the package's documented adoption edit
(querybook_eventlog.querybook.adopt).  Every Querybook process runs in a
subprocess on Querybook's Python (3.10) with its pinned packages
(scripts/querybook_venv.sh), against a database of the private MariaDB with
an admin user for migrations and a DML-only user for the app.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import textwrap
import urllib.parse

import pytest

from querybook_tree import (
    ORIGINAL_EVENT_LOGGER_FILES,
    QuerybookTree,
    build_tree,
    snapshot,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_SCRIPT = os.path.join(REPO_ROOT, "scripts", "querybook_venv.sh")

DATABASE = "qb_dropin"
ADMIN_USER, ADMIN_PASSWORD = "qb_admin", "adm1n-pw"
APP_USER, APP_PASSWORD = "qb_app", "app:p@ss/w%rd"  # URL-special on purpose
USERS = {1: "alice", 3: "carol", 5: "eve"}

# Querybook's head before adoption (the last migration touching event_log).
UPSTREAM_HEAD = "63bde0162416"
# What alembic autogenerate proposes on an untouched Querybook database: the
# migration creating event_log declares the foreign key on uid, the model does
# not.  Upstream drift, present before adoption; adoption must add nothing.
UPSTREAM_DRIFT = ["op.drop_constraint('event_log_ibfk_1', 'event_log', type_='foreignkey')"]

YELLOW, RESET = "\x1b[33;20m", "\x1b[0m"
LOG_LINE = re.compile(r'^\[\d{4}-\d\d-\d\d \w{3} \d\d:\d\d:\d\d\] - (?P<name>\S+) - '
                      r'(?P<level>\w+) *"(?P<message>.*)"$')

SEARCH_AUX = {"nlp": False, "search": "sales", "results": [3, 1, 2], "page": 0}
BEACON = [
    {"type": "VIEW", "timestamp": 1700000000123,
     "data": {"path": "/", "component": "SEARCH_MODAL", "element": None, "aux": SEARCH_AUX}},
    {"type": "CLICK", "timestamp": 1700000001456,
     "data": {"path": "/datadoc/7/", "component": "DATADOC_QUERY_CELL", "element": "FORMAT_BUTTON",
              "aux": None}},
    {"type": "VIEW", "timestamp": 1700000002000, "data": None},
]
LONG_TITLE = "t" * 200
LONG_NOTE = "n" * 130


def beacon(events, uid=None):
    """POST /ds/context_log/ as navigator.sendBeacon sends it (a text body)."""
    return {"http": "POST", "url": "/ds/context_log/", "uid": uid, "body": json.dumps(events)}


# ---- fixtures -------------------------------------------------------------------

@pytest.fixture(scope="module")
def qb_python():
    """Querybook's Python: the venv of scripts/querybook_venv.sh (made once, then reused)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONPATH")}
    result = subprocess.run(["bash", VENV_SCRIPT, REPO_ROOT], capture_output=True, text=True,
                            env=env, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"scripts/querybook_venv.sh failed ({result.returncode}):\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}", pytrace=False)
    python = result.stdout.strip().splitlines()[-1]
    assert os.access(python, os.X_OK), result.stdout
    return python


class QuerybookDatabase:
    """Querybook's database on the private server: an admin and a DML-only user."""

    def __init__(self, server):
        self.server = server
        self.admin_url = self._url(ADMIN_USER, ADMIN_PASSWORD)
        self.app_url = self._url(APP_USER, APP_PASSWORD)

    def _url(self, user, password):
        return (f"mysql+pymysql://{user}:{urllib.parse.quote(password, safe='')}@"
                f"{self.server.host}:{self.server.port}/{DATABASE}?charset=utf8mb4")

    def create(self):
        grants = []
        for user, password, privileges in ((ADMIN_USER, ADMIN_PASSWORD, "ALL PRIVILEGES"),
                                           (APP_USER, APP_PASSWORD, "SELECT, INSERT, UPDATE, DELETE")):
            grants += [f"DROP USER IF EXISTS '{user}'@'%'",
                       f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
                       f"GRANT {privileges} ON `{DATABASE}`.* TO '{user}'@'%'"]
        self.server.sql(";\n".join([
            f"DROP DATABASE IF EXISTS `{DATABASE}`",
            f"CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            *grants, "FLUSH PRIVILEGES"]), database=None)

    def sql(self, statement):
        """As root (setup and cleanup only; the app reads through `rows`)."""
        return self.server.sql(statement, database=DATABASE)

    def tables(self):
        return sorted(row[0] for row in self.sql("SHOW TABLES"))

    def clear_events(self):
        self.sql("DELETE FROM event_log")


@pytest.fixture(scope="module")
def qb_db(mariadb):
    if not mariadb.private:
        pytest.skip("needs the private MariaDB (creates a database and users); QBEL_TEST_MYSQL_URL is set")
    mariadb.ensure_running()
    database = QuerybookDatabase(mariadb)
    database.create()
    yield database
    mariadb.sql(f"DROP DATABASE IF EXISTS `{DATABASE}`", database=None)


def read_rows(tree, url):
    """event_log as the app user reads it with PyMySQL: [uid, event_type, event_data, created_at]
    (event_data None: SQL NULL)."""
    code = textwrap.dedent("""
        import json, sys, urllib.parse
        import pymysql
        url = urllib.parse.urlsplit(sys.argv[1])
        connection = pymysql.connect(
            host=url.hostname, port=url.port, user=urllib.parse.unquote(url.username),
            password=urllib.parse.unquote(url.password), database=url.path.lstrip("/"),
            charset="utf8mb4")
        with connection.cursor() as cursor:
            cursor.execute("SELECT uid, event_type, event_data, created_at FROM event_log ORDER BY id")
            # SQL NULL -> None; a JSON null document -> "<json null>"
            rows = [[uid, event_type, None if data is None else
                     "<json null>" if json.loads(data) is None else json.loads(data),
                     None if created is None else created.strftime("%Y-%m-%d %H:%M:%S")]
                    for uid, event_type, data, created in cursor.fetchall()]
        print(json.dumps(rows))
    """)
    return json.loads(tree.run(["-c", code, url], cwd="/").stdout.strip().splitlines()[-1])


def autogenerate(tree, admin_url):
    """`alembic revision --autogenerate` as a developer runs it (cwd querybook/):
    the operations of the generated upgrade(), the file removed afterwards."""
    before = set(os.listdir(tree.versions_dir))
    result = tree.alembic("revision", "--autogenerate", "-m", "drift check", database_conn=admin_url)
    created = sorted(set(os.listdir(tree.versions_dir)) - before - {"__pycache__"})
    assert len(created) == 1, (created, result.stdout, result.stderr)
    path = os.path.join(tree.versions_dir, created[0])
    try:
        with open(path) as migration:
            source = migration.read()
    finally:
        os.remove(path)
    body = source.split("def upgrade():", 1)[1].split("def downgrade():", 1)[0]
    return [line.strip() for line in body.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def compare_metadata(tree, admin_url):
    """alembic.autogenerate.compare_metadata of the models against the database."""
    code = textwrap.dedent("""
        import sys
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext
        from sqlalchemy import create_engine
        from models import Base
        engine = create_engine(sys.argv[1])
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        for op in diff:
            print("DIFF", op[0] if isinstance(op, tuple) else [o[0] for o in op],
                  getattr(op[1], "name", None) if isinstance(op, tuple) else "")
        print("TABLES", sorted(Base.metadata.tables))
    """)
    output = tree.run(["-c", code, admin_url], cwd=tree.server_dir,
                      env={"FLASK_SECRET_KEY": "x", "DATABASE_CONN": admin_url}).stdout
    diff = [line[5:] for line in output.splitlines() if line.startswith("DIFF ")]
    tables = [line for line in output.splitlines() if line.startswith("TABLES ")][-1]
    return diff, tables


class Trees:
    """The two fake Querybooks and what adoption did."""


@pytest.fixture(scope="module")
def original(qb_python, qb_db, tmp_path_factory):
    """Querybook with upstream's own event logging, its database migrated to
    UPSTREAM_HEAD and users 1, 3, 5; and the drift autogenerate sees there."""
    base = tmp_path_factory.mktemp("querybook")
    tree = QuerybookTree(build_tree(str(base / "original")), qb_python,
                         spool_dir=str(tmp_path_factory.mktemp("qb-spool")))
    tree.alembic("upgrade", "head", database_conn=qb_db.admin_url)
    qb_db.sql("INSERT INTO `user` (id, username) VALUES "
              + ", ".join(f"({uid}, '{name}')" for uid, name in USERS.items()))
    tree.upstream_drift = autogenerate(tree, qb_db.admin_url)
    tree.upstream_metadata_diff = compare_metadata(tree, qb_db.admin_url)
    return tree


@pytest.fixture(scope="module")
def adopted(original, qb_python, qb_db, tmp_path_factory):
    """Querybook after the adoption edit, its database upgraded by the new migration."""
    root = os.path.join(os.path.dirname(original.root), "adopted")
    tree = QuerybookTree(build_tree(root), qb_python, spool_dir=original.spool_dir)
    tree.before_adoption = snapshot(tree.root)
    tree.written = tree.adopt()
    tree.after_adoption = snapshot(tree.root)
    tree.alembic("upgrade", "head", database_conn=qb_db.admin_url)
    return tree


@pytest.fixture
def events(qb_db):
    """event_log emptied before the test."""
    qb_db.clear_events()
    return qb_db


def app_config(qb_db, **values):
    """A querybook_config.yaml for the app (DML-only user)."""
    return {"FLASK_SECRET_KEY": "qb-test-secret", "DATABASE_CONN": qb_db.app_url, **values}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def log_lines(text):
    """Querybook log lines (format of lib.logger), parsed."""
    return [match.groupdict() for match in map(LOG_LINE.match, text.splitlines()) if match]


def assert_no_errors(process):
    assert "Traceback" not in process.stderr and " - ERROR " not in process.stderr, process.stderr[-4000:]


# ---- the environment ----------------------------------------------------------------

def test_querybook_python_has_querybooks_pins(original):
    result = original.run_python(
        "import sys, flask, werkzeug, flask_login, sqlalchemy, pymysql, alembic, importlib.metadata as m\n"
        "print(sys.version_info[:2], [m.version(p) for p in ('flask', 'werkzeug', 'flask-login',"
        " 'sqlalchemy', 'pymysql', 'alembic')])")
    assert result.stdout.strip() == "(3, 10) ['2.2.2', '2.2.3', '0.6.2', '1.4.39', '1.0.2', '1.8.1']"


def test_app_user_is_dml_only(qb_db, original):
    grants = " ".join(row[0] for row in qb_db.server.sql(f"SHOW GRANTS FOR '{APP_USER}'@'%'", database=None))
    assert f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{DATABASE}`.*" in grants
    assert "CREATE" not in grants.replace("CREATE USER", "") and "ALL PRIVILEGES" not in grants


def test_upstream_reference_tree(original, qb_db):
    """The fake Querybook behaves as upstream: its own autogenerate drift, the
    registry, the console line."""
    assert original.upstream_drift == UPSTREAM_DRIFT
    assert original.upstream_metadata_diff[0] == ["remove_fk event_log_ibfk_1"]
    result = original.run_python(
        "from lib.event_logger.all_event_loggers import ALL_EVENT_LOGGERS\n"
        "print([logger.logger_name for logger in ALL_EVENT_LOGGERS])",
        env={"FLASK_SECRET_KEY": "x", "DATABASE_CONN": qb_db.app_url})
    assert result.stdout.strip() == "['console', 'null', 'db', 'file_plugin']"


# ---- the adoption edit --------------------------------------------------------------------

def test_adoption_edit(adopted, qb_db):
    before, after = adopted.before_adoption, adopted.after_adoption
    changed = sorted(path for path in after if before.get(path) != after[path])
    removed = sorted(set(before) - set(after))
    assert removed == []
    assert sorted(adopted.written) == changed, "adopt() must return exactly the paths it wrote"

    migrations = [path for path in changed if path.startswith("querybook/migrations/versions/")]
    assert len(migrations) == 1, changed
    match = re.fullmatch(r"querybook/migrations/versions/(\w+)_add_event_log_qbel_batches\.py", migrations[0])
    assert match, migrations
    revision = match.group(1)
    migration = after[migrations[0]].decode()
    assert re.search(rf"^revision\s*=\s*['\"]{revision}['\"]", migration, re.M), migration
    assert re.search(rf"^down_revision\s*=\s*['\"]{UPSTREAM_HEAD}['\"]", migration, re.M), migration

    model = "querybook/server/models/event_log.py"
    old_model, new_model = before[model].decode(), after[model].decode()
    assert new_model.startswith(old_model)
    added = [line for line in new_model[len(old_model):].splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert len(added) == 2, added  # the import and the marker table, on the models' metadata
    assert "Base.metadata" in added[1], added

    replaced = [path for path in ORIGINAL_EVENT_LOGGER_FILES if before[path].strip()]
    for path in replaced:
        assert path in changed, f"{path} not replaced"
        assert "querybook_eventlog" in after[path].decode(), after[path].decode()
    other = set(changed) - set(migrations) - {model} - set(ORIGINAL_EVENT_LOGGER_FILES)
    assert not {path for path in other if not path.startswith("querybook/server/lib/event_logger/")}, other

    current = adopted.alembic("current", database_conn=qb_db.admin_url)
    assert f"{revision} (head)" in current.stdout
    assert "event_log_qbel_batches" in qb_db.tables()


def test_adoption_cli_makes_the_same_edit(adopted, tmp_path):
    tree = QuerybookTree(build_tree(str(tmp_path / "cli")), adopted.python)
    result = tree.adopt_cli()
    after = snapshot(tree.root)

    def normalised(files):
        out = {}
        for path, content in files.items():
            name = re.sub(r"versions/\w+_add_event_log_qbel_batches",
                          "versions/REV_add_event_log_qbel_batches", path)
            out[name] = content if "qbel_batches" not in name else b""
        return out

    assert normalised(after) == normalised(adopted.after_adoption), result.stdout


def test_autogenerate_proposes_nothing_new_after_adoption(adopted, original, qb_db):
    """The marker table is declared on the models' metadata and created by the
    migration: autogenerate proposes exactly what it proposed before adoption
    (upstream's own foreign-key drift) and nothing about the marker table."""
    assert autogenerate(adopted, qb_db.admin_url) == original.upstream_drift == UPSTREAM_DRIFT
    diff, tables = compare_metadata(adopted, qb_db.admin_url)
    assert diff == ["remove_fk event_log_ibfk_1"]
    assert "event_log_qbel_batches" in tables


# ---- the app, per configuration ----------------------------------------------------

AUTHENTICATED_API = [
    {"http": "POST", "url": "/ds/datadoc/", "uid": 1,
     "json": {"title": LONG_TITLE, "environment_id": 2, "meta": {"note": LONG_NOTE, "tags": ["a"]}}},
    {"http": "GET", "url": "/ds/datadoc/7/", "uid": 1, "params": {"with_cells": True}},
]
# Flask's test client sends JSON with sorted keys: params arrive in this order.
DATADOC_POST = {"method": "POST", "route": "/datadoc/",
                "params": {"environment_id": 2, "meta": {"note": "n" * 128 + "...", "tags": ["a"]},
                           "title": "t" * 128 + "..."}}
DATADOC_GET = {"method": "GET", "route": "/datadoc/<int:doc_id>/",
               "params": {"doc_id": 7, "with_cells": True}}
SUBSCRIBE = {"ws": "subscribe", "namespace": "/datadoc", "uid": 3, "args": [7], "kwargs": {"mode": "edit"}}
SUBSCRIBE_DATA = {"route": "/datadoc/subscribe", "args": [7], "kwargs": {"mode": "edit"}}


def test_default_config_logs_nothing(adopted, events, tmp_path):
    """EVENT_LOGGER_NAME: ~ (the shipped default): the null logger, and the
    spool dir is never touched (the DB logger's journal, on by default, is
    made by its first log() only)."""
    adopted.write_config(None)
    spool = tmp_path / "spool-never-made"
    result, process = adopted.drive(
        AUTHENTICATED_API + [SUBSCRIBE, beacon(BEACON, uid=5)], cwd=adopted.server_dir,
        env={"FLASK_SECRET_KEY": "x", "DATABASE_CONN": events.app_url,
             "QBEL_SPOOL_DIR": str(spool)})
    assert [status for status, _ in result["responses"]] == [200, 200, "ws", 200]
    assert result["logger_name"] == "null"
    assert_no_errors(process)
    assert read_rows(adopted, events.app_url) == []
    assert not spool.exists()


def test_db_logger_from_yaml_writes_exact_rows(adopted, events):
    """EVENT_LOGGER_NAME and DATABASE_CONN from querybook_config.yaml (not the
    environment), the app's DML-only user; rows written by process exit."""
    adopted.write_config(app_config(events, EVENT_LOGGER_NAME="db"))
    steps = AUTHENTICATED_API + [
        {"http": "POST", "url": "/ds/query/validate/", "uid": 1,
         "json": {"query": "select 1", "engine_id": 1}},              # db deny list
        {"http": "GET", "url": "/ds/user/me/", "uid": 1},             # db deny list (/user GET)
        {"http": "GET", "url": "/ds/admin/announcement/", "uid": 1},  # never logged (/admin)
        {"http": "GET", "url": "/ds/public/status/"},                 # anonymous: not logged
        {"http": "GET", "url": "/ds/public/status/", "uid": 3},
        SUBSCRIBE,
        {"ws": "heartbeat", "namespace": "/datadoc", "uid": 3},       # websocket_logging=False
        beacon(BEACON, uid=5),
        beacon(BEACON),                                               # anonymous: 401, as upstream
        {"http": "POST", "url": "/ds/public/landing_view/"},          # anonymous browser event
        {"http": "POST", "url": "/ds/public/landing_view/", "uid": 3, "json": {"path": "/welcome/"}},
    ]
    start = utc_now()
    result, process = adopted.drive(steps, cwd="/")
    end = utc_now()
    assert [status for status, _ in result["responses"]] == [
        200, 200, 200, 200, 200, 200, 200, "ws", "ws", 200, 401, 200, 200]
    assert result["logger_name"] == "db"
    assert_no_errors(process)

    rows = read_rows(adopted, events.app_url)
    now_rows = [0, 1, 2, 3, 7, 8]  # created_at = time of logging
    for index in now_rows:
        assert index < len(rows) and start <= datetime.datetime.fromisoformat(rows[index][3]) <= end, rows
        rows[index][3] = "now"
    landing = {"path": "/", "component": "LANDING_PAGE", "element": None}
    assert rows == [
        [1, "API", DATADOC_POST, "now"],
        [1, "API", DATADOC_GET, "now"],
        [3, "API", {"method": "GET", "route": "/public/status/", "params": {}}, "now"],
        [3, "WEBSOCKET", SUBSCRIBE_DATA, "now"],
        [5, "VIEW", BEACON[0]["data"], "2023-11-14 22:13:20"],
        [5, "CLICK", BEACON[1]["data"], "2023-11-14 22:13:21"],
        [5, "VIEW", None, "2023-11-14 22:13:22"],
        [None, "VIEW", landing, "now"],
        [3, "VIEW", dict(landing, path="/welcome/"), "now"],
    ]


def test_db_logger_flush_makes_rows_visible(adopted, events):
    adopted.write_config(app_config(events, EVENT_LOGGER_NAME="db"))
    result, process = adopted.drive([SUBSCRIBE, beacon(BEACON[:1], uid=5)], flush=10, count_rows=True,
                                    cwd=adopted.server_dir)
    assert result["flushed"] is True
    assert result["rows_seen"] == 2
    assert_no_errors(process)
    assert [row[:2] for row in read_rows(adopted, events.app_url)] == [[3, "WEBSOCKET"], [5, "VIEW"]]


CONSOLE_STEPS = [
    beacon([{"type": "CLICK", "data": {"path": "/"}, "timestamp": 1700000000000}], uid=5),
    AUTHENTICATED_API[0],
    SUBSCRIBE,
]


def console_messages(tree, text):
    """(logger name, level, message) of the console logger's lines; API and
    websocket created_at (now) replaced with NOW."""
    name = os.path.join(tree.server_dir, "lib", "event_logger", "loggers", "console_event_logger.py")
    out = []
    for line in log_lines(text):
        if "ConsoleEventLogger" in line["message"]:
            message = re.sub(r"created_at: 20[2-9]\d-\d\d-\d\d \d\d:\d\d:\d\d, uid=(1|3),",
                             r"created_at: NOW, uid=\1,", line["message"])
            out.append((line["name"] == name, line["level"], message))
    return out


def test_console_logger_line_is_upstreams(adopted, original, events, tmp_path):
    expected = [
        (True, "INFO", f"{YELLOW}ConsoleEventLogger - created_at: 2023-11-14 22:13:20, uid=5, "
                       f"event_type=EventType.CLICK, event_data={{'path': '/'}}{RESET}"),
        (True, "INFO", f"{YELLOW}ConsoleEventLogger - created_at: NOW, uid=1, event_type=EventType.API, "
                       f"event_data={DATADOC_POST!r}{RESET}"),
        (True, "INFO", f"{YELLOW}ConsoleEventLogger - created_at: NOW, uid=3, "
                       f"event_type=EventType.WEBSOCKET, event_data={{'route': '/datadoc/subscribe', "
                       f"'args': (7,), 'kwargs': {{'mode': 'edit'}}}}{RESET}"),
    ]
    for tree in (original, adopted):
        log_file = tmp_path / f"{os.path.basename(tree.root)}.log"
        tree.write_config(app_config(events, EVENT_LOGGER_NAME="console", LOG_LOCATION=str(log_file)))
        result, process = tree.drive(CONSOLE_STEPS, cwd=tree.server_dir)
        assert [status for status, _ in result["responses"]] == [200, 200, "ws"]
        assert result["logger_name"] == "console"
        assert_no_errors(process)
        assert console_messages(tree, process.stderr) == expected, (tree.root, process.stderr)
        assert console_messages(tree, log_file.read_text()) == expected, tree.root
    assert read_rows(adopted, events.app_url) == []


def test_plugin_by_logger_name(adopted, events, tmp_path):
    """A plugin as Querybook's docs describe it: chosen by logger_name (here from
    the environment, over the yaml's console), gets Querybook's EventType, its
    _api_allow_list honoured."""
    received = tmp_path / "plugin.jsonl"
    adopted.write_config(app_config(events, EVENT_LOGGER_NAME="console"))
    steps = AUTHENTICATED_API + [
        {"http": "POST", "url": "/ds/query/validate/", "uid": 1, "json": {"query": "q", "engine_id": 1}},
        {"http": "GET", "url": "/ds/public/status/", "uid": 1},
        SUBSCRIBE,
        beacon([{"type": "CLICK", "data": {"path": "/"}, "timestamp": 1700000000000}], uid=5),
    ]
    result, process = adopted.drive(steps, cwd="/", env={"EVENT_LOGGER_NAME": "file_plugin",
                                                        "QB_PLUGIN_EVENTS": str(received)})
    assert result["logger_name"] == "file_plugin"
    assert_no_errors(process)
    assert "ConsoleEventLogger" not in process.stderr
    records = [json.loads(line) for line in received.read_text().splitlines()]
    common = {"logger": "file_plugin", "is_querybook_event_type": True}
    assert records == [
        dict(common, uid=1, event_type="API", is_api=True, event_data=DATADOC_POST, timestamp=None),
        dict(common, uid=1, event_type="API", is_api=True, event_data=DATADOC_GET, timestamp=None),
        dict(common, uid=3, event_type="WEBSOCKET", is_api=False, event_data=SUBSCRIBE_DATA, timestamp=None),
        dict(common, uid=5, event_type="CLICK", is_api=False, event_data={"path": "/"},
             timestamp=1700000000000),
    ]
    assert read_rows(adopted, events.app_url) == []


@pytest.mark.parametrize("which", ["original", "adopted"])
def test_plugin_that_fails_to_import(which, request, events, tmp_path):
    """`import kafka_not_installed` in event_logger_plugin: the app still starts
    with a builtin logger, and the failure is in Querybook's log."""
    tree = request.getfixturevalue(which)
    log_file = tmp_path / "querybook.log"
    tree.write_config(app_config(events, EVENT_LOGGER_NAME="console", LOG_LOCATION=str(log_file)))
    result, process = tree.drive(CONSOLE_STEPS[:1], plugins="plugins_broken", cwd="/")
    assert result["responses"] == [[200, {"data": None, "host": result["responses"][0][1]["host"]}]]
    assert result["logger_name"] == "console"
    assert "kafka_not_installed" in process.stderr, process.stderr
    assert "kafka_not_installed" in log_file.read_text()
    assert len(console_messages(tree, process.stderr)) == 1


def test_empty_logger_name_in_environment_is_null(adopted, events):
    adopted.write_config(app_config(events, EVENT_LOGGER_NAME="console"))
    result, process = adopted.drive(CONSOLE_STEPS, cwd=adopted.server_dir, env={"EVENT_LOGGER_NAME": ""})
    assert result["logger_name"] == "null"
    assert [status for status, _ in result["responses"]] == [200, 200, "ws"]
    assert "ConsoleEventLogger" not in process.stderr
    assert_no_errors(process)
    assert read_rows(adopted, events.app_url) == []


def test_unknown_logger_name(adopted, original, events, tmp_path):
    """Upstream raises ValueError("Unknown event logger name X") while importing
    lib.event_logger, so the app does not start; the adapter raises it at first
    use, and its facade logs it: requests still succeed."""
    log_file = tmp_path / "querybook.log"
    config = app_config(events, LOG_LOCATION=str(log_file))
    original.write_config(config)
    crashed = original.run([os.path.join(original.drivers_dir, "drive_app.py"), "/nonexistent", "/dev/null"],
                           env={"EVENT_LOGGER_NAME": "nosuch"}, check=False)
    assert crashed.returncode != 0 and "ValueError: Unknown event logger name nosuch" in crashed.stderr

    adopted.write_config(config)
    result, process = adopted.drive(CONSOLE_STEPS, cwd="/", env={"EVENT_LOGGER_NAME": "nosuch"})
    assert [status for status, _ in result["responses"]] == [200, 200, "ws"]
    assert "Unknown event logger name nosuch" in process.stderr
    # Logged through Querybook's logger, once per failed call at most (three
    # calls: the beacon's event, the API request, the websocket event).
    errors = [line for line in log_lines(log_file.read_text())
              if line["level"] == "ERROR" and "Unknown event logger name nosuch" in line["message"]]
    assert 1 <= len(errors) <= 3, log_file.read_text()
    assert read_rows(adopted, events.app_url) == []


MOCK_TEST = textwrap.dedent("""
    # A Querybook-style unit test: the builtin DB logger instance with log() mocked.
    from unittest import mock

    from const.event_log import EventType
    from lib.event_logger import event_logger
    from lib.event_logger.all_event_loggers import get_event_logger_class
    from lib.event_logger.loggers.db_event_logger import DBEventLogger

    logger = get_event_logger_class("db")
    assert isinstance(logger, DBEventLogger)
    with mock.patch.object(logger, "log") as mock_log:
        logger.log_api_request(uid=1, route="/datadoc/", method="POST",
                               params={"title": "t" * 130, "meta": {"note": "n" * 129}, "ids": ["x" * 200]})
        logger.log_api_request(uid=1, route="/query/validate/", method="POST", params={})
        logger.log_websocket_event(uid=2, route="/datadoc/subscribe", args=[1], kwargs={})
    assert mock_log.call_args_list == [
        mock.call(uid=1, event_type=EventType.API, event_data={
            "method": "POST", "route": "/datadoc/",
            "params": {"title": "t" * 128 + "...", "meta": {"note": "n" * 128 + "..."}, "ids": ["x" * 200]}}),
        mock.call(uid=2, event_type=EventType.WEBSOCKET,
                  event_data={"route": "/datadoc/subscribe", "args": [1], "kwargs": {}}),
    ], mock_log.call_args_list

    # the facade, in a request of user 3
    from app.server import flask_app
    assert event_logger.logger is logger
    with mock.patch.object(logger, "log") as mock_log:
        with flask_app.test_request_context(headers={"X-Test-Uid": "3"}):
            event_logger.log_api_request(route="/datadoc/", method="POST", params={"a": 1})
    mock_log.assert_called_once_with(uid=3, event_type=EventType.API,
                                      event_data={"method": "POST", "route": "/datadoc/", "params": {"a": 1}})
    print("MOCK TEST PASSED")
""")


@pytest.mark.parametrize("which", ["original", "adopted"])
def test_mock_patch_of_db_logger_log(which, request, events):
    tree = request.getfixturevalue(which)
    tree.write_config(app_config(events, EVENT_LOGGER_NAME="db"))
    result = tree.run_python(MOCK_TEST, cwd=tree.server_dir)
    assert "MOCK TEST PASSED" in result.stdout
    assert read_rows(tree, events.app_url) == []


NAMESPACES = textwrap.dedent("""
    # Every public name (no leading _) of lib.event_logger's modules: for an object imported
    # from outside lib.event_logger, where it comes from; else what kind it is.
    import importlib, inspect, json, logging, sys
    MODULES = ["lib.event_logger", "lib.event_logger.base_event_logger",
               "lib.event_logger.all_event_loggers", "lib.event_logger.loggers.console_event_logger",
               "lib.event_logger.loggers.db_event_logger", "lib.event_logger.loggers.null_event_logger"]

    def describe(value):
        if inspect.ismodule(value):
            return "module " + value.__name__
        origin = getattr(value, "__module__", None) or ""
        imported = not origin.startswith("lib.event_logger")
        if (inspect.isclass(value) or inspect.isfunction(value)) and imported:
            return f"{origin}.{value.__qualname__}"
        if inspect.isclass(value):
            return "class"
        if isinstance(value, logging.Logger):
            return "logger " + value.name
        if isinstance(value, (int, str)):
            return repr(value)
        if type(value).__name__ == "LocalProxy":
            return "proxy"
        return "instance"

    # argv[1], when given: the names to describe per module (lazy ones are not in dir()).
    wanted = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    out = {}
    for name in MODULES:
        module = importlib.import_module(name)
        attrs = wanted.get(name) or [
            a for a in dir(module) if not a.startswith("_") and not inspect.ismodule(getattr(module, a))]
        out[name] = {attr: describe(getattr(module, attr, None)) for attr in sorted(attrs)}
    print(json.dumps(out))
""")

CHECK_ADOPTED = textwrap.dedent("""
    import json, sys, logging
    names = json.loads(sys.argv[1])
    import importlib
    for module_name, attrs in names.items():
        module = importlib.import_module(module_name)
        missing = [attr for attr in attrs if not hasattr(module, attr)]
        assert not missing, (module_name, missing)

    from lib.event_logger import event_logger, EventLogger
    from lib.event_logger.base_event_logger import BaseEventLogger, ApiFilterRule, MAX_STR_PARAM_LENGTH
    from lib.event_logger.all_event_loggers import (ALL_EVENT_LOGGERS, ALL_PLUGIN_EVENT_LOGGERS,
                                                    get_event_logger_class)
    from lib.event_logger.loggers.console_event_logger import (ConsoleEventLogger, COLOR_YELLOW,
                                                               COLOR_RESET, LOG)
    from lib.event_logger.loggers.db_event_logger import DBEventLogger
    from lib.event_logger.loggers.null_event_logger import NullEventLogger
    import const.event_log, event_logger_plugin, lib.event_logger.base_event_logger as base

    assert [logger.logger_name for logger in ALL_EVENT_LOGGERS] == ["console", "null", "db", "file_plugin"]
    assert [type(logger) for logger in ALL_EVENT_LOGGERS[:3]] == [
        ConsoleEventLogger, NullEventLogger, DBEventLogger]
    assert ALL_PLUGIN_EVENT_LOGGERS == event_logger_plugin.ALL_PLUGIN_EVENT_LOGGERS
    assert ALL_EVENT_LOGGERS[3] is event_logger_plugin.ALL_PLUGIN_EVENT_LOGGERS[0]
    assert all(isinstance(logger, BaseEventLogger) for logger in ALL_EVENT_LOGGERS)
    assert get_event_logger_class("db") is ALL_EVENT_LOGGERS[2]
    assert isinstance(event_logger, EventLogger) and event_logger.logger is ALL_EVENT_LOGGERS[1]
    assert base.EventType is const.event_log.EventType
    assert MAX_STR_PARAM_LENGTH == 128 and (COLOR_YELLOW, COLOR_RESET) == ("\\x1b[33;20m", "\\x1b[0m")
    assert isinstance(LOG, logging.Logger)
    assert LOG.name.endswith("lib/event_logger/loggers/console_event_logger.py"), LOG.name
    assert set(ApiFilterRule.__annotations__) == {"type", "route", "method"}

    class Incomplete(BaseEventLogger):
        @property
        def logger_name(self):
            return "incomplete"
    try:
        Incomplete()
    except TypeError:
        pass
    else:
        raise AssertionError("a BaseEventLogger without log() was instantiated")
    print("NAMES RESOLVE")
""")


def test_every_upstream_name_resolves_after_adoption(original, adopted, qb_db):
    env = {"FLASK_SECRET_KEY": "x", "DATABASE_CONN": qb_db.app_url}
    original.write_config(None)
    adopted.write_config(None)
    upstream = json.loads(original.run_python(NAMESPACES, env=env).stdout.strip().splitlines()[-1])
    assert "EventLog" in upstream["lib.event_logger.loggers.db_event_logger"]
    result = adopted.run(["-c", CHECK_ADOPTED, json.dumps(upstream)], env=env, cwd=adopted.server_dir)
    assert "NAMES RESOLVE" in result.stdout
    # Objects upstream imports from elsewhere are those very objects after adoption.
    adopted_names = adopted.run(["-c", NAMESPACES, json.dumps(upstream)], env=env)
    mine = json.loads(adopted_names.stdout.strip().splitlines()[-1])
    for module, attrs in upstream.items():
        for attr, described in attrs.items():
            if "." in described and not described.startswith(("logger ", "'")):
                assert mine[module].get(attr) == described, (module, attr, mine[module].get(attr))


def test_tree_is_found_relative_to_the_code(adopted, events, tmp_path):
    """The yaml is read relative to the code: a process started from another
    folder (with a querybook/config of its own) still reads the tree's."""
    decoy = tmp_path / "decoy"
    shutil.copytree(os.path.join(adopted.root, "querybook", "config"), decoy / "querybook" / "config")
    (decoy / "querybook" / "config" / "querybook_config.yaml").write_text("EVENT_LOGGER_NAME: console\n")
    adopted.write_config(app_config(events, EVENT_LOGGER_NAME="null"))
    result, process = adopted.drive(CONSOLE_STEPS[:1], cwd=str(decoy))
    assert result["logger_name"] == "null"
    assert "ConsoleEventLogger" not in process.stderr

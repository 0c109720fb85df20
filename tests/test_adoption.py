"""The adoption edit: adopt() on a Querybook-shaped checkout, and the adapter's names."""

import os
import subprocess
import sys
import textwrap

import pytest

from querybook_eventlog.querybook import adoption, schema

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UPSTREAM_FILES = [
    "__init__.py", "base_event_logger.py", "all_event_loggers.py",
    os.path.join("loggers", "__init__.py"), os.path.join("loggers", "console_event_logger.py"),
    os.path.join("loggers", "db_event_logger.py"), os.path.join("loggers", "null_event_logger.py"),
]


def make_checkout(root, heads=("63bde0162416",)):
    lib = root / "querybook" / "server" / "lib" / "event_logger"
    for relative in UPSTREAM_FILES:
        path = lib / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# upstream\n")
    models = root / "querybook" / "server" / "models"
    models.mkdir(parents=True)
    (models / "event_log.py").write_text("Base = db.Base\n\nclass EventLog(Base):\n    pass\n")
    versions = root / "querybook" / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "2dc4b2f93081_add_event_logs.py").write_text(
        "revision = '2dc4b2f93081'\ndown_revision = '7f368cb1c51b'\n")
    for head in heads:
        (versions / f"{head}_x.py").write_text(
            f"revision = '{head}'\ndown_revision = '2dc4b2f93081'\n")
    return lib


def test_adopt_writes_the_documented_files_once(tmp_path):
    lib = make_checkout(tmp_path)
    written = adoption.adopt(str(tmp_path))
    assert len(written) == 6 + 1 + 1
    for relative, text in adoption.ADOPTED_FILES.items():
        assert (lib / relative).read_text() == text
    assert (lib / "loggers" / "__init__.py").read_text() == "# upstream\n"  # left as upstream
    model = (tmp_path / "querybook/server/models/event_log.py").read_text()
    assert model.startswith("Base = db.Base\n") and "marker_table(Base.metadata)" in model
    migration = tmp_path / "querybook/migrations/versions/qbel0marker1_add_event_log_qbel_batches.py"
    text = migration.read_text()
    assert "down_revision = '63bde0162416'" in text
    assert 'op.create_table(\n        "event_log_qbel_batches"' in text
    assert adoption.adopt(str(tmp_path)) == []  # idempotent
    assert adoption.migration_heads(str(migration.parent)) == ["qbel0marker1"]


def test_adopt_refuses_what_is_not_a_checkout(tmp_path):
    with pytest.raises(FileNotFoundError, match="Querybook checkout"):
        adoption.adopt(str(tmp_path))


def test_adopt_refuses_several_heads(tmp_path):
    make_checkout(tmp_path, heads=("aaa", "bbb"))
    with pytest.raises(RuntimeError, match="several heads"):
        adoption.adopt(str(tmp_path))


def test_readme_shows_the_shipped_files():
    def unindented(text):  # README code blocks sit inside list items
        return "\n".join(line.strip() for line in text.strip().splitlines())

    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as readme:
        text = unindented(readme.read())
    for body in list(adoption.ADOPTED_FILES.values()) + [adoption.MODEL_LINES]:
        assert unindented(body) in text


def test_cli_adopt(tmp_path):
    make_checkout(tmp_path)
    result = subprocess.run([sys.executable, "-m", "querybook_eventlog", "adopt", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("wrote ") == 8


def test_marker_schema_matches_its_ddl():
    ddl = schema.marker_table_ddl()
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS `event_log_qbel_batches` (")
    assert "batch_id VARCHAR(64) NOT NULL" in ddl and "PRIMARY KEY (batch_id)" in ddl
    assert "INDEX ix_event_log_qbel_batches_committed_at (committed_at)" in ddl
    with pytest.raises(ValueError):
        schema.marker_table_name("event log; drop")


def test_adapter_names_resolve_in_a_querybook_shaped_path(tmp_path):
    """Every name upstream's modules export resolves through the adapter, with
    Querybook's EventType, settings and logger (a minimal Querybook tree)."""
    server = tmp_path / "server"
    (server / "const").mkdir(parents=True)
    (server / "lib").mkdir()
    (server / "const" / "__init__.py").write_text("")
    (server / "const" / "event_log.py").write_text(textwrap.dedent("""
        from enum import Enum
        class EventType(Enum):
            API = "API"
            WEBSOCKET = "WEBSOCKET"
            VIEW = "VIEW"
            CLICK = "CLICK"
    """))
    (server / "env.py").write_text(textwrap.dedent("""
        class QuerybookSettings:
            EVENT_LOGGER_NAME = None
            DATABASE_CONN = "sqlite:///x.db"
            LOG_LOCATION = None
    """))
    (server / "lib" / "__init__.py").write_text("")
    (server / "lib" / "logger.py").write_text(textwrap.dedent("""
        import logging, sys
        def get_logger(name):
            log = logging.getLogger(name)
            if not log.handlers:
                handler = logging.StreamHandler(sys.stdout)
                handler.setFormatter(logging.Formatter("QB %(name)s %(message)s"))
                log.addHandler(handler)
            log.setLevel(logging.INFO)
            return log
    """))
    code = textwrap.dedent("""
        import querybook_eventlog.querybook as adapter
        from querybook_eventlog.querybook import base_event_logger, all_event_loggers
        from querybook_eventlog.querybook.loggers import console_event_logger, db_event_logger
        from querybook_eventlog.querybook.loggers import null_event_logger
        from const.event_log import EventType
        assert base_event_logger.EventType is EventType
        assert base_event_logger.MAX_STR_PARAM_LENGTH == 128
        assert set(base_event_logger.ApiFilterRule.__annotations__) == {"type", "route", "method"}
        assert console_event_logger.COLOR_YELLOW == "\\x1b[33;20m"
        assert console_event_logger.COLOR_RESET == "\\x1b[0m"
        names = [logger.logger_name for logger in all_event_loggers.ALL_EVENT_LOGGERS]
        assert names == ["console", "null", "db"], names
        assert all_event_loggers.ALL_PLUGIN_EVENT_LOGGERS == []
        assert adapter.event_logger.logger.logger_name == "null"  # EVENT_LOGGER_NAME: ~

        class Plugin(base_event_logger.BaseEventLogger):
            seen = []
            @property
            def logger_name(self):
                return "p"
            def log(self, uid, event_type, event_data, timestamp=None):
                self.seen.append(event_type)
        plugin = Plugin()
        plugin.log_api_request(uid=1, route="/q/", method="GET", params={})
        plugin.log_websocket_event(uid=1, route="/q/x", args=[], kwargs={})
        print(plugin.seen == [EventType.API, EventType.WEBSOCKET])
        adapter.event_logger.logger = plugin
        adapter.event_logger.log(EventType.VIEW, {"path": "/"})
        print(plugin.seen[-1] is EventType.VIEW)
        adapter.event_logger.logger = all_event_loggers.get_event_logger_class("db")
        adapter.event_logger.log(EventType.VIEW, {"path": "/"})  # sqlite: reported, not raised
        adapter.event_logger.log(EventType.VIEW, {"path": "/"})
        import logging
        print(len(adapter.LOG.handlers))  # Querybook's get_logger was called once, not per report
        print("done")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("EVENT_LOGGER_NAME", "DATABASE_CONN")}
    env["PYTHONPATH"] = os.pathsep.join([REPO, str(server)])
    result = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["True", "True"], result.stdout
    assert lines[-2:] == ["1", "done"]
    # the facade's error went through Querybook's logger, named after its module file
    assert any(line.startswith("QB " + str(server / "lib" / "event_logger" / "__init__.py"))
               and "sqlite" in line for line in lines), result.stdout

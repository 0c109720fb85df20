"""Logger selection: EVENT_LOGGER_NAME, builtin loggers, plugins, the facade."""

import os
import subprocess
import sys
import textwrap

import pytest

import querybook_eventlog as qe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("EVENT_LOGGER_NAME", "DATABASE_CONN")}
    env["PYTHONPATH"] = os.pathsep.join([REPO, str(cwd)])
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_builtin_loggers_by_name():
    assert isinstance(qe.get_event_logger_class("null"), qe.NullEventLogger)
    assert isinstance(qe.get_event_logger_class("console"), qe.ConsoleEventLogger)
    assert isinstance(qe.get_event_logger_class("db"), qe.DBEventLogger)
    names = [logger.logger_name for logger in qe.ALL_EVENT_LOGGERS]
    assert names[:3] == ["console", "null", "db"]  # upstream's order


def test_unknown_name_is_value_error():
    with pytest.raises(ValueError, match="^Unknown event logger name nope$"):
        qe.get_event_logger_class("nope")


def test_plugin_module_picked_up_by_name(tmp_path):
    (tmp_path / "event_logger_plugin.py").write_text(textwrap.dedent("""
        from querybook_eventlog import BaseEventLogger

        class ListLogger(BaseEventLogger):
            def __init__(self):
                self.events = []

            @property
            def logger_name(self):
                return "list"

            def log(self, uid, event_type, event_data, timestamp=None):
                self.events.append((uid, event_type, event_data, timestamp))

        ALL_PLUGIN_EVENT_LOGGERS = [ListLogger()]
    """))
    result = run_python("""
        import querybook_eventlog as qe
        logger = qe.get_event_logger_class(qe.configured_logger_name())
        logger.log_api_request(uid=3, route="/datadoc/", method="GET", params={"a": "b" * 200})
        logger.log_api_request(uid=3, route="/admin/x", method="GET", params={})
        logger.log_websocket_event(uid=4, route="/datadoc/join", args=[1], kwargs={"k": 2})
        for uid, event_type, data, ts in logger.events:
            print(uid, event_type, len(str(data)), ts)
        print(data)
    """, tmp_path, {"EVENT_LOGGER_NAME": "list"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 EventType.API ")
    assert lines[1] == "4 EventType.WEBSOCKET 59 None"
    assert lines[2] == "{'route': '/datadoc/join', 'args': [1], 'kwargs': {'k': 2}}"
    assert len(lines) == 3  # the /admin request was denied


def test_missing_plugin_module_counts_as_none(tmp_path):
    result = run_python("import querybook_eventlog as qe; print(len(qe.ALL_EVENT_LOGGERS))",
                        tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_broken_plugin_import_is_logged_and_skipped(tmp_path):
    (tmp_path / "event_logger_plugin.py").write_text("import module_that_does_not_exist\n")
    result = run_python("""
        import logging
        logging.basicConfig(level=logging.INFO)
        import querybook_eventlog as qe
        print([logger.logger_name for logger in qe.ALL_EVENT_LOGGERS])
        print(qe.get_event_logger_class("console").logger_name)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['console', 'null', 'db']", "console"]
    assert "cannot import event_logger_plugin" in result.stderr
    assert "module_that_does_not_exist" in result.stderr


@pytest.mark.parametrize("value", ["None", "[]", "0"])
def test_empty_plugin_list_counts_as_none(tmp_path, value):
    (tmp_path / "event_logger_plugin.py").write_text(f"ALL_PLUGIN_EVENT_LOGGERS = {value}\n")
    result = run_python("import querybook_eventlog as qe; print(len(qe.ALL_EVENT_LOGGERS))",
                        tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_import_touches_nothing(tmp_path):
    """Importing never parses DATABASE_CONN, creates the spool dir or imports plugins."""
    (tmp_path / "event_logger_plugin.py").write_text("raise SystemExit('plugin imported')\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool dir would go")
    result = run_python("""
        import sys
        import querybook_eventlog as qe
        assert "event_logger_plugin" not in sys.modules
        print("imported")
    """, tmp_path, {"DATABASE_CONN": "sqlite:////tmp/querybook.db",
                    "QBEL_SPOOL_DIR": str(blocker / "spool"),
                    "EVENT_LOGGER_NAME": "definitely-unknown"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_registry_builds_with_unusable_settings(tmp_path):
    """A sqlite/postgresql DATABASE_CONN or an uncreatable spool dir does not
    stop the registry (and so the null or console logger) from working."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for url in ("sqlite:////tmp/querybook.db", "postgresql://u:secret@h/db"):
        result = run_python("""
            import querybook_eventlog as qe
            qe.get_event_logger_class("null").log(uid=1, event_type="VIEW", event_data={})
            db = qe.get_event_logger_class("db")
            try:
                db.log(uid=1, event_type="VIEW", event_data={})
            except (ValueError, RuntimeError) as error:
                print(type(error).__name__, error)
        """, tmp_path, {"DATABASE_CONN": url, "QBEL_SPOOL_DIR": str(blocker / "spool")})
        assert result.returncode == 0, result.stderr
        assert "secret" not in result.stdout + result.stderr
        assert result.stdout.startswith("ValueError"), result.stdout


@pytest.mark.parametrize("text", ["EVENT_LOGGER_NAME: ~\n", "EVENT_LOGGER_NAME:\n",
                                  "EVENT_LOGGER_NAME: null\n", "EVENT_LOGGER_NAME: ''\n"])
def test_yaml_null_means_the_null_logger(tmp_path, monkeypatch, text):
    monkeypatch.delenv("EVENT_LOGGER_NAME", raising=False)
    config = tmp_path / "querybook_default_config.yaml"
    config.write_text("FLASK_SECRET_KEY: x\n" + text)
    monkeypatch.setenv("QUERYBOOK_CONFIG_PATH", str(config))
    assert qe.configured_logger_name() == "null"
    assert qe.EventLogger().logger is qe.get_event_logger_class("null")


@pytest.mark.parametrize("value", ["", "~", " "])
def test_empty_env_means_the_null_logger(tmp_path, monkeypatch, value):
    config = tmp_path / "querybook_config.yaml"
    config.write_text("EVENT_LOGGER_NAME: console\n")
    monkeypatch.setenv("QUERYBOOK_CONFIG_PATH", str(config))
    monkeypatch.setenv("EVENT_LOGGER_NAME", value)  # present, even empty: it wins, as in env.py
    assert qe.configured_logger_name() == "null"


def test_configured_name_env_then_yaml_then_null(tmp_path, monkeypatch):
    monkeypatch.delenv("EVENT_LOGGER_NAME", raising=False)
    monkeypatch.setenv("QUERYBOOK_CONFIG_PATH", str(tmp_path / "missing.yaml"))
    assert qe.configured_logger_name() == "null"
    config = tmp_path / "querybook_config.yaml"
    config.write_text("FLASK_SECRET_KEY: x\nEVENT_LOGGER_NAME: 'console'  # chosen\n")
    monkeypatch.setenv("QUERYBOOK_CONFIG_PATH", str(config))
    assert qe.configured_logger_name() == "console"
    monkeypatch.setenv("EVENT_LOGGER_NAME", "db")
    assert qe.configured_logger_name() == "db"


def test_configured_name_from_querybook_root(tmp_path, monkeypatch):
    monkeypatch.delenv("EVENT_LOGGER_NAME", raising=False)
    monkeypatch.delenv("QUERYBOOK_CONFIG_PATH", raising=False)
    config_dir = tmp_path / "querybook" / "config"
    config_dir.mkdir(parents=True)
    (config_dir / "querybook_default_config.yaml").write_text("EVENT_LOGGER_NAME: null\n")
    (config_dir / "querybook_config.yaml").write_text("EVENT_LOGGER_NAME: console\n")
    monkeypatch.setenv("QUERYBOOK_ROOT", str(tmp_path))
    assert qe.configured_logger_name() == "console"
    (config_dir / "querybook_config.yaml").write_text("OTHER: 1\n")
    assert qe.configured_logger_name() == "null"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUERYBOOK_ROOT")
    (config_dir / "querybook_config.yaml").write_text("EVENT_LOGGER_NAME: console\n")
    assert qe.configured_logger_name() == "null"  # never found through the working directory


class Recorder(qe.BaseEventLogger):
    def __init__(self, fail=False):
        self.events = []
        self.fail = fail

    @property
    def logger_name(self):
        return "recorder"

    def log(self, uid, event_type, event_data, timestamp=None):
        if self.fail:
            raise RuntimeError("sink exploded")
        self.events.append((uid, event_type, event_data, timestamp))


def test_facade_fills_uid_and_never_raises(caplog):
    recorder = Recorder()
    facade = qe.EventLogger(recorder, uid_getter=lambda: 42)
    facade.log(qe.EventType.CLICK, {"element": "run"}, timestamp=1700000000000)
    facade.log_api_request("/query/", "GET", {"id": 1})
    facade.log_websocket_event("/query/subscribe", [1], {})
    assert [event[:2] for event in recorder.events] == [
        (42, qe.EventType.CLICK), (42, qe.EventType.API), (42, qe.EventType.WEBSOCKET)]
    failing = qe.EventLogger(Recorder(fail=True), uid_getter=lambda: 1)
    failing.log(qe.EventType.VIEW, {})  # must not raise
    assert "sink exploded" in caplog.text
    bad_input = qe.EventLogger(qe.NullEventLogger(), uid_getter=lambda: 1)
    bad_input.log("not-a-type", {})  # validation error swallowed and logged
    assert "not-a-type" in caplog.text


def test_facade_without_user():
    """No authenticated user: events are kept with uid None (NULL), API
    requests are not logged (upstream's rule)."""
    recorder = Recorder()
    facade = qe.EventLogger(recorder)
    facade.log(qe.EventType.VIEW, {"path": "/"})
    facade.log_api_request("/query/", "GET", {"id": 1})
    facade.log_websocket_event("/query/subscribe", [1], {})
    assert [event[:2] for event in recorder.events] == [
        (None, qe.EventType.VIEW), (None, qe.EventType.WEBSOCKET)]


def test_facade_resolves_its_logger_on_first_use(monkeypatch):
    monkeypatch.setenv("EVENT_LOGGER_NAME", "no-such-logger")
    facade = qe.EventLogger()  # constructing looks nothing up
    monkeypatch.setenv("EVENT_LOGGER_NAME", "console")
    assert facade.logger is qe.get_event_logger_class("console")

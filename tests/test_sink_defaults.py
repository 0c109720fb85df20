"""The DB logger's defaults and table-name rule have one source
(csrc/defaults.h, mysql_sink_table_name_is_valid): pin them against the
documented signature, and check that every entry point applies the same
rule."""

import re

import pytest

from querybook_eventlog import DBEventLogger, _core

DOCUMENTED = {
    "table": "event_log",
    "batch_size": 2000,
    "flush_interval": 1.0,
    "max_queue_bytes": 64 << 20,
    "connect_timeout": 5,
    "read_timeout": 30,
    "write_timeout": 30,
    "exit_timeout": 5.0,
    "sync_timeout": 30.0,
    "backoff_initial": 0.1,
    "backoff_max": 30.0,
}


def signature_defaults():
    """name -> default as DBEventLogger's documented signature spells it."""
    signature = DBEventLogger.__text_signature__
    found = {}
    for name, value in re.findall(r"(\w+)=([^,)]+)", signature):
        value = value.strip()
        if value.endswith("MiB"):
            found[name] = int(value.split()[0]) << 20
        elif value.startswith("'"):
            found[name] = value.strip("'")
        else:
            try:
                found[name] = float(value) if "." in value else int(value)
            except ValueError:
                found[name] = value
    return found


def test_defaults_have_one_source_and_match_the_documentation():
    defaults = _core._db_defaults()
    for name, value in DOCUMENTED.items():
        assert defaults[name] == value, name
    documented = signature_defaults()
    for name in DOCUMENTED:
        assert documented[name] == defaults[name], name


def test_durability_default_is_process_and_documented(monkeypatch):
    """durability=None: env QBEL_DURABILITY, else "process" (one source:
    QBEL_DEFAULT_DURABILITY, read by _settings.durability())."""
    from querybook_eventlog import _settings

    monkeypatch.delenv("QBEL_DURABILITY", raising=False)
    assert _core._db_defaults()["durability"] == "process"
    assert _settings.durability() == "process"
    assert signature_defaults()["durability"] == "None"
    assert "else 'process'" in " ".join(DBEventLogger.__doc__.split())
    monkeypatch.setenv("QBEL_DURABILITY", " Memory ")
    assert _settings.durability() == "memory"


@pytest.mark.parametrize("table", ["a$b", "1abc", "x" * 52, "", "naïve", "a-b", "a b"])
def test_one_table_name_rule_refuses(table):
    with pytest.raises(ValueError):
        DBEventLogger("mysql://u@localhost/db", table=table)
    with pytest.raises(ValueError):
        DBEventLogger.marker_table_ddl(table)


@pytest.mark.parametrize("table", ["_t", "event_log", "T1", "x" * 51])
def test_one_table_name_rule_accepts(table):
    assert _core._db_defaults()["max_table_name"] == 51
    logger = DBEventLogger("mysql://u@localhost/db", table=table, spool_dir=None)
    assert f"{table}_qbel_batches" in DBEventLogger.marker_table_ddl(table)
    logger.close(timeout=0)

"""The command line through its real entry point (python -m querybook_eventlog,
in a subprocess): --help everywhere, the URL rules, exit statuses and
messages, report and cleanup end to end, replay's odd spool entries, and the
progress bar (a terminal only)."""

import io
import json
import os
import subprocess
import sys
import time

import pytest

from querybook_eventlog import _progress
from querybook_eventlog.__main__ import build_parser

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ["demo", "report", "cleanup", "replay", "adopt"]


def cli(*args, env_changes=None, cwd=None):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_CONN", "QUERYBOOK_CONFIG_PATH", "QUERYBOOK_ROOT")}
    env["PYTHONPATH"] = REPO
    env.update(env_changes or {})
    return subprocess.run([sys.executable, "-m", "querybook_eventlog", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or REPO, timeout=300, check=False)


@pytest.fixture
def url_file(db, tmp_path):
    path = tmp_path / "url"
    path.write_text(db.url + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command):
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m querybook_eventlog {command}")


def test_top_level_help_lists_every_subcommand():
    result = cli("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in result.stdout
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS)


def seed_rows(db):
    db.sql("INSERT INTO event_log (created_at, uid, event_type, event_data) VALUES "
           "('2026-11-20 10:00:00', 1, 'CLICK', '{\"path\": \"/e/datadoc/1/\", "
           "\"component\": \"DATADOC_QUERY_CELL\", \"element\": \"FORMAT_BUTTON\"}'), "
           "('2026-11-20 11:00:00', 2, 'CLICK', '{\"path\": \"/e/datadoc/1/\", "
           "\"component\": \"DATADOC_QUERY_CELL\", \"element\": \"FORMAT_BUTTON\"}'), "
           "('2026-11-20 12:00:00', 2, 'VIEW', '{\"path\": \"/e/\", \"component\": \"LANDING_PAGE\"}'), "
           "('2026-11-21 09:00:00', 3, 'API', '{\"method\": \"GET\", \"route\": \"/datadoc/\", "
           "\"params\": {}}')")


def test_report_json_from_a_url_file(db, url_file):
    seed_rows(db)
    result = cli("report", "--url-file", url_file, "--since", "2026-11-20", "--until", "2026-11-22",
                 "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sections"]["feature_use"]["rows"] == [
        ["DATADOC_QUERY_CELL", "FORMAT_BUTTON", 2, 2, 1.0]]
    assert report["sections"]["home_page"]["rows"] == [["2026-11-20", 1, 1, 0, 0]]
    assert report["sections"]["top_routes"]["rows"] == [["API", "GET", "/datadoc/", 1, 1]]
    assert report["notes"] and "CREATE INDEX ix_event_log_created_at" in report["notes"][0]
    assert result.stderr == ""


def test_report_reads_database_conn_and_writes_html_and_csv(db, tmp_path):
    seed_rows(db)
    page = tmp_path / "report.html"
    result = cli("report", "--since", "2026-11-20", "--days", "1", "--format", "csv",
                 "--section", "events_per_day", "--html", str(page),
                 env_changes={"DATABASE_CONN": db.url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["day,event_type,events", "2026-11-20,VIEW,1",
                                          "2026-11-20,CLICK,2"]
    assert page.read_text().count("<svg") == 1  # the page has the chosen section only
    assert 'data-section="events_per_day"' in page.read_text()
    assert f"wrote {page}" in result.stderr


def test_report_text_and_a_url_on_the_command_line_warns(db):
    seed_rows(db)
    result = cli("report", "--url", db.url, "--since", "2026-11-20", "--until", "2026-11-22")
    assert result.returncode == 0, result.stderr
    assert "shows its password to every user" in result.stderr
    assert "== Feature use: clicks per component and element" in result.stdout
    assert "FORMAT_BUTTON" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--since", "last week"], "not an ISO date"),
    (["--since", "2026-11-20", "--until", "2026-11-22", "--days", "2"], "not all three"),
    (["--until", "2020-01-01", "--since", "2021-01-01"], "the range is empty"),
])
def test_report_bad_range_is_a_usage_error(url_file, args, message):
    result = cli("report", "--url-file", url_file, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_no_url_anywhere_is_a_usage_error():
    for command in (["report"], ["cleanup", "--days", "7"], ["replay", "--spool-dir", "/tmp"]):
        result = cli(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert "set DATABASE_CONN" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_database_fails_with_one_line_without_the_password():
    result = cli("report", "--url", "mysql+pymysql://u:TopSecret9@127.0.0.1:1/querybook")
    assert result.returncode == 1
    assert "cannot connect" in result.stderr and "TopSecret9" not in result.stderr
    assert "Traceback" not in result.stderr


def test_cleanup_deletes_old_rows_and_minus_one_disables(db, url_file):
    seed_rows(db)
    db.sql("INSERT INTO event_log (created_at, uid, event_type) VALUES (UTC_TIMESTAMP(), 1, 'VIEW')")
    disabled = cli("cleanup", "--days", "-1", "--url-file", url_file)
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    assert db.count_events() == 5
    result = cli("cleanup", "--days", "3", "--chunk-rows", "2", "--url-file", url_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted 4 rows of event_log created before ")
    assert db.count_events() == 1
    bad = cli("cleanup", "--days", "-2", "--url-file", url_file)
    assert bad.returncode == 2 and "-1 to disable" in bad.stderr


def test_replay_fails_when_it_skipped_odd_entries(db, url_file, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    clean = cli("replay", "--url-file", url_file, "--spool-dir", str(spool))
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith("replayed 0 events")
    (spool / "qbel-0.spool").mkdir()  # a directory where a spool file would be
    odd = cli("replay", "--url-file", url_file, "--spool-dir", str(spool))
    assert odd.returncode == 1, odd.stdout + odd.stderr
    assert "qbel-0.spool" in odd.stderr and "Move the odd entries out" in odd.stderr


@pytest.mark.parametrize("durability, kept_in", [("memory", "qbel-*.spool"),
                                                   ("process", "qbel-*.journal")])
def test_replay_leaves_other_targets_lines_unless_adopt_all(db, url_file, tmp_path, durability,
                                                           kept_in):
    import socket

    import querybook_eventlog as qe

    spool = tmp_path / "spool"
    with socket.socket() as probe:  # a port nobody listens on: every event is spooled
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    elsewhere = qe.DBEventLogger(f"mysql://qbel:x@127.0.0.1:{port}/querybook", spool_dir=str(spool),
                                 connect_timeout=1, durability=durability)
    for uid in (1, 2, 3):
        elsewhere.log(uid, qe.EventType.CLICK, {"moved": uid})
    elsewhere.close(timeout=0.1)
    assert elsewhere.stats()["spooled"] == 3
    db.reset_events()
    mine_only = cli("replay", "--url-file", url_file, "--spool-dir", str(spool))
    assert mine_only.returncode == 0, mine_only.stderr
    assert mine_only.stdout.startswith("replayed 0 events")
    assert db.count_events() == 0 and any(spool.glob(kept_in))
    adopted = cli("replay", "--url-file", url_file, "--spool-dir", str(spool), "--adopt-all")
    assert adopted.returncode == 0, adopted.stderr
    assert adopted.stdout.startswith("replayed 3 events")
    assert sorted(int(row[0]) for row in db.sql(
        "SELECT JSON_VALUE(event_data, '$.moved') FROM event_log")) == [1, 2, 3]
    again = cli("replay", "--url-file", url_file, "--spool-dir", str(spool), "--adopt-all")
    assert again.stdout.startswith("replayed 0 events") and db.count_events() == 3


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal_and_only_after_a_second(monkeypatch):
    pipe, terminal = io.StringIO(), FakeTerminal()
    for stream in (pipe, terminal):
        with _progress.Progress("work", 10, stream=stream) as progress:
            progress.update(5)  # under a second: nothing yet
    assert pipe.getvalue() == "" and terminal.getvalue() == ""
    monkeypatch.setattr(_progress, "SHOW_AFTER_S", 0.0)
    for stream in (pipe, terminal):
        with _progress.Progress("work", 10, stream=stream) as progress:
            progress.update(5, "half")
    assert pipe.getvalue() == ""
    assert "work [" in terminal.getvalue() and " 50% half" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")  # the bar is erased at the end


def test_activity_redraws_the_seconds_on_a_terminal_only(monkeypatch):
    monkeypatch.setattr(_progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.setattr(_progress.Activity, "REDRAW_S", 0.01)
    pipe, terminal = io.StringIO(), FakeTerminal()
    for stream in (pipe, terminal):
        with _progress.Activity("starting MariaDB", stream=stream) as activity:
            deadline = time.monotonic() + 10
            while stream is terminal and "starting MariaDB 0 s" not in stream.getvalue():
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert not activity.thread.is_alive()
    assert pipe.getvalue() == ""
    assert terminal.getvalue().endswith("\r\x1b[K")

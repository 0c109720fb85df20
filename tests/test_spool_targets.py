"""Every spool line carries its target (server, database, table; never the
password), and a replay writes each line only into its own target: loggers
with different tables or databases can share a spool directory."""

import glob
import json
import os

from querybook_eventlog import DBEventLogger, _core
from querybook_eventlog._url import parse_database_url

OPTIONS = dict(connect_timeout=1, backoff_initial=0.05, backoff_max=0.3, flush_interval=0.02)


def private_dir(path):
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    return str(path)


def spool_files(spool):
    return sorted(glob.glob(os.path.join(spool, "qbel-*.spool")))


def spool_lines(spool):
    return [json.loads(line) for path in spool_files(spool) for line in open(path)]


def seqs(server, table="event_log", database="querybook"):
    """Every seq in `database`.`table`, with repeats."""
    return sorted(int(seq) for (seq,) in server.sql(
        f"SELECT JSON_VALUE(event_data, '$.seq') FROM `{table}`", database=database))


def add_targets(server):
    """`other_events` beside event_log, and a database `otherdb` with its
    own event_log, each with its marker table; the URL of otherdb."""
    server.sql("CREATE TABLE other_events LIKE event_log; "
               + DBEventLogger.marker_table_ddl("other_events"))
    server.sql("CREATE DATABASE otherdb; "
               "CREATE TABLE otherdb.event_log LIKE querybook.event_log; "
               "USE otherdb; " + DBEventLogger.marker_table_ddl("event_log") + "; "
               "GRANT ALL PRIVILEGES ON otherdb.* TO 'qbel'@'%'; "
               "GRANT ALL PRIVILEGES ON otherdb.* TO 'qbel'@'localhost';")
    return server.url.replace("/querybook?", "/otherdb?")


def target_of(url, table="event_log"):
    parts = parse_database_url(url)
    return f"mysql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['database']}#{table}"


def test_three_targets_share_a_spool_dir_and_each_gets_exactly_its_own(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    other_url = add_targets(server)
    spool = private_dir(tmp_path / "spool")
    targets = [(server.url, "event_log", "querybook", 0),
               (server.url, "other_events", "querybook", 10000),
               (other_url, "event_log", "otherdb", 20000)]
    server.kill()  # everything logged now goes to the spool
    for url, table, _, base in targets:
        # "memory": this is about spool files' lines (a journal chunk holds
        # one target, its header's; see test_cli_commands' replay test)
        logger = DBEventLogger(url, table=table, spool_dir=spool, max_queue_bytes=8192,
                               durability="memory", **OPTIONS)
        for seq in range(base, base + 300):
            logger.log(uid=seq % 100 + 1, event_type="CLICK", event_data={"seq": seq})
        logger.close(timeout=0)
        assert logger.stats()["dropped"] == 0
    lines = spool_lines(spool)
    assert len(lines) == 900
    by_target = {}
    for line in lines:
        by_target.setdefault(line["target"], set()).add(line["event_data"]["seq"] // 10000)
    assert by_target == {target_of(server.url): {0}, target_of(server.url, "other_events"): {1},
                         target_of(other_url): {2}}
    assert not any("p@ss" in line["target"] for line in lines)

    server.start()
    # one target's replay (the writer's own scan) leaves the others' files alone
    first = DBEventLogger(server.url, table="other_events", spool_dir=spool, **OPTIONS)
    first.log(uid=1, event_type="VIEW", event_data={"seq": 19999})
    assert first.flush(timeout=60)
    first.close(timeout=30)
    assert seqs(server, "other_events") == list(range(10000, 10300)) + [19999]
    assert seqs(server) == [] and seqs(server, database="otherdb") == []
    assert {line["target"] for line in spool_lines(spool)} == {target_of(server.url),
                                                                 target_of(other_url)}
    # the replay command for each of the others
    assert _core._replay_spool(parse_database_url(other_url), spool, "event_log") == 300
    assert _core._replay_spool(parse_database_url(server.url), spool, "event_log") == 300
    assert not spool_files(spool)
    assert seqs(server) == list(range(300))
    assert seqs(server, "other_events") == list(range(10000, 10300)) + [19999]
    assert seqs(server, database="otherdb") == list(range(20000, 20300))


def line(seq, target=None, batch="", uid=1):
    fields = {"created_at": "2023-11-14T22:13:20.123456+00:00", "uid": uid,
              "event_type": "CLICK", "batch": batch}
    if target is not None:
        fields["target"] = target
    fields["event_data"] = {"seq": seq}
    return json.dumps(fields, separators=(",", ":")) + "\n"


def test_a_mixed_file_is_split_exactly_once_even_after_a_crash(fresh_mariadb, tmp_path):
    """A file with lines for two targets (and old lines with none): each
    replay writes its own, moves the other target's lines to a file of
    their own with their group ids spelled out.  A crash between the move
    and the unlink (simulated by putting the old file back) doubles
    nothing: the moved lines keep the batch ids of their groups."""
    server = fresh_mariadb
    add_targets(server)
    spool = private_dir(tmp_path / "spool")
    mine, theirs = target_of(server.url), target_of(server.url, "other_events")
    mixed = os.path.join(spool, "qbel-20200101000000-1-00000000000000d1.spool")
    text = "".join(
        [line(seq, mine) for seq in range(0, 1500)]           # groups 0 and 1
        + [line(seq, theirs) for seq in range(10000, 11000)]  # groups 1 and 2
        + [line(seq) for seq in range(1500, 1600)]            # old format: the replayer's
        + [line(seq, theirs, batch="abc-1-7") for seq in range(11000, 11010)])
    with open(mixed, "w") as out:
        out.write(text)
    parts = parse_database_url(server.url)
    # the other table's logger first: its lines and the old ones go to other_events
    assert _core._replay_spool(parts, spool, "other_events") == 1010 + 100
    assert not os.path.exists(mixed)
    moved = spool_lines(spool)
    assert len(moved) == 1500 and {line["target"] for line in moved} == {mine}
    assert {line["batch"] for line in moved} == {"s:20200101000000-1-00000000000000d1:0",
                                                 "s:20200101000000-1-00000000000000d1:1"}
    # crash before the unlink: the old file is back
    with open(mixed, "w") as out:
        out.write(text)
    assert _core._replay_spool(parts, spool, "other_events") == 0  # all committed already
    assert _core._replay_spool(parts, spool, "event_log") == 1500  # once, from either copy
    assert _core._replay_spool(parts, spool, "event_log") == 0
    assert not spool_files(spool)
    assert seqs(server) == list(range(1500))
    assert seqs(server, "other_events") == (list(range(1500, 1600)) + list(range(10000, 11010)))


def test_a_file_only_for_another_target_is_left_as_it_is(db, tmp_path):
    spool = private_dir(tmp_path / "spool")
    foreign = os.path.join(spool, "qbel-20200101000000-1-00000000000000d2.spool")
    content = "".join(line(seq, "mysql://someone@elsewhere:3306/db#event_log")
                      for seq in range(5))
    with open(foreign, "w") as out:
        out.write(content)
    before = os.stat(foreign)
    assert _core._replay_spool(parse_database_url(db.url), spool, "event_log") == 0
    assert open(foreign).read() == content and os.stat(foreign).st_ino == before.st_ino
    assert seqs(db) == []
    # adopt_all: on purpose, into this target
    assert _core._replay_spool(parse_database_url(db.url), spool, "event_log", True) == 5
    assert seqs(db) == list(range(5)) and not spool_files(spool)


def test_dead_letters_carry_their_target(db, tmp_path):
    spool = private_dir(tmp_path / "spool")
    logger = DBEventLogger(db.url, spool_dir=spool, **OPTIONS)
    logger.log(uid=999, event_type="CLICK", event_data={"seq": 1})  # no such user: rejected
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 2})
    assert logger.flush(timeout=30)
    logger.close(timeout=10)
    letters = [json.loads(text) for path in glob.glob(os.path.join(spool, "qbel-dead-*.jsonl"))
               for text in open(path)]
    assert [(letter["target"], letter["event_data"]) for letter in letters] == [
        (target_of(db.url), {"seq": 1})]
    assert "p@ss" not in json.dumps(letters)
    assert seqs(db) == [2]

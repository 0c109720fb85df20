"""A spool that only its owner can touch (issue 7, findings 1 and 2): replay
trusts only regular files owned by the effective uid, opened O_NOFOLLOW |
O_NONBLOCK and checked with fstat; anything else in the spool directory is
skipped, reported once, and never blocks the files after it; a spool
directory must be ours and not writable by group or others (ValueError at
construction for an explicit one that exists, a counted spool failure for
the default); the default lives in a per-user location.  Another user is
simulated with os.chown (the tests run as root in CI).  Real MariaDB
servers, no mocks."""

import glob
import os
import threading

import pytest

from querybook_eventlog import DBEventLogger, _core
from querybook_eventlog._url import parse_database_url

UNREACHABLE = "mysql://u:hunter2@127.0.0.1:1/db"
OTHER_UID = 12345

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def spool_line(uid, seq):
    return ('{"created_at":"2023-11-14T22:13:20.123456+00:00","uid":%d,"event_type":"CLICK",'
            '"batch":"","event_data":{"seq":%d}}\n' % (uid, seq))


def write_spool(path, seqs, uid=1):
    with open(path, "w") as out:
        out.writelines(spool_line(uid, seq) for seq in seqs)


def rows(db):
    return int(db.sql("SELECT COUNT(*) FROM event_log")[0][0])


def seqs(db):
    return sorted(int(seq) for (seq,) in
                  db.sql("SELECT JSON_VALUE(event_data, '$.seq') FROM event_log"))


def replay(db, spool, timeout=60.0):
    """_replay_spool in a thread, so that a FIFO that blocked it fails the
    test instead of hanging it.  (count, exception)."""
    result = {}

    def run():
        try:
            result["count"] = _core._replay_spool(parse_database_url(db.url), str(spool),
                                                  "event_log")
        except Exception as error:  # noqa: BLE001 - handed to the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "replay blocked"
    return result.get("count"), result.get("error")


def private_dir(path):
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    return path


# ---- replay trusts only our own regular files -------------------------------


@needs_root
def test_planted_file_of_another_uid_is_not_replayed(db, tmp_path):
    spool = private_dir(tmp_path / "spool")
    planted = spool / "qbel-20200101000000-1-00000000000000aa.spool"
    write_spool(planted, range(3), uid=42)
    os.chown(planted, OTHER_UID, OTHER_UID)
    count, error = replay(db, spool)
    assert rows(db) == 0
    assert planted.exists()  # left where it is
    assert error is not None and "owned by another user" in str(error)
    assert str(planted) in str(error)


def test_directory_and_fifo_named_like_spool_files_are_skipped(db, tmp_path):
    spool = private_dir(tmp_path / "spool")
    # in sort order: a long name, an unparsable one, a directory, a FIFO,
    # then two valid files that must still be replayed
    long_name = spool / ("qbel-" + "0" * 200 + ".spool")
    long_name.write_text(spool_line(1, 900))
    (spool / "qbel-0.spool").write_text(spool_line(1, 901))
    (spool / "qbel-20200101000000-1-00000000000000a0.spool").mkdir()
    fifo = spool / "qbel-20200101000000-1-00000000000000a1.spool"
    os.mkfifo(fifo)
    write_spool(spool / "qbel-20200101000000-1-00000000000000a2.spool", range(0, 5))
    write_spool(spool / "qbel-20200101000001-1-00000000000000a3.spool", range(5, 10))
    count, error = replay(db, spool)
    assert seqs(db) == list(range(10))
    assert error is not None and "skipped" in str(error) and "more" in str(error)
    # the valid files are done; the odd entries are left in place
    assert sorted(os.path.basename(name) for name in glob.glob(str(spool / "qbel-*"))) == sorted(
        [long_name.name, "qbel-0.spool", "qbel-20200101000000-1-00000000000000a0.spool",
         fifo.name])
    # reported once per process: the next scan is clean
    write_spool(spool / "qbel-20200101000002-1-00000000000000a4.spool", range(10, 12))
    count, error = replay(db, spool)
    assert error is None and count == 2
    assert seqs(db) == list(range(12))


def test_symlinked_spool_file_is_not_followed(db, tmp_path):
    spool = private_dir(tmp_path / "spool")
    outside = tmp_path / "outside.jsonl"
    write_spool(outside, range(4), uid=42)
    link = spool / "qbel-20200101000000-1-00000000000000b0.spool"
    os.symlink(outside, link)
    write_spool(spool / "qbel-20200101000001-1-00000000000000b1.spool", range(100, 102))
    count, error = replay(db, spool)
    assert seqs(db) == [100, 101]
    assert error is not None and "symbolic link" in str(error)
    assert link.is_symlink() and outside.read_text().count("\n") == 4


def test_writer_thread_skips_odd_entries_and_reports_them(db, tmp_path):
    """The writer's own scan: the FIFO and directory never block it, the
    valid file after them is replayed, last_error names what was skipped."""
    spool = private_dir(tmp_path / "spool")
    (spool / "qbel-20200101000000-1-00000000000000c0.spool").mkdir()
    os.mkfifo(spool / "qbel-20200101000000-1-00000000000000c1.spool")
    write_spool(spool / "qbel-20200101000000-1-00000000000000c2.spool", range(3))
    logger = DBEventLogger(db.url, spool_dir=str(spool), flush_interval=0.01, backoff_max=0.2)
    try:
        logger.log(uid=1, event_type="CLICK", event_data={"seq": 50})
        assert logger.flush(timeout=30)
        import time
        deadline = time.monotonic() + 30
        while rows(db) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seqs(db) == [0, 1, 2, 50]
        error = logger.stats()["last_error"]
        assert error is not None and "skipped" in error
    finally:
        assert logger.close(timeout=30) is not False


# ---- the spool directory must be ours ---------------------------------------


def test_group_or_other_writable_spool_dir_is_refused_at_construction(tmp_path):
    spool = private_dir(tmp_path / "spool")
    os.chmod(spool, 0o777)
    with pytest.raises(ValueError) as raised:
        DBEventLogger(UNREACHABLE, spool_dir=str(spool))
    assert str(spool) in str(raised.value) and "writable by group or others" in str(raised.value)
    assert "hunter2" not in str(raised.value)
    os.chmod(spool, 0o770)
    with pytest.raises(ValueError):
        DBEventLogger(UNREACHABLE, spool_dir=spool)  # a PathLike too
    os.chmod(spool, 0o700)
    DBEventLogger(UNREACHABLE, spool_dir=spool).close(timeout=0)


@needs_root
def test_spool_dir_of_another_uid_is_refused_at_construction(tmp_path):
    spool = private_dir(tmp_path / "spool")
    os.chown(spool, OTHER_UID, OTHER_UID)
    with pytest.raises(ValueError) as raised:
        DBEventLogger(UNREACHABLE, spool_dir=str(spool))
    assert str(spool) in str(raised.value) and "another user" in str(raised.value)


def test_symlinked_or_non_directory_spool_dir_is_refused_at_construction(tmp_path):
    real = private_dir(tmp_path / "real")
    link = tmp_path / "link"
    os.symlink(real, link)
    with pytest.raises(ValueError, match="symbolic link"):
        DBEventLogger(UNREACHABLE, spool_dir=str(link))
    regular = tmp_path / "file"
    regular.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        DBEventLogger(UNREACHABLE, spool_dir=str(regular))


@pytest.mark.parametrize("durability, kept_in", [("memory", "qbel-*.spool"),
                                                   ("process", "qbel-*.journal")])
def test_default_spool_dir_is_per_user_and_private(tmp_path, monkeypatch, durability, kept_in):
    """The event left at close is in the per-user default dir: a spool file
    ("memory") or the journal chunk it was in ("process")."""
    monkeypatch.delenv("QBEL_SPOOL_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    logger = DBEventLogger(UNREACHABLE, connect_timeout=1, backoff_max=0.2, durability=durability)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    logger.close(timeout=0)
    expected = tmp_path / ("querybook_eventlog-%d" % os.geteuid())
    assert str(os.geteuid()) in expected.name
    assert expected.is_dir() and (expected.stat().st_mode & 0o777) == 0o700
    assert len(glob.glob(str(expected / kept_in))) == 1
    assert logger.stats()["spooled"] == 1

    runtime = private_dir(tmp_path / "runtime")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    logger = DBEventLogger(UNREACHABLE, connect_timeout=1, backoff_max=0.2, durability=durability)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 2})
    logger.close(timeout=0)
    assert len(glob.glob(str(runtime / ("querybook_eventlog-%d" % os.geteuid())
                                 / kept_in))) == 1


@needs_root
@pytest.mark.parametrize("durability", ["memory", "process"])
def test_precreated_default_dir_of_another_uid_is_a_counted_failure(tmp_path, monkeypatch, durability):
    monkeypatch.delenv("QBEL_SPOOL_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    planted = tmp_path / ("querybook_eventlog-%d" % os.geteuid())
    planted.mkdir(mode=0o700)
    os.chown(planted, OTHER_UID, OTHER_UID)
    logger = DBEventLogger(UNREACHABLE, connect_timeout=1, backoff_max=0.2,
                           durability=durability)  # constructing is fine
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    logger.close(timeout=0)
    stats = logger.stats()
    assert stats["dropped"] == 1 and stats["spooled"] == 0
    assert stats["last_error"] and "spool" in stats["last_error"]
    assert os.listdir(planted) == []


@pytest.mark.parametrize("durability", ["memory", "process"])
def test_precreated_world_writable_default_dir_is_a_counted_failure(tmp_path, monkeypatch, durability):
    monkeypatch.delenv("QBEL_SPOOL_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    planted = tmp_path / ("querybook_eventlog-%d" % os.geteuid())
    planted.mkdir()
    os.chmod(planted, 0o777)
    logger = DBEventLogger(UNREACHABLE, connect_timeout=1, backoff_max=0.2,
                           durability=durability)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    logger.close(timeout=0)
    stats = logger.stats()
    assert stats["dropped"] == 1 and stats["spooled"] == 0 and stats["last_error"]
    assert os.listdir(planted) == []


def test_runtime_spool_dir_error_names_the_dir_what_was_found_and_what_is_expected(tmp_path):
    """A spool dir made unsafe after construction: the counted failure's
    last_error says which directory, its owner and mode, and what is
    expected (not a bare "Operation not permitted")."""
    spool = private_dir(tmp_path / "spool")
    logger = DBEventLogger(UNREACHABLE, spool_dir=str(spool), max_queue_bytes=4096,
                           connect_timeout=1, backoff_max=0.2)
    os.chmod(spool, 0o777)
    try:
        logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
        logger.close(timeout=0)
        stats = logger.stats()
        assert stats["dropped"] == 1
        error = stats["last_error"]
        assert str(spool) in error and "mode 0777" in error and "writable by group" in error
        assert "owner uid %d" % os.geteuid() in error and "expected" in error
        assert "hunter2" not in error
    finally:
        os.chmod(spool, 0o700)

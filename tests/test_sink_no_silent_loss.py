"""No silent loss: a row the dead-letter file cannot take is counted in
`dropped`, `last_error` (with `last_error_at`) says why, a logging warning
is given; a replay that could not dead-letter keeps its spool file.
last_error is cleared once a batch commits after it.

The dead-letter file is made unwritable for real: as root, the spool dir is
a full tmpfs (ENOSPC; root ignores permissions); otherwise a directory
without write permission (EACCES)."""

import contextlib
import glob
import json
import logging
import os
import subprocess
import time

import pytest

from querybook_eventlog import DBEventLogger, _core
from querybook_eventlog._url import parse_database_url

OPTIONS = dict(connect_timeout=1, backoff_initial=0.05, backoff_max=0.3, flush_interval=0.02)


def fill(path):
    """Write `path` until its file system is full."""
    out = open(path, "wb", buffering=0)
    try:
        while True:
            out.write(b"\0" * 4096)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            out.close()


@contextlib.contextmanager
def unwritable_dir(path):
    """A private spool dir where no file can be written, and a function that
    makes it writable again."""
    path.mkdir(mode=0o700)
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k,mode=0700", "tmpfs", str(path)],
                       check=True)
        filler = path / "filler"
        fill(filler)

        def make_writable():
            filler.unlink()
        try:
            yield str(path), make_writable
        finally:
            subprocess.run(["umount", "-l", str(path)], check=True)
    else:
        os.chmod(path, 0o500)

        def make_writable():
            os.chmod(path, 0o700)
        try:
            yield str(path), make_writable
        finally:
            os.chmod(path, 0o700)


def seqs(db):
    return sorted(int(seq) for (seq,) in
                  db.sql("SELECT JSON_VALUE(event_data, '$.seq') FROM event_log"))


def test_a_rejected_row_the_dead_letter_file_cannot_take_is_counted_and_warned(
        db, tmp_path, caplog):
    with unwritable_dir(tmp_path / "spool") as (spool, make_writable):
        logger = DBEventLogger(db.url, spool_dir=spool, **OPTIONS)
        try:
            with caplog.at_level(logging.WARNING, logger="querybook_eventlog"):
                logger.log(uid=999, event_type="CLICK", event_data={"seq": 1})  # rejected (FK)
                logger.log(uid=1, event_type="CLICK", event_data={"seq": 2})
                assert logger.flush(timeout=30)
                stats = logger.stats()
            assert (stats["written"], stats["dead_lettered"], stats["dropped"]) == (1, 0, 1)
            assert "dead-letter" in stats["last_error"] and "dropped" in stats["last_error"]
            assert abs(stats["last_error_at"] - time.time()) < 60
            warnings = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
            assert len(warnings) == 1 and "1 event(s)" in warnings[0], caplog.text
            assert "p@ss" not in warnings[0]
            assert seqs(db) == [2]
            # recovery: the next batch commits, and last_error goes
            make_writable()
            logger.log(uid=1, event_type="CLICK", event_data={"seq": 3})
            assert logger.flush(timeout=30)
            stats = logger.stats()
            assert stats["last_error"] is None and stats["last_error_at"] is None
            assert stats["dropped"] == 1  # a count, never reset
        finally:
            logger.close(timeout=10)
    assert seqs(db) == [2, 3]


def spool_line(seq, uid=1):
    return ('{"created_at":"2023-11-14T22:13:20.123456+00:00","uid":%d,"event_type":"CLICK",'
            '"batch":"","event_data":{"seq":%d}}\n' % (uid, seq))


def test_a_replay_that_cannot_dead_letter_keeps_its_file(db, tmp_path):
    with unwritable_dir(tmp_path / "spool") as (spool, make_writable):
        make_writable()
        path = os.path.join(spool, "qbel-20200101000000-1-00000000000000e1.spool")
        with open(path, "w") as out:
            out.write(spool_line(1) + "not a spool line\n" + spool_line(2, uid=999)
                      + spool_line(3))
        # full again (or read-only): the dead letters cannot be written
        if os.geteuid() == 0:
            fill(os.path.join(spool, "filler"))
        else:
            os.chmod(spool, 0o500)
        parts = parse_database_url(db.url)
        with pytest.raises(RuntimeError, match="dead-letter") as raised:
            _core._replay_spool(parts, spool, "event_log")
        assert "dropped" in str(raised.value)
        assert os.path.exists(path)  # kept: its bad line is not dead-lettered yet
        assert seqs(db) == [1, 3]
        make_writable()
        assert _core._replay_spool(parts, spool, "event_log") == 0  # committed before
        assert not os.path.exists(path)
        letters = [json.loads(text) for name in glob.glob(os.path.join(spool, "qbel-dead-*"))
                   for text in open(name)]
        assert [letter.get("raw") for letter in letters] == ["not a spool line"]
    assert seqs(db) == [1, 3]

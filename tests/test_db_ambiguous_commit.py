"""The ambiguous commit: COMMIT reaches the server, its reply never reaches
the writer (the connection is cut right after the COMMIT is sent, by the
test-only fault QBEL_TEST_DROP_AFTER_COMMIT).  The server has committed; the
writer cannot know, reconnects, finds the batch's marker row and must not
write the batch again."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_db_faults import assert_exactly  # noqa: E402

from querybook_eventlog import DBEventLogger  # noqa: E402


def make_logger(server, spool, monkeypatch, every):
    monkeypatch.setenv("QBEL_TEST_DROP_AFTER_COMMIT", str(every))
    logger = DBEventLogger(server.url, spool_dir=spool, batch_size=100, flush_interval=0.01,
                           backoff_initial=0.01, backoff_max=0.1)
    monkeypatch.delenv("QBEL_TEST_DROP_AFTER_COMMIT")
    return logger


def test_every_commit_cut_writes_each_batch_once(db, tmp_path, monkeypatch):
    logger = make_logger(db, str(tmp_path), monkeypatch, every=1)
    total = 3000
    for seq in range(total):
        logger.log(uid=seq % 100 + 1, event_type="VIEW", event_data={"seq": seq})
    assert logger.flush(timeout=120)
    stats = logger.stats()
    logger.close()
    # every COMMIT lost its reply, so every batch needed a reconnect and a
    # marker check; none was retried into a second copy
    assert stats["reconnects"] >= stats["batches"] >= total // 100
    assert stats["written"] == total
    assert stats["dead_lettered"] == 0 and stats["dropped"] == 0
    assert_exactly(db, range(total))
    markers = db.sql("SELECT COUNT(*) FROM event_log_qbel_batches")[0][0]
    assert int(markers) == stats["batches"]


def test_cut_commits_with_poison_rows_dead_letter_once(db, tmp_path, monkeypatch):
    logger = make_logger(db, str(tmp_path), monkeypatch, every=2)
    good = []
    for seq in range(1000):
        uid = 999 if seq % 97 == 0 else seq % 100 + 1  # uid 999 breaks the foreign key
        if uid != 999:
            good.append(seq)
        logger.log(uid=uid, event_type="CLICK", event_data={"seq": seq})
    assert logger.flush(timeout=120)
    stats = logger.stats()
    logger.close()
    assert_exactly(db, good)
    assert stats["dead_lettered"] == 1000 - len(good)
    dead = [line for name in os.listdir(tmp_path) if name.startswith("qbel-dead-")
            for line in open(os.path.join(tmp_path, name))]
    assert len(dead) == 1000 - len(good)
    assert all("1452" in line for line in dead)

"""Shared fixtures: a real MariaDB server started by the tests themselves
(querybook_eventlog.testing, through the package's pytest plugin, whose
qbel_mariadb and qbel_event_log are `mariadb` and `db` here);
QBEL_TEST_MYSQL_URL points them at another server.

    mariadb        session: the shared server (restarted/resumed if a test killed or paused it)
    db             function: `mariadb`, running, with event_log and its marker table emptied
    fresh_mariadb  function: a separate private server of its own, to kill, pause and restart

Two run-wide policies live here too:

  * No silent skips.  With CI set (CI=true, as CI services set it) or
    QBEL_NO_SKIPS=1, a skipped test FAILS the run, whatever skipped it (a
    fixture, pytest.skip, a skipif marker, a skipped module), unless the test
    is in ALLOWED_SKIPS below (or marked `allowed_skip`) and that entry's
    condition holds.  Outside CI a skip stays a skip (a local run against
    QBEL_TEST_MYSQL_URL legitimately skips the kill/pause tests).
  * Reproducible hypothesis runs.  Under CI the "qbel-ci" profile is loaded:
    derandomize=True (examples derived from each test, the same on every run)
    and no example database.  Elsewhere one seed is drawn for the run (or taken
    from QBEL_HYPOTHESIS_SEED / --hypothesis-seed) and printed at the end.
"""

import os
import random
import sys

import pytest
from hypothesis import settings as hypothesis_settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app_event_type import QuerybookEventType  # noqa: E402
from mariadb_server import MariaDBServer  # noqa: E402

from querybook_eventlog import pytest_plugin  # noqa: E402

# ---- no silent skips ---------------------------------------------------------


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def no_skip_policy():
    """Why skips fail this run ("CI=true", "QBEL_NO_SKIPS=1"), or None."""
    reasons = [f"{name}={os.environ[name]}" for name in ("CI", "QBEL_NO_SKIPS") if _flag(name)]
    return " and ".join(reasons) or None


def running_under_asan():
    return "asan" in os.environ.get("LD_PRELOAD", "") or _flag("QBEL_SANITIZED")


LIBASAN_FORK_REASON = (
    "a failure inside Debian 12's libasan (GCC 12), not a report about our code: in a "
    "forked child, librdkafka's new broker thread passes getaddrinfo a buffer on its "
    "stack, ASan takes it for poisoned (most likely the stale shadow of a parent "
    "thread's stack that glibc reuses in the child) and then aborts on its own CHECK "
    "(asan_thread.cpp:371, kCurrentStackFrameMagic) while describing it; about 1 run "
    "in 6.  The release, 3.10 and newest-Python passes run it"
)


# Tests that count the C core's live allocations (tests/test_c_leaks.py's
# `live` fixture) skip in a release build.
LIVE_COUNTER_ALLOWANCE = (
    "the live-allocation counter exists only in test builds; the sanitizer pass is one "
    "(QBEL_REQUIRE_TEST_HOOKS=1) and there these fail instead of skipping",
    lambda: os.environ.get("QBEL_REQUIRE_TEST_HOOKS") != "1",
)


# Skips that stay legitimate under the no-skip policy: "file::test" -> (why,
# condition).  The skip is allowed only while condition() is true; anywhere
# else it fails the run like any other.  Keep this list short and explained.
ALLOWED_SKIPS = {
    "test_encoder_alloc.py::test_out_of_memory_raises_memory_error": (
        "RLIMIT_AS cannot make malloc fail in a process whose ASan runtime reserves "
        "terabytes of shadow memory; the normal (unsanitized) pass runs it",
        running_under_asan,
    ),
    "test_c_leaks.py::test_rss_flat_over_a_million_calls_past_the_stack_buffer": (
        "RSS means nothing under ASan (quarantine, shadow memory); the release, 3.10 and "
        "newest-Python passes run it",
        running_under_asan,
    ),
    "test_kafka_logger.py::test_a_forked_child_logs_through_its_own_producer": (
        LIBASAN_FORK_REASON, running_under_asan),
    "test_kafka_transactions.py::test_a_forked_child_does_not_fence_its_parent": (
        LIBASAN_FORK_REASON, running_under_asan),
    # A whole file: "file::*" (a test's own entry above wins).
    "test_c_leaks.py::*": LIVE_COUNTER_ALLOWANCE,
    "test_kafka_close_detached.py::*": LIVE_COUNTER_ALLOWANCE,
    "test_fanout_leaks.py::test_fan_out_db_and_kafka_balanced": LIVE_COUNTER_ALLOWANCE,
    "test_sanitizer_pass.py::*": (
        "checks of the sanitizer pass itself, which run in that pass (QBEL_SANITIZED=1)",
        lambda: not _flag("QBEL_SANITIZED"),
    ),
}


def _allowed_skip(item):
    """The reason `item` may skip under the policy, or None."""
    marker = item.get_closest_marker("allowed_skip")
    if marker is not None:
        reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
        if not reason:
            raise pytest.UsageError(f"{item.nodeid}: allowed_skip needs a reason")
        return reason
    key = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
    entry = ALLOWED_SKIPS.get(key) or ALLOWED_SKIPS.get(f"{item.path.name}::*")
    if entry is not None and entry[1]():
        return entry[0]
    return None


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _refuse_skip(report, policy, what):
    report.outcome = "failed"
    report.longrepr = (
        f"{what} SKIPPED, and skips fail this run ({policy}): {_skip_reason(report)}\n"
        "(a skip in CI hides the test: unset QBEL_TEST_MYSQL_URL so that CI uses its private "
        "MariaDB servers, or list a legitimate skip, with its reason, in ALLOWED_SKIPS in "
        "tests/conftest.py)"
    )


_refused = []
_allowed = []
_stale_allowances = []


def pytest_collection_modifyitems(session, config, items):
    """An ALLOWED_SKIPS entry whose file was collected but whose test was not
    (renamed, removed) is reported: it would silently stop allowing anything."""
    files = {item.path.name for item in items}
    keys = {f"{item.path.name}::{getattr(item, 'originalname', item.name)}" for item in items}
    _stale_allowances[:] = [key for key in ALLOWED_SKIPS if not key.endswith("::*")
                            and key.split("::")[0] in files and key not in keys]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return  # an xfail ran the test: it is not a skip
    policy = no_skip_policy()
    if policy is None:
        return
    allowed = _allowed_skip(item)
    if allowed is not None:
        _allowed.append(f"{item.nodeid}: {allowed}")
        return
    _refused.append(item.nodeid)
    _refuse_skip(report, policy, "test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    policy = no_skip_policy()
    if report.skipped and policy is not None:  # a module-level skip / importorskip
        _refused.append(collector.nodeid)
        _refuse_skip(report, policy, "module")


# ---- reproducible hypothesis -------------------------------------------------

hypothesis_settings.register_profile("qbel-ci", derandomize=True, database=None,
                                     print_blob=True)
_hypothesis_seed = {"value": None}


@pytest.hookimpl(tryfirst=True)  # before hypothesis' own pytest_configure reads the seed
def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "allowed_skip(reason): this test may skip even under the no-skip policy "
        "(CI=true / QBEL_NO_SKIPS=1); reason says why that is legitimate",
    )
    if _flag("CI"):
        hypothesis_settings.load_profile("qbel-ci")
        return
    seed = config.getoption("hypothesis_seed", None) or os.environ.get("QBEL_HYPOTHESIS_SEED")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    config.option.hypothesis_seed = str(seed)
    _hypothesis_seed["value"] = str(seed)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    write = terminalreporter.write_line
    if _hypothesis_seed["value"] is not None:
        write(f"hypothesis seed {_hypothesis_seed['value']} (the same examples again: "
              f"QBEL_HYPOTHESIS_SEED={_hypothesis_seed['value']})")
    else:
        write("hypothesis: profile qbel-ci (derandomize=True, no example database)")
    policy = no_skip_policy()
    if policy is not None:
        write(f"no-skip policy ({policy}): {len(_refused)} skip(s) failed the run, "
              f"{len(_allowed)} allowed")
        for line in _allowed:
            write(f"  allowed skip: {line}")
    for key in _stale_allowances:
        write(f"ALLOWED_SKIPS in tests/conftest.py names no collected test: {key}")


# ---- MariaDB fixtures -----------------------------------------------------------

# The package's pytest plugin owns the shared server and the emptied table;
# bound here, its fixtures are this conftest's whether or not the plugin is
# loaded, and the suite knows them as `mariadb` and `db`.
qbel_mariadb = pytest_plugin.qbel_mariadb
qbel_event_log = pytest_plugin.qbel_event_log


@pytest.fixture(scope="session")
def mariadb(qbel_mariadb):
    return qbel_mariadb


@pytest.fixture
def db(qbel_event_log):
    return qbel_event_log


@pytest.fixture
def app_event_type():
    """Querybook's EventType as the application's, for the test's duration."""
    from querybook_eventlog import _core

    _core._set_application_event_type(QuerybookEventType)
    try:
        yield QuerybookEventType
    finally:
        _core._set_application_event_type(None)


@pytest.fixture
def fresh_mariadb():
    if os.environ.get("QBEL_TEST_MYSQL_URL"):
        pytest.skip("needs a private MariaDB server; QBEL_TEST_MYSQL_URL is set")
    server = MariaDBServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session", autouse=True)
def private_default_spool_dir(tmp_path_factory):
    """A logger made without spool_dir must not share the machine's default
    spool directory with other runs (it would replay their files)."""
    previous = os.environ.get("QBEL_SPOOL_DIR")
    os.environ["QBEL_SPOOL_DIR"] = str(tmp_path_factory.mktemp("default-spool"))
    yield
    if previous is None:
        os.environ.pop("QBEL_SPOOL_DIR", None)
    else:
        os.environ["QBEL_SPOOL_DIR"] = previous


# ---- test-only fault injection ------------------------------------------------
# QBEL_TEST_DROP_AFTER_COMMIT and QBEL_TEST_TEXT_INSERT are read only by test
# builds (QBEL_TEST_BUILD=1: the sanitizer pass, whose QBEL_REQUIRE_TEST_HOOKS=1
# makes these fail instead of skipping); a release build has no such code, so the
# tests that need it skip there -- allowed, and said so, never silently.  Keys:
# "file::test" (every parametrisation) or "file::test[param]".
FAULT_INJECTION_TESTS = (
    "test_db_ambiguous_commit.py::test_every_commit_cut_writes_each_batch_once",
    "test_db_ambiguous_commit.py::test_cut_commits_with_poison_rows_dead_letter_once",
    "test_db_dropin.py::test_without_marker_an_ambiguous_commit_is_retried_then_exactly_once",
    "test_db_dropin.py::test_replayed_null_event_data_is_sql_null_in_every_insert_path[text]",
    "test_db_dropin.py::test_logged_values_of_any_json_type_and_none_as_sql_null[text]",
    "test_db_dropin.py::test_batches_split_to_fit_max_allowed_packet[text]",
)
FAULT_INJECTION_REASON = (
    "test-only fault injection (QBEL_TEST_DROP_AFTER_COMMIT / QBEL_TEST_TEXT_INSERT) exists "
    "only in test builds; the sanitizer pass (a test build) runs it")


def _release_build():
    from querybook_eventlog import _core

    return (not hasattr(_core, "_live_allocations")
            and os.environ.get("QBEL_REQUIRE_TEST_HOOKS") != "1")


def _needs_fault_injection(item):
    key = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
    return key in FAULT_INJECTION_TESTS or f"{item.path.name}::{item.name}" in FAULT_INJECTION_TESTS


for _name in FAULT_INJECTION_TESTS:
    ALLOWED_SKIPS.setdefault(_name.split("[")[0], (FAULT_INJECTION_REASON, _release_build))


@pytest.fixture(autouse=True)
def _fault_injection_needs_a_test_build(request):
    if _needs_fault_injection(request.node) and _release_build():
        pytest.skip(FAULT_INJECTION_REASON)
    yield


ALLOWED_SKIPS["test_queue_memory.py::test_rss_goes_back_after_close_and_stays_under_the_bound"] = (
    "RSS means nothing under ASan (quarantine, shadow memory); the release passes run it",
    running_under_asan,
)

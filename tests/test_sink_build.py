"""Nothing test-only in the shipped build: the fault-injection knobs exist
in test builds (QBEL_TEST_BUILD=1) and nowhere else."""

from querybook_eventlog import _core

KNOBS = (b"QBEL_TEST_DROP_AFTER_COMMIT", b"QBEL_TEST_TEXT_INSERT", b"(injected)")


def test_fault_injection_is_compiled_into_test_builds_only():
    with open(_core.__file__, "rb") as library:
        binary = library.read()
    test_build = hasattr(_core, "_live_allocations")
    for knob in KNOBS:
        assert (knob in binary) == test_build, knob

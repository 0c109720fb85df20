"""Crashes found by review, each with the input that caused it (issue 7, item 4).

A dict subclass's items() may return a list it keeps (PyMapping_Items hands
an exact list back as it is) and clear it while one of its pairs is being
encoded or pruned; the pair, and so its key and value, must stay alive.  The
sanitizer pass turns a use-after-free here into a report that fails the run."""

import gc

import pytest

import querybook_eventlog as qe


def clearing_params(fail_inner=False):
    """A dict subclass whose kept items() list is cleared by its own values."""
    kept = []

    class Inner(dict):
        def items(self):
            kept.clear()  # drops the only references to the pairs, keys and values
            gc.collect()
            if fail_inner:
                return [("bad", object())]
            return [("s", "w" * 200)]

    class Outer(dict):
        def items(self):
            kept[:] = [("".join(["k", str(i)] * 5), Inner(a=1)) for i in range(4)]
            return kept

    return Outer(a=1)


def test_dumps_holds_pairs_of_a_kept_items_list():
    encoded = qe.dumps({"params": clearing_params()})
    assert encoded == b'{"params":{"k0k0k0k0k0":{"s":"' + b"w" * 200 + b'"}}}'


def test_dumps_error_path_names_a_key_of_a_cleared_items_list():
    with pytest.raises(TypeError, match=r'k0k0k0k0k0.*bad|bad.*k0k0k0k0k0'):
        qe.dumps({"params": clearing_params(fail_inner=True)})


def test_pruning_holds_pairs_of_a_kept_items_list():
    recorded = []

    class Recorder(qe.BaseEventLogger):
        @property
        def logger_name(self):
            return "recorder"

        def log(self, uid, event_type, event_data, timestamp=None):
            recorded.append(event_data)

    Recorder().log_api_request(uid=1, route="/q/", method="POST", params=clearing_params())
    assert recorded == [{"method": "POST", "route": "/q/",
                         "params": {"k0k0k0k0k0": {"s": "w" * 128 + "..."}}}]

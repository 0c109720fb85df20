"""Builtin loggers behave like Python objects: an instance __dict__, so that
unittest.mock.patch.object(logger, "log") and instance-level overrides are
honoured by log_api_request, log_websocket_event and log_client_events."""

import gc
import io
import json
import sys
import weakref
from unittest import mock

import pytest

import querybook_eventlog as qe
from querybook_eventlog import EventType


def builtin_loggers():
    return [
        qe.NullEventLogger(),
        qe.ConsoleEventLogger(io.StringIO(), format="jsonl"),
        qe.ConsoleEventLogger(logger=mock.Mock()),
        qe.DBEventLogger("mysql://user:secret@127.0.0.1:1/querybook", spool_dir=None),
    ]


class Plugin(qe.BaseEventLogger):
    logger_name = "plugin"

    def log(self, uid, event_type, event_data, timestamp=None):
        self.last = (uid, event_type, event_data, timestamp)


@pytest.mark.parametrize("logger", builtin_loggers() + [Plugin()], ids=repr)
def test_instance_dict(logger):
    assert logger.__dict__ == {}
    logger.note = "x"
    assert vars(logger) == {"note": "x"}
    logger.__dict__ = {"other": 1}
    assert logger.other == 1 and not hasattr(logger, "note")
    with pytest.raises(TypeError):
        logger.__dict__ = ["not", "a", "dict"]
    del logger.other
    assert logger.__dict__ == {}
    assert type(logger).__dictoffset__ > 0


@pytest.mark.parametrize("logger", builtin_loggers(), ids=repr)
def test_patch_object_log_is_called(logger):
    with mock.patch.object(logger, "log") as patched:
        logger.log_api_request(1, "/query/", "POST", {"q": "x" * 200})
        logger.log_websocket_event(2, "/ns/e", [1], {"k": 2})
        logged, rejected = qe.log_client_events(
            logger, 3, '[{"type": "CLICK", "data": {"a": 1}, "timestamp": 5}]')
        logger.log_api_request(1, "/admin/x", "GET", {})  # still denied
    assert (logged, rejected) == (1, [])
    assert patched.call_args_list == [
        mock.call(uid=1, event_type=EventType.API, event_data={
            "method": "POST", "route": "/query/", "params": {"q": "x" * 128 + "..."}}),
        mock.call(uid=2, event_type=EventType.WEBSOCKET,
                  event_data={"route": "/ns/e", "args": [1], "kwargs": {"k": 2}}),
        mock.call(uid=3, event_type=EventType.CLICK, event_data={"a": 1}, timestamp=5),
    ]
    assert "log" not in logger.__dict__


def test_fast_path_back_after_patch():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    with mock.patch.object(logger, "log") as patched:
        logger.log_api_request(1, "/q/", "GET", {})
    assert patched.call_count == 1 and stream.getvalue() == ""
    logger.log_api_request(1, "/q/", "GET", {})
    assert json.loads(stream.getvalue())["event_type"] == "API"


def test_instance_log_function_and_direct_log_unaffected():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    seen = []
    logger.log = lambda **kwargs: seen.append(kwargs)
    logger.log_websocket_event(7, "/ns/e", [], {})
    assert seen == [{"uid": 7, "event_type": EventType.WEBSOCKET,
                     "event_data": {"route": "/ns/e", "args": [], "kwargs": {}}}]
    # the type's C log() is still there for whoever calls it
    qe.ConsoleEventLogger.log(logger, 1, "VIEW", {}, 0)
    assert json.loads(stream.getvalue())["event_type"] == "VIEW"


def test_patch_object_should_log_api_request():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    with mock.patch.object(logger, "_should_log_api_request", return_value=False) as decide:
        logger.log_api_request(1, "/query/", "GET", {})
    assert decide.call_args == mock.call("/query/", "GET")
    assert stream.getvalue() == ""
    with mock.patch.object(logger, "_should_log_api_request", return_value=True):
        logger.log_api_request(1, "/admin/anything", "GET", {})
    assert json.loads(stream.getvalue())["event_data"]["route"] == "/admin/anything"


def test_patch_on_python_plugin():
    plugin = Plugin()
    with mock.patch.object(plugin, "log") as patched:
        plugin.log_api_request(1, "/q/", "GET", {})
    assert patched.call_count == 1 and not hasattr(plugin, "last")
    plugin.log_api_request(1, "/q/", "GET", {})
    assert plugin.last[1] is EventType.API


def test_unrelated_instance_attributes_keep_the_fast_path():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    logger.tag = "x"
    logger.log_api_request(1, "/q/", "GET", {})
    assert json.loads(stream.getvalue())["event_type"] == "API"


@pytest.mark.parametrize("make", [qe.NullEventLogger,
                                  lambda: qe.ConsoleEventLogger(io.StringIO())])
def test_cycle_through_instance_dict_is_collected(make):
    logger = make()
    logger.me = logger
    logger.log = mock.Mock()
    ref = weakref.ref(logger)
    del logger
    gc.collect()
    assert ref() is None


def test_instance_dict_freed_with_the_logger():
    payload = object()
    before = sys.getrefcount(payload)
    for make in (qe.NullEventLogger, lambda: qe.ConsoleEventLogger(io.StringIO()), Plugin):
        logger = make()
        logger.payload = payload
        del logger
    gc.collect()
    assert sys.getrefcount(payload) == before


def test_db_logger_instance_dict_freed():
    payload = object()
    before = sys.getrefcount(payload)
    logger = qe.DBEventLogger("mysql://user:secret@127.0.0.1:1/querybook", spool_dir=None)
    logger.payload = payload
    del logger
    gc.collect()
    assert sys.getrefcount(payload) == before

"""BaseEventLogger: the abstract contract, Python plugins, API filter rules,
pruning, websocket events, and dispatch to overridden log()."""

import abc
import gc
import inspect
import sys
import tracemalloc
import weakref
from typing import ClassVar

import pytest

import querybook_eventlog as qe
from querybook_eventlog import EventType


class Recorder(qe.BaseEventLogger):
    """An upstream-style plugin: logger_name property and log() in Python."""

    def __init__(self):
        self.calls = []

    @property
    def logger_name(self):
        return "recorder"

    def log(self, uid, event_type, event_data, timestamp=None):
        self.calls.append((uid, event_type, event_data, timestamp))


# ---- the abstract contract ----------------------------------------------


def abc_message(class_name, *abstract_names):
    """The TypeError message the running Python's abc.ABC gives for a class
    named class_name lacking abstract_names (3.12 reworded it)."""
    namespace = {name: abc.abstractmethod(lambda self: None) for name in abstract_names}
    reference = abc.ABCMeta(class_name, (abc.ABC,), namespace)
    with pytest.raises(TypeError) as info:
        reference()
    return str(info.value)


def test_base_itself_is_abstract():
    with pytest.raises(TypeError) as info:
        qe.BaseEventLogger()
    # object.__new__ names a C type by its full tp_name
    assert str(info.value) == abc_message("BaseEventLogger", "log", "logger_name").replace(
        "class BaseEventLogger", "class querybook_eventlog._core.BaseEventLogger"
    )
    assert inspect.isabstract(qe.BaseEventLogger)
    assert qe.BaseEventLogger.__abstractmethods__ == frozenset({"log", "logger_name"})


def test_subclass_missing_both():
    class Empty(qe.BaseEventLogger):
        pass

    with pytest.raises(TypeError) as info:
        Empty()
    assert str(info.value) == abc_message("Empty", "log", "logger_name")
    assert inspect.isabstract(Empty)


def test_subclass_missing_log():
    class NoLog(qe.BaseEventLogger):
        @property
        def logger_name(self):
            return "nolog"

    with pytest.raises(TypeError) as info:
        NoLog()
    assert str(info.value) == abc_message("NoLog", "log")


def test_subclass_missing_logger_name():
    class NoName(qe.BaseEventLogger):
        def log(self, uid, event_type, event_data, timestamp=None):
            pass

    with pytest.raises(TypeError) as info:
        NoName()
    assert str(info.value) == abc_message("NoName", "logger_name")


def test_abc_registration():
    assert issubclass(qe.BaseEventLogger, abc.ABC)
    assert isinstance(Recorder(), abc.ABC)
    for logger in (qe.NullEventLogger(), qe.ConsoleEventLogger()):
        assert isinstance(logger, abc.ABC)


def test_plugin_mixing_in_abc_abc_still_guarded():
    # ABCMeta recomputes __abstractmethods__ without our placeholders
    class Mixed(qe.BaseEventLogger, abc.ABC):
        logger_name = "mixed"

    with pytest.raises(TypeError) as info:
        Mixed()
    assert str(info.value) == abc_message("Mixed", "log")
    assert inspect.isabstract(Mixed)

    class Done(Mixed):
        def log(self, uid, event_type, event_data, timestamp=None):
            self.last = event_type

    done = Done()
    done.log_api_request(1, "/q/", "GET", {})
    assert done.last is EventType.API


def test_abstractmethod_in_intermediate_class():
    class Middle(qe.BaseEventLogger):
        @property
        def logger_name(self):
            return "middle"

        def log(self, uid, event_type, event_data, timestamp=None):
            self.flush_one()

        @abc.abstractmethod
        def flush_one(self): ...

    with pytest.raises(TypeError) as info:
        Middle()
    assert str(info.value) == abc_message("Middle", "flush_one")
    assert Middle.__abstractmethods__ == frozenset({"flush_one"})

    class StillAbstract(Middle):
        pass

    with pytest.raises(TypeError) as info:
        StillAbstract()
    assert str(info.value) == abc_message("StillAbstract", "flush_one")

    class TwoMore(StillAbstract):
        @abc.abstractmethod
        def open_one(self): ...

    with pytest.raises(TypeError) as info:
        TwoMore()
    assert str(info.value) == abc_message("TwoMore", "flush_one", "open_one")

    class Leaf(Middle):
        def flush_one(self):
            self.flushed = True

    leaf = Leaf()
    leaf.log(1, EventType.CLICK, {})
    assert leaf.flushed
    assert not inspect.isabstract(Leaf)


def test_abstract_logger_name_property_in_intermediate_class():
    class Middle(qe.BaseEventLogger):
        @property
        @abc.abstractmethod
        def logger_name(self): ...

        def log(self, uid, event_type, event_data, timestamp=None):
            pass

    with pytest.raises(TypeError) as info:
        Middle()
    assert str(info.value) == abc_message("Middle", "logger_name")


def test_plugin_with_class_attribute_logger_name():
    class Attr(qe.BaseEventLogger):
        logger_name = "attr"

        def log(self, uid, event_type, event_data, timestamp=None):
            pass

    assert Attr().logger_name == "attr"


def test_init_subclass_cooperates_with_mixins():
    seen = []

    class Mixin:
        def __init_subclass__(cls, tag=None, **kwargs):
            super().__init_subclass__(**kwargs)
            seen.append((cls.__name__, tag))

    class Tagged(qe.BaseEventLogger, Mixin, tag="x"):
        logger_name = "tagged"

        def log(self, uid, event_type, event_data, timestamp=None):
            pass

    assert seen == [("Tagged", "x")]
    Tagged()


def test_python_init_subclass_not_calling_super_still_guarded():
    class Careless(qe.BaseEventLogger):
        def __init_subclass__(cls, **kwargs):
            pass  # skips BaseEventLogger.__init_subclass__

    class Leaf(Careless):
        pass

    with pytest.raises(TypeError) as info:
        Leaf()
    assert str(info.value) == abc_message("Leaf", "log", "logger_name")
    assert inspect.isabstract(Leaf)


def test_plugins_with_own_init():
    class WithSuper(Recorder):
        def __init__(self, prefix):
            super().__init__()
            self.prefix = prefix

    class WithoutSuper(qe.BaseEventLogger):
        def __init__(self, a, b=2):
            self.a, self.b = a, b

        logger_name = "nosuper"

        def log(self, uid, event_type, event_data, timestamp=None):
            self.last = (uid, event_type, event_data)

    plugin = WithSuper("p")
    assert plugin.prefix == "p" and plugin.calls == []
    other = WithoutSuper(1, b=3)
    assert (other.a, other.b) == (1, 3)
    other.log_websocket_event(7, "/ns/ev", [], {})
    assert other.last == (7, EventType.WEBSOCKET, {"route": "/ns/ev", "args": [], "kwargs": {}})


def test_plugins_are_weakrefable_and_have_a_dict():
    plugin = Recorder()
    plugin.extra = 1
    ref = weakref.ref(plugin)
    assert ref() is plugin
    del plugin
    gc.collect()
    assert ref() is None
    null = qe.NullEventLogger()
    assert weakref.ref(null)() is null


def test_abstract_members_raise_when_called_through_super():
    class CallsSuper(Recorder):
        def log(self, uid, event_type, event_data, timestamp=None):
            return qe.BaseEventLogger.log(self, uid, event_type, event_data)

    with pytest.raises(NotImplementedError):
        CallsSuper().log(1, EventType.CLICK, {})


def test_isinstance_and_docstrings():
    assert isinstance(Recorder(), qe.BaseEventLogger)
    for name in (
        "log",
        "log_api_request",
        "log_websocket_event",
        "_should_log_api_request",
        "_api_allow_list",
        "_api_deny_list",
        "logger_name",
    ):
        assert getattr(qe.BaseEventLogger, name).__doc__, name
    assert qe.BaseEventLogger.__doc__
    assert list(inspect.signature(qe.BaseEventLogger.log_api_request).parameters) == [
        "self",
        "uid",
        "route",
        "method",
        "params",
    ]


# ---- dispatch to a Python log() -----------------------------------------


def test_log_api_request_calls_python_log_with_keywords():
    received = {}

    class Strict(qe.BaseEventLogger):
        logger_name = "strict"

        def log(self, *, uid, event_type, event_data):  # keywords only, no timestamp
            received.update(uid=uid, event_type=event_type, event_data=event_data)

    Strict().log_api_request(uid=3, route="/query/", method="POST", params={"q": "select 1"})
    assert received == {
        "uid": 3,
        "event_type": EventType.API,
        "event_data": {"method": "POST", "route": "/query/", "params": {"q": "select 1"}},
    }
    assert type(received["event_type"]) is EventType
    assert list(received["event_data"]) == ["method", "route", "params"]


def test_log_api_request_positional_arguments():
    plugin = Recorder()
    plugin.log_api_request(1, "/x/", "GET", {})
    assert plugin.calls == [
        (1, EventType.API, {"method": "GET", "route": "/x/", "params": {}}, None)
    ]


def test_log_api_request_argument_errors():
    plugin = Recorder()
    with pytest.raises(TypeError, match="missing required argument 'params'"):
        plugin.log_api_request(1, "/x/", "GET")
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        plugin.log_api_request(1, "/x/", "GET", {}, foo=1)
    with pytest.raises(TypeError, match="multiple values"):
        plugin.log_api_request(1, "/x/", "GET", {}, uid=2)
    with pytest.raises(TypeError, match="params must be a dict"):
        plugin.log_api_request(1, "/x/", "GET", [("a", 1)])
    assert plugin.calls == []


def test_websocket_event():
    plugin = Recorder()
    args, kwargs = [1, "two"], {"k": "v" * 500}
    plugin.log_websocket_event(uid=9, route="/datadoc/join", args=args, kwargs=kwargs)
    assert plugin.calls == [
        (9, EventType.WEBSOCKET, {"route": "/datadoc/join", "args": args, "kwargs": kwargs}, None)
    ]
    # not pruned, same objects
    assert plugin.calls[0][2]["args"] is args and plugin.calls[0][2]["kwargs"] is kwargs


def test_python_subclass_of_builtin_overriding_log_gets_the_call():
    class Loud(qe.NullEventLogger):
        def __init__(self):
            self.calls = []

        def log(self, uid, event_type, event_data, timestamp=None):
            self.calls.append((uid, event_type, event_data))

    loud = Loud()
    loud.log_api_request(1, "/a/", "GET", {"x": 1})
    loud.log_websocket_event(2, "/ns/e", [], {})
    assert loud.calls == [
        (1, EventType.API, {"method": "GET", "route": "/a/", "params": {"x": 1}}),
        (2, EventType.WEBSOCKET, {"route": "/ns/e", "args": [], "kwargs": {}}),
    ]


def test_python_subclass_of_builtin_without_override_uses_builtin_log():
    class Quiet(qe.NullEventLogger):
        pass

    quiet = Quiet()
    quiet.log_api_request(1, "/a/", "GET", {})
    # the builtin log still validates: a bad uid raises through the fast path
    with pytest.raises(TypeError, match="uid"):
        quiet.log_api_request(True, "/a/", "GET", {})


def test_exception_in_python_log_propagates():
    class Broken(Recorder):
        def log(self, uid, event_type, event_data, timestamp=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Broken().log_api_request(1, "/a/", "GET", {})


# ---- allow / deny lists ---------------------------------------------------


def test_default_deny_list_value_is_fresh_each_time():
    plugin = Recorder()
    expected = [
        {"type": "prefix", "route": "/admin", "method": "*"},
        {"type": "exact", "route": "/login/", "method": "POST"},
        {"type": "exact", "route": "/signup/", "method": "POST"},
    ]
    first = plugin._api_deny_list
    assert first == expected
    first[0]["route"] = "/changed"
    first.append({"type": "prefix", "route": "/", "method": "*"})
    assert plugin._api_deny_list == expected
    assert qe.NullEventLogger()._api_deny_list == expected
    assert plugin._api_allow_list is None


@pytest.mark.parametrize(
    "route, method, logged",
    [
        ("/admin", "GET", False),
        ("/admin/user/", "POST", False),
        ("/admin/", "DELETE", False),
        ("/administrator/", "PUT", False),  # prefix, as upstream
        ("/adm", "GET", True),
        ("/login/", "POST", False),
        ("/login/", "GET", True),
        ("/login/x/", "POST", True),  # exact
        ("/login", "POST", True),
        ("/signup/", "POST", False),
        ("/signup/", "PUT", True),
        ("/query/", "POST", True),
        ("/user/", "GET", True),  # only the DB logger denies /user
        ("", "GET", True),
        ("/ädmin/", "GET", True),
    ],
)
def test_default_deny_semantics(route, method, logged):
    plugin = Recorder()
    assert plugin._should_log_api_request(route, method) is logged
    plugin.log_api_request(1, route, method, {})
    assert len(plugin.calls) == (1 if logged else 0)
    # the builtin types use the same rules
    assert qe.NullEventLogger()._should_log_api_request(route, method) is logged


def test_route_with_lone_surrogate_does_not_crash():
    plugin = Recorder()
    assert plugin._should_log_api_request("/admin\udc80", "GET") is False
    assert plugin._should_log_api_request("/x\udc80", "GET") is True


def test_db_logger_deny_list():
    assert qe.DBEventLogger.log is not qe.BaseEventLogger.log
    db = qe.DBEventLogger.__new__(qe.DBEventLogger)  # the rules need no writer
    rules = db._api_deny_list
    assert {"type": "prefix", "route": "/user", "method": "GET"} in rules
    assert db._should_log_api_request("/user/5/", "GET") is False
    assert db._should_log_api_request("/query_engine/", "GET") is False
    assert db._should_log_api_request("/query_engine/", "POST") is True
    assert db._should_log_api_request("/admin/x", "POST") is False


def test_overridden_allow_list_property():
    class Allowing(Recorder):
        @property
        def _api_allow_list(self):
            return [
                {"type": "exact", "route": "/admin/", "method": "GET"},
                {"type": "prefix", "route": "/query", "method": "*"},
            ]

    plugin = Allowing()
    plugin.log_api_request(1, "/admin/", "GET", {})  # allow list wins over deny list
    plugin.log_api_request(1, "/admin/", "POST", {})
    plugin.log_api_request(1, "/query_execution/", "DELETE", {})
    plugin.log_api_request(1, "/table/", "GET", {})
    assert [call[2]["route"] for call in plugin.calls] == ["/admin/", "/query_execution/"]


def test_allow_list_none_falls_back_to_deny_list():
    class NoneAllow(Recorder):
        _api_allow_list = None
        _api_deny_list: ClassVar[list] = [{"type": "exact", "route": "/x/", "method": "GET"}]

    plugin = NoneAllow()
    plugin.log_api_request(1, "/x/", "GET", {})
    plugin.log_api_request(1, "/admin/", "GET", {})  # default list replaced
    assert [call[2]["route"] for call in plugin.calls] == ["/admin/"]


def test_overridden_deny_list_as_class_attribute_and_as_none():
    class Denying(Recorder):
        _api_deny_list: ClassVar[list] = [{"type": "prefix", "route": "/table", "method": "GET"}]

    class DenyNothing(Recorder):
        _api_deny_list = None

    plugin = Denying()
    plugin.log_api_request(1, "/table/1/", "GET", {})
    plugin.log_api_request(1, "/table/1/", "PUT", {})
    assert [call[2]["method"] for call in plugin.calls] == ["PUT"]
    nothing = DenyNothing()
    nothing.log_api_request(1, "/admin/", "GET", {})
    assert len(nothing.calls) == 1


def test_deny_list_extended_with_super():
    class Extended(qe.NullEventLogger):
        @property
        def _api_deny_list(self):
            return super()._api_deny_list + [{"type": "exact", "route": "/x/", "method": "*"}]

    logger = Extended()
    assert logger._should_log_api_request("/x/", "GET") is False
    assert logger._should_log_api_request("/admin/", "GET") is False
    assert logger._should_log_api_request("/y/", "GET") is True


def test_overridden_should_log_api_request():
    class Picky(Recorder):
        def _should_log_api_request(self, route, method):
            self.asked = (route, method)
            return route.endswith("/ok/")

    plugin = Picky()
    plugin.log_api_request(1, "/admin/ok/", "GET", {})
    plugin.log_api_request(1, "/query/", "GET", {})
    assert plugin.asked == ("/query/", "GET")
    assert [call[2]["route"] for call in plugin.calls] == ["/admin/ok/"]


def test_overridden_should_log_calling_super():
    class Wrapper(Recorder):
        def _should_log_api_request(self, route, method):
            return method != "DELETE" and super()._should_log_api_request(route, method)

    plugin = Wrapper()
    plugin.log_api_request(1, "/a/", "DELETE", {})
    plugin.log_api_request(1, "/admin/", "GET", {})
    plugin.log_api_request(1, "/a/", "GET", {})
    assert [call[2]["route"] for call in plugin.calls] == ["/a/"]


def test_overrides_honoured_on_builtin_subclass_fast_path():
    import io

    class OnlyQueries(qe.ConsoleEventLogger):
        _api_allow_list: ClassVar[list] = [{"type": "prefix", "route": "/query", "method": "*"}]

    stream = io.StringIO()
    logger = OnlyQueries(stream)
    logger.log_api_request(1, "/query/", "GET", {})
    logger.log_api_request(1, "/table/", "GET", {})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and '"route":"/query/"' in lines[0]


@pytest.mark.parametrize(
    "rules, error",
    [
        (["not a dict"], TypeError),
        ([{"route": "/x", "method": "*"}], ValueError),
        ([{"type": "regex", "route": "/x", "method": "*"}], ValueError),
        ([{"type": "prefix", "route": 5, "method": "*"}], TypeError),
        ([{"type": "prefix", "route": "/x", "method": None}], TypeError),
        ([{"type": "prefix", "method": "*"}], ValueError),
        (42, TypeError),
    ],
)
def test_malformed_rules_raise(rules, error):
    class Bad(Recorder):
        _api_deny_list = rules

    plugin = Bad()
    with pytest.raises(error):
        plugin.log_api_request(1, "/x/", "GET", {})
    assert plugin.calls == []


def test_rules_may_be_tuples_or_generators():
    class TupleRules(Recorder):
        _api_deny_list = ({"type": "exact", "route": "/x/", "method": "GET"},)

    plugin = TupleRules()
    plugin.log_api_request(1, "/x/", "GET", {})
    assert plugin.calls == []


def test_non_str_route_or_method():
    with pytest.raises(TypeError, match="route and method must be str"):
        Recorder().log_api_request(1, None, "GET", {})
    with pytest.raises(TypeError):
        Recorder()._should_log_api_request("/x/")
    assert Recorder()._should_log_api_request(route="/admin/", method="GET") is False


# ---- pruning ----------------------------------------------------------------


def test_pruning():
    plugin = Recorder()
    long_value = "é" * 129  # counted in characters, not bytes
    exact = "a" * 128
    nested = {"sql": "s" * 300, "short": "ok", "deeper": {"x": "y" * 1000}}
    a_list = ["z" * 500]
    params = {
        "long": long_value,
        "exact": exact,
        "nested": nested,
        "list": a_list,
        "num": 5,
        "none": None,
    }
    snapshot = repr(params)
    plugin.log_api_request(1, "/query/", "POST", params)
    pruned = plugin.calls[0][2]["params"]
    assert pruned["long"] == "é" * 128 + "..."
    assert pruned["exact"] is exact
    assert pruned["nested"] == {
        "sql": "s" * 128 + "...",
        "short": "ok",
        "deeper": {"x": "y" * 128 + "..."},
    }
    assert pruned["list"] is a_list  # lists untouched, even long strings inside
    assert pruned["num"] == 5 and pruned["none"] is None
    assert list(pruned) == list(params)
    assert pruned is not params and pruned["nested"] is not nested
    assert repr(params) == snapshot  # caller's params not mutated


def test_pruning_uses_items_of_dict_subclasses():
    class MultiDict(dict):
        def items(self):
            return [(key, values[0]) for key, values in super().items()]

    plugin = Recorder()
    plugin.log_api_request(1, "/a/", "GET", {"m": MultiDict(k=["first", "second"])})
    assert plugin.calls[0][2]["params"] == {"m": {"k": "first"}}


def test_pruning_self_referencing_params_raises_not_crashes():
    params = {}
    params["self"] = params
    with pytest.raises(RecursionError):
        Recorder().log_api_request(1, "/a/", "GET", params)


# ---- leaks ------------------------------------------------------------------


def test_refcounts_stable_on_hot_paths():
    plugin = Recorder()
    plugin.calls = None

    class Dropping(qe.BaseEventLogger):
        logger_name = "dropping"

        def log(self, uid, event_type, event_data, timestamp=None):
            pass

    dropping = Dropping()
    null = qe.NullEventLogger()
    params = {"a": "x" * 300, "b": {"c": 1}, "l": [1, 2]}
    route, method = "/query/", "GET"
    event_data = {"path": "/", "component": "x"}
    before = [sys.getrefcount(obj) for obj in (params, route, method, event_data, params["l"])]
    for _ in range(1000):
        dropping.log_api_request(1, route, method, params)
        null.log_api_request(1, route, method, params)
        null.log(1, EventType.CLICK, event_data)
        null.log_websocket_event(1, route, params["l"], event_data)
        dropping.log_websocket_event(1, route, params["l"], event_data)
        null.log_api_request(1, "/admin/", method, params)
    after = [sys.getrefcount(obj) for obj in (params, route, method, event_data, params["l"])]
    assert before == after


def test_memory_bounded_on_hot_paths():
    class Dropping(qe.BaseEventLogger):
        logger_name = "dropping"

        def log(self, uid, event_type, event_data, timestamp=None):
            pass

    dropping, null = Dropping(), qe.NullEventLogger()
    params = {"a": "x" * 300, "b": {"c": "y" * 200}}

    def run(count):
        for _ in range(count):
            dropping.log_api_request(1, "/query/", "GET", params)
            null.log_api_request(1, "/query/", "GET", params)
            try:
                null.log(True, "CLICK", {})
            except TypeError:
                pass

    run(1000)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        run(20000)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024

"""Which logger Querybook uses: EVENT_LOGGER_NAME, the builtin loggers and plugins.

Mirrors upstream's ``lib.event_logger.all_event_loggers`` -- the same order
(console, null, db, then the plugins) and the same lookup -- but nothing
happens at import: the registry is built on first use, and built again if
the package switches to Querybook's settings afterwards.  Building it never
connects anywhere (the DB logger is lazy); a plugin module that fails to
import is logged and skipped, as upstream's ``import_module_with_default``
does.
"""

from __future__ import annotations

import importlib
import threading
from typing import List, Optional, Tuple

from . import _settings
from ._core import BaseEventLogger, ConsoleEventLogger, DBEventLogger, KafkaEventLogger, NullEventLogger

PLUGIN_MODULE = _settings.PLUGIN_MODULE

_lock = threading.RLock()
# (querybook mode it was built for, builtins, plugins)
_built: Optional[Tuple[bool, List[BaseEventLogger], List[BaseEventLogger]]] = None
# Fan-out loggers by the member names they were made for (same mode as _built).
_fan_outs: "dict[tuple, BaseEventLogger]" = {}
# The "kafka" logger (made on first lookup, for the mode it was made in).  It
# is not in ALL_EVENT_LOGGERS, which stays exactly upstream's list.
_extra: Optional[Tuple[bool, List[BaseEventLogger]]] = None


def _import_plugin_event_loggers() -> List[BaseEventLogger]:
    """event_logger_plugin.ALL_PLUGIN_EVENT_LOGGERS; [] when the module is
    missing, fails to import (logged with its traceback), or the value is
    empty or None (upstream's ``default=[]``)."""
    try:
        module = importlib.import_module(PLUGIN_MODULE)
    except ModuleNotFoundError as error:
        if error.name == PLUGIN_MODULE:
            _settings.package_logger().debug("no %s module: no plugin event loggers", PLUGIN_MODULE)
        else:
            _settings.package_logger().error(
                "cannot import %s (%s); its event loggers are skipped", PLUGIN_MODULE, error,
                exc_info=True)
        return []
    except Exception as error:  # a broken plugin must not take the application down
        _settings.package_logger().error(
            "cannot import %s (%s: %s); its event loggers are skipped", PLUGIN_MODULE,
            type(error).__name__, error, exc_info=True)
        return []
    value = getattr(module, "ALL_PLUGIN_EVENT_LOGGERS", None)
    if not value:
        return []
    try:
        return list(value)
    except TypeError:
        _settings.package_logger().error(
            "%s.ALL_PLUGIN_EVENT_LOGGERS is not a list (%s); ignored", PLUGIN_MODULE,
            type(value).__name__)
        return []


def _kafka_logger() -> List[BaseEventLogger]:
    """[KafkaEventLogger()] (lazy: settings are read on its first log()), or []
    in a build without librdkafka, where constructing it raises."""
    try:
        return [KafkaEventLogger()]
    except RuntimeError as error:
        _settings.package_logger().debug("no kafka logger: %s", error)
        return []


def _extra_builtins() -> List[BaseEventLogger]:
    global _extra
    mode = _settings.in_querybook()
    with _lock:
        if _extra is None or _extra[0] != mode:
            _extra = (mode, _kafka_logger())
        return _extra[1]


def _registry() -> Tuple[List[BaseEventLogger], List[BaseEventLogger]]:
    global _built
    mode = _settings.in_querybook()
    built = _built
    if built is not None and built[0] == mode:
        return built[1], built[2]
    with _lock:
        if _built is None or _built[0] != mode:
            _settings.apply_application_event_type()
            builtins: List[BaseEventLogger] = [ConsoleEventLogger(), NullEventLogger(), DBEventLogger()]
            _built = (mode, builtins, _import_plugin_event_loggers())
        return _built[1], _built[2]


def all_plugin_event_loggers() -> List[BaseEventLogger]:
    """The plugin loggers (event_logger_plugin.ALL_PLUGIN_EVENT_LOGGERS)."""
    return _registry()[1]


def all_event_loggers() -> List[BaseEventLogger]:
    """[console, null, db] + the plugins, as upstream's ALL_EVENT_LOGGERS."""
    builtins, plugins = _registry()
    return builtins + plugins


def get_event_logger_class(name: "str | list[str]") -> BaseEventLogger:
    """The logger instance whose logger_name is `name` (upstream's name for it).
    Several names ("db,kafka", or a list) give one fan-out logger over them
    (querybook_eventlog._fanout), the same instance each time.

    Raises ValueError("Unknown event logger name <name>") when none matches.
    """
    from ._fanout import FanOutEventLogger, parse_logger_names

    members = parse_logger_names(name)
    if members is not None:
        key = (_settings.in_querybook(), tuple(members))
        with _lock:
            fan_out = _fan_outs.get(key)
            if fan_out is None:
                fan_out = FanOutEventLogger([_single_logger(member) for member in members])
                _fan_outs[key] = fan_out
        return fan_out
    return _single_logger(name)


def _single_logger(name: str) -> BaseEventLogger:
    builtins, plugins = _registry()
    for logger in builtins + plugins:
        if logger.logger_name == name:
            return logger
    if name == "kafka":
        for logger in _extra_builtins():
            return logger
    raise ValueError(f"Unknown event logger name {name}")


def configured_logger_name() -> str:
    """EVENT_LOGGER_NAME as the application resolves it (see _settings)."""
    return _settings.configured_logger_name()


def _reset_for_tests() -> None:
    """Forget the built registry (tests switch plugin modules and settings)."""
    global _built, _extra
    with _lock:
        _built = None
        _extra = None
        _fan_outs.clear()

"""querybook_eventlog: Querybook's event logging with a C core.

Drop-in for Querybook's ``lib.event_logger``: the same names and semantics
(``BaseEventLogger``, ``EventType``, the ``null``/``console``/``db`` loggers,
plugins from ``event_logger_plugin``), a fast JSON encoder (``dumps``) and a
DB logger that batches events into MySQL from a writer thread of its own.

Importing the package builds types and nothing else: no connection, no
directory, no settings read, no plugin import.  ``ALL_EVENT_LOGGERS`` is built
on first access.  Inside Querybook, adopt it through ``querybook_eventlog.querybook``.
"""

from ._event_type import EventType
from ._core import (
    MAX_JSON_DEPTH,
    MAX_STR_PARAM_LENGTH,
    BaseEventLogger,
    ConsoleEventLogger,
    DBEventLogger,
    KafkaEventLogger,
    NullEventLogger,
    dumps,
    log_client_events,
)
from ._registry import configured_logger_name, get_event_logger_class
from ._facade import EventLogger

__all__ = [
    "EventType",
    "BaseEventLogger",
    "NullEventLogger",
    "ConsoleEventLogger",
    "DBEventLogger",
    "KafkaEventLogger",
    "dumps",
    "MAX_JSON_DEPTH",
    "MAX_STR_PARAM_LENGTH",
    "ALL_EVENT_LOGGERS",
    "ALL_PLUGIN_EVENT_LOGGERS",
    "configured_logger_name",
    "get_event_logger_class",
    "EventLogger",
    "log_client_events",
    "clean_up_event_logs",
]


def __getattr__(name):
    # Built on first access, never at import (PEP 562).
    if name == "ALL_EVENT_LOGGERS":
        from ._registry import all_event_loggers

        return all_event_loggers()
    if name == "ALL_PLUGIN_EVENT_LOGGERS":
        from ._registry import all_plugin_event_loggers

        return all_plugin_event_loggers()
    if name == "clean_up_event_logs":
        from ._cleanup import clean_up_event_logs

        return clean_up_event_logs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

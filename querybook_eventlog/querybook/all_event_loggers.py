"""Upstream's ``lib/event_logger/all_event_loggers.py``: the registry.

``ALL_EVENT_LOGGERS`` and ``ALL_PLUGIN_EVENT_LOGGERS`` are built on first
access, in upstream's order: console, null, db, then the plugins.
"""

from .. import ConsoleEventLogger, DBEventLogger, NullEventLogger  # noqa: F401  (re-exported)
from .._registry import all_event_loggers, all_plugin_event_loggers, get_event_logger_class  # noqa: F401
from ._lazy import module_getattr
from .. import _settings

_settings.use_querybook()

__getattr__ = module_getattr(__name__, {
    "ALL_EVENT_LOGGERS": all_event_loggers,
    "ALL_PLUGIN_EVENT_LOGGERS": all_plugin_event_loggers,
})

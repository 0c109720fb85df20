"""The Querybook adapter: what ``querybook/server/lib/event_logger/`` becomes.

Querybook adopts the package with one edit (``adopt()``, or by hand as the
README shows): the files of ``lib/event_logger/`` become thin re-exports of
this subpackage, whose modules mirror upstream's one for one, so every name
upstream's modules export still resolves.  Importing it switches the package
to Querybook's own settings (``env.QuerybookSettings``), EventType
(``const.event_log``) and logger (``lib.logger.get_logger``); it imports
none of them until they are used.

This module is upstream's ``lib/event_logger/__init__.py``: ``EventLogger``
and the ``event_logger`` instance (which looks its logger up on first use).
"""

from .. import _settings
from .._facade import EventLogger
from .adoption import adopt

_settings.use_querybook()

event_logger = EventLogger()

__all__ = [
    "EventLogger",
    "event_logger",
    "LOG",
    "current_user",
    "EventType",
    "QuerybookSettings",
    "get_event_logger_class",
    "get_logger",
]


def __getattr__(name):
    # The names upstream's module imports, resolved from Querybook on access.
    if name == "LOG":
        return _settings.package_logger()
    if name == "current_user":
        from flask_login import current_user  # type: ignore

        return current_user
    if name == "EventType":
        _settings.apply_application_event_type()
        return _settings.event_type_class()
    if name == "QuerybookSettings":
        from env import QuerybookSettings  # type: ignore

        return QuerybookSettings
    if name == "get_event_logger_class":
        from .._registry import get_event_logger_class

        return get_event_logger_class
    if name == "get_logger":
        from lib.logger import get_logger  # type: ignore

        return get_logger
    if name == "adopt":
        return adopt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

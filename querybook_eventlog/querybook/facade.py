"""Upstream's ``lib/event_logger/__init__.py``: ``EventLogger`` and the
``event_logger`` instance (which looks its logger up on first use).

Like every mirror module of this subpackage, importing it switches the
package to Querybook's settings (see ``querybook_eventlog.querybook``).
"""

from .. import _settings
from .._facade import EventLogger

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
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
